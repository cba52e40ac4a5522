"""The fleet without ROS: whom to answer, who is live, how answers merge, who is enrolled.

Robots ask each other "when and where did you see this face?" over plain topics; the fleet
node (facetrack_ros/fleet_node.py) is the thin ROS side of these rules:

Three facades, one per duty of the node, over the pieces below them:

- PeerSearches answers peers. RequestGate decides what becomes of a request, cheapest check
  first: usable ids, not this robot's own request, not a replay (each request id is answered
  once), not past its deadline, within the asker's rate (a token bucket per robot), and a
  query that the history search's own check_query accepts. A refusal is answered with a
  FleetCode; own, replayed and expired requests get no answer at all. WorkQueue holds the
  admitted ones, bounded; one whose deadline passes while it waits, or while it is searched
  for, is given up.
- FleetAsks asks the fleet. PeerRoster knows the robots heard on the presence topic, each
  live while heard within its own lease; a Gathering is one fleet search: the answers as they
  come, the robots still awaited (those expected that are still live), the merged outcome.
- PeopleSync shares identities. PeopleRoster holds the people enrolled by name: last writer
  wins per name (stamp, then robot id, then a withdrawal before an enrolment); withdrawals stay
  as tombstones so a stale enrolment never brings a name back. Outbox says what to publish so
  that a transient-local writer always holds the whole roster for late joiners. EchoGuard: a
  withdrawal from the fleet makes this robot forget the person, and the local announcement of
  that forgetting must not go round the fleet again.

Two clocks: `now_ns` is the robots' shared wall clock (stamps and deadlines, compared across
robots, so their clocks must agree within max_skew_s); `now_s` is this process's monotonic
clock (leases and rates).
"""

from collections import Counter, deque, OrderedDict
from dataclasses import dataclass, field, replace
from enum import Enum, IntEnum
import heapq
import json
import math
from pathlib import Path
import threading
import time
from typing import Any, Callable, Collection, Generic, Iterable, Sequence, TypeVar

import cv2
import numpy as np

from facetrack_ros.core.embedding import DEFAULT_MIN_SIMILARITY
from facetrack_ros.core.event_log import DEFAULT_MAX_AGE_S
from facetrack_ros.core.history.search import (check_embedding, check_query, MAX_PERSON_ID_CHARS,
                                               QueryKind, SearchCode, SearchQuery, SearchRefused)
from facetrack_ros.core.owner_lock import OwnerLock
from facetrack_ros.core.private_files import FileModes, replace_atomically

#: fleet_search waits this long for answers when the request does not say [s]; and at most.
DEFAULT_TIMEOUT_S = 5.0
MAX_TIMEOUT_S = 60.0
#: A robot is gone when not heard for its lease [s]; it announces itself PRESENCE_PER_LEASE
#: times per lease. Leases outside [MIN_LEASE_S, MAX_LEASE_S] are clipped to it.
DEFAULT_PRESENCE_LEASE_S = 3.0
PRESENCE_PER_LEASE = 3
MIN_LEASE_S, MAX_LEASE_S = 0.5, 60.0
#: Requests a robot answers per asker: a token bucket of this rate [1/s] and burst.
DEFAULT_PEER_RATE = 2.0
DEFAULT_PEER_BURST = 5
#: Admitted peer requests waiting for a search, and searches run at once.
DEFAULT_QUEUE_SIZE = 8
SEARCH_CONCURRENCY = 1
#: Largest difference between two robots' clocks still taken as in sync [s].
DEFAULT_MAX_CLOCK_SKEW_S = 2.0
#: Most appearances one robot sends in an answer (max_results 0 asks for this many).
MAX_PEER_RESULTS = 50
#: Largest serialized answer: well under the 64 KiB a UDP datagram carries unfragmented [B].
MAX_ANSWER_BYTES = 48 * 1024
#: Thumbnails in answers: width [px] and JPEG quality.
DEFAULT_THUMBNAIL_WIDTH_PX = 160
THUMBNAIL_QUALITY = 70
#: Names a roster holds (enrolled and withdrawn).
DEFAULT_MAX_PEOPLE = 200
#: Longest robot id, request id, camera name, name and model name [characters].
MAX_ID_CHARS = 64
MAX_CAMERAS = 16
#: Robots tracked for rates and presence, and request ids remembered against replays.
MAX_PEERS = 1024
REPLAY_CAPACITY = 10_000
#: Stamps of this robot's own presences remembered to recognise their echo (3 per lease).
SENT_STAMPS_KEPT = 16
#: PeerRoster.heard's word for a presence of another robot under this robot's id.
TWIN = 'twin'
#: A local forgetting of a similar face this soon after the history answered a forget the
#: fleet asked for is its echo [s] (the announcement and the answer race each other).
ECHO_WINDOW_S = 600.0
#: A forget this robot's history failed (or that found no history) is asked again after
#: this long [s].
FORGET_RETRY_S = 30.0
#: A forget unanswered this long is taken as lost (the history died meanwhile) and asked
#: again: a forget reads every stored segment, which takes minutes over a day's history [s].
FORGET_ANSWER_S = 900.0
#: Unit embeddings this alike [cosine] are one face sent twice (float32 rounding keeps it
#: over 0.9999), not two faces of a person, which a forget's match takes from min_similarity.
SAME_FACE = 0.999
#: Waiting askers look at who is live at least this often [s].
RECHECK_S = 0.1
#: The history's span for the presence is refreshed this often [s].
HISTORY_PROBE_PERIOD_S = 60.0
#: EmbeddingSync actions.
ENROLL, WITHDRAW = 1, 2
_NS = 1_000_000_000


class FleetCode(IntEnum):
    """What became of a fleet search or a peer's request: FleetSearch's RESULT_* constants.

    0-6 are SearchCode's (BacktrackSearch's); FleetSearchResult uses 0-8.
    """

    OK = int(SearchCode.OK)
    NO_MATCH = int(SearchCode.NO_MATCH)
    INVALID_REQUEST = int(SearchCode.INVALID_REQUEST)
    UNKNOWN_PERSON = int(SearchCode.UNKNOWN_PERSON)
    NO_FACE = int(SearchCode.NO_FACE)
    NO_HISTORY = int(SearchCode.NO_HISTORY)
    ERROR = int(SearchCode.ERROR)
    RATE_LIMITED = 7    # the asker exceeded a robot's request rate
    BUSY = 8            # a queue or the replay memory is full
    NO_ANSWER = 9       # no robot answered in time


class FleetInputError(ValueError):
    """A fleet message or request field that cannot be used; the message says which."""


