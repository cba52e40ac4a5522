"""fleet node: one per robot; asks the fleet, answers it, and shares the people enrolled by name.

Fleet topics, absolute and so shared by every robot's fleet node (plain topics only, no
partitions or content filters: the protocol runs unchanged on rmw_zenoh):
  /fleet/search_request  FleetSearchRequest  reliable, volatile, keep last 20
  /fleet/search_result   FleetSearchResult   reliable, volatile, keep last 100
  /fleet/presence        FleetPresence       reliable, transient local, keep last 1,
                                             liveliness automatic, lease presence_lease
  /fleet/people          EmbeddingSync       reliable, transient local, keep last 2 max_people
In the robot's namespace: serves fleet_search and enroll_person; publishes known_people
(KnownPeople, reliable, transient local, depth 1) for the tracker; subscribes to
person_forgotten (EmbeddingSync) from the frame history; calls backtrack_search, through which
peers' searches run on this robot's frame_history node (and forget_person when the frame
history has it). The rules (replays, deadlines, rates, liveness, merging, last writer wins)
are the core's (core/fleet.py).
"""

from functools import partial
import math
import os
import threading
import time
import uuid

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, LivelinessPolicy, QoSProfile,
                       ReliabilityPolicy)
from std_msgs.msg import Header

from facetrack_ros import srv
from facetrack_ros.conversions import ImageConversionError, ns_to_time, time_to_ns
from facetrack_ros.core.embedding import DLIB_EMBEDDING_DIM
from facetrack_ros.core.face import DlibResNetEmbedder
from facetrack_ros.core.fleet import (Admission, check_name, check_record,
                                      DEFAULT_MAX_CLOCK_SKEW_S, DEFAULT_MAX_PEOPLE,
                                      DEFAULT_PEER_BURST, DEFAULT_PEER_RATE,
                                      DEFAULT_PRESENCE_LEASE_S, DEFAULT_QUEUE_SIZE,
                                      DEFAULT_THUMBNAIL_WIDTH_PX, DEFAULT_TIMEOUT_S, EchoGuard,
                                      ENROLL, FleetCode, FleetInputError, Gathering,
                                      HISTORY_PROBE_PERIOD_S, MAX_LEASE_S, MAX_TIMEOUT_S,
                                      MIN_LEASE_S, Outbox, PeerRoster, PeopleRoster,
                                      PersonRecord, PRESENCE_PER_LEASE, RequestGate,
                                      RosterFull, Verdict, WITHDRAW, WorkQueue)
from facetrack_ros.core.history import check_query, QueryKind, SearchRefused
from facetrack_ros.core.history.search import check_embedding, MAX_DEEP_BUDGET_S
from facetrack_ros.diagnostics import NodeDiagnostics
from facetrack_ros.fleet_messages import (answer_from_response, answer_msg, code_of,
                                          EMPTY_WINDOW, fleet_request, known_people,
                                          local_request, peer_answer, peer_request_query,
                                          query_request, record_of, sync_of)
from facetrack_ros.history_messages import query_from_request
from facetrack_ros.msg import (EmbeddingSync, FleetPresence, FleetSearchRequest,
                               FleetSearchResult, KnownPeople)
from facetrack_ros.parameters import ParamSpec, declare_parameters, RELIABLE_QOS
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
              'Requests answered per asking robot and second; more get RESULT_RATE_LIMITED '
              '[1/s].', 0.01, 1000.0, read_only=True),
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
)

DIM = DLIB_EMBEDDING_DIM
#: fleet_search calls served at once; more get RESULT_BUSY.
MAX_ASKS = 2
#: Longest wait for the local history to embed a photo or a person id [s].
EMBED_TIMEOUT_S = 30.0
#: How often in-flight local searches are checked against their deadlines [s].
SWEEP_PERIOD_S = 0.25
#: Executor threads: two fleet_search calls and an enrolment waiting, local answers, and the
#: intake, answer and people callback groups.
EXECUTOR_THREADS = 6

REQUEST_QOS = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE,
                         history=HistoryPolicy.KEEP_LAST)
