"""fleet node: one per robot; asks the fleet, answers it, and shares the people enrolled by name.

The fleet topics and their QoS are the protocol's (fleet_messages.py). In the robot's
namespace: serves fleet_search and enroll_person; publishes known_people (KnownPeople,
reliable, transient local, depth 1) for the tracker; subscribes to person_forgotten
(EmbeddingSync) from the frame history; calls this robot's frame_history through OwnHistory
(own_history.py): backtrack_search, through which peers' searches run, and forget_person.
The rules (replays, deadlines, rates, liveness, merging, last writer wins) are the core's
(core/fleet.py).
"""

import os
import threading
import time
from typing import Callable
import uuid

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.serialization import deserialize_message

from facetrack_ros.conversions import ImageConversionError, time_to_ns
from facetrack_ros.core.embedding import DLIB_EMBEDDING_DIM
from facetrack_ros.core.event_log import DEFAULT_MAX_AGE_S
from facetrack_ros.core.face import DlibResNetEmbedder
from facetrack_ros.core.fleet import (check_enrolment, DEFAULT_MAX_CLOCK_SKEW_S,
                                      DEFAULT_MAX_PEOPLE, DEFAULT_PEER_BURST, DEFAULT_PEER_RATE,
                                      DEFAULT_PRESENCE_LEASE_S, DEFAULT_QUEUE_SIZE,
                                      DEFAULT_THUMBNAIL_WIDTH_PX, DEFAULT_TIMEOUT_S, ENROLL,
                                      FleetAsks, FleetCode, FleetInputError, FleetOutcome,
                                      Gathering, MAX_LEASE_S, MAX_TIMEOUT_S, MIN_LEASE_S,
                                      PeerRoster, PeerSearches, PeopleChange, PeopleSync,
                                      PersonRecord, PRESENCE_PER_LEASE, RequestGate, RosterFull,
                                      search_timeout, TWIN, Verdict, WITHDRAW)
from facetrack_ros.core.history import check_query, QueryKind, SearchRefused
from facetrack_ros.core.history.search import check_embedding, MAX_DEEP_BUDGET_S
from facetrack_ros.diagnostics import NodeDiagnostics
from facetrack_ros.executor import WorkerThreads
from facetrack_ros.fleet_messages import (answer_from_response, answer_msg, code_of,
                                          EMPTY_WINDOW, fleet_request, known_people, leaving,
                                          local_request, peer_answer, peer_request_query,
                                          people_qos, presence, presence_qos, query_request,
                                          record_of, REQUEST_QOS, RESULT_QOS, sync_of)
from facetrack_ros.history_messages import query_from_request
from facetrack_ros.msg import (EmbeddingSync, FleetPresence, FleetSearchRequest,
                               FleetSearchResult, KnownPeople)
from facetrack_ros.own_history import OwnHistory
from facetrack_ros.parameters import (declare_parameters, FORGOTTEN_QOS, KNOWN_PEOPLE_QOS,
                                      ParamSpec)
from facetrack_ros.runner import run_node
from facetrack_ros.srv import BacktrackSearch, EnrollPerson, FleetSearch

