"""face_embedding node: find, align and embed the faces of tracked persons.

For each `tracks` message it looks up the image with the same stamp, asks the embedding
scheduler which tracks need a face now (no usable face yet or identity pending, tried again
every retry_period; then bigger boxes; then a periodic refresh), finds the face in the upper
part of each such person box, aligns it with dlib's 5-point landmarks and computes a 128-d
dlib ResNet descriptor. Results go out on `faces` with the image's header.
Full-resolution images (the camera's JPEG stream by default, image_transport) are kept
serialized, as they arrive, and deserialised and decoded only for the frames whose tracks
need a face: most frames are never converted here.
A lifecycle node: models load on configure and are freed on cleanup.
"""

import threading
import time
from types import SimpleNamespace

from diagnostic_msgs.msg import DiagnosticStatus
import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.serialization import deserialize_message

from facetrack_ros.conversions import (ImageConversionError, message_to_bgr, serialized_stamp,
                                       time_to_sec, transport_topic)
from facetrack_ros.core.embedding_scheduler import embed_scheduled, EmbeddingScheduler
from facetrack_ros.core.face import (DEFAULT_UPPER_FRACTION, DlibResNetEmbedder, Face,
                                     FaceAnalyzer, FaceDetector)
from facetrack_ros.core.tracking import TrackedPerson, usable_box
from facetrack_ros.diagnostics import NodeDiagnostics
from facetrack_ros.executor import WorkerThreads
from facetrack_ros.lifecycle import InputLifecycleNode
from facetrack_ros.msg import PersonDetection, PersonDetectionArray
from facetrack_ros.parameters import (AUTOSTART, declare_parameters, image_cache,
                                      IMAGE_CACHE_MIB, IMAGE_CACHE_SECONDS, IMAGE_QOS,
                                      image_qos_profile, image_transport, ParamSpec,
                                      RELIABLE_QOS)
from facetrack_ros.runner import run_node

PARAMETERS = (
    ParamSpec('face_detector', 'hog',
              'Face detector inside person boxes: hog or cnn (dlib), or yunet (needs '
              'yunet_model).', choices=('hog', 'cnn', 'yunet'), read_only=True),
    ParamSpec('yunet_model', '', 'Path of a YuNet .onnx model for face_detector yunet.',
              read_only=True),
    ParamSpec('thorough_face_detector', 'cnn',
              'Slower detector tried where face_detector finds no face (person boxes 80 px '
              'wide or more): on every third try of a person without a usable face, and when '
              'one whose face only it found needs a face again. cnn (dlib MMOD: three-quarter '
              'views, five times the cost of hog) or none.', choices=('cnn', 'none'),
              read_only=True),
    ParamSpec('upper_fraction', DEFAULT_UPPER_FRACTION,
              'Part of the person box searched for the face [0..1].', 0.1, 1.0,
              at_configure=True),
    ParamSpec('refresh_period', 2.0, 'Re-embed a tracked person at least this often [s].',
              0.1, 3600.0, at_configure=True),
    ParamSpec('retry_period', 0.25,
              'Try again after this long for a person with no usable face yet or whose '
              'identity is pending, twice this after a try that found no face [s].', 0.0, 60.0,
              at_configure=True),
    ParamSpec('better_box_ratio', 1.3,
              'Re-embed when a person box grew by this factor (a bigger face is better).',
              1.0, 10.0, at_configure=True,
              check=lambda value: None if value > 1 else 'better_box_ratio must be above 1'),
    ParamSpec('max_faces_per_frame', 4, 'Most faces embedded per frame.', 1, 100,
              at_configure=True),
    ParamSpec('threads', 1,
              'CPU threads of each face network run by ONNX Runtime (the descriptor, and the '
              'CNN face detector where chosen); one takes about 4 ms a face descriptor and '
              'leaves the other cores to the detector.', 1, 1024, read_only=True),
    image_transport('image_raw', 'a tenth of the bytes to move and keep; only the frames '
                    'used are decoded'),
    IMAGE_CACHE_SECONDS,
    IMAGE_CACHE_MIB,
    AUTOSTART,
    IMAGE_QOS,
)


