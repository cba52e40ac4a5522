"""History search, forgetting and recording <-> ROS messages, shared by every user.

The frame_history node's BacktrackSearch service and the fleet's search both hand a
core.history.SearchQuery to HistorySearch and send back its SearchOutcome; ForgetPerson asks
the same kinds of question. These are the translations, so every node speaks the same
messages, plus the codec the core uses to rewrite stored messages, and the HistoryRecorder
that stores messages as frame_history does (the node and the offline index_bag).
"""

import importlib
from typing import Callable

from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from facetrack_ros.conversions import image_to_bgr, ns_to_time
from facetrack_ros.core.embedding import DLIB_EMBEDDING_DIM
from facetrack_ros.core.history import (Appearance, COMPRESSED_IMAGE_TYPE, EVENTS_TYPE,
                                        FACES_TYPE, FrameHistory, FrameQuery,
                                        message_definition, SearchQuery, SerializedMessage,
                                        StoredFrame)
from facetrack_ros.core.history.forget import ForgetReport
from facetrack_ros.core.history.inputs import (check_stamp, faces_to_entries, InputRefused,
                                               MAX_IMAGE_SIDE_PX)
from facetrack_ros.core.history.search import FRAME_TOLERANCE_S, SearchOutcome
from facetrack_ros.msg import Appearance as AppearanceMsg
from facetrack_ros.msg import EmbeddingSync, FaceMatch, PersonDetectionArray, PersonEvent
from facetrack_ros.srv import BacktrackSearch, ForgetPerson, GetFrames


def request_stamp(stamp: Time, what: str) -> int | None:
    """Return a request's stamp [ns], None for zero; raise InputRefused for an invalid one."""
    if stamp.sec == 0 and stamp.nanosec == 0:
        return None
    return check_stamp(stamp, what)


def frame_query_from_request(request) -> FrameQuery:
    """Return the FrameQuery of a GetFrames request; raise InputRefused for a bad field."""
    return FrameQuery(request_stamp(request.start, 'start') or 0,
                      request_stamp(request.end, 'end') or 0, request.tolerance,
                      request.limit, request.camera_id)


def request_image(image: Image):
    """Return a query image as BGR; raise InputRefused (too large) or ImageConversionError."""
    if max(image.width, image.height) > MAX_IMAGE_SIDE_PX:
        raise InputRefused(f'image of {image.width}x{image.height} px is larger than '
                           f'{MAX_IMAGE_SIDE_PX} px a side')
    return image_to_bgr(image)


def query_from_request(request, thumbnail_width: int) -> SearchQuery:
    """Return the core query of a BacktrackSearch request (or one with the same fields).

    Zero centre, zero min_similarity mean "now" and "the robot's default", as the .srv says.
    Raises InputRefused for an invalid stamp or oversized image and ImageConversionError for
    a query image that cannot be converted.
    """
    return SearchQuery(
        kind=request.query_type, person_id=request.person_id, embedding=request.embedding,
        image=(request_image(request.image)
               if request.query_type == BacktrackSearch.Request.QUERY_IMAGE else None),
        center_ns=request_stamp(request.center_stamp, 'center_stamp'),
        window_s=request.window_width, min_similarity=request.min_similarity or None,
        max_results=request.max_results, thumbnails=request.include_thumbnails,
        thumbnail_width=thumbnail_width, deep=request.deep, deep_budget_s=request.deep_budget)


def forget_query_from_request(request) -> SearchQuery:
    """Return the core query naming whom a ForgetPerson request forgets (whole history).

    Raises InputRefused or ImageConversionError as query_from_request does.
    """
    return SearchQuery(
        kind=request.query_type, person_id=request.person_id, embedding=request.embedding,
        image=(request_image(request.image)
               if request.query_type == BacktrackSearch.Request.QUERY_IMAGE else None),
        window_s=0.0, min_similarity=request.min_similarity or None)