PARAMETERS = (
    ParamSpec('robot_id', 'robot', 'This robot\'s id in the fleet (answers, presence, people).',
              read_only=True),
    ParamSpec('camera_id', 'camera', 'Camera announced in the presence (frame_history\'s).',
              read_only=True),
    ParamSpec('default_timeout', DEFAULT_TIMEOUT_S,
              'fleet_search waits this long for answers when its request says 0 [s].',
              0.1, MAX_TIMEOUT_S),
    ParamSpec('presence_lease', DEFAULT_PRESENCE_LEASE_S,
              'A robot not heard for this long is gone; presence goes out 3 times per lease '
              '[s].', MIN_LEASE_S, MAX_LEASE_S, read_only=True),
    ParamSpec('peer_rate', DEFAULT_PEER_RATE,
              'Requests answered per asking robot and second, more get RESULT_RATE_LIMITED; '
              'this robot asks no faster. Give every robot the same [1/s].', 0.01, 1000.0,
              read_only=True),
    ParamSpec('peer_burst', DEFAULT_PEER_BURST,
              'Requests an asking robot may send at once beyond peer_rate.', 1, 1000,
              read_only=True),
    ParamSpec('queue_size', DEFAULT_QUEUE_SIZE,
              'Peer requests waiting for this robot\'s search; more get RESULT_BUSY.', 1, 1000,
              read_only=True),
    ParamSpec('max_clock_skew', DEFAULT_MAX_CLOCK_SKEW_S,
              'Largest clock difference between robots still in sync, for deadlines and '
              'stamps [s].', 0.0, 3600.0, read_only=True),
    ParamSpec('max_peer_deep_budget', 0.0,
              'Longest deep search (face model over stored frames) run for a peer; 0: peers '
              'get index searches only [s].', 0.0, MAX_DEEP_BUDGET_S),
    ParamSpec('thumbnail_width', DEFAULT_THUMBNAIL_WIDTH_PX,
              'Width of the thumbnails in answers [px].', 32, 640),
    ParamSpec('max_people', DEFAULT_MAX_PEOPLE,
              'Names the roster holds, enrolled and withdrawn.', 1, 10000, read_only=True),
    ParamSpec('people_file', '~/.ros/facetrack/fleet/people.json',
              'File that keeps the roster across restarts, mode 0600 ("" keeps it in memory '
              'only).', read_only=True),
    ParamSpec('withdrawn_face_age', DEFAULT_MAX_AGE_S,
              'A face the fleet withdrew (forget_person) is kept this long after, for robots '
              'away at the time to forget it too; then only the name stays withdrawn. Not '
              'below the histories\' max_age (/diagnostics warns when below this robot\'s) '
              '[s].', 1.0, 3.2e7, read_only=True),
)

DIM = DLIB_EMBEDDING_DIM
#: fleet_search calls served at once; more get RESULT_BUSY.
MAX_ASKS = 2
#: Why a search, a photo or a person id could not go through this robot's history.
NO_HISTORY = 'this robot\'s history (its frame_history\'s backtrack_search) did not answer'
#: What /diagnostics and the log say while another robot announces this robot's id.
TWIN_PROBLEM = ('another robot announces robot_id {}: the person ids and answers of both '
                'collide; give every robot its own robot_id')
#: What /diagnostics says while faces the fleet withdrew are not forgotten here yet.
NOT_FORGOTTEN = ('{} face(s) withdrawn by the fleet not yet forgotten here: this robot\'s '
                 'forget_person has not confirmed it (asked again until it does)')
#: Longest wait for the local history to embed a photo or a person id [s].
EMBED_TIMEOUT_S = 30.0
#: Longest wait before a fleet search is sent for the live robots' request readers to match
#: this robot's request writer [s] (discovery matches each pair of endpoints on its own: a
#: robot heard on the presence topic may not hear requests yet); never past the deadline.
READER_MATCH_WAIT_S = 2.0
READER_MATCH_POLL_S = 0.02
#: Worker threads for the services, which wait for other callbacks: two fleet_search calls
#: and one enroll_person at a time. Every other callback runs in the spinning thread.
SERVICE_THREADS = MAX_ASKS + 1


