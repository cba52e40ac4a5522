"""detector node: ultralytics YOLO person detection, as a lifecycle node.

The model loads on configure and is freed on cleanup; images are taken only while active.
It reads image_detect (JPEG by default: image_transport), the camera's copy of each frame
reduced to the detector's size (of a Motion-JPEG camera, its own full-size JPEG), reduces a
larger image to image_size itself (a JPEG decoded straight at 1/2, 1/4 or 1/8 scale where
that suffices), and gives the boxes in the pixels of the full-resolution frame that
camera_info describes (the same stamp's, else the latest), with the input's header. Without
camera_info (a plain image topic remapped to image_detect) the boxes are in the input
image's pixels. Up to `workers` images (core.detection.detector_workers) are detected at
once, each by a model of its own in a thread of its own (core.newest_workers), and their
detections are published in the images' order.
With no person model available it stops with an error naming the `model` parameter
(require_model: true) or falls back to finding people from their faces (face-first).
"""

import os
import threading
import time
from types import SimpleNamespace

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from facetrack_ros.conversions import (ImageConversionError, message_to_reduced_bgr, StampedCache,
                                       time_to_sec, transport_topic)
from facetrack_ros.core.detection import (body_appearance, create_person_detector,
                                          DEFAULT_CONFIDENCE, DEFAULT_IMAGE_SIZE,
                                          detector_workers, ModelUnavailableError,
                                          PersonDetector, scale_boxes)
from facetrack_ros.core.face import FaceDetector
from facetrack_ros.core.newest_workers import NewestInputWorkers
from facetrack_ros.diagnostics import NodeDiagnostics
from facetrack_ros.lifecycle import InputLifecycleNode
from facetrack_ros.msg import PersonDetection, PersonDetectionArray
from facetrack_ros.parameters import (AUTOSTART, declare_parameters, IMAGE_QOS, image_qos_profile,
                                      image_transport, ParamSpec, RELIABLE_QOS)
from facetrack_ros.runner import run_node

#: CameraInfo messages kept to find the one of an image's stamp.
CAMERA_INFO_CACHE = 30
#: How far an image's aspect ratio may differ from its camera_info's (rounding of a reduced
#: frame's sides) before the boxes are said to be stretched.
ASPECT_TOLERANCE = 0.02

PARAMETERS = (
    ParamSpec('model', 'yolo11n.pt',
              'YOLO weights: a .pt, .onnx or TensorRT .engine path, or an ultralytics model '
              'name (downloaded only when allow_download is true).', at_configure=True),
    ParamSpec('device', 'cpu', 'Inference device: cpu, cuda, cuda:0, ...', at_configure=True),
    ParamSpec('confidence', DEFAULT_CONFIDENCE, 'Smallest person score kept [0..1]; the '
              'tracker tracks boxes above its track_low_thresh, and fainter ones only hold '
              'someone standing still.', 0.01, 1.0, at_configure=True),
    ParamSpec('image_size', DEFAULT_IMAGE_SIZE, 'Inference image size (longest side) [px].',
              32, 4096, at_configure=True),
    ParamSpec('half', False, 'FP16 inference (CUDA and TensorRT only).', at_configure=True),
    ParamSpec('workers', 0,
              'Images detected at once, each by a model of its own in a thread of its own; '
              'the newest image waits while all are busy. 0: two for a .pt or .onnx model on '
              'a CPU (two single-threaded inferences at once detect more frames a second than '
              'two threads on one image), one for TensorRT or a GPU.', 0, 16, at_configure=True),
    ParamSpec('threads', 0,
              'CPU threads of inference and pre/post-processing: torch\'s (a .pt model), '
              'shared by the workers, or each worker\'s ONNX Runtime session\'s (a .onnx '
              'model on the CPU). 0: the CPUs the process may use divided among the workers, '
              'at least 1.',
              0, 1024, at_configure=True),
    ParamSpec('require_model', False,
              'Fail when the person model is unavailable, instead of the face-first fallback.',
              at_configure=True),
    ParamSpec('allow_download', False,
              'Let ultralytics download a named model that is not on disk (needs a network).',
              at_configure=True),
    ParamSpec('fallback_face_detector', 'hog', 'Face detector of the face-first fallback.',
              choices=('hog', 'cnn'), at_configure=True),
    ParamSpec('appearance', True,
              'Publish a body colour descriptor with each box (the tracker keeps tracks '
              'through crossings with it).'),
    ParamSpec('simulated_delay', 0.0,
              'Test only: extra time spent on each image, to simulate a slow detector [s].',
              0.0, 60.0),
    image_transport('image_detect', 'tens of KiB a frame, which best-effort DDS delivers '
                    'whole, where a raw frame (675 KiB at 640x360) is often lost in fragments'),
    AUTOSTART,
    IMAGE_QOS,
)