def check_id(what: str, value: object, limit: int = MAX_ID_CHARS) -> str:
    """Return value if it is 1 to limit printable characters without outer spaces."""
    if (not isinstance(value, str) or not value or len(value) > limit
            or not value.isprintable() or value != value.strip()):
        raise FleetInputError(f'{what} must be 1 to {limit} printable characters without '
                              f'outer spaces, got {value!r:.80}')
    return value


def check_name(name: object) -> str:
    """Return an enrolment name: 1 to MAX_ID_CHARS letters, digits, spaces, `_`, `-` or `.`."""
    check_id('name', name)
    if not all(char.isalnum() or char in ' _-.' for char in name):
        raise FleetInputError(f'name {name!r} may hold only letters, digits, spaces, _ - .')
    return name


def check_enrolment(name: object, withdraw: bool, sources: Sequence[bool]) -> str:
    """Return an enrol_person request's checked name; raise FleetInputError if it is unusable.

    sources: whether the request gives each face source (image, person id, embedding); an
    enrolment takes exactly one, a withdrawal none.
    """
    check_name(name)
    if withdraw and any(sources):
        raise FleetInputError('a withdrawal takes the name only')
    if not withdraw and sum(sources) != 1:
        raise FleetInputError('give exactly one of image, person_id, embedding')
    return name


def search_timeout(requested_s: float, default_s: float) -> float:
    """Return how long a fleet_search waits [s]: requested_s, or default_s for 0.

    Raises FleetInputError when that is not in (0, MAX_TIMEOUT_S].
    """
    timeout = requested_s or default_s
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT_S):
        raise FleetInputError(f'timeout {timeout} is outside (0, {MAX_TIMEOUT_S:g}] s')
    return timeout


@dataclass
class HistoryProbe:
    """What this robot's own history said last: whether it answers, and the span it holds.

    The presence tells peers both. The fleet node asks the history (a search nothing matches,
    whose answer gives the span) when due(): every HISTORY_PROBE_PERIOD_S while it answers,
    and at every presence while it does not.
    """

    available: bool = False
    span_ns: tuple[int, int] = (0, 0)
    asked_s: float = -math.inf   # when it was last asked [s, monotonic]

    def due(self, now_s: float) -> bool:
        """Return whether to ask the history now; if so, note that it was asked."""
        if self.available and now_s - self.asked_s < HISTORY_PROBE_PERIOD_S:
            return False
        self.asked_s = now_s
        return True

    def answered(self, available: bool, span_ns: tuple[int, int] | None) -> None:
        """Take the history's answer: whether it searched, and the span it covers [ns]."""
        self.available = available
        if span_ns is not None:
            self.span_ns = span_ns


# Answering peers ---------------------------------------------------------------------------

class Verdict(Enum):
    """What to do with a peer's request."""

    ANSWER = 'answer'   # search and answer
    REFUSE = 'refuse'   # answer with the refusal's code at once
    IGNORE = 'ignore'   # no answer


@dataclass(frozen=True)
class Admission:
    """RequestGate's decision on one request: verdict, code of a refusal and why."""

    verdict: Verdict
    code: FleetCode = FleetCode.OK
    reason: str = ''


class TokenBucket:
    """rate tokens a second up to burst; each request takes one."""

    def __init__(self, rate: float, burst: int, now_s: float) -> None:
        """Start full."""
        self.rate, self.burst = rate, burst
        self._tokens, self._at = float(burst), now_s

    def take(self, now_s: float) -> bool:
        """Take a token if there is one; return whether there was."""
        self._tokens = min(self.burst, self._tokens + (now_s - self._at) * self.rate)
        self._at = now_s
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class RequestGate:
    """Decides, thread-safely, which peer requests this robot answers (see the module doc).

    The replay memory keeps each request id until its deadline (plus the clock skew) has
    passed: after that a replay is expired anyway. Refusals for rate are themselves limited
    by a second bucket of the same rate, so a flood cannot make this robot flood back.
    """

    def __init__(self, robot_id: str, rate: float = DEFAULT_PEER_RATE,
                 burst: int = DEFAULT_PEER_BURST, max_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S,
                 replay_capacity: int = REPLAY_CAPACITY, max_peers: int = MAX_PEERS) -> None:
        """Gate the requests that reach robot_id."""
        self.robot_id = robot_id
        self.rate, self.burst, self.max_skew_ns = rate, burst, int(max_skew_s * _NS)
        self.replay_capacity, self.max_peers = replay_capacity, max_peers
        self._seen: dict[str, int] = {}           # request id -> remembered until [ns]
        self._expiries: list[tuple[int, str]] = []
        self._buckets: OrderedDict[str, tuple[TokenBucket, TokenBucket]] = OrderedDict()
        self._lock = threading.Lock()
        #: Requests by what became of them (the reason's first words), for diagnostics.
        self.counts: Counter[str] = Counter()

    def admit(self, request_id: object, origin: object, deadline_ns: int, query: SearchQuery,
              dim: int, now_ns: int, now_s: float) -> Admission:
        """Return what to do with a request (its ids, deadline and query as a SearchQuery)."""
        with self._lock:
            admission = self._admit(request_id, origin, deadline_ns, query, dim, now_ns, now_s)
        self.counts[admission.verdict.value if admission.verdict is Verdict.ANSWER
                    else admission.reason.split(':')[0]] += 1
        return admission

    def _admit(self, request_id: object, origin: object, deadline_ns: int, query: SearchQuery,
               dim: int, now_ns: int, now_s: float) -> Admission:
        try:
            check_id('request_id', request_id)
            check_id('origin_robot_id', origin)
        except FleetInputError as error:   # nothing to address an answer to
            return Admission(Verdict.IGNORE, reason=f'malformed: {error}')
        if origin == self.robot_id:
            return Admission(Verdict.IGNORE, reason='own request')
        self._forget_expired(now_ns)
        if request_id in self._seen:
            return Admission(Verdict.IGNORE, reason='replayed: request id answered already')
        latest = now_ns + int(MAX_TIMEOUT_S * _NS) + self.max_skew_ns
        if len(self._seen) >= self.replay_capacity:
            return Admission(Verdict.REFUSE, FleetCode.BUSY,
                             'busy: too many requests remembered against replays')
        self._remember(request_id, min(max(deadline_ns, now_ns) + self.max_skew_ns, latest))
        if deadline_ns + self.max_skew_ns < now_ns:
            return Admission(Verdict.IGNORE, reason='expired: past its deadline')
        if deadline_ns > latest:
            return Admission(Verdict.REFUSE, FleetCode.INVALID_REQUEST,
                             f'invalid: deadline more than {MAX_TIMEOUT_S:g} s ahead')
        asks, refusals = self._bucket(origin, now_s)
        if not asks.take(now_s):
            if refusals.take(now_s):
                return Admission(Verdict.REFUSE, FleetCode.RATE_LIMITED,
                                 f'rate limited: more than {self.rate:g} requests/s '
                                 f'(burst {self.burst}) from {origin}')
            return Admission(Verdict.IGNORE, reason='rate limited, refusal not sent')
        try:
            check_query(query, dim)
        except SearchRefused as refusal:
            return Admission(Verdict.REFUSE, FleetCode.INVALID_REQUEST, f'invalid: {refusal}')
        return Admission(Verdict.ANSWER)

    def _remember(self, request_id: str, until_ns: int) -> None:
        self._seen[request_id] = until_ns
        heapq.heappush(self._expiries, (until_ns, request_id))

    def _forget_expired(self, now_ns: int) -> None:
        while self._expiries and self._expiries[0][0] < now_ns:
            _, request_id = heapq.heappop(self._expiries)
            self._seen.pop(request_id, None)

    def _bucket(self, origin: str, now_s: float) -> tuple[TokenBucket, TokenBucket]:
        buckets = self._buckets.get(origin)
        if buckets is None:
            buckets = (TokenBucket(self.rate, self.burst, now_s),
                       TokenBucket(self.rate, self.burst, now_s))
            self._buckets[origin] = buckets
            while len(self._buckets) > self.max_peers:   # the longest quiet robot starts over
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(origin)
        return buckets