def face_analyzer(p: SimpleNamespace) -> FaceAnalyzer:
    """Return the face detector and embedder of the face_embedding parameters p."""
    return FaceAnalyzer(FaceDetector(p.face_detector, yunet_model=p.yunet_model or None,
                                     threads=p.threads),
                        DlibResNetEmbedder(threads=p.threads), upper_fraction=p.upper_fraction,
                        thorough_detector=None
                        if p.thorough_face_detector in ('none', p.face_detector)
                        else FaceDetector(p.thorough_face_detector, threads=p.threads))


def embedding_scheduler(p: SimpleNamespace) -> EmbeddingScheduler:
    """Return the embedding scheduler of the face_embedding parameters p."""
    return EmbeddingScheduler(refresh_s=p.refresh_period, better_box_ratio=p.better_box_ratio,
                              max_per_frame=p.max_faces_per_frame, retry_s=p.retry_period)


def face_detection(person, face: Face | None, model: str,
                   person_id: str | None = None) -> PersonDetection:
    """Return the `faces` entry of a person (box, confidence, track_id, person_id) and face.

    person_id, if given, replaces the person's (an identified face).
    """
    result = PersonDetection(box=[float(v) for v in person.box],
                             confidence=float(person.confidence), track_id=person.track_id,
                             person_id=person.person_id if person_id is None else person_id)
    if face is not None:
        result.has_face = True
        result.face_box = face.box.tolist()
        result.face_quality = float(face.quality)
        result.embedding = face.embedding.tolist()
        result.embedding_model = model
    return result


