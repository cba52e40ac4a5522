"""The fleet's protocol: topic QoS, and messages <-> the core's fleet types (core/fleet.py).

Fleet topics, absolute and so shared by every robot's fleet node (plain topics only, no
partitions or content filters: the protocol runs unchanged on rmw_zenoh):
  /fleet/search_request  FleetSearchRequest  reliable, volatile, keep last 20 (REQUEST_QOS)
  /fleet/search_result   FleetSearchResult   reliable, volatile, keep last 100 (RESULT_QOS)
  /fleet/presence        FleetPresence       reliable, transient local, keep last 1,
                                             liveliness automatic, lease presence_lease
  /fleet/people          EmbeddingSync       reliable, transient local, keep last 2 max_people

The fleet node asks its robot's frame_history through BacktrackSearch; these translations
build those requests from fleet requests and fleet answers from their responses, so the node
itself stays a thin adapter.
"""

from builtin_interfaces.msg import Time
from rclpy.duration import Duration
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, LivelinessPolicy, QoSProfile,
                       ReliabilityPolicy)
from rclpy.serialization import serialize_message
from std_msgs.msg import Header

from facetrack_ros.conversions import ns_to_time, time_to_ns
from facetrack_ros.core.fleet import (FleetCode, HistoryProbe, MAX_ANSWER_BYTES,
                                      MAX_PEER_RESULTS, PeerAnswer, peer_query, PersonRecord,
                                      shrink_jpeg)
from facetrack_ros.core.history import SearchQuery
from facetrack_ros.msg import (EmbeddingSync, FleetPresence, FleetSearchRequest,
                               FleetSearchResult, KnownPeople)
from facetrack_ros.srv import BacktrackSearch

#: Longest message text an answer carries [characters].
MAX_MESSAGE_CHARS = 500
#: A window that holds no entry: the search then only turns its query into an embedding.
EMPTY_WINDOW = dict(center_stamp=Time(sec=0, nanosec=1), window_width=1e-9)

REQUEST_QOS = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE,
                         history=HistoryPolicy.KEEP_LAST)
RESULT_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                        history=HistoryPolicy.KEEP_LAST)


def presence_qos(lease_s: float | None) -> QoSProfile:
    """Return the presence QoS; a publisher offers its lease, subscribers accept any."""
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL,
                     liveliness=LivelinessPolicy.AUTOMATIC)
    if lease_s is not None:
        qos.liveliness_lease_duration = Duration(nanoseconds=int(lease_s * 1e9))
    return qos


def people_qos(depth: int) -> QoSProfile:
    """Return the /fleet/people QoS, keeping the last depth entries (core Outbox.depth)."""
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


def presence(robot_id: str, stamp_ns: int, lease_s: float, camera_id: str,
             history: HistoryProbe, known_people: int) -> FleetPresence:
    """Return an online robot's presence: its camera, what its history spans, whom it knows.

    lease_s: how long peers count the robot live without hearing it again [s].
    """
    return FleetPresence(
        header=Header(stamp=ns_to_time(stamp_ns)), robot_id=robot_id,
        state=FleetPresence.STATE_ONLINE, cameras=[camera_id],
        history_available=history.available, history_from=ns_to_time(history.span_ns[0]),
        history_to=ns_to_time(history.span_ns[1]), lease=lease_s, known_people=known_people)


def leaving(robot_id: str, stamp_ns: int, lease_s: float) -> FleetPresence:
    """Return the presence a robot sends as it leaves, so that no asker waits for it."""
    return FleetPresence(header=Header(stamp=ns_to_time(stamp_ns)), robot_id=robot_id,
                         state=FleetPresence.STATE_LEAVING, lease=lease_s)


def local_request(request, **changes) -> BacktrackSearch.Request:
    """Return a BacktrackSearch request with request's fields of the same names, then changes.

    request is a FleetSearch request (it has every BacktrackSearch field) or a BacktrackSearch
    request.
    """
    fields = {name: getattr(request, name)
              for name in BacktrackSearch.Request.get_fields_and_field_types()}
    return BacktrackSearch.Request(**{**fields, **changes})


def peer_request_query(msg: FleetSearchRequest, max_deep_budget_s: float) -> SearchQuery:
    """Return the query a peer's request asks of this robot (capped, not yet checked)."""
    return peer_query(msg.embedding, time_to_ns(msg.center_stamp) or None, msg.window_width,
                      msg.min_similarity or None, msg.max_results, msg.include_thumbnails,
                      msg.deep, msg.deep_budget, max_deep_budget_s)


