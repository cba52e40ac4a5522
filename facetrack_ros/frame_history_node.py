"""frame_history node: remember frames and faces on disk, answer BacktrackSearch from an index.

Frames (JPEG, at most store_rate per second), identified faces and person events go into
rosbag2-compatible MCAP segments under history_dir/segments (open them in Foxglove or with
`ros2 bag info`); each person's best face per second goes into an embedding index beside them,
a cache rebuilt from the segments whenever it is missing or damaged. BacktrackSearch answers
"when and where did this person appear?" through the core's HistorySearch
(core/history/search.py); ForgetPerson removes a person (core/history/forget.py) and announces
it on person_forgotten. Every field of every input is checked (core/history/inputs.py); what is
refused is counted on /diagnostics, which shows the history's state now. A lifecycle node: the
history and the face model (for searches by photo) open on configure, close on cleanup; the
face model's ResNet loads on the first search by photo.
"""

import functools
import os
import time
from types import SimpleNamespace
from typing import Callable

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.service import Service
from rclpy.subscription import MessageInfo, Subscription
from rclpy.timer import Timer
from sensor_msgs.msg import CompressedImage, Image

from facetrack_ros.conversions import bgr_to_image, ImageConversionError, ns_to_time, time_to_ns
from facetrack_ros.core.embedding import DEFAULT_MIN_SIMILARITY
from facetrack_ros.core.event_log import (DEFAULT_EVENT_LOG_DIR, DEFAULT_MAX_AGE_S,
                                          prune_event_logs)
from facetrack_ros.core.face import DlibResNetEmbedder, FaceAnalyzer, FaceDetector
from facetrack_ros.core.history import (Appearance, DEFAULT_APPEARANCE_GAP_S, FrameHistory,
                                        HistoryConfig, HistorySearch, SearchCode, SearchOutcome,
                                        SearchSettings)
from facetrack_ros.core.history.config import MIB
from facetrack_ros.core.history.forget import forget, ForgetError, whom
from facetrack_ros.core.history.inputs import InputRefused
from facetrack_ros.core.history.search import (DEFAULT_THUMBNAIL_WIDTH_PX,
                                               MAX_THUMBNAIL_WIDTH_PX, MIN_THUMBNAIL_WIDTH_PX,
                                               SearchRefused)
from facetrack_ros.core.history.tally import Tally
from facetrack_ros.core.private_files import FileModes
from facetrack_ros.diagnostics import NodeDiagnostics
from facetrack_ros.executor import WorkerThreads
from facetrack_ros.history_intake import HistoryIntake
from facetrack_ros.history_messages import (fill_forget_response, fill_frames_response,
                                            fill_search_response, forget_query_from_request,
                                            frame_header, frame_query_from_request,
                                            HistoryRecorder, MessageCodec, query_from_request,
                                            withdrawals)
from facetrack_ros.lifecycle import InputLifecycleNode
from facetrack_ros.msg import EmbeddingSync, PersonDetectionArray, PersonEvent
from facetrack_ros.parameters import (AUTOSTART, declare_parameters, FORGOTTEN_QOS, IMAGE_QOS,
                                      image_qos_profile, ParamSpec, RECORDED_QOS)