T = TypeVar('T')


class WorkQueue(Generic[T]):
    """Admitted requests waiting for a search: at most capacity waiting, concurrency running."""

    def __init__(self, capacity: int = DEFAULT_QUEUE_SIZE,
                 concurrency: int = SEARCH_CONCURRENCY) -> None:
        """Hold up to capacity items; let concurrency of them run at once."""
        self.capacity, self.concurrency = capacity, concurrency
        self._waiting: list[tuple[int, T]] = []   # (deadline [ns], item), first come first
        self._running = 0
        self._lock = threading.Lock()
        self.expired = 0   # items dropped because their deadline passed while they waited

    def offer(self, item: T, deadline_ns: int) -> bool:
        """Queue item; return False (nothing queued) when the queue is full."""
        with self._lock:
            if len(self._waiting) >= self.capacity:
                return False
            self._waiting.append((deadline_ns, item))
            return True

    def start_next(self, now_ns: int) -> T | None:
        """Return the next item still before its deadline, counted as running; or None."""
        with self._lock:
            while self._running < self.concurrency and self._waiting:
                deadline_ns, item = self._waiting.pop(0)
                if deadline_ns < now_ns:
                    self.expired += 1
                    continue
                self._running += 1
                return item
            return None

    def finish(self) -> None:
        """Count one running item as done."""
        with self._lock:
            self._running = max(0, self._running - 1)

    def __len__(self) -> int:
        """Return the items waiting."""
        return len(self._waiting)


class PeerSearches(Generic[T]):
    """This robot's side of peers' searches: admission, the queue and the searches running.

    receive() admits a request (RequestGate) and queues it (WorkQueue), or says why not;
    next() hands out the queued requests the concurrency allows; started(), finished() and
    overdue() follow each running search by a handle of the caller's (its pending call).
    Thread-safe.
    """

    def __init__(self, gate: RequestGate, queue_size: int = DEFAULT_QUEUE_SIZE,
                 concurrency: int = SEARCH_CONCURRENCY) -> None:
        """Admit with gate; queue up to queue_size requests; run concurrency at once."""
        self.gate = gate
        self.queue: WorkQueue[tuple[T, SearchQuery, int]] = WorkQueue(queue_size, concurrency)
        self._running: dict[int, tuple[object, T, int]] = {}   # id(handle): handle, item, end
        self._lock = threading.Lock()

    def receive(self, request: T, request_id: object, origin: object, deadline_ns: int,
                query: SearchQuery, dim: int, now_ns: int, now_s: float) -> Admission:
        """Admit and queue a request, or return the refusal (or the reason to ignore it)."""
        admission = self.gate.admit(request_id, origin, deadline_ns, query, dim, now_ns, now_s)
        if (admission.verdict is Verdict.ANSWER
                and not self.queue.offer((request, query, deadline_ns), deadline_ns)):
            return Admission(Verdict.REFUSE, FleetCode.BUSY,
                             f'busy: {self.queue.capacity} requests already wait here')
        return admission

    def next(self, now_ns: int) -> tuple[T, SearchQuery, int] | None:
        """Return the next queued (request, query, deadline) to search for now, or None.

        Call started() with its handle, or done() if no search could start.
        """
        return self.queue.start_next(now_ns)

    def started(self, handle: object, request: T, deadline_ns: int) -> None:
        """Note the running search of request, followed by handle."""
        with self._lock:
            self._running[id(handle)] = (handle, request, deadline_ns)

    def finished(self, handle: object) -> T | None:
        """Return the request of a search that ended; None if overdue() gave it up already."""
        with self._lock:
            running = self._running.pop(id(handle), None)
        if running is None:
            return None
        self.queue.finish()
        return running[1]

    def done(self) -> None:
        """Free the place of a request that next() handed out but that did not start."""
        self.queue.finish()

    def values(self) -> dict[str, str]:
        """Return the counts for /diagnostics: requests by outcome, queued and given up."""
        counts = ', '.join(f'{k} {v}' for k, v in sorted(self.gate.counts.items()))
        return {'peer requests': counts,
                'queued / given up': f'{len(self.queue)} / {self.queue.expired}'}

    def overdue(self, now_ns: int) -> list[object]:
        """Give up the searches past their request's deadline (nobody waits); return handles."""
        with self._lock:
            late = [key for key, (_, _, deadline) in self._running.items() if deadline < now_ns]
            handles = [self._running.pop(key)[0] for key in late]
        for _ in handles:
            self.queue.finish()
        return handles


# Knowing the peers -------------------------------------------------------------------------

@dataclass(frozen=True)
class Peer:
    """A robot as its last presence described it."""

    robot_id: str
    cameras: tuple[str, ...]
    history_available: bool
    history_from_ns: int     # first indexed face; 0 when none
    history_to_ns: int
    lease_s: float           # gone when not heard for this long [s]
    known_people: int
    heard_s: float           # when heard last, this process's monotonic clock [s]