def query_request(query: SearchQuery) -> BacktrackSearch.Request:
    """Return the BacktrackSearch request of a checked query by embedding."""
    return BacktrackSearch.Request(
        query_type=BacktrackSearch.Request.QUERY_EMBEDDING,
        embedding=[float(v) for v in query.embedding], center_stamp=ns_to_time(
            query.center_ns or 0), window_width=float(query.window_s),
        min_similarity=float(query.min_similarity or 0.0), max_results=query.max_results,
        include_thumbnails=query.thumbnails, deep=query.deep,
        deep_budget=float(query.deep_budget_s))


def fleet_request(request, embedding, request_id: str, origin: str, now_ns: int,
                  deadline_ns: int) -> FleetSearchRequest:
    """Return the FleetSearchRequest of a FleetSearch request, asking by embedding."""
    return FleetSearchRequest(
        header=Header(stamp=ns_to_time(now_ns)), request_id=request_id, origin_robot_id=origin,
        deadline=ns_to_time(deadline_ns), embedding=[float(v) for v in embedding],
        center_stamp=request.center_stamp, window_width=request.window_width,
        min_similarity=request.min_similarity, max_results=request.max_results,
        include_thumbnails=request.include_thumbnails, deep=request.deep,
        deep_budget=request.deep_budget)


def answer_msg(request_id: str, origin: str, robot_id: str, now_ns: int, code: int,
               message: str) -> FleetSearchResult:
    """Return a FleetSearchResult without appearances (a refusal, or a failure)."""
    return FleetSearchResult(header=Header(stamp=ns_to_time(now_ns)), request_id=request_id,
                             origin_robot_id=origin, robot_id=robot_id, result=int(code),
                             message=message[:MAX_MESSAGE_CHARS])


def answer_from_response(response: BacktrackSearch.Response, request_id: str, origin: str,
                         robot_id: str, now_ns: int, thumbnail_width: int) -> FleetSearchResult:
    """Return a robot's answer from its local search's response, under MAX_ANSWER_BYTES.

    Thumbnails are scaled down to thumbnail_width; while the answer is too large the worst
    appearance's thumbnail goes first, then the worst appearances themselves.
    """
    msg = answer_msg(request_id, origin, robot_id, now_ns, response.result, response.message)
    msg.appearances = list(response.appearances[:MAX_PEER_RESULTS])
    msg.entries_searched, msg.elapsed = response.entries_searched, response.elapsed
    for appearance in msg.appearances:
        if len(appearance.thumbnail.data):
            small = shrink_jpeg(bytes(appearance.thumbnail.data), thumbnail_width)
            appearance.thumbnail.data = small or b''
    while len(serialize_message(msg)) > MAX_ANSWER_BYTES:
        with_thumbnail = [a for a in msg.appearances if len(a.thumbnail.data)]
        if with_thumbnail:
            with_thumbnail[-1].thumbnail.data = b''
        else:
            msg.appearances = msg.appearances[:-1]
    return msg


def peer_answer(msg: FleetSearchResult) -> PeerAnswer:
    """Return the core's view of a robot's answer (at most MAX_PEER_RESULTS appearances)."""
    appearances = tuple(msg.appearances[:MAX_PEER_RESULTS])
    return PeerAnswer(msg.robot_id, msg.result, msg.message, appearances,
                      tuple(float(a.best.similarity) for a in appearances), msg.elapsed)


def code_of(response: BacktrackSearch.Response) -> FleetCode:
    """Return a local search's result as a FleetCode (ERROR for an unknown one)."""
    try:
        return FleetCode(response.result)
    except ValueError:
        return FleetCode.ERROR


def record_of(msg: EmbeddingSync) -> PersonRecord:
    """Return the core record of an EmbeddingSync (not yet checked)."""
    return PersonRecord(msg.person_id, msg.action, time_to_ns(msg.header.stamp), msg.robot_id,
                        tuple(msg.embedding), msg.embedding_model, msg.quality, msg.samples)


def sync_of(record: PersonRecord) -> EmbeddingSync:
    """Return the EmbeddingSync of a core record."""
    return EmbeddingSync(header=Header(stamp=ns_to_time(record.stamp_ns)),
                         action=record.action, robot_id=record.robot_id,
                         person_id=record.person_id, embedding=list(record.embedding),
                         embedding_model=record.embedding_model, quality=record.quality,
                         samples=record.samples)


def known_people(records: list[PersonRecord], now_ns: int) -> KnownPeople:
    """Return the KnownPeople message of the enrolled records."""
    return KnownPeople(header=Header(stamp=ns_to_time(now_ns)),
                       people=[sync_of(record) for record in records])