from facetrack_ros.runner import run_node
from facetrack_ros.srv import BacktrackSearch, ForgetPerson, GetFrames

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
    ParamSpec('store_frames', True,
              'Store frames (disk and memory); false keeps only faces and events: no '
              'frames, thumbnails or deep searches (embeddings-only).', read_only=True),
    ParamSpec('store_rate', 10.0, 'Most frames stored per second [Hz].', 0.1, 120.0),
    ParamSpec('jpeg_quality', 80, 'JPEG quality of stored frames [1..100].', 1, 100),
    ParamSpec('segment_duration', 60.0, 'Start a new MCAP segment after this long [s].',
              1.0, 86400.0, read_only=True),
    ParamSpec('segment_max_mib', 256, 'Start a new MCAP segment at this size [MiB].', 1, 65536,
              read_only=True),
    ParamSpec('flush_interval', 1.0,
              'The most a crash loses: frames are fsynced within half of it, the index '
              'committed this often [s].', 0.1, 60.0, read_only=True),
    ParamSpec('max_age', DEFAULT_MAX_AGE_S,
              'Delete history (and event log files) last written longer ago than this [s].',
              60.0, 3.2e7, read_only=True),
    ParamSpec('max_disk_mib', 20480,
              'Delete the oldest segments while segments, index and its journal exceed this '
              '[MiB].', 16, 1 << 24, read_only=True),
    ParamSpec('ring_mib', 64, 'In-memory ring of recent JPEG frames [MiB].', 1, 65536,
              read_only=True),
    ParamSpec('pending_mib', 64,
              'Messages held in memory while the disk refuses writes (full, read-only); the '
              'oldest beyond this are dropped and counted [MiB].', 1, 65536, read_only=True),
    ParamSpec('max_stamp_skew', 300.0,
              'Refuse inputs stamped further than this from the node\'s clock (a wrong clock '
              'would escape retention) [s]; 0 accepts any stamp.', 0.0, 3.2e9),
    ParamSpec('share_with_group', False,
              'Let the owner\'s group read the stored faces (files 0640, folders 0750); '
              'false: the owner only (0600, 0700).', read_only=True),
    ParamSpec('event_log_dir', DEFAULT_EVENT_LOG_DIR,
              'The tracker\'s JSONL event logs: forget_person removes the person there and '
              'files older than max_age are deleted; empty: none.', read_only=True),
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


def search_analyzer(p: SimpleNamespace) -> FaceAnalyzer:
    """Return the face model of searches by photo and deep mode for the parameters p.

    Its ResNet (and ONNX Runtime) loads on the first face it embeds: most
    searches are by person id or embedding, and recording needs no face model.
    """
    return FaceAnalyzer(FaceDetector(p.face_detector, yunet_model=p.yunet_model or None),
                        DlibResNetEmbedder(preload=False))


def history_config(p: SimpleNamespace) -> HistoryConfig:
    """Return the HistoryConfig of the frame_history parameters p."""
    return HistoryConfig(
        segment_duration_s=p.segment_duration, segment_max_bytes=p.segment_max_mib * MIB,
        flush_interval_s=p.flush_interval, max_age_s=p.max_age, max_bytes=p.max_disk_mib * MIB,
        ring_bytes=p.ring_mib * MIB, pending_max_bytes=p.pending_mib * MIB)


_LEVELS = (DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR)


