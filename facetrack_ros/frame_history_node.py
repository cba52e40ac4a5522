"""frame_history node: remember frames and faces on disk, answer BacktrackSearch from an index.

Frames (JPEG, at most store_rate per second), identified faces and person events go into
rosbag2-compatible MCAP segments under history_dir/segments (open them in Foxglove or with
`ros2 bag info`); each person's best face per second goes into an embedding index beside them.
BacktrackSearch answers "when and where did this person appear?" from that index, so its cost
grows with the index entries in the window, never with the number of frames. A lifecycle node:
the history and the face model (for searches by photo) open on configure, close on cleanup.
"""

import math
import os
import sqlite3
import time

import cv2
from diagnostic_msgs.msg import DiagnosticStatus
import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.serialization import serialize_message
from rclpy.service import Service
from rclpy.subscription import Subscription
from sensor_msgs.msg import CompressedImage, Image

from facetrack_ros.conversions import (bgr_to_compressed, bgr_to_image, image_to_bgr,
                                       ImageConversionError, jpeg_to_bgr, ns_to_time,
                                       time_to_ns)
from facetrack_ros.core.annotate import draw_overlays, Overlay
from facetrack_ros.core.embedding import (DEFAULT_MIN_SIMILARITY, DLIB_EMBEDDING_DIM,
                                          EmbeddingError, l2_normalize, validate_embedding)
from facetrack_ros.core.face import DlibResNetEmbedder, FaceAnalyzer, FaceDetector
from facetrack_ros.core.history import (Appearance, COMPRESSED_IMAGE_TYPE, FrameHistory,
                                        group_appearances, HistoryConfig, Hit, IndexEntry,
                                        message_definition, SerializedMessage,
                                        StoredFrame)
from facetrack_ros.core.history.config import MIB
from facetrack_ros.diagnostics import NodeDiagnostics
from facetrack_ros.msg import Appearance as AppearanceMsg
from facetrack_ros.msg import FaceMatch, PersonDetectionArray, PersonEvent
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
    ParamSpec('appearance_gap', 5.0,
              'Sightings further apart than this start a new appearance; keep it above twice '
              'the face node\'s refresh_period [s].', 0.1, 3600.0),
    ParamSpec('thumbnail_width', 320, 'Width of search thumbnails [px].', 32, 4096),
    ParamSpec('face_detector', 'hog', 'Face detector for searches by photo and deep mode.',
              choices=('hog', 'cnn', 'yunet'), read_only=True),
    ParamSpec('yunet_model', '', 'YuNet .onnx path for face_detector yunet.', read_only=True),
    AUTOSTART,
    IMAGE_QOS,
)

#: How far from a match's stamp its frame may be [s].
FRAME_TOLERANCE_S = 0.5

