"""frame_history node: remember frames and faces on disk, answer BacktrackSearch from an index.

Frames (JPEG, at most store_rate per second), identified faces and person events go into
rosbag2-compatible MCAP segments under history_dir/segments (open them in Foxglove or with
`ros2 bag info`); each person's best face per second goes into an embedding index beside them.
BacktrackSearch answers "when and where did this person appear?" through the core's
HistorySearch (core/history/search.py), so its cost grows with the index entries in the window,
never with the number of frames. A lifecycle node: the history and the face model (for searches
by photo) open on configure, close on cleanup.
"""

import os
import sqlite3
import time

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.serialization import serialize_message
from rclpy.service import Service
from rclpy.subscription import Subscription
from sensor_msgs.msg import CompressedImage, Image

from facetrack_ros.conversions import (bgr_to_compressed, bgr_to_image, image_to_bgr,
                                       ImageConversionError, ns_to_time, time_to_ns)
from facetrack_ros.core.embedding import (DEFAULT_MIN_SIMILARITY, DLIB_EMBEDDING_DIM,
                                          EmbeddingError, validate_embedding)
from facetrack_ros.core.face import DlibResNetEmbedder, FaceAnalyzer, FaceDetector
from facetrack_ros.core.history import (Appearance, COMPRESSED_IMAGE_TYPE,
                                        DEFAULT_APPEARANCE_GAP_S, FrameHistory, HistoryConfig,
                                        HistorySearch, IndexEntry, message_definition,
                                        SearchCode, SearchOutcome, SearchSettings,
                                        SerializedMessage)
from facetrack_ros.core.history.config import MIB
from facetrack_ros.core.history.search import (DEFAULT_THUMBNAIL_WIDTH_PX, FRAME_TOLERANCE_S,
                                               MAX_THUMBNAIL_WIDTH_PX, MIN_THUMBNAIL_WIDTH_PX)
from facetrack_ros.diagnostics import NodeDiagnostics
from facetrack_ros.history_messages import appearance_to_msg, frame_header, query_from_request
from facetrack_ros.msg import PersonDetectionArray, PersonEvent
from facetrack_ros.parameters import (AUTOSTART, declare_parameters, IMAGE_QOS, image_qos_profile,
                                      ParamSpec, RELIABLE_QOS)
from facetrack_ros.runner import run_node
from facetrack_ros.srv import BacktrackSearch, GetFrames

Request = BacktrackSearch.Request
Response = BacktrackSearch.Response

PARAMETERS = (
    ParamSpec('robot_id', 'robot', 'Robot name stored with every face.', read_only=True),
    ParamSpec('camera_id', 'camera', 'Camera name stored with every frame and face.',
              read_only=True),
    ParamSpec('history_dir', '~/.ros/facetrack/history',
              'Folder of the MCAP segments and the embedding index; reopened on restart.',
              read_only=True),
    ParamSpec('image_transport', 'raw',
              'Take image_raw (raw, JPEG-encoded here) or image_raw/compressed (as is).',
              choices=('raw', 'compressed'), read_only=True),
    ParamSpec('store_rate', 10.0, 'Most frames stored per second [Hz].', 0.1, 120.0),
    ParamSpec('jpeg_quality', 80, 'JPEG quality of stored frames [1..100].', 1, 100),
    ParamSpec('segment_duration', 60.0, 'Start a new MCAP segment after this long [s].',
              1.0, 86400.0, read_only=True),
    ParamSpec('segment_max_mib', 256, 'Start a new MCAP segment at this size [MiB].', 1, 65536,
              read_only=True),
    ParamSpec('flush_interval', 1.0,
              'Flush segments and commit the index this often: the most a crash loses [s].',
              0.1, 60.0, read_only=True),
    ParamSpec('max_age', 86400.0, 'Delete history older than this [s].', 60.0, 3.2e7,
              read_only=True),
    ParamSpec('max_disk_mib', 20480, 'Delete the oldest segments beyond this size [MiB].',
              16, 1 << 24, read_only=True),
    ParamSpec('ring_mib', 64, 'In-memory ring of recent JPEG frames [MiB].', 1, 65536,
              read_only=True),
    ParamSpec('min_similarity', DEFAULT_MIN_SIMILARITY,
              'Default search threshold (cosine, calibrated on labelled photos) [-1..1].',
              -1.0, 1.0),
    ParamSpec('appearance_gap', DEFAULT_APPEARANCE_GAP_S,
              'Sightings further apart than this start a new appearance; keep it above twice '
              'the face node\'s refresh_period [s].', 0.1, 3600.0),
    ParamSpec('thumbnail_width', DEFAULT_THUMBNAIL_WIDTH_PX, 'Width of search thumbnails [px].',
              MIN_THUMBNAIL_WIDTH_PX, MAX_THUMBNAIL_WIDTH_PX),
    ParamSpec('face_detector', 'hog', 'Face detector for searches by photo and deep mode.',
              choices=('hog', 'cnn', 'yunet'), read_only=True),
    ParamSpec('yunet_model', '', 'YuNet .onnx path for face_detector yunet.', read_only=True),
    AUTOSTART,
    IMAGE_QOS,
)