class PeerRoster:
    """The robots heard on the presence topic, thread-safe; this robot's own is left out.

    A presence under this robot's id that this robot did not send is a twin: another robot
    configured with the same robot_id, whose person ids and answers collide with this one's.
    """

    def __init__(self, robot_id: str, max_peers: int = MAX_PEERS) -> None:
        """Track at most max_peers robots besides robot_id."""
        self.robot_id, self.max_peers = robot_id, max_peers
        self._peers: dict[str, Peer] = {}
        self._sent: deque[int] = deque(maxlen=SENT_STAMPS_KEPT)
        self._twin_until_s = -math.inf
        self._ticked_s: float | None = None   # when prune last ran
        self._period_s = math.inf             # how often prune runs
        self._lock = threading.Lock()

    def announced(self, stamp_ns: int) -> None:
        """Note the stamp of a presence this robot sent, to tell its echo from a twin's."""
        with self._lock:
            self._sent.append(stamp_ns)

    def twin_heard(self, now_s: float) -> bool:
        """Return whether a twin was heard within its lease."""
        with self._lock:
            return now_s <= self._twin_until_s

    def heard(self, robot_id: object, cameras: Sequence[object], history_available: bool,
              history_span_ns: tuple[int, int], lease_s: float, leaving: bool,
              known_people: int, stamp_ns: int, now_s: float) -> str | None:
        """Take one presence; return 'joined' or 'left' when that changed, TWIN, else None.

        Raises FleetInputError for an unusable robot id or camera list.
        """
        check_id('robot_id', robot_id)
        lease = min(max(lease_s, MIN_LEASE_S), MAX_LEASE_S) if math.isfinite(lease_s) \
            else DEFAULT_PRESENCE_LEASE_S
        if robot_id == self.robot_id:
            with self._lock:
                if leaving or stamp_ns in self._sent:
                    return None
                self._twin_until_s = now_s + lease
                return TWIN
        if len(cameras) > MAX_CAMERAS:
            raise FleetInputError(f'presence of {robot_id} lists more than {MAX_CAMERAS} '
                                  'cameras')
        names = tuple(check_id('camera', camera) for camera in cameras)
        with self._lock:
            known = robot_id in self._peers
            if leaving:
                return 'left' if self._peers.pop(robot_id, None) else None
            if not known and len(self._peers) >= self.max_peers:
                raise FleetInputError(f'more than {self.max_peers} robots: {robot_id} ignored')
            self._peers[robot_id] = Peer(robot_id, names, bool(history_available),
                                         *history_span_ns, lease, int(known_people), now_s)
            return None if known else 'joined'

    def live(self, now_s: float) -> dict[str, Peer]:
        """Return {robot id: peer} of the robots heard within their lease.

        Silence counts until a period after the last prune: a prune overdue shows that this
        process is not running its callbacks, and the presences sent meanwhile wait unread.
        """
        with self._lock:
            if self._ticked_s is not None:
                now_s = min(now_s, self._ticked_s + self._period_s)
            return {name: peer for name, peer in self._peers.items()
                    if now_s - peer.heard_s <= peer.lease_s}

    def prune(self, now_s: float, period_s: float) -> list[str]:
        """Forget the robots not heard within their lease; return their ids.

        Called every period_s [s]. A call that comes late shows that this process could not
        run for as long (a starved CPU): the presences sent meanwhile still wait to be read,
        so that time does not count as the peers' silence.
        """
        with self._lock:
            if self._ticked_s is not None and (late := now_s - self._ticked_s - period_s) > 0:
                self._peers = {name: replace(peer, heard_s=min(peer.heard_s + late, now_s))
                               for name, peer in self._peers.items()}
            self._ticked_s, self._period_s = now_s, period_s
            gone = [name for name, peer in self._peers.items()
                    if now_s - peer.heard_s > peer.lease_s]
            for name in gone:
                del self._peers[name]
            return gone


# Asking the fleet --------------------------------------------------------------------------

@dataclass(frozen=True)
class PeerAnswer:
    """One robot's answer to a fleet search; appearances are the caller's own objects."""

    robot_id: str
    code: int
    message: str
    appearances: tuple[Any, ...] = ()
    similarities: tuple[float, ...] = ()   # one per appearance
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class FleetOutcome:
    """The merged answer of a fleet search."""

    code: FleetCode
    message: str
    appearances: list[Any]            # every robot's, best similarity first
    answered: list[PeerAnswer]        # first answer first
    not_answered: list[str]           # expected robots that did not answer, sorted
    elapsed_s: float


class Gathering:
    """One fleet search of this robot: answers until every expected live robot answered.

    Not thread-safe by itself: the fleet node guards it with the condition it waits on.
    """

    def __init__(self, request_id: str, expected: Iterable[str], started_s: float) -> None:
        """Wait for the robots in expected (live when the request was sent)."""
        self.request_id = request_id
        self.expected = set(expected)
        self.started_s = started_s
        self.answers: dict[str, PeerAnswer] = {}

    def add(self, answer: PeerAnswer) -> bool:
        """Take a robot's first answer (also from a robot not expected); return if taken."""
        if answer.robot_id in self.answers:
            return False
        self.answers[answer.robot_id] = answer
        return True

    def awaited(self, live: Collection[str]) -> set[str]:
        """Return the expected robots still live that have not answered."""
        return {robot for robot in self.expected if robot in live} - set(self.answers)

    def outcome(self, now_s: float) -> FleetOutcome:
        """Return the merged outcome as it stands."""
        answered = list(self.answers.values())
        ranked = sorted(((similarity, answer.robot_id, number, appearance)
                         for answer in answered
                         for number, (appearance, similarity) in enumerate(
                             zip(answer.appearances, answer.similarities))),
                        key=lambda item: (-item[0], item[1], item[2]))
        not_answered = sorted(self.expected - set(self.answers))
        code = merged_code([answer.code for answer in answered])
        robots = sorted({robot for _, robot, _, _ in ranked})
        parts = [f'{len(ranked)} appearance(s)' + (f' on {", ".join(robots)}' if robots
                                                   else '')]
        parts.append(f'{len(answered)} robot(s) answered in {now_s - self.started_s:.2f} s'
                     + (' (' + ', '.join(f'{a.robot_id} {_code_name(a.code)}'
                                         for a in answered) + ')' if answered else ''))
        if not_answered:
            parts.append('not answered: ' + ', '.join(not_answered))
        return FleetOutcome(code, '; '.join(parts), [item[3] for item in ranked], answered,
                            not_answered, now_s - self.started_s)