def withdrawals(person_ids: list[str], embedding, robot_id: str, model: str,
                stamp: Time) -> list[EmbeddingSync]:
    """Return the person_forgotten messages of one forget: ACTION_WITHDRAW per person id.

    Each carries the face used to find the person (empty when none was stored), so a robot
    that knows them under another id can find them too; a face forgotten without any id
    stored gives one message with an empty person_id.
    """
    values = [] if embedding is None else [float(value) for value in embedding]
    return [EmbeddingSync(header=Header(stamp=stamp), action=EmbeddingSync.ACTION_WITHDRAW,
                          robot_id=robot_id, person_id=person_id, embedding=values,
                          embedding_model=model if values else '',
                          samples=1 if values else 0)
            for person_id in (person_ids or [''])]


def fill_search_response(response: BacktrackSearch.Response,
                         outcome: SearchOutcome) -> BacktrackSearch.Response:
    """Return response filled with a search's outcome (result, appearances, span, embedding)."""
    response.result, response.message = int(outcome.code), outcome.message
    response.appearances = [appearance_to_msg(a) for a in outcome.appearances]
    response.entries_searched = outcome.entries_searched
    response.frames_searched = outcome.frames_searched
    response.searched_from = ns_to_time(outcome.searched_from_ns)
    response.searched_to = ns_to_time(outcome.searched_to_ns)
    response.elapsed = outcome.elapsed_s
    if outcome.embedding is not None:   # the fleet node asks peers with it
        response.query_embedding = outcome.embedding.tolist()
    return response


def fill_frames_response(response: GetFrames.Response, frames: list[StoredFrame]) -> None:
    """Put stored frames into a GetFrames response as CompressedImage messages."""
    response.frames = [CompressedImage(header=frame_header(frame), format=frame.format,
                                       data=frame.data) for frame in frames]


def fill_forget_response(response: ForgetPerson.Response, report: ForgetReport) -> None:
    """Put what a forget removed into a ForgetPerson response."""
    response.person_ids = report.person_ids
    response.index_entries_removed = report.index_entries
    response.faces_removed = report.faces
    response.events_removed = report.events
    response.frames_blurred = report.frames_blurred
    response.event_log_records_removed = report.event_log_records
    response.segments_rewritten = report.segments_rewritten
    response.remaining = report.remaining


class MessageCodec:
    """Decode and encode stored messages by type name with rclpy (core.history.forget.Codec)."""

    def __init__(self) -> None:
        """Start with no type loaded."""
        self._types: dict[str, type] = {}

    def _type(self, type_name: str) -> type:
        kind = self._types.get(type_name)
        if kind is None:
            package, _, name = type_name.rpartition('/')
            kind = getattr(importlib.import_module(package.replace('/', '.')), name)
            self._types[type_name] = kind
        return kind

    def decode(self, type_name: str, data: bytes):
        """Return the message of type_name (e.g. 'sensor_msgs/msg/CompressedImage') in data."""
        return deserialize_message(data, self._type(type_name))

    def encode(self, type_name: str, message) -> bytes:
        """Return message as CDR."""
        return serialize_message(message)


def frame_header(frame: StoredFrame) -> Header:
    """Return the capture header of a stored frame."""
    return Header(stamp=ns_to_time(frame.stamp_ns), frame_id=frame.frame_id)


def appearance_to_msg(appearance: Appearance) -> AppearanceMsg:
    """Return an Appearance message, with its thumbnail when the search attached one."""
    best = appearance.best
    match = FaceMatch(robot_id=best.robot_id, camera_id=best.camera_id,
                      person_id=best.person_id, box=list(best.box),
                      similarity=float(best.similarity))
    match.header.stamp = ns_to_time(best.stamp_ns)
    msg = AppearanceMsg(robot_id=appearance.robot_id, camera_id=appearance.camera_id,
                        person_id=appearance.person_id, sightings=appearance.sightings,
                        first_seen=ns_to_time(appearance.first_seen_ns),
                        last_seen=ns_to_time(appearance.last_seen_ns), best=match)
    thumbnail = appearance.thumbnail
    if thumbnail is not None:
        match.header.frame_id = thumbnail.frame_id
        msg.thumbnail = CompressedImage(header=frame_header(thumbnail),
                                        format=thumbnail.format, data=thumbnail.data)
    return msg