class FrameHistoryNode(InputLifecycleNode):
    """Thin adapter over core.history (FrameHistory, HistorySearch, forget, inputs)."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters; nothing is opened until configure."""
        super().__init__('frame_history', **kwargs)
        self.params = declare_parameters(self, PARAMETERS)
        self.history: FrameHistory | None = None
        self.searcher: HistorySearch | None = None
        self.codec = MessageCodec()
        self.intake: HistoryIntake | None = None
        self.handles: list = []
        self.matches_pub = None
        self.forgotten_pub = None
        self.tally = Tally()
        # A search, a frame lookup and a forget may take long: each runs in a worker thread
        # (a group of its own) while frames, faces and events are recorded in the executor's.
        self.service_groups = tuple(MutuallyExclusiveCallbackGroup() for _ in range(3))
        self.workers = WorkerThreads(self, len(self.service_groups), 'history_service')
        self.diagnostics = NodeDiagnostics(self)
        self.diagnostics.set_state(DiagnosticStatus.WARN, 'unconfigured: no history open')
        self.create_timer(1.0, self.update_state)

    # Lifecycle ---------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Open the history folder (serving what is on disk) and load the face model."""
        p = self.params
        try:
            self.history = FrameHistory(os.path.expanduser(p.history_dir), history_config(p),
                                        robot_id=p.robot_id, modes=self._modes())
            self.searcher = HistorySearch(self.history, search_analyzer(p))
            self.intake = HistoryIntake(
                HistoryRecorder(self.history, p.robot_id, p.camera_id, self.resolve_topic_name,
                                p.store_frames), self.tally, p, self._refuse)
        except Exception as error:  # noqa: B902 - any cause must be said before giving up
            self.get_logger().error(f'cannot open history {p.history_dir}: {error!r}')
            self._release()
            self.diagnostics.set_state(DiagnosticStatus.ERROR, f'configure failed: {error}')
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f'history {self.history.root}: {self.history.summary()}')
        for condition in self.history.health():
            self.get_logger().warning(condition.text)
        self.matches_pub = self.create_lifecycle_publisher(Image, 'search_matches', 5)
        self.forgotten_pub = self.create_lifecycle_publisher(EmbeddingSync, 'person_forgotten',
                                                             FORGOTTEN_QOS)
        self.update_state()
        return TransitionCallbackReturn.SUCCESS

    def _modes(self) -> FileModes:
        return FileModes.shared_with_group(self.params.share_with_group)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start recording and serving."""
        p = self.params
        qos = image_qos_profile(p.image_qos)
        self.handles = []
        if p.store_frames and p.image_transport == 'compressed':
            self.handles.append(self.create_subscription(
                CompressedImage, 'image_raw/compressed', self._guard('image_raw/compressed',
                                                                     self.on_compressed), qos))
        elif p.store_frames:
            self.handles.append(self.create_subscription(
                Image, 'image_raw', self._guard('image_raw', self.on_image), qos))
        # Faces and events come again from the tracker's kept ones: skip those stored already.
        self.intake.recorder.resubscribe()
        # Each service has a callback group of its own, so recording goes on while a search
        # runs and a slow (deep) search never holds up a frame lookup; the store and the index
        # lock internally, and searches read without blocking writers.
        self.handles += [
            self.create_subscription(PersonDetectionArray, 'identified_faces',
                                     self._guard('identified_faces', self.on_faces),
                                     RECORDED_QOS),
            self.create_subscription(PersonEvent, 'person_events',
                                     self._guard('person_events', self.on_event),
                                     RECORDED_QOS),
            self.create_service(BacktrackSearch, 'backtrack_search',
                                self.workers.wrap(self.on_search),
                                callback_group=self.service_groups[0]),
            self.create_service(GetFrames, 'get_frames', self.workers.wrap(self.on_get_frames),
                                callback_group=self.service_groups[1]),
            self.create_service(ForgetPerson, 'forget_person', self.workers.wrap(self.on_forget),
                                callback_group=self.service_groups[2]),
            self.create_timer(p.flush_interval / 4,
                              self._guard('flush', self.history.flush_if_due)),
            self.create_timer(10.0, self._guard('retention', self.on_retention)),
        ]
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop recording and serving; flush what was recorded."""
        result = super().on_deactivate(state)
        self.history.flush()
        return result

    def destroy_node(self) -> None:
        """Finish the open segments and close the index, also on Ctrl-C (no transition)."""
        self.workers.shutdown()
        self._release()
        super().destroy_node()

    def _stop_inputs(self) -> None:
        for handle in self.handles:
            if isinstance(handle, Subscription):
                self.destroy_subscription(handle)
            elif isinstance(handle, Service):
                self.destroy_service(handle)
            elif isinstance(handle, Timer):
                self.destroy_timer(handle)
        self.handles = []

    def _release(self) -> None:
        """Close the history and drop the face model: the one place that closes them.

        Never raises (closing a history on a full disk logs what it could not write).
        """
        if self.history is not None:
            self.history.close()
            self.history = None
        self.searcher = self.intake = None
        for publisher in (self.matches_pub, self.forgotten_pub):
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self.matches_pub = self.forgotten_pub = None
        self.diagnostics.set_state(DiagnosticStatus.WARN, 'unconfigured: no history open')

    # State ---------------------------------------------------------------------------------

    def _guard(self, what: str, callback: Callable) -> Callable:
        """Wrap a subscription or timer callback: a failure is counted and logged, not fatal.

        The wrapper has callback's signature, which tells rclpy whether to pass MessageInfo.
        """
        @functools.wraps(callback)
        def run(*args):
            try:
                return callback(*args)
            except Exception as error:  # noqa: B902 - the node must keep running
                self.diagnostics.errors += 1
                self.tally.failed(what, repr(error))
                self.get_logger().error(f'{what} failed: {error!r}',
                                        throttle_duration_sec=5.0)
        return run

    def _refuse(self, what: str, reason: object, number: int = 1) -> None:
        """Count number refusals of what (an input or a request) for reason, and log it."""
        self.tally.refused(what, str(reason), number)
        self.get_logger().warning(f'refused {what}: {reason}', throttle_duration_sec=5.0)

    def update_state(self) -> None:
        """Set /diagnostics to the state now: the history's health, recent trouble, counts."""
        if self.history is None:
            return
        conditions = [*self.history.health(), *self.tally.conditions()]
        level = max((c.level for c in conditions), default=0)
        message = '; '.join(c.text for c in sorted(conditions, key=lambda c: -c.level))
        self.diagnostics.set_state(_LEVELS[level], message or f'recording to '
                                                              f'{self.history.root}')
        self.diagnostics.values.update({**self.history.values(), **self.tally.values()})

    # Recording ---------------------------------------------------------------------------

    def on_image(self, msg: Image) -> None:
        """JPEG-encode and store a raw frame (at most store_rate per second)."""
        if self.intake.image(msg, self._now_ns()):
            self._stored(msg)

    def on_compressed(self, msg: CompressedImage) -> None:
        """Store a compressed frame as it is (at most store_rate per second)."""
        if self.intake.compressed(msg, self._now_ns()):
            self._stored(msg)

    def _stored(self, msg: Image | CompressedImage) -> None:
        self.diagnostics.processed(time.time() - time_to_ns(msg.header.stamp) / 1e9)

    def on_faces(self, msg: PersonDetectionArray, info: MessageInfo) -> None:
        """Record identified faces (core checks): segment and embedding index."""
        self.intake.faces(msg, info['source_timestamp'], self._now_ns())

    def on_event(self, msg: PersonEvent, info: MessageInfo) -> None:
        """Record a person event (core checks) in the segment."""
        self.intake.event(msg, info['source_timestamp'], self._now_ns())

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def on_retention(self) -> None:
        """Enforce the age and disk limits, on the history and the event logs."""
        report = self.history.enforce_retention(time.time_ns())
        if report.segments:
            self.get_logger().info(
                f'retention: deleted {len(report.segments)} segments '
                f'({report.bytes_freed / MIB:.1f} MiB, {report.entries_deleted} index entries)')
        if self.params.event_log_dir:
            prune_event_logs(os.path.expanduser(self.params.event_log_dir), self.params.max_age)

    # Services ----------------------------------------------------------------------------

    def _answered(self, service: str, code: int, invalid: int, error: int,
                  message: str) -> None:
        """Count a service answer as answered, refused (invalid) or failed (error); log it."""
        if code == invalid:
            self._refuse(service, message)
        elif code == error:
            self.tally.failed(service, message)
            self.get_logger().error(f'{service}: {message}')
        else:
            self.tally.count(service, 'answered')

    def on_search(self, request: Request, response: Response) -> Response:
        """Answer a BacktrackSearch through the core search; every outcome has a code."""
        p = self.params
        try:
            outcome = self.searcher.search(
                query_from_request(request, p.thumbnail_width),
                SearchSettings(robot_id=p.robot_id, camera_id=p.camera_id,
                               min_similarity=p.min_similarity,
                               appearance_gap_s=p.appearance_gap), self._now_ns())
        except (ImageConversionError, InputRefused) as error:
            outcome = SearchOutcome(SearchCode.INVALID_REQUEST, f'bad request: {error}')
        fill_search_response(response, outcome)
        self._answered('backtrack_search', outcome.code, SearchCode.INVALID_REQUEST,
                       SearchCode.ERROR, outcome.message)
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
        return self._serve('get_frames', request, response, self._get_frames)

    def on_forget(self, request: ForgetPerson.Request,
                  response: ForgetPerson.Response) -> ForgetPerson.Response:
        """Forget a person (core.history.forget); announce each id on person_forgotten."""
        return self._serve('forget_person', request, response, self._forget)

    def _serve(self, service: str, request, response, handler: Callable):
        """Answer with handler(request, response) -> (result, message); count the answer.

        An exception is RESULT_ERROR with its text: a service must answer, never end the node.
        """
        codes = type(response)
        began = time.perf_counter()
        try:
            response.result, response.message = handler(request, response)
        except Exception as error:  # noqa: B902 - see the docstring
            response.result, response.message = codes.RESULT_ERROR, f'failed: {error!r}'
        if hasattr(response, 'elapsed'):
            response.elapsed = time.perf_counter() - began
        self._answered(service, response.result, codes.RESULT_INVALID_REQUEST,
                       codes.RESULT_ERROR, response.message)
        return response

    def _get_frames(self, request: GetFrames.Request,
                    response: GetFrames.Response) -> tuple[int, str]:
        codes = GetFrames.Response
        try:
            query = frame_query_from_request(request)
            query.check()
        except InputRefused as error:
            return codes.RESULT_INVALID_REQUEST, str(error)
        if not self.params.store_frames:
            return codes.RESULT_NOT_FOUND, 'frames are not stored here (store_frames false)'
        frames = self.history.frames(query)
        fill_frames_response(response, frames)
        return (codes.RESULT_OK if frames else codes.RESULT_NOT_FOUND,
                f'{len(frames)} frame(s)')

    def _forget(self, request: ForgetPerson.Request,
                response: ForgetPerson.Response) -> tuple[int, str]:
        codes = ForgetPerson.Response
        p = self.params
        try:
            target = whom(self.searcher, forget_query_from_request(request), p.min_similarity)
        except (ImageConversionError, InputRefused) as error:
            return codes.RESULT_INVALID_REQUEST, f'bad request: {error}'
        except SearchRefused as refusal:
            return {SearchCode.INVALID_REQUEST: codes.RESULT_INVALID_REQUEST,
                    SearchCode.NO_FACE: codes.RESULT_NO_FACE}.get(refusal.code,
                                                                  codes.RESULT_ERROR), str(refusal)
        try:
            report = forget(self.history, target.person_ids, target.embedding, target.threshold,
                            self.codec,
                            os.path.expanduser(p.event_log_dir) if p.event_log_dir else None,
                            p.appearance_gap)
        except ForgetError as error:
            return codes.RESULT_ERROR, str(error)
        fill_forget_response(response, report)
        if not report.removed:
            return codes.RESULT_NOT_FOUND, 'nothing stored of this person: nothing removed'
        # Stamped by the system clock, as the forget itself happened: the stamp tells a
        # forget heard again from a new one, also under use_sim_time (0 before /clock).
        for message in withdrawals(report.person_ids, target.embedding, p.robot_id,
                                   DlibResNetEmbedder.name, ns_to_time(time.time_ns())):
            self.forgotten_pub.publish(message)
        return codes.RESULT_OK, report.summary()


def main(args: list[str] | None = None) -> int:
    """Run the frame_history node."""
    return run_node(FrameHistoryNode, args)