#: Frames a deep search samples per second of its budget (a whole-frame face pass takes
#: roughly 0.25 s on a 2-core CPU), and the longest budget it accepts [s].
DEEP_FRAMES_PER_S = 4
MAX_DEEP_BUDGET_S = 120.0

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
        self.analyzer: FaceAnalyzer | None = None
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
            self.analyzer = FaceAnalyzer(
                FaceDetector(p.face_detector, yunet_model=p.yunet_model or None),
                DlibResNetEmbedder())
            self.definitions = {name: message_definition(name) for name in (
                COMPRESSED_IMAGE_TYPE, 'facetrack_ros/msg/PersonDetectionArray',
                'facetrack_ros/msg/PersonEvent')}
        except (OSError, ValueError, RuntimeError, sqlite3.Error) as error:
            self.get_logger().error(f'cannot open history {p.history_dir}: {error}')
            self.diagnostics.set_state(DiagnosticStatus.ERROR, str(error))
            self._release()
            return TransitionCallbackReturn.FAILURE
        span = self.history.index.time_span()
        self.get_logger().info(
            f'history {self.history.root}: {len(self.history.store.segments())} segments, '
            f'{self.history.index.entry_count()} index entries'
            + (f' from {span[0] / 1e9:.0f} to {span[1] / 1e9:.0f}' if span else ''))
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
        # Searches have a group of their own so recording goes on while one runs (the store
        # and the index lock internally).
        services = MutuallyExclusiveCallbackGroup()
        self.handles = [
            image_sub,
            self.create_subscription(PersonDetectionArray, 'identified_faces',
                                     guarded(self.on_faces), RELIABLE_QOS),
            self.create_subscription(PersonEvent, 'person_events', guarded(self.on_event),
                                     RELIABLE_QOS),
            self.create_service(BacktrackSearch, 'backtrack_search', self.on_search,
                                callback_group=services),
            self.create_service(GetFrames, 'get_frames', self.on_get_frames,
                                callback_group=services),
            self.create_timer(self.params.flush_interval / 2,
                              guarded(self.history.flush_if_due)),
            self.create_timer(10.0, guarded(self.on_retention)),
        ]
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop recording and serving; flush what was recorded."""
        self._drop_handles()
        self.history.store.flush()
        self.history.index.flush()
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
        if self.history is not None:
            self.history.close()
            self.history = None
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
        if self.history is not None:
            self.history.close()
            self.history = None
        self.analyzer = None
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
        """Answer a BacktrackSearch; every failure is a result code with a readable message."""
        began = time.perf_counter()
        try:
            self._search(request, response)
        except _Refusal as refusal:
            response.result, response.message = refusal.result, str(refusal)
        except Exception as error:  # a service must answer, and never take the node down
            self.get_logger().error(f'search failed: {error!r}')
            response.result, response.message = Response.RESULT_ERROR, f'search failed: {error}'
        response.elapsed = time.perf_counter() - began
        self.get_logger().info(f'backtrack_search: {response.message} '
                               f'({1000 * response.elapsed:.1f} ms)')
        return response

    def _search(self, request: Request, response: Response) -> None:
        query, what = self._query(request)
        start_ns, end_ns = _window(request)
        threshold = request.min_similarity or self.params.min_similarity
        if not -1.0 <= threshold <= 1.0:
            raise _Refusal(Response.RESULT_INVALID_REQUEST,
                           f'min_similarity {threshold} is outside [-1, 1]')
        result = self.history.index.search(
            query, start_ns, end_ns, min_similarity=threshold,
            max_results=request.max_results, gap_s=self.params.appearance_gap)
        appearances = result.appearances
        response.entries_searched = result.entries_searched
        response.searched_from = ns_to_time(result.searched_from_ns)
        response.searched_to = ns_to_time(result.searched_to_ns)
        deep_note = ''
        if request.deep and result.entries_searched == 0:
            appearances, frames, deep_note = self._deep_search(
                query, start_ns, end_ns, threshold, request)
            response.frames_searched = frames
        if result.entries_searched == 0 and response.frames_searched == 0:
            raise _Refusal(Response.RESULT_NO_HISTORY,
                           f'no faces stored in the window for {what}{deep_note}')
        response.appearances = [self._appearance_msg(a, request.include_thumbnails)
                                for a in appearances]
        searched = (f'{result.entries_searched} index entries'
                    + (f', {response.frames_searched} frames{deep_note}'
                       if request.deep else ''))
        if not appearances:
            response.result = Response.RESULT_NO_MATCH
            response.message = (f'no appearance of {what} at similarity >= {threshold:.2f} '
                                f'({searched})')
            return
        response.result = Response.RESULT_OK
        best = appearances[0]
        response.message = (
            f'{len(appearances)} appearance(s) of {what}; best: {best.person_id} on '
            f'{best.camera_id} at similarity {best.best.similarity:.3f} ({searched})')
        self._publish_matches(appearances)

    def _query(self, request: Request) -> tuple[np.ndarray, str]:
        """Return the query embedding and a description of it, or raise _Refusal."""
        if request.query_type == Request.QUERY_PERSON_ID:
            if not request.person_id:
                raise _Refusal(Response.RESULT_INVALID_REQUEST,
                               'QUERY_PERSON_ID needs person_id')
            stored = self.history.index.embeddings_of(request.person_id, limit=20)
            if len(stored) == 0:
                raise _Refusal(Response.RESULT_UNKNOWN_PERSON,
                               f'no stored face of person {request.person_id!r}')
            # The mean of the person's best faces is steadier than any single one.
            return l2_normalize(np.mean(stored, axis=0)), f'person {request.person_id}'
        if request.query_type == Request.QUERY_EMBEDDING:
            try:
                return validate_embedding(request.embedding, DLIB_EMBEDDING_DIM), 'embedding'
            except EmbeddingError as error:
                raise _Refusal(Response.RESULT_INVALID_REQUEST, f'bad embedding: {error}')
        if request.query_type == Request.QUERY_IMAGE:
            try:
                image = image_to_bgr(request.image)
            except ImageConversionError as error:
                raise _Refusal(Response.RESULT_INVALID_REQUEST, f'bad image: {error}')
            face = self.analyzer.largest_face(image)
            if face is None:
                raise _Refusal(Response.RESULT_NO_FACE, 'no face found in the query image')
            return face.embedding, 'the face in the image'
        raise _Refusal(Response.RESULT_INVALID_REQUEST,
                       f'unknown query_type {request.query_type} (0 person id, 1 embedding, '
                       '2 image)')

    def _deep_search(self, query: np.ndarray, start_ns: int | None, end_ns: int | None,
                     threshold: float, request: Request) -> tuple[list[Appearance], int, str]:
        """Embed the faces of stored frames where the index has nothing, within a budget.

        Frames are taken evenly spread over the window (about DEEP_FRAMES_PER_S per second of
        budget), so a short budget still covers the whole window coarsely.
        """
        budget = min(max(request.deep_budget, 0.0), MAX_DEEP_BUDGET_S)
        deadline = time.monotonic() + budget
        segments = self.history.store.segments()
        if not segments:
            return [], 0, ''
        start = min(s.start_ns for s in segments) if start_ns is None else start_ns
        end = max(s.end_ns for s in segments) if end_ns is None else end_ns
        limit = max(1, int(budget * DEEP_FRAMES_PER_S))
        frames = self.history.store.frames_in_range(start, end, limit, self.params.camera_id)
        hits: list[Hit] = []
        done = 0
        for frame in frames:
            if time.monotonic() > deadline:
                break
            done += 1
            for face in self.analyzer.analyze(jpeg_to_bgr(frame.data)):
                similarity = float(face.embedding @ query)
                if similarity >= threshold:
                    hits.append(Hit(frame.stamp_ns, self.params.robot_id, frame.camera_id,
                                    '', tuple(float(v) for v in face.box), face.quality,
                                    similarity, '', frame.stamp_ns))
        note = f' (deep: {done} of {len(frames)} sampled stored frames within {budget:.0f} s)'
        return group_appearances(hits, self.params.appearance_gap, request.max_results), done, note

    def _appearance_msg(self, appearance: Appearance, thumbnail: bool) -> AppearanceMsg:
        best = appearance.best
        match = FaceMatch(robot_id=best.robot_id, camera_id=best.camera_id,
                          person_id=best.person_id, box=list(best.box),
                          similarity=float(best.similarity))
        match.header.stamp = ns_to_time(best.stamp_ns)
        msg = AppearanceMsg(robot_id=appearance.robot_id, camera_id=appearance.camera_id,
                            person_id=appearance.person_id, sightings=appearance.sightings,
                            first_seen=ns_to_time(appearance.first_seen_ns),
                            last_seen=ns_to_time(appearance.last_seen_ns), best=match)
        frame = self._frame_of(best) if thumbnail else None
        if frame is not None:
            match.header.frame_id = frame.frame_id
            msg.thumbnail = self._thumbnail(frame, best)
        return msg

    def _frame_of(self, hit: Hit) -> StoredFrame | None:
        return self.history.store.nearest_frame(hit.frame_stamp_ns, FRAME_TOLERANCE_S,
                                                hit.camera_id)

    def _thumbnail(self, frame: StoredFrame, hit: Hit) -> CompressedImage:
        """Return the best frame, boxed and scaled to thumbnail_width, as JPEG."""
        image = self._annotated(frame, hit)
        scale = self.params.thumbnail_width / image.shape[1]
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        msg = bgr_to_compressed(small, quality=85)
        msg.header.stamp = ns_to_time(frame.stamp_ns)
        msg.header.frame_id = frame.frame_id
        return msg

    def _annotated(self, frame: StoredFrame, hit: Hit) -> np.ndarray:
        image = jpeg_to_bgr(frame.data)
        label = hit.person_id or 'unindexed face'
        return draw_overlays(image, [Overlay(box=np.asarray(hit.box), label=label,
                                             score=hit.similarity)],
                             header=f'{hit.robot_id}/{hit.camera_id}')

    def _publish_matches(self, appearances: list[Appearance]) -> None:
        """Publish the best frame of each appearance, annotated, for rqt_image_view."""
        if self.matches_pub is None or self.matches_pub.get_subscription_count() == 0:
            return
        for appearance in appearances:
            frame = self._frame_of(appearance.best)
            if frame is not None:
                image = bgr_to_image(self._annotated(frame, appearance.best))
                image.header.stamp = ns_to_time(frame.stamp_ns)
                image.header.frame_id = frame.frame_id
                self.matches_pub.publish(image)

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
        for frame in frames:
            image = CompressedImage(format=frame.format, data=frame.data)
            image.header.stamp = ns_to_time(frame.stamp_ns)
            image.header.frame_id = frame.frame_id
            response.frames.append(image)
        response.result = codes.RESULT_OK if frames else codes.RESULT_NOT_FOUND
        response.message = f'{len(frames)} frame(s)'
        return response


class _Refusal(Exception):
    """A search that cannot be answered with matches: its result code and reason."""

    def __init__(self, result: int, message: str) -> None:
        super().__init__(message)
        self.result = result


def _window(request: Request) -> tuple[int | None, int | None]:
    """Return the request's window [start, end] in ns; None bounds for a zero width."""
    if not math.isfinite(request.window_width) or request.window_width < 0:
        raise _Refusal(Response.RESULT_INVALID_REQUEST,
                       f'window_width {request.window_width} must be >= 0 (0: all history)')
    if request.window_width == 0:
        return None, None
    width = int(request.window_width * 1e9)
    center = time_to_ns(request.center_stamp)
    if center == 0:  # the window ending now: window_width 3600 is "the last hour"
        now = time.time_ns()
        return now - width, now
    return center - width // 2, center + width // 2


def main(args: list[str] | None = None) -> int:
    """Run the frame_history node."""
    # Two threads: frames are recorded while a search (its own callback group) runs.
    return run_node(FrameHistoryNode, args, threads=2)