class FleetNode(Node):
    """Thin adapter over core.fleet: PeerSearches, FleetAsks and PeopleSync."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters, load the roster, and join the fleet."""
        super().__init__('fleet', **kwargs)
        p = self.params = declare_parameters(self, PARAMETERS)
        self.robot_id = p.robot_id
        self.peer_searches: PeerSearches[FleetSearchRequest] = PeerSearches(
            RequestGate(p.robot_id, p.peer_rate, p.peer_burst, p.max_clock_skew), p.queue_size)
        self.peers = PeerRoster(p.robot_id)
        self.asks = FleetAsks(self.peers, p.peer_rate, p.peer_burst)
        self.people = PeopleSync(p.robot_id, DIM, p.max_people, os.path.expanduser(
            p.people_file) if p.people_file else '', p.max_clock_skew, p.withdrawn_face_age)
        self._people_lock = threading.Lock()   # roster changes made and sent one at a time
        self._asking = threading.Semaphore(MAX_ASKS)
        self.history = OwnHistory(self, self.people, p.withdrawn_face_age)
        self.diagnostics = NodeDiagnostics(self)
        guarded = self.diagnostics.guarded

        # The services wait for other callbacks (answers, local searches): they have groups of
        # their own and run in worker threads; the rest runs in the executor's thread.
        ask, enroll = ReentrantCallbackGroup(), MutuallyExclusiveCallbackGroup()
        self.workers = WorkerThreads(self, SERVICE_THREADS, 'fleet_service')
        self.request_pub = self.create_publisher(FleetSearchRequest, '/fleet/search_request',
                                                 REQUEST_QOS)
        self.result_pub = self.create_publisher(FleetSearchResult, '/fleet/search_result',
                                                RESULT_QOS)
        self.presence_pub = self.create_publisher(FleetPresence, '/fleet/presence',
                                                  presence_qos(p.presence_lease))
        self.people_pub = self.create_publisher(EmbeddingSync, '/fleet/people',
                                                people_qos(self.people.depth))
        self.known_pub = self.create_publisher(KnownPeople, 'known_people', KNOWN_PEOPLE_QOS)
        self.create_subscription(FleetSearchRequest, '/fleet/search_request',
                                 guarded(self.on_request), REQUEST_QOS)
        # Serialized: answers to other robots' searches are dropped undecoded (on_result).
        self.create_subscription(FleetSearchResult, '/fleet/search_result',
                                 guarded(self.on_result), RESULT_QOS, raw=True)
        self.create_subscription(FleetPresence, '/fleet/presence', guarded(self.on_presence),
                                 presence_qos(None))
        self.create_subscription(EmbeddingSync, '/fleet/people', guarded(self.on_people),
                                 people_qos(self.people.depth))
        self.create_subscription(EmbeddingSync, 'person_forgotten', guarded(self.on_forgotten),
                                 FORGOTTEN_QOS)
        self.create_service(FleetSearch, 'fleet_search', self.workers.wrap(self.on_fleet_search),
                            callback_group=ask)
        self.create_service(EnrollPerson, 'enroll_person', self.workers.wrap(self.on_enroll),
                            callback_group=enroll)
        self.create_timer(p.presence_lease / PRESENCE_PER_LEASE, guarded(self.on_presence_timer))
        change, problems = self.people.start(self._now_ns())
        for problem in problems:
            self.get_logger().warning(f'people file: {problem}')
        self._apply(lambda: change)
        self.on_presence_timer()

    # Answering peers ---------------------------------------------------------------------

    def on_request(self, msg: FleetSearchRequest) -> None:
        """Queue a peer's request for a search, refuse it, or ignore it."""
        admission = self.peer_searches.receive(
            msg, msg.request_id, msg.origin_robot_id, time_to_ns(msg.deadline),
            peer_request_query(msg, self.params.max_peer_deep_budget), DIM, self._now_ns(),
            time.monotonic())
        if admission.verdict is Verdict.ANSWER:
            self._pump()
        elif admission.verdict is Verdict.REFUSE:
            self.result_pub.publish(answer_msg(msg.request_id, msg.origin_robot_id,
                                               self.robot_id, self._now_ns(), admission.code,
                                               admission.reason))

    def _pump(self) -> None:
        """Start the local searches the queue lets run."""
        while (item := self.peer_searches.next(self._now_ns())) is not None:
            msg, query, deadline_ns = item
            if not self.history.ready():
                self.peer_searches.done()
                self.result_pub.publish(answer_msg(
                    msg.request_id, msg.origin_robot_id, self.robot_id, self._now_ns(),
                    FleetCode.ERROR, NO_HISTORY))
                continue
            future = self.history.search(query_request(query))
            self.peer_searches.started(future, msg, deadline_ns)
            future.add_done_callback(self._on_local_answer)

    def _on_local_answer(self, future) -> None:
        msg = self.peer_searches.finished(future)
        if msg is not None:   # else given up at its deadline
            self.result_pub.publish(answer_from_response(
                future.result(), msg.request_id, msg.origin_robot_id, self.robot_id,
                self._now_ns(), self.params.thumbnail_width))
            self._pump()

    def _give_up_overdue(self) -> None:
        """Give up the local searches whose request passed its deadline: nobody waits."""
        for future in self.peer_searches.overdue(self._now_ns()):
            self.history.drop(future)
        self._pump()

    # Knowing the peers -------------------------------------------------------------------

    def on_presence_timer(self) -> None:
        """Announce this robot, forget silent ones, refresh what the history spans.

        Also gives up local searches past their deadline (at most a period late).
        """
        now_s, stamp_ns = time.monotonic(), self._now_ns()
        self.peers.announced(stamp_ns)
        self.presence_pub.publish(presence(
            self.robot_id, stamp_ns, self.params.presence_lease, self.params.camera_id,
            self.history.probe, self.people.enrolled_count()))
        for robot in self.peers.prune(now_s, self.params.presence_lease / PRESENCE_PER_LEASE):
            self.get_logger().info(f'robot {robot} is gone (not heard for its lease)')
        self.asks.wake()
        self._give_up_overdue()
        self.history.refresh(now_s)
        self.diagnostics.values.update({
            'live robots': ', '.join(sorted(self.peers.live(now_s))) or 'none',
            'enrolled people': str(self.people.enrolled_count()),
            **self.peer_searches.values(),
            'history': 'available' if self.history.probe.available else 'not running'})
        save_error = self.people.retry_save()   # a roster the disk refused, saved again
        problems = [save_error] if save_error else []
        if self.peers.twin_heard(now_s):
            problems.append(TWIN_PROBLEM.format(self.robot_id))
        self._expire_faces(stamp_ns)
        self.history.forget_next()   # a face not forgotten yet: the history may be up now
        pending = self.people.forgets_pending()
        self.diagnostics.values['withdrawn faces to forget'] = str(pending)
        warnings = [NOT_FORGOTTEN.format(pending) if pending else '',
                    self.history.face_age_warning]
        self.diagnostics.show(problems, 'in the fleet', '; '.join(filter(None, warnings)))

    def on_presence(self, msg: FleetPresence) -> None:
        """Note a robot's presence (or its leaving)."""
        change = self.peers.heard(
            msg.robot_id, list(msg.cameras), msg.history_available,
            (time_to_ns(msg.history_from), time_to_ns(msg.history_to)), msg.lease,
            msg.state == FleetPresence.STATE_LEAVING, msg.known_people,
            time_to_ns(msg.header.stamp), time.monotonic())
        if change == TWIN:
            self.get_logger().error(TWIN_PROBLEM.format(self.robot_id),
                                    throttle_duration_sec=60.0)
        elif change:
            self.get_logger().info(f'robot {msg.robot_id} {change} the fleet')
            self.asks.wake()

    def destroy_node(self) -> None:
        """Tell the fleet this robot leaves, so that no asker waits for it."""
        self.presence_pub.publish(leaving(self.robot_id, self._now_ns(),
                                          self.params.presence_lease))
        self.workers.shutdown()
        self.people.close()
        super().destroy_node()

    # Asking the fleet --------------------------------------------------------------------

    def on_fleet_search(self, request: FleetSearch.Request,
                        response: FleetSearch.Response) -> FleetSearch.Response:
        """Search this robot's history and ask every live robot; merge what comes in time."""
        began = time.monotonic()
        if not self._asking.acquire(blocking=False):
            return _fill(response, FleetCode.BUSY, f'{MAX_ASKS} fleet searches already run')
        try:
            self._fleet_search(request, response, began)
        finally:
            self._asking.release()
        response.elapsed = time.monotonic() - began
        self.get_logger().info(f'fleet_search {response.request_id}: {response.message}')
        return response

    def _fleet_search(self, request: FleetSearch.Request, response: FleetSearch.Response,
                      began: float) -> None:
        try:
            timeout = search_timeout(request.timeout, self.params.default_timeout)
            check_query(query_from_request(request, self.params.thumbnail_width), DIM)
        except FleetInputError as error:
            _fill(response, FleetCode.INVALID_REQUEST, str(error))
            return
        except ImageConversionError as error:
            _fill(response, FleetCode.INVALID_REQUEST, f'bad image: {error}')
            return
        except SearchRefused as refusal:
            _fill(response, refusal.code, str(refusal))
            return
        deadline_s = began + timeout
        request_id = uuid.uuid4().hex
        gathering = self.asks.open(request_id, began)
        if gathering is None:
            _fill(response, FleetCode.RATE_LIMITED, f'this robot asks at most '
                  f'{self.params.peer_rate:g} times a second (burst {self.params.peer_burst}): '
                  'the rate its peers answer (peer_rate)')
            return
        try:
            outcome = self._gather(request, gathering, deadline_s)
        finally:
            self.asks.close(gathering)
        _fill(response, outcome.code, outcome.message)
        response.request_id = request_id
        response.appearances = outcome.appearances
        response.answered = [answer.robot_id for answer in outcome.answered]
        response.answered_results = [int(answer.code) for answer in outcome.answered]
        response.not_answered = outcome.not_answered

    def _gather(self, request: FleetSearch.Request, gathering: Gathering,
                deadline_s: float) -> FleetOutcome:
        """Embed the query, ask the fleet and this robot, and wait for the answers."""
        own, embedding = None, self._known_embedding(request)
        if embedding is None:   # a photo or a local person id: this robot's search embeds it
            own = self.history.call(local_request(request), deadline_s - time.monotonic())
            if own is None or not len(own.query_embedding):   # nothing to ask the fleet
                return FleetOutcome(
                    *((code_of(own), own.message) if own else (
                        FleetCode.ERROR, f'{NO_HISTORY}: ask by embedding')),
                    [], [], [], time.monotonic() - gathering.started_s)
            embedding = own.query_embedding
        self._await_readers(len(gathering.expected), deadline_s)
        now_ns = self._now_ns()
        request_id = gathering.request_id
        self.request_pub.publish(fleet_request(
            request, embedding, request_id, self.robot_id, now_ns,
            now_ns + int((deadline_s - time.monotonic()) * 1e9)))
        if own is None and self.history.ready():
            gathering.expected.add(self.robot_id)   # not answered, if it times out
            own = self.history.call(local_request(request, query_type=QueryKind.EMBEDDING,
                                                  embedding=list(embedding)),
                                    deadline_s - time.monotonic())
        if own is not None:
            answer = answer_from_response(own, request_id, self.robot_id, self.robot_id,
                                          self._now_ns(), self.params.thumbnail_width)
            self.result_pub.publish(answer)   # a dashboard sees this robot's answer too
            self.asks.take(request_id, peer_answer(answer))
        return self.asks.wait(gathering, deadline_s)

    def _await_readers(self, peers: int, deadline_s: float) -> None:
        """Wait until the request writer has matched a reader per live peer, and this node's.

        A request is kept for no late reader (volatile): one sent before a robot just started
        matched the writer never reaches it, and the search waits for it until its deadline.
        Any reader counts (a recorder too): the count says how many matched, not whose.
        """
        until = min(time.monotonic() + READER_MATCH_WAIT_S, deadline_s)
        while (self.request_pub.get_subscription_count() < peers + 1
               and time.monotonic() < until):
            time.sleep(READER_MATCH_POLL_S)

    def _known_embedding(self, request: FleetSearch.Request) -> list[float] | None:
        """Return the query's embedding when it is given or enrolled, else None."""
        if request.query_type == QueryKind.EMBEDDING:
            return check_embedding(request.embedding, DIM).tolist()
        enrolled = self.people.embedding_of(request.person_id)
        if request.query_type == QueryKind.PERSON_ID and enrolled is not None:
            return list(enrolled)
        return None

    def on_result(self, data: bytes) -> None:
        """Take a robot's answer to one of this robot's fleet searches (serialized)."""
        if self.asks.awaits(data):
            msg = deserialize_message(data, FleetSearchResult)
            if msg.robot_id:
                self.asks.take(msg.request_id, peer_answer(msg))

    # Sharing identities ------------------------------------------------------------------

    def on_enroll(self, request: EnrollPerson.Request,
                  response: EnrollPerson.Response) -> EnrollPerson.Response:
        """Enrol a name (photo, person id or embedding) or withdraw it, on every robot."""
        sources = [len(request.image.data) > 0, bool(request.person_id),
                   len(request.embedding) > 0]
        try:
            name = check_enrolment(request.name, request.withdraw, sources)
            if request.withdraw:
                record = PersonRecord(name, WITHDRAW, self._now_ns(), self.robot_id)
            else:
                code, message, embedding = self._face_of(request)
                if code != FleetCode.OK:
                    return _fill(response, code, message)
                record = PersonRecord(name, ENROLL, self._now_ns(), self.robot_id,
                                      tuple(embedding), DlibResNetEmbedder.name,
                                      samples=1 if sources[0] else 0)
            self._apply(lambda: self.people.local(record))
        except FleetInputError as error:
            return _fill(response, FleetCode.INVALID_REQUEST, str(error))
        except RosterFull as error:
            return _fill(response, FleetCode.ERROR, str(error))
        response.embedding = list(record.embedding)
        response.known_people = self.people.enrolled_count()
        verb = 'withdrew' if request.withdraw else 'enrolled'
        return _fill(response, FleetCode.OK, f'{verb} {name!r} on every robot')

    def _face_of(self, request: EnrollPerson.Request) -> tuple[FleetCode, str, list[float]]:
        """Return (code, message, unit embedding) of an enrolment's one face source."""
        if len(request.embedding):
            try:
                return FleetCode.OK, '', check_embedding(request.embedding, DIM).tolist()
            except SearchRefused as refusal:
                return FleetCode.INVALID_REQUEST, str(refusal), []
        kind = QueryKind.IMAGE if len(request.image.data) else QueryKind.PERSON_ID
        # Through this robot's history search, over a window without entries: it only embeds.
        answer = self.history.call(BacktrackSearch.Request(
            query_type=kind, image=request.image, person_id=request.person_id, **EMPTY_WINDOW),
            EMBED_TIMEOUT_S)
        if answer is None:
            return FleetCode.ERROR, f'{NO_HISTORY}: enrol by embedding', []
        if not len(answer.query_embedding):
            return code_of(answer), answer.message, []
        return FleetCode.OK, '', list(answer.query_embedding)

    def on_people(self, msg: EmbeddingSync) -> None:
        """Take an enrolment or withdrawal from the fleet (last writer wins per name)."""
        try:
            self._apply(lambda: self.people.received(record_of(msg), self._now_ns(),
                                                     time.monotonic()))
        except (FleetInputError, RosterFull) as error:
            self.get_logger().warning(f'fleet people entry {msg.person_id!r:.70} from '
                                      f'{msg.robot_id!r:.70} refused: {error}',
                                      throttle_duration_sec=5.0)
            return
        self.history.forget_next()

    def on_forgotten(self, msg: EmbeddingSync) -> None:
        """Withdraw someone this robot forgot on every robot, unless the fleet asked for it."""
        try:
            change = self._apply(lambda: self.people.forgotten(
                msg.person_id, msg.embedding, time_to_ns(msg.header.stamp), time.monotonic()))
        except FleetInputError as error:
            self.get_logger().warning(f'person_forgotten refused: {error}')
            return
        if change is None:
            self.get_logger().info('a face the fleet withdrew is forgotten here')
            self.history.forget_next()   # it may have answered the forget asked (_announced)

    def _apply(self, make: Callable[[], PeopleChange | None]) -> PeopleChange | None:
        """Make a roster change (None: none) and publish it; tell the tracker who is enrolled.

        Under the writer's lock from the change's making to its last publication: a change
        made before a flush of withdrawn faces (_expire_faces) but published after it would
        put a face it carries back into what the writer keeps for late joiners.
        """
        with self._people_lock:
            change = make()
            for record in [] if change is None else change.publish:
                self.people_pub.publish(sync_of(record))
        if change is not None and change.enrolled is not None:
            self.known_pub.publish(known_people(change.enrolled, self._now_ns()))
            self.get_logger().info('enrolled people: ' + (', '.join(
                record.person_id for record in change.enrolled) or 'none'))
        return change

    def _expire_faces(self, now_ns: int) -> None:
        """Drop withdrawn faces past withdrawn_face_age, from the roster and from DDS.

        The writer keeps its last samples for late joiners, those with the faces too: the
        roster, published again as often as it takes (Outbox.flush), pushes them out.
        """
        if self._apply(lambda: self.people.expire(now_ns)) is not None:
            self.get_logger().info('withdrawn faces past withdrawn_face_age dropped')

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds


def _fill(response, code: int, message: str):
    """Return response with its result and message set."""
    response.result, response.message = int(code), message
    return response


def main(args: list[str] | None = None) -> int:
    """Run the fleet node."""
    return run_node(FleetNode, args)