RESULT_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                        history=HistoryPolicy.KEEP_LAST)
#: known_people, as the tracker subscribes to it: the latest list, also for late joiners.
KNOWN_PEOPLE_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: frame_history's forget_person service, where this build has it (the history's issue):
#: its request's `embedding` names whom to forget. Without it a withdrawal only drops a name.
FORGET_PERSON = getattr(srv, 'ForgetPerson', None)


def presence_qos(lease_s: float | None) -> QoSProfile:
    """Return the presence QoS; a publisher offers its lease, subscribers accept any."""
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL,
                     liveliness=LivelinessPolicy.AUTOMATIC)
    if lease_s is not None:
        qos.liveliness_lease_duration = Duration(nanoseconds=int(lease_s * 1e9))
    return qos


def people_qos(max_people: int) -> QoSProfile:
    """Return the /fleet/people QoS: room for the whole roster twice (see core Outbox)."""
    return QoSProfile(depth=2 * max_people, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


class FleetNode(Node):
    """Thin adapter over core.fleet: gate, queue, rosters and gatherings."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters, load the roster, and join the fleet."""
        super().__init__('fleet', **kwargs)
        p = self.params = declare_parameters(self, PARAMETERS)
        self.robot_id = p.robot_id
        self.gate = RequestGate(p.robot_id, p.peer_rate, p.peer_burst, p.max_clock_skew)
        self.work: WorkQueue = WorkQueue(p.queue_size)
        self.peers = PeerRoster(p.robot_id)
        self.people = PeopleRoster(p.max_people)
        self.outbox = Outbox(2 * p.max_people)
        self.echoes = EchoGuard()
        self.people_file = os.path.expanduser(p.people_file) if p.people_file else ''
        self._asks = threading.Semaphore(MAX_ASKS)
        self._people_lock = threading.RLock()
        self._answered = threading.Condition()       # guards _gatherings; notified on news
        self._gatherings: dict[str, Gathering] = {}
        self._in_flight: dict[int, tuple] = {}        # id(future) -> (future, request, deadline)
        self._in_flight_lock = threading.Lock()
        self.history = {'available': False, 'span': (0, 0), 'probed_s': -math.inf}
        self._probe = None   # the pending history probe's future
        self.diagnostics = NodeDiagnostics(self)
        guarded = self.diagnostics.guarded

        ask, local = ReentrantCallbackGroup(), ReentrantCallbackGroup()
        intake, answers, people = (MutuallyExclusiveCallbackGroup() for _ in range(3))
        self.search_client = self.create_client(BacktrackSearch, 'backtrack_search',
                                                callback_group=local)
        self.forget_client = (self.create_client(FORGET_PERSON, 'forget_person',
                                                 callback_group=local)
                              if FORGET_PERSON is not None else None)
        self.request_pub = self.create_publisher(FleetSearchRequest, '/fleet/search_request',
                                                 REQUEST_QOS)
        self.result_pub = self.create_publisher(FleetSearchResult, '/fleet/search_result',
                                                RESULT_QOS)
        self.presence_pub = self.create_publisher(FleetPresence, '/fleet/presence',
                                                  presence_qos(p.presence_lease))
        self.people_pub = self.create_publisher(EmbeddingSync, '/fleet/people',
                                                people_qos(p.max_people))
        self.known_pub = self.create_publisher(KnownPeople, 'known_people', KNOWN_PEOPLE_QOS)
        self.create_subscription(FleetSearchRequest, '/fleet/search_request',
                                 guarded(self.on_request), REQUEST_QOS, callback_group=intake)
        self.create_subscription(FleetSearchResult, '/fleet/search_result',
                                 guarded(self.on_result), RESULT_QOS, callback_group=answers)
        self.create_subscription(FleetPresence, '/fleet/presence', guarded(self.on_presence),
                                 presence_qos(None), callback_group=answers)
        self.create_subscription(EmbeddingSync, '/fleet/people', guarded(self.on_people),
                                 people_qos(p.max_people), callback_group=people)
        self.create_subscription(EmbeddingSync, 'person_forgotten', guarded(self.on_forgotten),
                                 RELIABLE_QOS, callback_group=people)
        self.create_service(FleetSearch, 'fleet_search', self.on_fleet_search,
                            callback_group=ask)
        self.create_service(EnrollPerson, 'enroll_person', self.on_enroll,
                            callback_group=MutuallyExclusiveCallbackGroup())
        self.create_timer(p.presence_lease / PRESENCE_PER_LEASE, guarded(self.on_presence_timer),
                          callback_group=answers)
        self.create_timer(SWEEP_PERIOD_S, guarded(self.on_sweep), callback_group=intake)
        self._load_people()
        self.on_presence_timer()

    # Answering peers ---------------------------------------------------------------------

    def on_request(self, msg: FleetSearchRequest) -> None:
        """Admit, refuse or ignore a peer's request; queue the admitted ones for a search."""
        query = peer_request_query(msg, self.params.max_peer_deep_budget)
        deadline_ns = time_to_ns(msg.deadline)
        admission = self.gate.admit(msg.request_id, msg.origin_robot_id, deadline_ns, query,
                                    DIM, self._now_ns(), time.monotonic())
        if admission.verdict is Verdict.ANSWER:
            if self.work.offer((msg, query), deadline_ns):
                self._pump()
                return
            admission = Admission(Verdict.REFUSE, FleetCode.BUSY,
                                  f'busy: {self.work.capacity} requests already wait')
        if admission.verdict is Verdict.REFUSE:
            self.result_pub.publish(answer_msg(msg.request_id, msg.origin_robot_id,
                                               self.robot_id, self._now_ns(), admission.code,
                                               admission.reason))
        else:
            self.get_logger().debug(f'request {msg.request_id!r:.70} ignored: '
                                    f'{admission.reason}')

    def _pump(self) -> None:
        """Start the local searches the queue lets run."""
        while (item := self.work.start_next(self._now_ns())) is not None:
            msg, query = item
            if not self.search_client.service_is_ready():
                self._answer(msg, answer_msg(msg.request_id, msg.origin_robot_id, self.robot_id,
                                             self._now_ns(), FleetCode.ERROR,
                                             'this robot\'s history (backtrack_search) is not '
                                             'running'))
                continue
            future = self.search_client.call_async(query_request(query))
            with self._in_flight_lock:
                self._in_flight[id(future)] = (future, msg, time_to_ns(msg.deadline))
            future.add_done_callback(partial(self._on_local_answer, msg))

    def _on_local_answer(self, msg: FleetSearchRequest, future) -> None:
        with self._in_flight_lock:
            if self._in_flight.pop(id(future), None) is None:
                return   # given up at its deadline (on_sweep)
        self._answer(msg, answer_from_response(future.result(), msg.request_id,
                                               msg.origin_robot_id, self.robot_id,
                                               self._now_ns(), self.params.thumbnail_width))

    def _answer(self, msg: FleetSearchRequest, answer: FleetSearchResult) -> None:
        self.result_pub.publish(answer)
        self.work.finish()
        self._pump()

    def on_sweep(self) -> None:
        """Give up the local searches whose request passed its deadline: nobody waits."""
        now_ns = self._now_ns()
        with self._in_flight_lock:
            late = [key for key, (_, _, deadline) in self._in_flight.items()
                    if deadline < now_ns]
            futures = [self._in_flight.pop(key)[0] for key in late]
        for future in futures:
            self.search_client.remove_pending_request(future)
            self.work.finish()
        self._pump()

    # Knowing the peers -------------------------------------------------------------------

    def on_presence_timer(self) -> None:
        """Announce this robot, forget silent ones, refresh what the history spans."""
        now_s = time.monotonic()
        lease = self.params.presence_lease
        span = self.history['span']
        self.presence_pub.publish(FleetPresence(
            header=Header(stamp=ns_to_time(self._now_ns())), robot_id=self.robot_id,
            state=FleetPresence.STATE_ONLINE, cameras=[self.params.camera_id],
            history_available=self.history['available'], history_from=ns_to_time(span[0]),
            history_to=ns_to_time(span[1]), lease=lease,
            known_people=len(self.people.enrolled())))
        for robot in self.peers.prune(now_s):
            self.get_logger().info(f'robot {robot} is gone (not heard for its lease)')
        with self._answered:
            self._answered.notify_all()
        if not self.search_client.service_is_ready():
            self.history['available'] = False
        elif (now_s - self.history['probed_s'] > HISTORY_PROBE_PERIOD_S
              or not self.history['available']):
            self.history['probed_s'] = now_s
            if self._probe is not None:   # never answered: drop it
                self.search_client.remove_pending_request(self._probe)
            # A threshold nothing reaches: the answer's window is the history's whole span.
            probe = BacktrackSearch.Request(query_type=BacktrackSearch.Request.QUERY_EMBEDDING,
                                            embedding=[1.0] + [0.0] * (DIM - 1),
                                            window_width=0.0, min_similarity=1.0, max_results=1)
            self._probe = self.search_client.call_async(probe)
            self._probe.add_done_callback(self._on_probe)
        live = self.peers.live(now_s)
        self.diagnostics.values.update({
            'live robots': ', '.join(sorted(live)) or 'none',
            'enrolled people': str(len(self.people.enrolled())),
            'peer requests': ', '.join(f'{k} {v}' for k, v in sorted(self.gate.counts.items())),
            'queued / expired in queue': f'{len(self.work)} / {self.work.expired}',
            'history': 'available' if self.history['available'] else 'not running'})

    def _on_probe(self, future) -> None:
        self._probe = None
        response = future.result()
        self.history['available'] = response is not None and response.result != FleetCode.ERROR
        if response is not None:
            self.history['span'] = (time_to_ns(response.searched_from),
                                    time_to_ns(response.searched_to))

    def on_presence(self, msg: FleetPresence) -> None:
        """Note a robot's presence (or its leaving)."""
        change = self.peers.heard(
            msg.robot_id, list(msg.cameras), msg.history_available,
            (time_to_ns(msg.history_from), time_to_ns(msg.history_to)), msg.lease,
            msg.state == FleetPresence.STATE_LEAVING, msg.known_people, time.monotonic())
        if change:
            self.get_logger().info(f'robot {msg.robot_id} {change} the fleet')
            with self._answered:
                self._answered.notify_all()

    def destroy_node(self) -> None:
        """Tell the fleet this robot leaves, so that no asker waits for it."""
        self.presence_pub.publish(FleetPresence(
            header=Header(stamp=ns_to_time(self._now_ns())), robot_id=self.robot_id,
            state=FleetPresence.STATE_LEAVING, lease=self.params.presence_lease))
        super().destroy_node()

    # Asking the fleet --------------------------------------------------------------------

    def on_fleet_search(self, request: FleetSearch.Request,
                        response: FleetSearch.Response) -> FleetSearch.Response:
        """Search this robot's history and ask every live robot; merge what comes in time."""
        began = time.monotonic()
        if not self._asks.acquire(blocking=False):
            return _fill(response, FleetCode.BUSY, f'{MAX_ASKS} fleet searches already run')
        try:
            self._fleet_search(request, response, began)
        finally:
            self._asks.release()
        response.elapsed = time.monotonic() - began
        self.get_logger().info(f'fleet_search {response.request_id}: {response.message}')
        return response

    def _fleet_search(self, request: FleetSearch.Request, response: FleetSearch.Response,
                      began: float) -> None:
        timeout = request.timeout or self.params.default_timeout
        if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT_S):
            _fill(response, FleetCode.INVALID_REQUEST, f'timeout {timeout} is outside '
                  f'(0, {MAX_TIMEOUT_S:g}] s')
            return
        try:
            check_query(query_from_request(request, self.params.thumbnail_width), DIM)
        except ImageConversionError as error:
            _fill(response, FleetCode.INVALID_REQUEST, f'bad image: {error}')
            return
        except SearchRefused as refusal:
            _fill(response, refusal.code, str(refusal))
            return
        deadline_s = began + timeout
        local = local_request(request)
        own = None
        embedding = None
        if request.query_type == QueryKind.EMBEDDING:
            embedding = check_embedding(request.embedding, DIM)
        elif request.query_type == QueryKind.PERSON_ID:
            enrolled = self.people.get(request.person_id)
            if enrolled is not None and enrolled.action == ENROLL:
                embedding = enrolled.embedding
        if embedding is None:   # a photo or a local person id: this robot's search embeds it
            own = self._call_local(local, deadline_s - time.monotonic())
            if own is None or not len(own.query_embedding):
                code, message = ((FleetCode.ERROR, 'this robot\'s history (backtrack_search) '
                                  'did not answer: it turns photos and person ids into '
                                  'embeddings; ask by embedding') if own is None
                                 else (code_of(own), own.message))
                _fill(response, code, message)
                return
            embedding = own.query_embedding
        request_id = uuid.uuid4().hex
        now_ns = self._now_ns()
        gathering = Gathering(request_id, self.peers.live(time.monotonic()), began)
        with self._answered:
            self._gatherings[request_id] = gathering
        try:
            self.request_pub.publish(fleet_request(
                request, embedding, request_id, self.robot_id, now_ns,
                now_ns + int((deadline_s - time.monotonic()) * 1e9)))
            if own is None and self.search_client.service_is_ready():
                own = self._call_local(local_request(local, query_type=QueryKind.EMBEDDING,
                                                     embedding=list(embedding)),
                                       deadline_s - time.monotonic())
            if own is not None:
                answer = answer_from_response(own, request_id, self.robot_id, self.robot_id,
                                              self._now_ns(), self.params.thumbnail_width)
                self.result_pub.publish(answer)   # a dashboard sees this robot's answer too
                with self._answered:
                    gathering.add(peer_answer(answer))
            with self._answered:
                while (time.monotonic() < deadline_s
                       and gathering.awaited(self.peers.live(time.monotonic()))):
                    self._answered.wait(min(0.1, max(0.0, deadline_s - time.monotonic())))
                outcome = gathering.outcome(time.monotonic())
        finally:
            with self._answered:
                del self._gatherings[request_id]
        _fill(response, outcome.code, outcome.message)
        response.request_id = request_id
        response.appearances = outcome.appearances
        response.answered = [answer.robot_id for answer in outcome.answered]
        response.answered_results = [int(answer.code) for answer in outcome.answered]
        response.not_answered = outcome.not_answered

    def on_result(self, msg: FleetSearchResult) -> None:
        """Take a robot's answer to one of this robot's fleet searches."""
        with self._answered:
            gathering = self._gatherings.get(msg.request_id)
            if gathering is not None and msg.robot_id and gathering.add(peer_answer(msg)):
                self._answered.notify_all()

    def _call_local(self, request: BacktrackSearch.Request,
                    timeout_s: float) -> BacktrackSearch.Response | None:
        """Return this robot's BacktrackSearch response, or None if none came in timeout_s."""
        if timeout_s <= 0 or not self.search_client.service_is_ready():
            return None
        done = threading.Event()
        future = self.search_client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout_s):
            self.search_client.remove_pending_request(future)
            return None
        return future.result()

    # Sharing identities ------------------------------------------------------------------

    def on_enroll(self, request: EnrollPerson.Request,
                  response: EnrollPerson.Response) -> EnrollPerson.Response:
        """Enrol a name (photo, person id or embedding) or withdraw it, on every robot."""
        sources = [len(request.image.data) > 0, bool(request.person_id),
                   len(request.embedding) > 0]
        try:
            name = check_name(request.name)
            if request.withdraw:
                if any(sources):
                    raise FleetInputError('a withdrawal takes the name only')
                record = PersonRecord(name, WITHDRAW, self._now_ns(), self.robot_id)
            else:
                if sum(sources) != 1:
                    raise FleetInputError('give exactly one of image, person_id, embedding')
                code, message, embedding = self._face_of(request)
                if code != FleetCode.OK:
                    return _fill(response, code, message)
                record = PersonRecord(name, ENROLL, self._now_ns(), self.robot_id,
                                      tuple(embedding), DlibResNetEmbedder.name,
                                      samples=1 if sources[0] else 0)
            self._take(record)
        except FleetInputError as error:
            return _fill(response, FleetCode.INVALID_REQUEST, str(error))
        except RosterFull as error:
            return _fill(response, FleetCode.ERROR, str(error))
        response.embedding = list(record.embedding)
        response.known_people = len(self.people.enrolled())
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
        answer = self._call_local(BacktrackSearch.Request(
            query_type=kind, image=request.image, person_id=request.person_id, **EMPTY_WINDOW),
            EMBED_TIMEOUT_S)
        if answer is None:
            return (FleetCode.ERROR, 'this robot\'s history (backtrack_search) did not answer: '
                    'it embeds photos and person ids; enrol by embedding', [])
        if not len(answer.query_embedding):
            return code_of(answer), answer.message, []
        return FleetCode.OK, '', list(answer.query_embedding)

    def on_people(self, msg: EmbeddingSync) -> None:
        """Take an enrolment or withdrawal from the fleet (last writer wins per name)."""
        try:
            record = check_record(record_of(msg), DIM, self._now_ns(),
                                  self.params.max_clock_skew)
            changed = self._take(record)
        except (FleetInputError, RosterFull) as error:
            self.get_logger().warning(f'fleet people entry {msg.person_id!r:.70} from '
                                      f'{msg.robot_id!r:.70} refused: {error}',
                                      throttle_duration_sec=5.0)
            return
        if (changed and record.action == WITHDRAW and record.embedding
                and record.robot_id != self.robot_id):
            self.echoes.remember(record.embedding, time.monotonic())
            self._forget_locally(record)

    def on_forgotten(self, msg: EmbeddingSync) -> None:
        """Withdraw someone this robot forgot on every robot, unless the fleet asked for it."""
        record = check_record(PersonRecord(msg.person_id, WITHDRAW, self._now_ns(),
                                           self.robot_id, tuple(msg.embedding)), DIM, None)
        if record.embedding and self.echoes.is_echo(record.embedding, time.monotonic()):
            self.get_logger().info(f'{record.person_id} forgotten at the fleet\'s request')
            return
        self._take(record)

    def _take(self, record: PersonRecord) -> bool:
        """Apply a checked record; publish, save and tell the tracker what changed."""
        with self._people_lock:
            before = self.people.enrolled()
            if not self.people.apply(record):
                return False
            for changed in self.outbox.publish(record, self.people):
                self.people_pub.publish(sync_of(changed))
            enrolled = self.people.enrolled()
            if enrolled != before:
                self.known_pub.publish(known_people(enrolled, self._now_ns()))
            if self.people_file:
                self.people.save(self.people_file)
        verb = 'enrolled' if record.action == ENROLL else 'withdrawn'
        self.get_logger().info(f'{record.person_id!r} {verb} by {record.robot_id}')
        return True

    def _load_people(self) -> None:
        """Load the saved roster, publish it all for late joiners, and tell the tracker."""
        with self._people_lock:
            if self.people_file:
                try:
                    for problem in self.people.load(self.people_file, DIM):
                        self.get_logger().warning(f'{self.people_file}: skipped {problem}')
                except FleetInputError as error:
                    self.get_logger().error(f'{error}: starting with no enrolled people')
            for record in self.outbox.publish(None, self.people):
                self.people_pub.publish(sync_of(record))
            self.known_pub.publish(known_people(self.people.enrolled(), self._now_ns()))

    def _forget_locally(self, record: PersonRecord) -> None:
        """Ask this robot's history to forget whoever matches a withdrawn face."""
        if self.forget_client is None:
            self.get_logger().info(f'{record.person_id!r} withdrawn; this build has no '
                                   'forget_person: the history keeps the face')
            return
        if not self.forget_client.service_is_ready():
            self.get_logger().warning(f'{record.person_id!r} withdrawn, but forget_person is '
                                      'not available: the history keeps the face')
            return
        forget = FORGET_PERSON.Request()
        forget.embedding = list(record.embedding)
        self.forget_client.call_async(forget)

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds


def _fill(response, code: int, message: str):
    """Return response with its result and message set."""
    response.result, response.message = int(code), message
    return response


def main(args: list[str] | None = None) -> int:
    """Run the fleet node."""
    return run_node(FleetNode, args, threads=EXECUTOR_THREADS)