def person_detector(p: SimpleNamespace, workers: int = 1) -> tuple[PersonDetector, str]:
    """Return a person detector of the detector parameters p, with its status line.

    workers: how many such detectors will run at once, which share the CPUs (torch_threads).
    Raises ModelUnavailableError as core.detection.create_person_detector does.
    """
    return create_person_detector(
        model=p.model, device=p.device, confidence=p.confidence, image_size=p.image_size,
        half=p.half, require_model=p.require_model, allow_download=p.allow_download,
        threads=torch_threads(p.threads, workers),
        face_detector_factory=lambda: FaceDetector(p.fallback_face_detector))


def torch_threads(threads: int, workers: int) -> int:
    """Return torch's thread count: threads, or (0) the process's CPUs among the workers."""
    return threads or max(1, len(os.sched_getaffinity(0)) // workers)


class DetectorNode(InputLifecycleNode):
    """Subscribes to images, publishes PersonDetectionArray with the image's header."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters; nothing is loaded until configure."""
        super().__init__('detector', **kwargs)
        self.params = declare_parameters(self, PARAMETERS,
                                         configured=lambda: bool(self.detectors))
        self.detectors: list[PersonDetector] = []  # one a worker
        self.workers: NewestInputWorkers | None = None
        self.subscriptions_ = []
        self.camera_infos = StampedCache(CAMERA_INFO_CACHE)
        self.latest_info: CameraInfo | None = None
        self.publisher = None
        # A worker still detecting when closing gives up waiting for it publishes after: the
        # publisher is destroyed and used under this lock only.
        self._publisher_lock = threading.Lock()
        self.diagnostics = NodeDiagnostics(self)
        self.diagnostics.set_state(DiagnosticStatus.WARN, 'unconfigured: no model loaded')

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the person model (or the face-first fallback), once per worker."""
        workers = detector_workers(self.params.workers, self.params.model, self.params.device)
        try:
            for _ in range(workers):
                detector, status = person_detector(self.params, workers)
                self.detectors.append(detector)
            kinds = {detector.name for detector in self.detectors}
            if len(kinds) > 1:   # one worker's model failed to load (memory?), it fell back
                raise ModelUnavailableError(
                    f'the {workers} workers loaded different detectors ({", ".join(kinds)}): '
                    'each needs its own copy of the model; lower `workers`')
        except Exception as error:   # ModelUnavailableError, or a fault loading it
            self._release()
            message = str(error) if isinstance(error, ModelUnavailableError) else \
                f'cannot load the person model: {error!r}'
            self.get_logger().error(message)
            self.diagnostics.set_state(DiagnosticStatus.ERROR, message)
            return TransitionCallbackReturn.FAILURE
        level = DiagnosticStatus.OK if 'fallback' not in status else DiagnosticStatus.WARN
        (self.get_logger().info if level == DiagnosticStatus.OK else
         self.get_logger().warning)(f'{status}; {workers} image(s) at once')
        self.diagnostics.set_state(level, status)
        self.diagnostics.values['model'] = self.detectors[0].name
        self.diagnostics.values['workers'] = str(workers)
        self.publisher = self.create_lifecycle_publisher(
            PersonDetectionArray, 'detections', RELIABLE_QOS)
        # Each session's own: a worker of an earlier configure, still detecting when its
        # cleanup stopped waiting, must not publish through this one's publisher.
        session = self.workers = NewestInputWorkers(
            [self._step(d) for d in self.detectors],
            lambda job, out: self._publish(job, out, session), 'detector')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start taking images."""
        qos = image_qos_profile(self.params.image_qos)
        guarded = self.diagnostics.guarded
        self.subscriptions_ = [
            self.create_subscription(CameraInfo, 'camera_info', guarded(self.on_camera_info),
                                     qos),
            self.create_subscription(
                *transport_topic('image_detect', self.params.image_transport),
                guarded(self.on_image), qos),
        ]
        return super().on_activate(state)

    def _stop_inputs(self) -> None:
        for subscription in self.subscriptions_:
            self.destroy_subscription(subscription)
        self.subscriptions_ = []
        self.camera_infos.clear()   # the latest stays: the camera's size, until a new one

    def _release(self) -> None:
        if self.workers is not None:
            self.workers.close()
            self.workers = None
        for detector in self.detectors:
            detector.close()
        self.detectors = []
        with self._publisher_lock:
            if self.publisher is not None:
                self.destroy_lifecycle_publisher(self.publisher)
                self.publisher = None
        self.diagnostics.set_state(DiagnosticStatus.WARN, 'unconfigured: no model loaded')

    def on_camera_info(self, msg: CameraInfo) -> None:
        """Keep the full-resolution frame size of recent stamps."""
        if msg.width and msg.height:
            self.camera_infos.add(msg)
            self.latest_info = msg

    def on_image(self, msg: Image | CompressedImage) -> None:
        """Hand an image to the workers, with the camera_info of its stamp (or the latest)."""
        if self.workers is not None:
            self.workers.submit((msg, self.camera_infos.get(msg.header.stamp) or self.latest_info))

    def _step(self, detector: PersonDetector):
        """Return a worker's step: detect persons in one image, or None for a bad image."""
        def detect(job: tuple[Image | CompressedImage, CameraInfo | None]
                   ) -> PersonDetectionArray | None:
            msg, info = job
            try:
                image, size = message_to_reduced_bgr(msg, self.params.image_size)
            except ImageConversionError as error:
                self.diagnostics.errors += 1
                self.get_logger().warning(f'skipping image: {error}', throttle_duration_sec=5.0)
                return None
            boxes = detector.detect(image)
            width, height = (info.width, info.height) if info is not None else size
            if abs(width * size[1] - height * size[0]) > ASPECT_TOLERANCE * width * size[1]:
                self.get_logger().warning(
                    f'camera_info says {width}x{height}, the image is {size[0]}x{size[1]}: '
                    'not the same shape, so the boxes are stretched (is camera_info that '
                    'camera\'s?)', throttle_duration_sec=10.0)
            out = PersonDetectionArray(header=msg.header, image_width=width, image_height=height)
            for b, full in zip(boxes, scale_boxes(boxes, (image.shape[1], image.shape[0]),
                                                  (width, height))):
                detection = PersonDetection(box=full.box.tolist(),
                                            confidence=float(b.confidence))
                # From the pixels at hand: colours do not need the full resolution.
                appearance = body_appearance(image, b.box) if self.params.appearance else None
                if appearance is not None:
                    detection.appearance = appearance.tolist()
                out.detections.append(detection)
            if self.params.simulated_delay > 0:
                time.sleep(self.params.simulated_delay)
            return out
        return detect

    def _publish(self, job: tuple[Image | CompressedImage, CameraInfo | None],
                 out: PersonDetectionArray | Exception | None,
                 workers: NewestInputWorkers) -> None:
        """Publish one image's detections (called in the images' order, from a worker).

        Those of workers no longer the node's (an earlier configure) are dropped.
        """
        if workers is not self.workers:
            return
        self.diagnostics.dropped = workers.counts.replaced
        if isinstance(out, Exception):  # the model failed on this image: count it, go on
            self.diagnostics.errors += 1
            self.diagnostics.set_state(DiagnosticStatus.ERROR, f'detection: {out}')
            self.get_logger().error(f'detection failed: {out!r}', throttle_duration_sec=5.0)
        elif out is not None:
            with self._publisher_lock:
                if self.publisher is None or workers is not self.workers:
                    return
                self.publisher.publish(out)
            self.diagnostics.processed(time.time() - time_to_sec(job[0].header.stamp))


def main(args: list[str] | None = None) -> int:
    """Run the detector node."""
    return run_node(DetectorNode, args)