class HistoryRecorder:
    """Writes frames, identified faces and person events into a FrameHistory.

    What frame_history stores for each message of its three inputs, shared with the offline
    indexing of recordings (index_bag), so both make the same history. Inputs are checked by
    the caller (core.history.inputs).
    """

    def __init__(self, history: FrameHistory, robot_id: str, camera_id: str,
                 topic_name: Callable[[str], str] = lambda name: name,
                 store_frames: bool = True) -> None:
        """Record into history for robot_id's camera_id.

        topic_name: the full name a relative topic is stored under (the node's resolution).
        store_frames: false for the embeddings-only mode (faces link to no frame).
        """
        self.history = history
        self.robot_id = robot_id
        self.camera_id = camera_id
        self.topic_name = topic_name
        self.store_frames = store_frames
        self.definitions = {name: message_definition(name) for name in (
            COMPRESSED_IMAGE_TYPE, FACES_TYPE, EVENTS_TYPE)}
        #: Faces and events published up to this wall time [ns] are stored already.
        self.stored_until_ns = 0

    def resubscribe(self) -> None:
        """Prepare for new subscriptions, which get the publishers' kept messages again.

        Writes out what was received, so that every message published before the last write
        to disk is stored already (or was refused); see stored_before.
        """
        self.history.flush()
        self.stored_until_ns = self.history.store.last_write_ns()

    def stored_before(self, published_ns: int) -> bool:
        """Return whether a message published at published_ns [ns, wall time] is stored.

        A transient-local publisher (the tracker) sends its last messages again to a new
        subscription: those published before resubscribe()'s last write are skipped, the
        later ones (missed while the history was down, or matched late) are new. Assumes the
        publisher's clock agrees with this one, as the stamp checks do. 0 (the middleware
        does not say when) counts as new.
        """
        return 0 < published_ns <= self.stored_until_ns

    def frame(self, msg: CompressedImage, stamp_ns: int) -> None:
        """Store one compressed frame, on disk and in the memory ring."""
        self.history.store.add_frame(
            self.camera_id,
            self._serialized('image_raw/compressed', COMPRESSED_IMAGE_TYPE, msg, stamp_ns),
            bytes(msg.data), msg.header.frame_id)

    def faces(self, msg: PersonDetectionArray, stamp_ns: int) -> None:
        """Store identified faces in the segment and the embedding index."""
        segment = self.history.store.write(self.camera_id, self._serialized(
            'identified_faces', FACES_TYPE, msg, stamp_ns))
        frame = (self.history.store.nearest_frame(stamp_ns, FRAME_TOLERANCE_S, self.camera_id)
                 if self.store_frames else None)
        entries, _ = faces_to_entries(msg, self.robot_id, self.camera_id, DLIB_EMBEDDING_DIM,
                                      segment, frame.stamp_ns if frame else None)
        for entry in entries:
            self.history.index.add(entry)

    def event(self, msg: PersonEvent, stamp_ns: int) -> None:
        """Store a person event without its embedding (a person's faces are in the faces)."""
        msg.embedding = []
        self.history.store.write(self.camera_id, self._serialized(
            'person_events', EVENTS_TYPE, msg, stamp_ns))

    def _serialized(self, topic: str, type_name: str, msg, stamp_ns: int) -> SerializedMessage:
        return SerializedMessage(
            topic=self.topic_name(topic), type_name=type_name,
            definition=self.definitions[type_name], data=serialize_message(msg),
            stamp_ns=stamp_ns)