class FaceEmbeddingNode(InputLifecycleNode):
    """Thin adapter over core.face.FaceAnalyzer and core.embedding_scheduler."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters; models load on configure."""
        super().__init__('face_embedding', **kwargs)
        self.params = declare_parameters(self, PARAMETERS,
                                         configured=lambda: self.analyzer is not None)
        self.analyzer: FaceAnalyzer | None = None
        self.scheduler: EmbeddingScheduler | None = None
        self.images = image_cache(self.params)
        self.subscriptions_ = []
        self.publisher = None
        # Held while tracks are embedded: cleanup waits for the frame in hand, rather than
        # take the models and the publisher from under it.
        self._in_use = threading.Lock()
        # Faces are embedded (tens of ms each) in a worker thread (a group of its own) while
        # the executor's thread caches the next images, for the tracks that will follow.
        self.embedding_group = MutuallyExclusiveCallbackGroup()
        self.workers = WorkerThreads(self, 1, 'face_embedding')
        self.diagnostics = NodeDiagnostics(self)
        self.diagnostics.set_state(DiagnosticStatus.WARN, 'unconfigured: no model loaded')

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the face detector and the embedding model."""
        p = self.params
        try:
            scheduler = embedding_scheduler(p)
            self.analyzer, self.scheduler = face_analyzer(p), scheduler
        except (FileNotFoundError, ValueError, RuntimeError) as error:
            self.get_logger().error(f'cannot load face models: {error}')
            self.diagnostics.set_state(DiagnosticStatus.ERROR, str(error))
            return TransitionCallbackReturn.FAILURE
        self.publisher = self.create_lifecycle_publisher(
            PersonDetectionArray, 'faces', RELIABLE_QOS)
        self.diagnostics.set_state(DiagnosticStatus.OK, f'{p.face_detector} (thorough: '
                                   f'{p.thorough_face_detector}) + dlib_resnet_v1')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start taking images and tracks."""
        guarded = self.diagnostics.guarded
        self.subscriptions_ = [
            self.create_subscription(*transport_topic('image_raw', self.params.image_transport),
                                     guarded(self.on_image),
                                     image_qos_profile(self.params.image_qos), raw=True),
            self.create_subscription(PersonDetectionArray, 'tracks',
                                     self.workers.wrap(guarded(self.on_tracks)), RELIABLE_QOS,
                                     callback_group=self.embedding_group),
        ]
        return super().on_activate(state)

    def destroy_node(self) -> None:
        """Take no more tracks into the worker thread; close the node."""
        self.workers.shutdown()
        super().destroy_node()

    def _stop_inputs(self) -> None:
        for subscription in self.subscriptions_:
            self.destroy_subscription(subscription)
        self.subscriptions_ = []
        self.images.clear()

    def _release(self) -> None:
        with self._in_use:
            self.analyzer = self.scheduler = None
            if self.publisher is not None:
                self.destroy_lifecycle_publisher(self.publisher)
                self.publisher = None
        self.diagnostics.set_state(DiagnosticStatus.WARN, 'unconfigured: no model loaded')

    def on_image(self, data: bytes) -> None:
        """Keep a serialized image under its stamp; it is deserialised only if used."""
        self.images.add(data, serialized_stamp(data))

    def on_tracks(self, msg: PersonDetectionArray) -> None:
        """Embed the faces of the tracks that need one."""
        with self._in_use:
            if self.analyzer is not None and msg.detections:
                self._embed_frame(msg)

    def _embed_frame(self, msg: PersonDetectionArray) -> None:
        """Embed the faces of a frame's tracks that need one; publish them on faces."""
        usable = [d for d in msg.detections if usable_box(d.box)]
        if len(usable) < len(msg.detections):   # the others' faces still count
            self.diagnostics.errors += 1
            self.get_logger().warning(f'{len(msg.detections) - len(usable)} malformed person '
                                      'box(es) in tracks skipped', throttle_duration_sec=5.0)
        msg.detections = usable
        data = self.images.get(msg.header.stamp)
        stamp = time_to_sec(msg.header.stamp)
        if data is None:
            self.diagnostics.dropped += 1
            self.get_logger().warning(
                f'tracks of a frame without its image: {self._uncached(stamp)}',
                throttle_duration_sec=10.0)
            return
        persons = [TrackedPerson(track_id=d.track_id, person_id=d.person_id,
                                 box=np.asarray(d.box, dtype=np.float32),
                                 confidence=d.confidence, match_similarity=d.match_similarity)
                   for d in msg.detections if d.track_id >= 0]
        wanted = set(self.scheduler.select(stamp, persons))
        if not wanted:
            return   # most frames: decoding a full-resolution frame is the costly part
        try:
            image = message_to_bgr(deserialize_message(
                data, transport_topic('image_raw', self.params.image_transport)[0]))
        except ImageConversionError as error:
            self.diagnostics.errors += 1
            self.get_logger().warning(f'skipping image: {error}', throttle_duration_sec=5.0)
            return
        out = PersonDetectionArray(header=msg.header, image_width=msg.image_width,
                                   image_height=msg.image_height)
        boxes = [np.asarray(d.box, dtype=np.float32) for d in msg.detections]
        for index, detection in enumerate(msg.detections):
            if detection.track_id in wanted:
                out.detections.append(self._embed(image, detection, stamp, boxes[index],
                                                  boxes[:index] + boxes[index + 1:]))
        self.publisher.publish(out)
        self.diagnostics.processed(time.time() - stamp)

    def _uncached(self, stamp: float) -> str:
        """Return why the cache holds no image stamped stamp [s], for the log."""
        latest, held = self.images.latest_s(), self.images.span_s()
        if latest is not None and latest - stamp > held:
            return (f'{latest - stamp:.2f} s behind the latest image, beyond the {held:.2f} s '
                    'kept (image_cache_seconds, image_cache_mib)')
        return 'it never arrived (best-effort image QoS drops the frames a busy node misses)'

    def _embed(self, image: np.ndarray, person: PersonDetection, stamp: float,
               box: np.ndarray, others: list[np.ndarray]) -> PersonDetection:
        face = embed_scheduled(self.scheduler, self.analyzer, image, person.track_id, stamp,
                               box, others)
        return face_detection(person, face, self.analyzer.embedder.name)


def main(args: list[str] | None = None) -> int:
    """Run the face_embedding node."""
    return run_node(FaceEmbeddingNode, args)