#: Most frames one GetFrames call returns (a response is one DDS message), and the widest
#: nearest-frame tolerance it accepts [s].
MAX_FRAMES_PER_CALL = 100
MAX_TOLERANCE_S = 3600.0


class FrameHistoryNode(LifecycleNode):
    """Thin adapter over core.history.FrameHistory and core.face.FaceAnalyzer."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters; nothing is opened until configure."""
        super().__init__('frame_history', **kwargs)
        self.params = declare_parameters(self, PARAMETERS)
        self.history: FrameHistory | None = None
        self.searcher: HistorySearch | None = None
        self.definitions: dict[str, str] = {}
        self.handles: list = []
        self.matches_pub = None
        self.last_stored_ns = 0
        self.diagnostics = NodeDiagnostics(self)
        self.diagnostics.set_state(DiagnosticStatus.WARN, 'unconfigured: no history open')

    # Lifecycle ---------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Open the history folder (serving what is on disk) and load the face model."""
        p = self.params
        try:
            config = HistoryConfig(
                segment_duration_s=p.segment_duration, segment_max_bytes=p.segment_max_mib * MIB,
                flush_interval_s=p.flush_interval, max_age_s=p.max_age,
                max_bytes=p.max_disk_mib * MIB, ring_bytes=p.ring_mib * MIB)
            self.history = FrameHistory(os.path.expanduser(p.history_dir), config)
            self.searcher = HistorySearch(self.history, FaceAnalyzer(
                FaceDetector(p.face_detector, yunet_model=p.yunet_model or None),
                DlibResNetEmbedder()))
            self.definitions = {name: message_definition(name) for name in (
                COMPRESSED_IMAGE_TYPE, 'facetrack_ros/msg/PersonDetectionArray',
                'facetrack_ros/msg/PersonEvent')}
        except (OSError, ValueError, RuntimeError, sqlite3.Error) as error:
            self.get_logger().error(f'cannot open history {p.history_dir}: {error}')
            self.diagnostics.set_state(DiagnosticStatus.ERROR, str(error))
            self._release()
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f'history {self.history.root}: {self.history.summary()}')
        self.matches_pub = self.create_lifecycle_publisher(Image, 'search_matches', 5)
        self.diagnostics.set_state(DiagnosticStatus.OK, f'history {self.history.root}')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start recording and serving."""
        qos = image_qos_profile(self.params.image_qos)
        guarded = self.diagnostics.guarded
        if self.params.image_transport == 'compressed':
            image_sub = self.create_subscription(
                CompressedImage, 'image_raw/compressed', guarded(self.on_compressed), qos)
        else:
            image_sub = self.create_subscription(Image, 'image_raw', guarded(self.on_image), qos)
        # Each service has a callback group of its own, so recording goes on while a search
        # runs and a slow (deep) search never holds up a frame lookup; the store and the index
        # lock internally, and searches read without blocking writers.
        self.handles = [
            image_sub,
            self.create_subscription(PersonDetectionArray, 'identified_faces',
                                     guarded(self.on_faces), RELIABLE_QOS),
            self.create_subscription(PersonEvent, 'person_events', guarded(self.on_event),
                                     RELIABLE_QOS),
            self.create_service(BacktrackSearch, 'backtrack_search', self.on_search,
                                callback_group=MutuallyExclusiveCallbackGroup()),
            self.create_service(GetFrames, 'get_frames', self.on_get_frames,
                                callback_group=MutuallyExclusiveCallbackGroup()),
            self.create_timer(self.params.flush_interval / 2,
                              guarded(self.history.flush_if_due)),
            self.create_timer(10.0, guarded(self.on_retention)),
        ]
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop recording and serving; flush what was recorded."""
        self._drop_handles()
        self.history.flush()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Close the history and free the face model."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Finish the open segments on the way out."""
        self._drop_handles()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        """Finish the open segments and close the index, also on Ctrl-C (no transition)."""
        self._release()
        super().destroy_node()

    def _drop_handles(self) -> None:
        for handle in self.handles:
            if isinstance(handle, Subscription):
                self.destroy_subscription(handle)
            elif isinstance(handle, Service):
                self.destroy_service(handle)
            else:
                self.destroy_timer(handle)
        self.handles = []

    def _release(self) -> None:
        """Close the history and drop the face model: the one place that closes them."""
        if self.history is not None:
            self.history.close()
            self.history = None
        self.searcher = None
        if self.matches_pub is not None:
            self.destroy_lifecycle_publisher(self.matches_pub)
            self.matches_pub = None
        self.diagnostics.set_state(DiagnosticStatus.WARN, 'unconfigured: no history open')

    # Recording ---------------------------------------------------------------------------

    def _due(self, stamp_ns: int) -> bool:
        """Return whether a frame at stamp_ns should be stored under store_rate.

        A stamp before the last stored one (a replay looped, the clock was reset) is due.
        """
        since = stamp_ns - self.last_stored_ns
        return since < 0 or since >= 1e9 / self.params.store_rate

    def on_image(self, msg: Image) -> None:
        """JPEG-encode and store a raw frame (at most store_rate per second)."""
        stamp_ns = time_to_ns(msg.header.stamp)
        if not self._due(stamp_ns):
            return
        try:
            image = image_to_bgr(msg)
        except ImageConversionError as error:
            self.diagnostics.errors += 1
            self.get_logger().warning(f'skipping image: {error}', throttle_duration_sec=5.0)
            return
        self._store_frame(bgr_to_compressed(image, msg.header, self.params.jpeg_quality))

    def on_compressed(self, msg: CompressedImage) -> None:
        """Store a compressed frame as it is (at most store_rate per second)."""
        if self._due(time_to_ns(msg.header.stamp)):
            self._store_frame(msg)

    def _store_frame(self, msg: CompressedImage) -> None:
        stamp_ns = time_to_ns(msg.header.stamp)
        self.history.store.add_frame(
            self.params.camera_id,
            self._serialized('image_raw/compressed', COMPRESSED_IMAGE_TYPE, msg, stamp_ns),
            bytes(msg.data), msg.header.frame_id)
        self.last_stored_ns = stamp_ns
        self.diagnostics.processed(time.time() - stamp_ns / 1e9)

    def _serialized(self, topic: str, type_name: str, msg, stamp_ns: int) -> SerializedMessage:
        return SerializedMessage(
            topic=self.resolve_topic_name(topic), type_name=type_name,
            definition=self.definitions[type_name], data=serialize_message(msg),
            stamp_ns=stamp_ns)

    def on_faces(self, msg: PersonDetectionArray) -> None:
        """Record identified faces: into the MCAP segment and the embedding index."""
        stamp_ns = time_to_ns(msg.header.stamp)
        camera = self.params.camera_id
        self.history.store.write(camera, self._serialized(
            'identified_faces', 'facetrack_ros/msg/PersonDetectionArray', msg, stamp_ns))
        frame = self.history.store.nearest_frame(stamp_ns, FRAME_TOLERANCE_S, camera)
        for face in msg.detections:
            if not face.has_face or not face.person_id:
                continue
            try:
                embedding = validate_embedding(face.embedding, DLIB_EMBEDDING_DIM)
            except EmbeddingError as error:
                self.diagnostics.errors += 1
                self.get_logger().warning(f'face of {face.person_id} not indexed: {error}')
                continue
            self.history.index.add(IndexEntry(
                stamp_ns=stamp_ns, robot_id=self.params.robot_id, camera_id=camera,
                person_id=face.person_id, box=tuple(float(v) for v in face.face_box),
                quality=float(face.face_quality), embedding=embedding,
                segment=self.history.store.segment_for(camera, stamp_ns),
                frame_stamp_ns=frame.stamp_ns if frame else None))

    def on_event(self, msg: PersonEvent) -> None:
        """Record a person event in the MCAP segment."""
        self.history.store.write(self.params.camera_id, self._serialized(
            'person_events', 'facetrack_ros/msg/PersonEvent', msg,
            time_to_ns(msg.header.stamp)))

    def on_retention(self) -> None:
        """Enforce the age and disk limits."""
        report = self.history.enforce_retention(time.time_ns())
        if report.segments:
            self.get_logger().info(
                f'retention: deleted {len(report.segments)} segments '
                f'({report.bytes_freed / MIB:.1f} MiB, {report.entries_deleted} index entries)')
        self.diagnostics.values['history disk [MiB]'] = f'{self.history.disk_bytes() / MIB:.1f}'

    # Searching ---------------------------------------------------------------------------

    def on_search(self, request: Request, response: Response) -> Response:
        """Answer a BacktrackSearch through the core search; every outcome has a code."""
        p = self.params
        try:
            outcome = self.searcher.search(
                query_from_request(request, p.thumbnail_width),
                SearchSettings(robot_id=p.robot_id, camera_id=p.camera_id,
                               min_similarity=p.min_similarity,
                               appearance_gap_s=p.appearance_gap))
        except ImageConversionError as error:
            outcome = SearchOutcome(SearchCode.INVALID_REQUEST, f'bad image: {error}')
        response.result, response.message = int(outcome.code), outcome.message
        response.appearances = [appearance_to_msg(a) for a in outcome.appearances]
        response.entries_searched = outcome.entries_searched
        response.frames_searched = outcome.frames_searched
        response.searched_from = ns_to_time(outcome.searched_from_ns)
        response.searched_to = ns_to_time(outcome.searched_to_ns)
        response.elapsed = outcome.elapsed_s
        if outcome.embedding is not None:   # the fleet node asks peers with it
            response.query_embedding = outcome.embedding.tolist()
        log = self.get_logger().error if outcome.code == SearchCode.ERROR \
            else self.get_logger().info
        log(f'backtrack_search: {outcome.message} ({1000 * outcome.elapsed_s:.1f} ms)')
        self._publish_matches(outcome.appearances)
        return response

    def _publish_matches(self, appearances: list[Appearance]) -> None:
        """Publish the best frame of each appearance, annotated, for rqt_image_view."""
        if self.matches_pub is None or self.matches_pub.get_subscription_count() == 0:
            return
        for appearance in appearances:
            found = self.searcher.best_frame(appearance)
            if found is not None:
                frame, annotated = found
                self.matches_pub.publish(bgr_to_image(annotated, frame_header(frame)))

    def on_get_frames(self, request: GetFrames.Request,
                      response: GetFrames.Response) -> GetFrames.Response:
        """Return the frame nearest a stamp, or up to MAX_FRAMES_PER_CALL frames of a range."""
        codes = GetFrames.Response
        start_ns, end_ns = time_to_ns(request.start), time_to_ns(request.end)
        store = self.history.store
        nearest = end_ns == 0
        if nearest and not 0 <= request.tolerance <= MAX_TOLERANCE_S:
            response.result = codes.RESULT_INVALID_REQUEST
            response.message = f'tolerance must be in [0, {MAX_TOLERANCE_S}] s'
            return response
        if not nearest and end_ns < start_ns:
            response.result, response.message = codes.RESULT_INVALID_REQUEST, 'end is before start'
            return response
        try:
            if nearest:
                frame = store.nearest_frame(start_ns, request.tolerance, request.camera_id)
                frames = [frame] if frame else []
            else:
                limit = min(request.limit or MAX_FRAMES_PER_CALL, MAX_FRAMES_PER_CALL)
                frames = store.frames_in_range(start_ns, end_ns, limit, request.camera_id)
        except Exception as error:  # a service must answer, and never take the node down
            self.get_logger().error(f'get_frames failed: {error!r}')
            response.result, response.message = codes.RESULT_ERROR, f'failed: {error}'
            return response
        response.frames = [CompressedImage(header=frame_header(frame), format=frame.format,
                                           data=frame.data) for frame in frames]
        response.result = codes.RESULT_OK if frames else codes.RESULT_NOT_FOUND
        response.message = f'{len(frames)} frame(s)'
        return response


#: Executor threads: frames are recorded while a search and a frame lookup (each in a callback
#: group of its own) run.
EXECUTOR_THREADS = 3


def main(args: list[str] | None = None) -> int:
    """Run the frame_history node."""
    return run_node(FrameHistoryNode, args, threads=EXECUTOR_THREADS)