def merged_code(codes: Sequence[int]) -> FleetCode:
    """Return the code of a fleet search from its answers' codes.

    OK when any robot found something; else NO_MATCH when any searched, NO_HISTORY when any
    had nothing stored; else the commonest refusal; NO_ANSWER without answers.
    """
    if not codes:
        return FleetCode.NO_ANSWER
    for code in (FleetCode.OK, FleetCode.NO_MATCH, FleetCode.NO_HISTORY):
        if code in codes:
            return code
    return FleetCode(Counter(codes).most_common(1)[0][0])


def _code_name(code: int) -> str:
    try:
        return FleetCode(code).name
    except ValueError:
        return f'code {code}'


class FleetAsks:
    """This robot's fleet searches in progress: answers arrive from any thread, askers wait.

    An asker opens a Gathering (expecting the robots live then), publishes its request and
    waits: until every expected robot still live has answered, or the deadline. A robot whose
    lease runs out meanwhile is not waited for; wake() makes waiting askers look again. This
    robot asks no faster than its peers answer (rate and burst, as RequestGate's), so that it
    is not refused, or ignored, by them.
    """

    def __init__(self, peers: PeerRoster, rate: float = DEFAULT_PEER_RATE,
                 burst: int = DEFAULT_PEER_BURST) -> None:
        """Know who is live from peers; ask at most rate times a second, burst at once."""
        self.peers = peers
        self._bucket = TokenBucket(rate, burst, time.monotonic())
        self._gatherings: dict[str, Gathering] = {}
        self._news = threading.Condition()

    def open(self, request_id: str, now_s: float) -> Gathering | None:
        """Start gathering answers to request_id from the robots live now; None: too fast."""
        with self._news:
            if not self._bucket.take(time.monotonic()):
                return None
            gathering = Gathering(request_id, self.peers.live(now_s), now_s)
            self._gatherings[request_id] = gathering
        return gathering

    def take(self, request_id: str, answer: PeerAnswer) -> bool:
        """Take an answer to one of the open gatherings; return whether it was new."""
        with self._news:
            gathering = self._gatherings.get(request_id)
            if gathering is None or not gathering.add(answer):
                return False
            self._news.notify_all()
            return True

    def awaits(self, data: bytes) -> bool:
        """Return whether serialized bytes may be an answer to an open gathering.

        Every robot's answer reaches every fleet node; all but the asker can skip decoding it.
        A request id is stored as its plain characters in the serialized answer.
        """
        with self._news:
            return any(request_id.encode() in data for request_id in self._gatherings)

    def wake(self) -> None:
        """Make the waiting askers check who is live again (a robot came or went)."""
        with self._news:
            self._news.notify_all()

    def wait(self, gathering: Gathering, deadline_s: float,
             clock: Callable[[], float] = time.monotonic) -> FleetOutcome:
        """Wait for the answers of a gathering; close it and return the merged outcome."""
        with self._news:
            while clock() < deadline_s and gathering.awaited(self.peers.live(clock())):
                self._news.wait(min(RECHECK_S, max(0.0, deadline_s - clock())))
            del self._gatherings[gathering.request_id]
            return gathering.outcome(clock())

    def close(self, gathering: Gathering) -> None:
        """Drop a gathering that will not be waited for."""
        with self._news:
            self._gatherings.pop(gathering.request_id, None)


def peer_query(embedding: Sequence[float], center_ns: int | None, window_s: float,
               min_similarity: float | None, max_results: int, thumbnails: bool, deep: bool,
               deep_budget_s: float, max_deep_budget_s: float) -> SearchQuery:
    """Return the query a peer's request asks of this robot, with this robot's caps applied.

    max_results is capped at MAX_PEER_RESULTS (0 asks for that many); deep mode runs only
    when max_deep_budget_s > 0, within it.
    """
    limit = MAX_PEER_RESULTS if max_results == 0 else min(max_results, MAX_PEER_RESULTS)
    deep = bool(deep) and max_deep_budget_s > 0
    budget = min(deep_budget_s, max_deep_budget_s) if deep else deep_budget_s
    return SearchQuery(kind=QueryKind.EMBEDDING, embedding=embedding, center_ns=center_ns,
                       window_s=window_s, min_similarity=min_similarity, max_results=limit,
                       thumbnails=thumbnails, deep=deep, deep_budget_s=budget)


def shrink_jpeg(data: bytes, width: int, quality: int = THUMBNAIL_QUALITY) -> bytes | None:
    """Return a JPEG scaled down to at most width pixels wide, or None if it does not decode."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None
    if image.shape[1] > width:
        height = max(1, round(image.shape[0] * width / image.shape[1]))
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return jpeg.tobytes() if ok else None


# Sharing identities ------------------------------------------------------------------------

@dataclass(frozen=True)
class PersonRecord:
    """One EmbeddingSync: a name enrolled with a face, or withdrawn."""

    person_id: str
    action: int                       # ENROLL or WITHDRAW
    stamp_ns: int                     # when enrolled or withdrawn [ns]
    robot_id: str                     # robot that did it
    embedding: tuple[float, ...] = field(default=(), repr=False)   # unit; may be empty
    embedding_model: str = ''
    quality: float = 0.0
    samples: int = 0

    @property
    def version(self) -> tuple[int, str, int]:
        """Order of two records of one name: the greater one wins."""
        return (self.stamp_ns, self.robot_id, self.action)

    def without_face(self) -> 'PersonRecord':
        """Return this record with no face (a withdrawal whose face is no longer needed)."""
        return replace(self, embedding=(), embedding_model='', quality=0.0, samples=0)


def check_record(record: PersonRecord, dim: int, now_ns: int | None,
                 max_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S) -> PersonRecord:
    """Return record with its embedding normalised, or raise FleetInputError saying why.

    A record stamped more than max_skew_s after now_ns is refused: it would win over every
    later change of its name (None: no such check, for records loaded from disk).
    """
    check_id('person_id', record.person_id, MAX_PERSON_ID_CHARS)
    check_id('robot_id', record.robot_id)
    if record.action not in (ENROLL, WITHDRAW):
        raise FleetInputError(f'unknown action {record.action!r}: 1 enrol, 2 withdraw')
    if record.stamp_ns <= 0:
        raise FleetInputError('the stamp is missing')
    if now_ns is not None and record.stamp_ns > now_ns + max_skew_s * _NS:
        raise FleetInputError(f'stamped {(record.stamp_ns - now_ns) / _NS:.0f} s in the future')
    if len(record.embedding_model) > MAX_ID_CHARS:
        raise FleetInputError('embedding_model is too long')
    if not (math.isfinite(record.quality) and 0 <= record.quality <= 1):
        raise FleetInputError(f'quality {record.quality} is outside [0, 1]')
    embedding: tuple[float, ...] = ()
    if len(record.embedding) or record.action == ENROLL:
        try:
            embedding = tuple(float(v) for v in check_embedding(record.embedding, dim))
        except SearchRefused as refusal:
            raise FleetInputError(str(refusal)) from None
    return PersonRecord(record.person_id, record.action, record.stamp_ns, record.robot_id,
                        embedding, record.embedding_model, float(record.quality),
                        max(0, int(record.samples)))


class RosterFull(Exception):
    """No room for another name: every place holds an enrolled person."""


class PeopleRoster:
    """Enrolled and withdrawn names, last writer wins per name; thread-safe.

    A withdrawal is kept (as a tombstone without a face) so that an enrolment stamped before
    it, arriving late, cannot bring the name back; when the roster is full the oldest
    tombstone makes room.
    """

    def __init__(self, capacity: int = DEFAULT_MAX_PEOPLE) -> None:
        """Hold at most capacity names."""
        self.capacity = capacity
        self._records: dict[str, PersonRecord] = {}
        self._lock = threading.Lock()

    def apply(self, record: PersonRecord) -> bool:
        """Take a checked record if it is newer than the name's; return whether it was.

        Raises RosterFull when the name is new and every place holds an enrolled person.
        """
        with self._lock:
            current = self._records.get(record.person_id)
            if current is not None and current.version >= record.version:
                return False
            if current is None and len(self._records) >= self.capacity:
                tombstones = [r for r in self._records.values() if r.action == WITHDRAW]
                if not tombstones:
                    raise RosterFull(f'the roster holds {self.capacity} enrolled people')
                del self._records[min(tombstones, key=lambda r: r.version).person_id]
            self._records[record.person_id] = record
            return True

    def drop_withdrawn_faces(self, before_ns: int) -> bool:
        """Drop the face of every withdrawal stamped before before_ns; return whether any."""
        with self._lock:
            old = [r for r in self._records.values()
                   if r.action == WITHDRAW and r.embedding and r.stamp_ns < before_ns]
            for record in old:
                self._records[record.person_id] = record.without_face()
            return bool(old)

    def get(self, name: str) -> PersonRecord | None:
        """Return the current record of a name, or None."""
        with self._lock:
            return self._records.get(name)

    def enrolled(self) -> list[PersonRecord]:
        """Return the enrolled people (no withdrawals), by name."""
        with self._lock:
            return sorted((r for r in self._records.values() if r.action == ENROLL),
                          key=lambda r: r.person_id)

    def records(self) -> list[PersonRecord]:
        """Return every record, enrolments and withdrawals, oldest first."""
        with self._lock:
            return sorted(self._records.values(), key=lambda r: r.version)

    def __len__(self) -> int:
        """Return the names held."""
        return len(self._records)

    def save(self, path: str | Path, forgets: Collection[PersonRecord] = ()) -> None:
        """Write the roster to path atomically: file 0600, folder 0700 (faces are personal).

        forgets: the withdrawals whose face this robot's history has still to forget.
        """
        path = Path(path)
        modes = FileModes()
        modes.make_folder(path.parent)
        text = json.dumps({'version': 1, 'people': [_as_json(r) for r in self.records()],
                           'forget_pending': [_as_json(r) for r in forgets]})
        replace_atomically(path, text.encode(), modes)

    def load(self, path: str | Path, dim: int) -> tuple[list[str], list[PersonRecord]]:
        """Take the records saved at path (none if it does not exist).

        Returns the problems met and the withdrawals still to be forgotten. A file that
        cannot be read as a roster raises FleetInputError; single unusable records are
        skipped and listed.
        """
        path = Path(path)
        if not path.exists():
            return [], []
        try:
            saved = json.loads(path.read_text())
            people, forgets = saved['people'], saved.get('forget_pending') or []
            if not isinstance(people, list) or not isinstance(forgets, list):
                raise TypeError('people and forget_pending must be lists')
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise FleetInputError(f'{path} is not a people roster: {error}') from None
        problems, pending = [], []
        for what, entries in (('', people), ('forget of ', forgets)):
            for number, entry in enumerate(entries):
                try:   # one damaged entry costs that entry only
                    record = check_record(PersonRecord(**entry), dim, None)
                    if what:
                        pending.append(record)
                    else:
                        self.apply(record)
                except (FleetInputError, RosterFull, TypeError) as error:
                    problems.append(f'{what}entry {number}: {error}')
        return problems, pending


def _as_json(record: PersonRecord) -> dict[str, Any]:
    """Return a record as the roster file holds it."""
    return {'person_id': record.person_id, 'action': record.action,
            'stamp_ns': record.stamp_ns, 'robot_id': record.robot_id,
            'embedding': list(record.embedding), 'embedding_model': record.embedding_model,
            'quality': record.quality, 'samples': record.samples}


def outbox_depth(capacity: int) -> int:
    """Return the samples a /fleet/people writer keeps for a roster of capacity names.

    Twice the roster: after each full publication, as many single changes go out alone.
    """
    return 2 * capacity


class Outbox:
    """Which records to publish so that a transient-local writer holds the whole roster.

    The writer keeps its last `depth` samples. A change is published alone while the samples
    since the last full publication fit, else every record again. A late joiner so receives
    the roster from any live robot, even when the robot that enrolled a person is gone.
    """

    def __init__(self, depth: int) -> None:
        """Plan for a writer history of depth samples (at least the roster's capacity)."""
        self.depth = depth
        self._held = depth + 1   # nothing published yet: the first change sends everything
        self._since_face = depth   # samples after the last withdrawal with a face (none yet)

    def publish(self, changed: PersonRecord | None,
                roster: PeopleRoster) -> list[PersonRecord]:
        """Return the records to publish after changed (None: everything, as at start)."""
        if changed is None or self._held + 1 > self.depth:
            everything = roster.records()
            self._held = 0
            return self._sent(everything)
        return self._sent([changed])

    def flush(self, roster: PeopleRoster) -> list[PersonRecord]:
        """Return the roster, repeated as needed to push withdrawn faces out of the writer.

        Whole at its end. Every sample of a withdrawal with a face is pushed out of the
        writer's history (those of faces just dropped among them) while the writer stays:
        deleting and creating DDS writers at run time is where DDS implementations have had
        their deadlocks.
        """
        everything = roster.records()
        if not everything:
            return []
        needed = max(self.depth - self._since_face, len(everything))
        self._held = 0
        return self._sent(everything * -(-needed // len(everything)))

    def _sent(self, records: list[PersonRecord]) -> list[PersonRecord]:
        """Count records as published; return them."""
        self._held += len(records)
        for record in records:
            self._since_face = (0 if record.action == WITHDRAW and record.embedding
                                else self._since_face + 1)
        return records


class EchoGuard:
    """Faces forgotten lately at the fleet's request: a local forgetting of one is an echo."""

    def __init__(self, window_s: float = ECHO_WINDOW_S,
                 min_similarity: float = DEFAULT_MIN_SIMILARITY, capacity: int = 256) -> None:
        """Take a face as the same as a withdrawn one at min_similarity, for window_s."""
        self.window_s, self.min_similarity, self.capacity = window_s, min_similarity, capacity
        self._faces: list[tuple[float, np.ndarray]] = []
        self._lock = threading.Lock()

    def remember(self, embedding: Sequence[float], now_s: float) -> None:
        """Note a unit face the fleet withdrew."""
        with self._lock:
            self._faces = [f for f in self._faces if now_s - f[0] <= self.window_s]
            self._faces.append((now_s, np.asarray(embedding, dtype=np.float32)))
            del self._faces[:-self.capacity]

    def is_echo(self, embedding: Sequence[float], now_s: float) -> bool:
        """Return whether a unit face is one the fleet withdrew within the window."""
        vector = np.asarray(embedding, dtype=np.float32)
        with self._lock:
            return any(now_s - at <= self.window_s
                       and float(face @ vector) >= self.min_similarity
                       for at, face in self._faces)


@dataclass(frozen=True)
class PeopleChange:
    """What a roster change asks of the node."""

    publish: list[PersonRecord] = field(default_factory=list)   # onto /fleet/people
    enrolled: list[PersonRecord] | None = None    # the new known_people, when they changed


class PeopleSync:
    """The roster of enrolled people as this robot shares it with the fleet; thread-safe.

    Changes come from this robot (enroll_person, or its history forgetting someone) and from
    the fleet. Each accepted change is saved (when a file is given) and says what to publish:
    the change, or the whole roster (Outbox), and the enrolled people when they changed.

    A withdrawal with a face from another robot also asks this robot's history to forget that
    face. Such forgets are kept (in the file too) until the history confirms one, so a face
    withdrawn while the history is down, still loading or failing is forgotten once it
    answers: next_forget() says what to ask, forget_answered() takes the answer. The local
    forgetting that follows is an echo, not sent to the fleet again.

    A withdrawal keeps its face for face_age_s after it was made, so that robots away at the
    time forget it when they come back; then only the name stays withdrawn (expire()). Past
    that age a history holds nothing recorded before the withdrawal anyway, if its max_age is
    no longer.
    """

    def __init__(self, robot_id: str, dim: int, capacity: int = DEFAULT_MAX_PEOPLE,
                 path: str | Path = '', max_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S,
                 face_age_s: float = DEFAULT_MAX_AGE_S) -> None:
        """Keep the roster of robot_id (saved at path, if any)."""
        self.robot_id, self.dim, self.path, self.max_skew_s = robot_id, dim, path, max_skew_s
        self.face_age_s = face_age_s
        self.roster = PeopleRoster(capacity)
        self.outbox = Outbox(outbox_depth(capacity))
        self.echoes = EchoGuard()
        self._lock = threading.RLock()
        self._owner: OwnerLock | None = None
        self.save_error: str | None = None   # why the last save failed, until one succeeds
        #: name -> (the withdrawal whose face the history is to forget, when to ask [s]).
        self._forgets: dict[str, tuple[PersonRecord, float]] = {}
        self._asked: tuple[str, float] | None = None   # (name, when) of the forget asked

    def start(self, now_ns: int) -> tuple[PeopleChange, list[str]]:
        """Load the saved roster at now_ns; return everything to publish and the problems met.

        A file that is not a roster is a problem, and the roster starts empty. The enrolled
        people are told only from a roster that holds something: an empty one would make the
        tracker drop the names it has until the fleet's roster arrives. From here to close()
        the file is this robot's alone: raises InUseError while another fleet node has it.
        """
        with self._lock:
            problems = []
            if self.path:
                path = Path(self.path)
                try:
                    FileModes().make_folder(path.parent)
                    self._owner = OwnerLock(path.with_name(path.name + '.lock'),
                                            f'the fleet node of {self.robot_id}')
                except OSError as error:   # read-only: changes are not saved either
                    problems.append(f'{path} is not locked against a second fleet node: {error}')
            try:
                loaded, forgets = (self.roster.load(self.path, self.dim) if self.path
                                   else ([], []))
            except FleetInputError as error:
                problems.append(f'{error}: starting with no enrolled people')
            else:
                problems += loaded
                self._forgets = {r.person_id: (r, -math.inf) for r in forgets}
                self._expire(now_ns)
            return (PeopleChange(self.outbox.publish(None, self.roster),
                                 self.roster.enrolled() if len(self.roster) else None),
                    problems)

    def _save(self) -> None:
        """Save the roster; a disk that refuses it is kept in save_error, the change goes on.

        The change still reaches the fleet and the tracker; retry_save() tries again.
        """
        try:
            self.roster.save(self.path, [record for record, _ in self._forgets.values()])
        except OSError as error:
            self.save_error = f'roster not saved to {self.path} ({error})'
        else:
            self.save_error = None

    @property
    def depth(self) -> int:
        """Return the samples a /fleet/people writer must keep to hold the whole roster."""
        return self.outbox.depth

    def enrolled_count(self) -> int:
        """Return how many names are enrolled (withdrawn ones not counted)."""
        with self._lock:
            return len(self.roster.enrolled())

    def embedding_of(self, name: str) -> tuple[float, ...] | None:
        """Return the face of an enrolled name, None for a name not enrolled (or withdrawn)."""
        with self._lock:
            record = self.roster.get(name)
        return record.embedding if record is not None and record.action == ENROLL else None

    def retry_save(self) -> str | None:
        """Save again after a failed save; return why saving still fails, or None."""
        with self._lock:
            if self.save_error is not None:
                self._save()
            return self.save_error

    def close(self) -> None:
        """Give the roster file up for the next fleet node (saved at every change already)."""
        with self._lock:
            if self._owner is not None:
                self._owner.release()
                self._owner = None

    def local(self, record: PersonRecord) -> PeopleChange:
        """Take this robot's own enrolment or withdrawal (raises FleetInputError, RosterFull)."""
        return self._apply(check_record(record, self.dim, None))

    def received(self, record: PersonRecord, now_ns: int, now_s: float) -> PeopleChange:
        """Take a record from the fleet (raises FleetInputError, RosterFull).

        A withdrawal with a face from another robot is also a forget to ask (next_forget).
        """
        record = check_record(record, self.dim, now_ns, self.max_skew_s)
        if record.action == WITHDRAW and record.stamp_ns < self._faces_from(now_ns):
            record = record.without_face()
        forget = (record.action == WITHDRAW and bool(record.embedding)
                  and record.robot_id != self.robot_id)
        return self._apply(record, forget_at_s=now_s if forget else None)

    def expire(self, now_ns: int) -> PeopleChange | None:
        """Drop the faces withdrawn more than face_age_s before now_ns, forgotten or not.

        Returns the roster repeated to push out of the writer the samples it keeps for late
        joiners, those with the faces too (Outbox.flush), or None when no record changed.
        """
        with self._lock:
            if not self._expire(now_ns):
                return None
            return PeopleChange(self.outbox.flush(self.roster))

    def _faces_from(self, now_ns: int) -> int:
        """Return the stamp before which a withdrawal keeps no face [ns]."""
        return now_ns - int(self.face_age_s * _NS)

    def _expire(self, now_ns: int) -> bool:
        """Drop old withdrawn faces (saving if any); return whether the roster changed."""
        before_ns = self._faces_from(now_ns)
        stale = [name for name, (record, _) in self._forgets.items()
                 if record.stamp_ns < before_ns]
        for name in stale:
            del self._forgets[name]
        changed = self.roster.drop_withdrawn_faces(before_ns)
        if (changed or stale) and self.path:
            self._save()
        return changed

    def forgets_pending(self) -> int:
        """Return how many withdrawn faces this robot's history has still to forget."""
        with self._lock:
            return len(self._forgets)

    def next_forget(self, now_s: float) -> PersonRecord | None:
        """Return the withdrawal whose face to ask this robot's history to forget now, or None.

        One at a time: None while one asked is unanswered for less than FORGET_ANSWER_S.
        """
        with self._lock:
            if self._asked is not None and now_s - self._asked[1] < FORGET_ANSWER_S:
                return None
            due = [(at, name) for name, (_, at) in self._forgets.items() if at <= now_s]
            if not due:
                self._asked = None
                return None
            record = self._forgets[min(due)[1]][0]
            self._asked = (record.person_id, now_s)
            self._forgets[record.person_id] = (record, now_s)   # after those never asked
            return record

    def forget_answered(self, record: PersonRecord, forgotten: bool, now_s: float) -> None:
        """Take the history's answer to the forget of record: done, or to ask again later."""
        with self._lock:
            if self._asked is not None and self._asked[0] == record.person_id:
                self._asked = None
            if self._forgets.get(record.person_id, (None,))[0] != record:
                return   # a newer withdrawal of the name came meanwhile: still to forget
            if forgotten:
                self.echoes.remember(record.embedding, now_s)
                del self._forgets[record.person_id]
                if self.path:
                    self._save()
            else:
                self._forgets[record.person_id] = (record, now_s + FORGET_RETRY_S)

    def forgotten(self, person_id: str, embedding: Sequence[float], stamp_ns: int,
                  now_s: float) -> PeopleChange | None:
        """Withdraw a person this robot forgot, on every robot; None when the fleet asked.

        stamp_ns: when the history forgot them [ns], which makes the withdrawal's version:
        the history's announcement, heard again (transient local) by a restarted fleet node,
        is then no news and withdraws nothing a second time. Raises FleetInputError for a
        zero stamp.
        """
        record = check_record(PersonRecord(person_id, WITHDRAW, stamp_ns, self.robot_id,
                                           tuple(embedding)), self.dim, None)
        if record.embedding and self._withdrawn_by_fleet(record.embedding, now_s):
            self._announced(record, now_s)
            return None
        return self._apply(record)

    def _announced(self, announced: PersonRecord, now_s: float) -> None:
        """Take the history's announcement of the forget it was asked as its answer.

        The history announces only a forget done, with the face it was asked to forget. Its
        reply can be lost: a history just started may not have met the caller's reply reader
        yet ("failed to send response"), and the forget would then wait FORGET_ANSWER_S to be
        asked again. Not an announcement of another face, however alike (a forget by a photo
        of the same person, one of another withdrawal), nor one made before the withdrawal
        (heard again by a restarted fleet node).
        """
        with self._lock:
            asked = self._forgets.get(self._asked[0]) if self._asked is not None else None
            if asked is None or announced.stamp_ns < asked[0].stamp_ns - int(
                    self.max_skew_s * _NS):
                return
            if float(np.asarray(asked[0].embedding, dtype=np.float32)
                     @ np.asarray(announced.embedding, dtype=np.float32)) >= SAME_FACE:
                self.forget_answered(asked[0], True, now_s)

    def _withdrawn_by_fleet(self, embedding: Sequence[float], now_s: float) -> bool:
        """Return whether a face is one the fleet withdrew and asked this robot to forget.

        Its forget waiting or asked, another robot's withdrawal still holding it (for
        face_age_s, also across restarts), or a forget answered lately (EchoGuard).
        """
        if self.echoes.is_echo(embedding, now_s):
            return True
        with self._lock:
            faces = [record.embedding for record, _ in self._forgets.values()] + [
                record.embedding for record in self.roster.records()
                if record.action == WITHDRAW and record.embedding
                and record.robot_id != self.robot_id]
        vector = np.asarray(embedding, dtype=np.float32)
        return any(float(np.asarray(face, dtype=np.float32) @ vector)
                   >= self.echoes.min_similarity for face in faces)

    def _apply(self, record: PersonRecord, forget_at_s: float | None = None) -> PeopleChange:
        """Apply a checked record; if it is news, save it (and a forget due at forget_at_s).

        forget_at_s: when to ask the history to forget the record's face [s, monotonic].
        """
        with self._lock:
            before = self.roster.enrolled()
            if not self.roster.apply(record):
                return PeopleChange()
            if forget_at_s is not None:
                self._forgets[record.person_id] = (record, forget_at_s)
            enrolled = self.roster.enrolled()
            if self.path:
                self._save()
            return PeopleChange(self.outbox.publish(record, self.roster),
                                enrolled if enrolled != before else None)
