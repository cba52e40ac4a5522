"""The fleet's rules without ROS: requests, queues, peers, merging, the roster of people."""

from collections import deque
import json
from pathlib import Path
import stat
import threading
import time

import cv2
import numpy as np
import pytest

from facetrack_ros.core.face import DlibResNetEmbedder, FaceAnalyzer, FaceDetector
from facetrack_ros.core.fleet import (Admission, check_enrolment, check_name, check_record,
                                      EchoGuard, ENROLL, FleetAsks, FleetCode, FleetInputError,
                                      FORGET_ANSWER_S, FORGET_RETRY_S, Gathering,
                                      HISTORY_PROBE_PERIOD_S, HistoryProbe, MAX_PEER_RESULTS,
                                      MAX_TIMEOUT_S, merged_code, Outbox, PeerAnswer,
                                      PeerRoster, PeerSearches, peer_query, PeopleRoster,
                                      PeopleSync, PersonRecord, RequestGate, RosterFull,
                                      search_timeout, SENT_STAMPS_KEPT, shrink_jpeg, TokenBucket,
                                      TWIN, Verdict, WITHDRAW, WorkQueue)
from facetrack_ros.core.history import SearchCode
from facetrack_ros.core.owner_lock import InUseError

S = 10 ** 9
NOW = 1_750_000_000 * S   # the robots' shared clock in these tests [ns]
DIM = 128


def unit(seed: int) -> np.ndarray:
    """Return a random unit vector of DIM values."""
    vector = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def query(**fields):
    """Return a valid peer query by embedding, with fields changed."""
    arguments = dict(embedding=unit(0), center_ns=None, window_s=3600.0, min_similarity=None,
                     max_results=10, thumbnails=False, deep=False, deep_budget_s=10.0,
                     max_deep_budget_s=0.0)
    return peer_query(**{**arguments, **fields})


def admit(gate: RequestGate, request_id: str = 'q1', origin: str = 'r2',
          deadline_ns: int = NOW + 5 * S, now_ns: int = NOW, now_s: float = 0.0,
          **fields) -> Admission:
    """Offer gate one request."""
    return gate.admit(request_id, origin, deadline_ns, query(**fields), DIM, now_ns, now_s)


def test_codes_extend_the_search_codes() -> None:
    """The first FleetCodes are the SearchCodes, name for name (.srv: in the node tests)."""
    for code in SearchCode:
        assert FleetCode[code.name] == code
    assert [int(code) for code in FleetCode] == list(range(10))


def test_gate_answers_once_and_ignores_own_replayed_expired_and_anonymous_requests() -> None:
    """Each request id is answered once; own, replayed, expired and id-less ones get nothing."""
    gate = RequestGate('r1')
    assert admit(gate) == Admission(Verdict.ANSWER)
    replay = admit(gate, now_ns=NOW + S)
    assert replay.verdict is Verdict.IGNORE and 'replayed' in replay.reason
    assert admit(gate, 'q2', origin='r1').verdict is Verdict.IGNORE
    expired = admit(gate, 'q3', deadline_ns=NOW - 10 * S)
    assert expired.verdict is Verdict.IGNORE and 'expired' in expired.reason
    # Within the clock skew a deadline just passed still counts.
    assert admit(gate, 'q4', deadline_ns=NOW - S).verdict is Verdict.ANSWER
    for request_id, origin in (('', 'r2'), ('q5', ''), ('x' * 65, 'r2'), ('q6', 'r2\n'),
                               (None, 'r2'), ('q7', 7)):
        assert admit(gate, request_id, origin).verdict is Verdict.IGNORE, (request_id, origin)
    # Long after its deadline, a replay is forgotten as a replay but refused as expired.
    late = admit(gate, 'q1', now_ns=NOW + 100 * S)
    assert late.verdict is Verdict.IGNORE and 'expired' in late.reason
    assert gate.counts['answer'] == 2 and gate.counts['replayed'] == 1


def test_gate_refuses_bad_queries_and_far_deadlines_by_field() -> None:
    """A request the search would refuse is INVALID_REQUEST, naming what is wrong."""
    gate = RequestGate('r1', burst=100)
    cases = {
        'embedding': dict(embedding=[0.1] * 5),
        'NaN': dict(embedding=[float('nan')] * DIM),
        'window': dict(window_s=float('nan')),
        'min_similarity': dict(min_similarity=2.0),
        'center': dict(center_ns=-5),
    }
    for number, (words, fields) in enumerate(cases.items()):
        refusal = admit(gate, f'bad{number}', **fields)
        assert refusal.verdict is Verdict.REFUSE, words
        assert refusal.code == FleetCode.INVALID_REQUEST and words in refusal.reason, refusal
    far = admit(gate, 'far', deadline_ns=NOW + int((MAX_TIMEOUT_S + 10) * S))
    assert far.code == FleetCode.INVALID_REQUEST and 'deadline' in far.reason


def test_peer_query_caps_results_and_deep_mode() -> None:
    """A peer gets at most MAX_PEER_RESULTS, and deep mode only within this robot's cap."""
    assert query(max_results=0).max_results == MAX_PEER_RESULTS
    assert query(max_results=10 ** 6).max_results == MAX_PEER_RESULTS
    assert query(max_results=3).max_results == 3
    assert not query(deep=True, deep_budget_s=30.0).deep
    capped = query(deep=True, deep_budget_s=30.0, max_deep_budget_s=5.0)
    assert capped.deep and capped.deep_budget_s == 5.0


def test_gate_limits_each_askers_rate_and_its_own_refusals() -> None:
    """Beyond its burst an asker is refused, a burst of refusals at most, then ignored.

    Tokens come back at the rate; other askers are not affected.
    """
    gate = RequestGate('r1', rate=2.0, burst=3)
    verdicts = [admit(gate, f'a{k}', now_s=0.0) for k in range(10)]
    assert [v.verdict for v in verdicts] == ([Verdict.ANSWER] * 3 + [Verdict.REFUSE] * 3
                                             + [Verdict.IGNORE] * 4)
    assert {v.code for v in verdicts[3:6]} == {FleetCode.RATE_LIMITED}
    assert admit(gate, 'b0', origin='r3', now_s=0.0).verdict is Verdict.ANSWER
    assert admit(gate, 'a10', now_s=0.6).verdict is Verdict.ANSWER   # 1.2 tokens back
    assert admit(gate, 'a11', now_s=0.6).verdict is not Verdict.ANSWER
    bucket = TokenBucket(2.0, 3, 0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(10.0) and bucket._tokens <= 3   # never more than the burst


def test_gate_is_busy_when_its_replay_memory_is_full() -> None:
    """Ids are remembered until their deadline; a full memory refuses rather than forgets."""
    gate = RequestGate('r1', burst=100, replay_capacity=3)
    assert all(admit(gate, f'q{k}').verdict is Verdict.ANSWER for k in range(3))
    assert admit(gate, 'q3').code == FleetCode.BUSY
    assert admit(gate, 'q4', now_ns=NOW + 10 * S, deadline_ns=NOW + 15 * S).verdict \
        is Verdict.ANSWER   # the first three are forgotten: past their deadlines


def test_work_queue_and_peer_searches_bound_and_give_up() -> None:
    """At most capacity wait and concurrency run; late ones are dropped or given up."""
    queue = WorkQueue(capacity=2, concurrency=1)
    assert queue.offer('a', NOW + S) and queue.offer('b', NOW - S) and not queue.offer('c', 0)
    assert queue.start_next(NOW) == 'a' and queue.start_next(NOW) is None   # one at a time
    queue.finish()
    assert queue.start_next(NOW) is None and queue.expired == 1 and len(queue) == 0

    searches = PeerSearches(RequestGate('r1', burst=100), queue_size=1)
    assert searches.receive('m1', 'q1', 'r2', NOW + 5 * S, query(), DIM, NOW, 0.0).verdict \
        is Verdict.ANSWER
    busy = searches.receive('m2', 'q2', 'r2', NOW + 5 * S, query(), DIM, NOW, 0.0)
    assert busy.verdict is Verdict.REFUSE and busy.code == FleetCode.BUSY
    request, _, deadline = searches.next(NOW)
    handle = object()
    searches.started(handle, request, deadline)
    assert searches.overdue(NOW + S) == [] and searches.overdue(NOW + 6 * S) == [handle]
    assert searches.finished(handle) is None   # given up: its late answer is dropped
    searches.receive('m3', 'q3', 'r2', NOW + 5 * S, query(), DIM, NOW, 0.0)
    other = object()
    request, _, deadline = searches.next(NOW)
    searches.started(other, request, deadline)
    assert searches.finished(other) == 'm3' and searches.next(NOW) is None
    assert searches.values()['queued / given up'] == '0 / 0'
    assert searches.values()['peer requests'].count(' ') == 1   # one outcome: "<name> 3"


def test_peer_roster_liveness_by_lease() -> None:
    """A robot is live while heard within its lease; leaving or silence removes it."""
    roster = PeerRoster('r1')
    heard = dict(cameras=['front'], history_available=True, history_span_ns=(1, 2),
                 lease_s=3.0, leaving=False, known_people=0, stamp_ns=NOW)
    assert roster.heard('r2', now_s=0.0, **heard) == 'joined'
    assert roster.heard('r2', now_s=1.0, **heard) is None
    roster.announced(NOW)
    assert roster.heard('r1', now_s=0.0, **heard) is None and 'r1' not in roster.live(0.0)
    assert roster.heard('r3', now_s=0.0, **{**heard, 'lease_s': 1e9}) == 'joined'
    assert roster.live(3.9).keys() == {'r2', 'r3'}
    assert roster.live(4.1).keys() == {'r3'}   # r2's 3 s ran out
    assert roster.live(60.1) == {}   # r3: clipped to 60 s
    assert roster.prune(4.1, 1.0) == ['r2']
    assert roster.heard('r3', now_s=61.0, **{**heard, 'leaving': True}) == 'left'
    for bad in (dict(robot_id=''), dict(robot_id='r 4 '), dict(cameras=['x'] * 17),
                dict(cameras=[''])):
        with pytest.raises(FleetInputError):
            roster.heard(**{'robot_id': 'r4', **heard, **bad, 'now_s': 0.0})
    assert PeerRoster('r1', max_peers=1).heard('r2', now_s=0.0, **heard) == 'joined'


def test_a_robot_that_could_not_run_does_not_count_its_own_stall_as_peers_silence() -> None:
    """Prune comes every second; one 2.5 s late (a starved CPU) excuses the peers as long.

    So does an asker's thread that looks while the prune is overdue.

    The presences sent meanwhile wait unread in DDS: without the excuse r2 would be gone at
    the late prune and join again at once when its waiting presence is read (a flap).
    """
    roster = PeerRoster('r1')
    heard = dict(cameras=['front'], history_available=True, history_span_ns=(1, 2),
                 lease_s=3.0, leaving=False, known_people=0, stamp_ns=NOW)
    assert roster.heard('r2', now_s=1.0, **heard) == 'joined'
    assert roster.prune(1.0, 1.0) == [] and roster.prune(2.0, 1.0) == []
    assert 'r2' in roster.live(5.5), 'an asker looking before the late prune excuses it too'
    assert roster.prune(5.5, 1.0) == [] and 'r2' in roster.live(5.5), 'silent 4.5 s, 2.5 late'
    assert roster.prune(6.5, 1.0) == [] and 'r2' in roster.live(6.5)
    assert roster.prune(7.5, 1.0) == ['r2'], 'silent for its lease beyond the stall: gone'
    assert roster.heard('r3', now_s=8.0, **heard) == 'joined'
    # Heard 0.5 s before the prune due at 8.5, which came at 30.0: that 0.5 s counts.
    assert roster.prune(30.0, 1.0) == [] and 'r3' in roster.live(30.0)
    assert [roster.prune(t, 1.0) for t in (31.0, 32.0, 32.6)] == [[], [], ['r3']]


def test_a_twin_under_this_robots_id_is_told_from_its_own_presence() -> None:
    """Another robot with this robot's id (a copied configuration) is noticed within a lease.

    This robot's own presences come back to it: their stamps are the ones it sent.
    """
    roster = PeerRoster('r1')
    own = dict(cameras=['front'], history_available=True, history_span_ns=(1, 2),
               lease_s=3.0, leaving=False, known_people=0)
    for k in range(SENT_STAMPS_KEPT):
        roster.announced(NOW + k * S)
    assert roster.heard('r1', stamp_ns=NOW, now_s=0.0, **own) is None
    assert roster.heard('r1', stamp_ns=NOW + 5 * S, now_s=0.0, **own) is None
    assert not roster.twin_heard(0.0)
    assert roster.heard('r1', stamp_ns=NOW + 7, now_s=10.0, **own) == TWIN
    assert roster.twin_heard(13.0) and not roster.twin_heard(13.1), 'for its lease'
    assert 'r1' not in roster.live(10.0), 'a twin is no peer'
    assert roster.heard('r1', stamp_ns=NOW + 8, now_s=20.0, **{**own, 'leaving': True}) is None


def answer(robot: str, code: int, *similarities: float) -> PeerAnswer:
    """Return an answer whose appearances are (robot, similarity) pairs."""
    return PeerAnswer(robot, code, 'msg', tuple((robot, s) for s in similarities), similarities)


def test_gathering_merges_best_first_and_lists_who_did_not_answer() -> None:
    """Appearances of every robot are merged by similarity; each robot counts once."""
    gathering = Gathering('q', ['r2', 'r3', 'r4'], started_s=10.0)
    assert gathering.add(answer('r1', FleetCode.NO_MATCH))
    assert gathering.add(answer('r2', FleetCode.OK, 0.95, 0.93))
    assert not gathering.add(answer('r2', FleetCode.OK, 0.99))   # a second answer
    assert gathering.add(answer('r3', FleetCode.OK, 0.97))
    assert gathering.awaited({'r2', 'r3', 'r4'}) == {'r4'} and not gathering.awaited({'r2'})
    outcome = gathering.outcome(12.5)
    assert outcome.code == FleetCode.OK and outcome.elapsed_s == 2.5
    assert outcome.appearances == [('r3', 0.97), ('r2', 0.95), ('r2', 0.93)]
    assert [a.robot_id for a in outcome.answered] == ['r1', 'r2', 'r3']
    assert outcome.not_answered == ['r4'] and 'not answered: r4' in outcome.message
    assert 'r2 OK' in outcome.message and 'r1 NO_MATCH' in outcome.message


def test_merged_code() -> None:
    """Found beats searched beats empty beats refused; nothing is NO_ANSWER."""
    assert merged_code([]) == FleetCode.NO_ANSWER
    assert merged_code([FleetCode.NO_MATCH, FleetCode.OK]) == FleetCode.OK
    assert merged_code([FleetCode.NO_HISTORY, FleetCode.NO_MATCH]) == FleetCode.NO_MATCH
    assert merged_code([FleetCode.ERROR, FleetCode.NO_HISTORY]) == FleetCode.NO_HISTORY
    assert merged_code([FleetCode.RATE_LIMITED, FleetCode.RATE_LIMITED,
                        FleetCode.ERROR]) == FleetCode.RATE_LIMITED


def test_fleet_asks_waits_for_live_robots_only() -> None:
    """An asker returns as soon as every live robot answered, or when one's lease runs out."""
    roster = PeerRoster('r1')
    asks = FleetAsks(roster)
    for robot in ('r2', 'r3'):
        roster.heard(robot, [], True, (0, 0), 0.5, False, 0, NOW, time.monotonic())
    gathering = asks.open('q', time.monotonic())
    threading.Timer(0.1, asks.take, ('q', answer('r2', FleetCode.OK, 0.95))).start()
    threading.Timer(0.2, asks.take, ('q', answer('r3', FleetCode.NO_MATCH))).start()
    began = time.monotonic()
    outcome = asks.wait(gathering, began + 10.0)
    assert time.monotonic() - began < 2.0 and not outcome.not_answered
    assert not asks.take('q', answer('r4', FleetCode.OK))   # closed

    roster.heard('r2', [], True, (0, 0), 0.5, False, 0, NOW, time.monotonic())   # r3 falls silent
    gathering = asks.open('q2', time.monotonic())
    asks.take('q2', answer('r2', FleetCode.OK, 0.9))
    began = time.monotonic()
    outcome = asks.wait(gathering, began + 10.0)
    assert 0.2 < time.monotonic() - began < 2.0   # r3's half-second lease, not 10 s
    assert outcome.not_answered == ['r3'] and outcome.code == FleetCode.OK


def record(name: str, action: int = ENROLL, stamp_s: float = 0, robot: str = 'r1',
           seed: int = 1) -> PersonRecord:
    """Return a checked record of name, stamped stamp_s after NOW."""
    embedding = tuple(unit(seed)) if action == ENROLL else ()
    return check_record(PersonRecord(name, action, NOW + int(stamp_s * S), robot, embedding),
                        DIM, None)


def test_enrolments_and_timeouts_are_checked() -> None:
    """An enrolment takes one face source, a withdrawal none; a timeout fits (0, MAX]."""
    assert check_enrolment('Ada', False, [True, False, False]) == 'Ada'
    assert check_enrolment('Ada', True, [False, False, False]) == 'Ada'
    for name, withdraw, sources, reason in [
            ('Ada', False, [False, False, False], 'exactly one'),
            ('Ada', False, [True, False, True], 'exactly one'),
            ('Ada', True, [False, True, False], 'name only'),
            ('Ada/2', False, [True, False, False], 'may hold only')]:
        with pytest.raises(FleetInputError, match=reason):
            check_enrolment(name, withdraw, sources)
    assert search_timeout(0.0, 5.0) == 5.0
    assert search_timeout(2.5, 5.0) == 2.5
    for requested in (-1.0, MAX_TIMEOUT_S + 1, float('nan'), float('inf')):
        with pytest.raises(FleetInputError, match='outside'):
            search_timeout(requested, 5.0)


def test_history_probe_asks_until_answered_then_now_and_then() -> None:
    """The own history is asked at every presence until it answers, then once a period."""
    probe = HistoryProbe()
    assert probe.due(100.0) and probe.due(100.5)   # asked at every presence until it answers
    probe.answered(True, (1 * S, 2 * S))
    assert (probe.available, probe.span_ns) == (True, (1 * S, 2 * S))
    assert not probe.due(101.0)
    assert probe.due(100.5 + HISTORY_PROBE_PERIOD_S)
    probe.answered(False, None)   # gone: the span it held stays, asked again at once
    assert (probe.available, probe.span_ns) == (False, (1 * S, 2 * S))
    assert probe.due(100.6 + HISTORY_PROBE_PERIOD_S)


def test_roster_last_writer_wins_and_tombstones_hold() -> None:
    """The newest record of a name wins (stamp, robot, withdrawal); late stale ones lose."""
    roster = PeopleRoster()
    assert roster.apply(record('alice', stamp_s=1))
    assert not roster.apply(record('alice', stamp_s=0, seed=2))         # older
    assert roster.apply(record('alice', stamp_s=1, robot='r2', seed=3))  # same stamp, r2 > r1
    assert roster.get('alice').robot_id == 'r2'
    assert roster.apply(record('alice', WITHDRAW, stamp_s=1, robot='r2'))  # withdrawal wins a tie
    assert not roster.apply(record('alice', stamp_s=0.5, seed=4))       # stale: stays withdrawn
    assert roster.enrolled() == [] and len(roster) == 1
    assert roster.apply(record('alice', stamp_s=2, seed=5))             # enrolled again, later
    assert [r.person_id for r in roster.enrolled()] == ['alice']


def test_roster_capacity_evicts_the_oldest_tombstone_only() -> None:
    """When full, the oldest withdrawal makes room; a roster of enrolled people is full."""
    roster = PeopleRoster(capacity=2)
    roster.apply(record('a', WITHDRAW, stamp_s=1))
    roster.apply(record('b', stamp_s=2))
    assert roster.apply(record('c', stamp_s=3))
    assert {r.person_id for r in roster.records()} == {'b', 'c'}
    with pytest.raises(RosterFull):
        roster.apply(record('d', stamp_s=4))


def test_records_are_checked() -> None:
    """Names, stamps (none from the future), actions, embeddings and quality are checked."""
    good = PersonRecord('alice', ENROLL, NOW, 'r1', tuple(unit(1) * 3))
    np.testing.assert_allclose(np.linalg.norm(check_record(good, DIM, NOW).embedding), 1,
                               rtol=1e-5)
    assert check_record(PersonRecord('alice', WITHDRAW, NOW, 'r1'), DIM, NOW).embedding == ()
    bad = {
        'future': dict(stamp_ns=NOW + 60 * S), 'stamp': dict(stamp_ns=0),
        'action': dict(action=3), 'embedding': dict(embedding=(1.0, 2.0)),
        'quality': dict(quality=float('nan')), 'robot_id': dict(robot_id=''),
        'person_id': dict(person_id='x' * 300),
    }
    for words, fields in bad.items():
        with pytest.raises(FleetInputError, match=words):
            check_record(PersonRecord(**{**good.__dict__, **fields}), DIM, NOW)
    assert check_name('Ada Lovelace-2') == 'Ada Lovelace-2'
    for name in ('', ' ada', 'a/b', 'a' * 65, 'ada\n'):
        with pytest.raises(FleetInputError):
            check_name(name)


def test_roster_file_is_private_and_round_trips(tmp_path: Path) -> None:
    """The roster saves to a 0600 file in a 0700 folder and loads back; junk is reported."""
    roster = PeopleRoster()
    roster.apply(record('alice', stamp_s=1))
    roster.apply(record('bob', WITHDRAW, stamp_s=2))
    path = tmp_path / 'fleet' / 'people.json'
    roster.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = PeopleRoster()
    assert again.load(path, DIM) == ([], []) and again.records() == roster.records()
    assert PeopleRoster().load(tmp_path / 'missing.json', DIM) == ([], [])
    path.write_text('{"people": [{"person_id": "x", "action": 9, "stamp_ns": 1, '
                    '"robot_id": "r1"}]}')
    assert 'unknown action' in PeopleRoster().load(path, DIM)[0][0]
    path.write_text('not json')
    with pytest.raises(FleetInputError):
        PeopleRoster().load(path, DIM)


def test_outbox_keeps_the_whole_roster_in_a_bounded_writer_history() -> None:
    """Whatever changes come, the last `depth` samples published hold every current record."""
    rng = np.random.default_rng(3)
    roster, depth = PeopleRoster(capacity=20), 40
    outbox = Outbox(depth)
    history: deque[PersonRecord] = deque(maxlen=depth)   # a KEEP_LAST writer's history
    history.extend(outbox.publish(None, roster))
    full = 0
    for step in range(500):
        change = record(f'p{rng.integers(20)}', int(rng.choice([ENROLL, WITHDRAW])),
                        stamp_s=step, seed=step)
        if roster.apply(change):
            published = outbox.publish(change, roster)
            full += len(published) > 1
            history.extend(published)
        assert set(roster.records()) <= set(history), step
    assert 0 < full < 50   # full republications happen, but rarely


def test_outbox_flush_pushes_out_withdrawn_faces_sending_no_more_than_that_takes() -> None:
    """After a flush the writer's history holds no withdrawn face, and the roster whole.

    It sends what pushes the last sample with a withdrawn face out (the roster at least):
    with none left, the roster once.
    """
    roster, depth = PeopleRoster(capacity=5), 10
    outbox = Outbox(depth)
    history: deque[PersonRecord] = deque(maxlen=depth)   # a KEEP_LAST writer's history
    gone = check_record(PersonRecord('p0', WITHDRAW, NOW, 'r1', tuple(unit(3))), DIM, None)
    for change in (record('p1'), gone, record('p2', seed=2), record('p3', seed=4)):
        roster.apply(change)
        history.extend(outbox.publish(change, roster))
    assert any(r.embedding for r in history if r.action == WITHDRAW)
    roster.drop_withdrawn_faces(NOW + 1)
    flushed = outbox.flush(roster)
    history.extend(flushed)
    assert not any(r.embedding for r in history if r.action == WITHDRAW)
    assert set(list(history)[-4:]) == set(roster.records())
    assert len(flushed) == 8   # 10 - 2 samples after the face, in whole rosters of 4
    assert outbox.flush(roster) == roster.records()


@pytest.fixture(scope='module')
def faces(shared_dir: Path) -> dict[str, np.ndarray]:
    """Return real face embeddings of labelled photos by file name."""
    analyzer = FaceAnalyzer(FaceDetector('hog'), DlibResNetEmbedder())
    return {name: analyzer.largest_face(cv2.imread(str(shared_dir / 'data' / 'faces' / name)))
            .embedding for name in ('obama.jpg', 'obama2.jpg', 'biden.jpg')}


def test_echo_guard_knows_a_withdrawn_face_for_a_while(faces) -> None:
    """Another photo of a withdrawn person is an echo within the window; others are not."""
    guard = EchoGuard(window_s=60.0)
    guard.remember(faces['obama.jpg'], 0.0)
    assert guard.is_echo(faces['obama2.jpg'], 10.0)
    assert not guard.is_echo(faces['biden.jpg'], 10.0)
    assert not guard.is_echo(faces['obama2.jpg'], 61.0)


def test_people_sync_shares_withdraws_and_does_not_echo(tmp_path: Path, faces) -> None:
    """A withdrawal with a face from another robot asks to forget it; its echo stays home."""
    sync = PeopleSync('r1', DIM, path=tmp_path / 'people.json')
    change, problems = sync.start(NOW)
    assert change.publish == [] and change.enrolled is None and problems == []
    obama = tuple(faces['obama.jpg'])
    enrolled = sync.local(PersonRecord('barack', ENROLL, NOW, 'r1', obama))
    assert [r.person_id for r in enrolled.publish] == ['barack']
    assert [r.person_id for r in enrolled.enrolled] == ['barack']
    assert sync.enrolled_count() == 1
    np.testing.assert_allclose(sync.embedding_of('barack'), obama, atol=1e-6)
    assert sync.embedding_of('joe') is None
    assert sync.received(enrolled.publish[0], NOW, 0.0).publish == []   # its own, back
    withdrawal = PersonRecord('barack', WITHDRAW, NOW + S, 'r2', obama)
    change = sync.received(withdrawal, NOW + S, 0.0)
    assert change.enrolled == [] and sync.forgets_pending() == 1
    assert sync.enrolled_count() == 0 and sync.embedding_of('barack') is None   # withdrawn
    asked = sync.next_forget(0.5)
    assert asked.person_id == 'barack'
    sync.forget_answered(asked, True, 0.6)
    assert sync.forgotten('person-4', faces['obama2.jpg'], NOW + 2 * S, 1.0) is None   # echo
    other = sync.forgotten('person-7', faces['biden.jpg'], NOW + 2 * S, 1.0)
    assert other.publish[0].action == WITHDRAW and other.publish[0].robot_id == 'r1'
    # The history's announcement heard again (a restarted fleet node) is no news.
    assert sync.forgotten('person-7', faces['biden.jpg'], NOW + 2 * S, 700.0).publish == []
    with pytest.raises(FleetInputError, match='stamp is missing'):
        sync.forgotten('person-8', faces['biden.jpg'], 0, 700.0)
    assert other.enrolled is None   # person-7 was never enrolled
    with pytest.raises(InUseError, match='people.json.lock is held by the fleet node of r1'):
        PeopleSync('r2', DIM, path=tmp_path / 'people.json').start(NOW)
    sync.close()
    restarted = PeopleSync('r1', DIM, path=tmp_path / 'people.json')
    change, _ = restarted.start(NOW)
    restarted.close()
    assert {r.person_id for r in change.publish} == {'barack', 'person-7'}
    assert change.enrolled == []
    (tmp_path / 'bad.json').write_text('[')
    _, problems = PeopleSync('r1', DIM, path=tmp_path / 'bad.json').start(NOW)
    assert 'starting with no enrolled people' in problems[0]


def test_the_historys_announcement_answers_the_forget_asked(faces) -> None:
    """The history announces a forget it did; its reply may never come (lost at its start).

    The announcement of the face asked is then the answer, not FORGET_ANSWER_S later; one
    of a face waiting to be asked, or of another face, answers nothing.
    """
    sync = PeopleSync('r1', DIM)
    sync.start(NOW)
    sync.received(PersonRecord('barack', WITHDRAW, NOW, 'r2', tuple(faces['obama.jpg'])),
                  NOW, 10.0)
    sync.received(PersonRecord('joe', WITHDRAW, NOW, 'r3', tuple(faces['biden.jpg'])),
                  NOW, 20.0)
    asked = sync.next_forget(10.0)
    assert asked.person_id == 'barack'
    assert sync.forgotten('r1-000003', faces['biden.jpg'], NOW + S, 11.0) is None   # joe's
    # Barack by another photo (a forget by image), and his face forgotten before he was
    # withdrawn (heard again after a restart): neither is the forget asked.
    assert sync.forgotten('r1-000004', faces['obama2.jpg'], NOW + S, 11.0) is None
    assert sync.forgotten('r1-000005', asked.embedding, NOW - 3600 * S, 11.0) is None
    assert sync.forgets_pending() == 2 and sync.next_forget(20.0) is None
    # What the history announces: the face it was asked to forget, and only once done.
    assert sync.forgotten('r1-000001', asked.embedding, NOW + S, 12.0) is None
    assert sync.forgets_pending() == 1 and sync.next_forget(20.0).person_id == 'joe'
    sync.forget_answered(asked, False, 13.0)   # the reply, late after all: barack is done
    assert sync.forgets_pending() == 1
    sync.close()


def test_a_withdrawn_face_is_asked_until_the_history_forgets_it(tmp_path, faces) -> None:
    """A withdrawal's face stays to forget, across restarts, until the history confirms it.

    One forget at a time; a failed one is asked again after FORGET_RETRY_S, an unanswered
    one after FORGET_ANSWER_S; a withdrawal of this robot's own, or without a face, asks
    nothing of its history.
    """
    sync = PeopleSync('r1', DIM, path=tmp_path / 'people.json')
    sync.start(NOW)
    obama = PersonRecord('barack', WITHDRAW, NOW, 'r2', tuple(faces['obama.jpg']))
    biden = PersonRecord('joe', WITHDRAW, NOW, 'r3', tuple(faces['biden.jpg']))
    sync.received(obama, NOW, 10.0)
    sync.received(PersonRecord('nameless', WITHDRAW, NOW, 'r2'), NOW, 10.0)
    sync.local(PersonRecord('own', WITHDRAW, NOW, 'r1', tuple(faces['obama2.jpg'])))
    assert sync.forgets_pending() == 1 and sync.next_forget(9.0) is None   # not due yet
    asked = sync.next_forget(10.0)
    assert asked.person_id == 'barack' and asked.robot_id == 'r2'
    sync.received(biden, NOW, 11.0)
    assert sync.next_forget(11.0) is None   # barack's forget is not answered yet
    sync.forget_answered(asked, False, 12.0)   # the history failed: barack waits
    assert sync.next_forget(12.0).person_id == 'joe'
    assert sync.next_forget(12.0 + FORGET_RETRY_S) is None   # joe's is not answered yet
    sync.close()

    restarted = PeopleSync('r1', DIM, path=tmp_path / 'people.json')   # both still pending
    assert restarted.start(NOW)[1] == [] and restarted.forgets_pending() == 2
    first = restarted.next_forget(0.0)
    assert restarted.next_forget(FORGET_ANSWER_S - 1) is None
    second = restarted.next_forget(FORGET_ANSWER_S)   # the first was never answered
    assert {first.person_id, second.person_id} == {'barack', 'joe'}
    restarted.forget_answered(first, True, FORGET_ANSWER_S)   # a late answer still counts
    restarted.forget_answered(second, True, FORGET_ANSWER_S)
    assert restarted.forgets_pending() == 0
    assert restarted.next_forget(FORGET_ANSWER_S + FORGET_RETRY_S) is None
    # Its own forgetting of the face it was asked to forget is an echo; a new face is not.
    assert restarted.forgotten('person-3', faces['obama2.jpg'], NOW + S,
                               FORGET_ANSWER_S + 1) is None
    restarted.close()
    # Restarted again, it hears the history's announcements again (transient local): the
    # faces r2 and r3 withdrew are still theirs, not news from r1.
    again = PeopleSync('r1', DIM, path=tmp_path / 'people.json')
    roster = {r.person_id for r in again.start(NOW)[0].publish}
    assert roster == {'barack', 'joe', 'nameless', 'own'}
    assert again.forgotten('r1-000003', faces['obama2.jpg'], NOW + S, 0.0) is None
    assert again.forgotten('r1-000004', faces['biden.jpg'], NOW + S, 0.0) is None
    again.close()


def test_a_damaged_roster_entry_costs_that_entry_only(tmp_path: Path, faces) -> None:
    """An unreadable record or forget in people_file is a problem; the others load."""
    sync = PeopleSync('r1', DIM, path=tmp_path / 'people.json')
    sync.start(NOW)
    sync.local(PersonRecord('ada', ENROLL, NOW, 'r1', tuple(faces['biden.jpg'])))
    sync.received(PersonRecord('barack', WITHDRAW, NOW, 'r2', tuple(faces['obama.jpg'])),
                  NOW, 0.0)
    sync.close()
    saved = json.loads((tmp_path / 'people.json').read_text())
    saved['people'].append({'person_id': 'cy'})   # no action, stamp or robot
    saved['forget_pending'].insert(0, {'person_id': 'dee', 'action': 2, 'stamp_ns': NOW,
                                       'robot_id': 'r2', 'embedding': [float('nan')] * DIM})
    (tmp_path / 'people.json').write_text(json.dumps(saved))
    restarted = PeopleSync('r1', DIM, path=tmp_path / 'people.json')
    change, problems = restarted.start(NOW)
    restarted.close()
    assert {r.person_id for r in change.publish} == {'ada', 'barack'}
    assert restarted.forgets_pending() == 1 and len(problems) == 2
    assert problems[0].startswith('entry 2:') and problems[1].startswith('forget of entry 0:')


def test_a_withdrawn_face_is_kept_for_its_age_only(tmp_path: Path, faces) -> None:
    """After face_age_s, a withdrawal keeps the name only: in the roster, file and forgets.

    A withdrawal that arrives older than that asks nothing; one in time is still forgotten.
    Enrolled faces are never dropped. What the /fleet/people writer keeps for late joiners
    (a KEEP_LAST history of the samples published) loses the face too.
    """
    day = 24 * 3600
    path = tmp_path / 'people.json'
    sync = PeopleSync('r1', DIM, path=path, face_age_s=day)
    writer: deque[PersonRecord] = deque(sync.start(NOW)[0].publish, maxlen=sync.depth)
    writer.extend(sync.local(PersonRecord('ada', ENROLL, NOW - 2 * day * S, 'r1',
                                          tuple(faces['biden.jpg']))).publish)
    writer.extend(sync.received(PersonRecord('barack', WITHDRAW, NOW, 'r2',
                                             tuple(faces['obama.jpg'])), NOW, 0.0).publish)
    stale = sync.received(PersonRecord('joe', WITHDRAW, NOW - day * S - 1, 'r2',
                                       tuple(faces['biden.jpg'])), NOW, 0.0)
    writer.extend(stale.publish)
    assert stale.publish[0].embedding == () and sync.forgets_pending() == 1
    assert sync.expire(NOW + day * S) is None   # barack's is a day old: not older
    saved = json.loads(path.read_text())
    assert {r['person_id']: len(r['embedding']) for r in saved['people']} == {
        'ada': DIM, 'barack': DIM, 'joe': 0}
    assert len(saved['forget_pending'][0]['embedding']) == DIM and sync.forgets_pending() == 1
    assert any(r.person_id == 'barack' and r.embedding for r in writer)
    flushed = sync.expire(NOW + day * S + 1)
    writer.extend(flushed.publish)
    assert {(r.person_id, len(r.embedding)) for r in writer} == {
        ('ada', DIM), ('barack', 0), ('joe', 0)}
    assert len(writer) == sync.depth and set(list(writer)[-3:]) == set(sync.roster.records())
    assert sync.forgets_pending() == 0 and sync.next_forget(1.0) is None
    saved = json.loads(path.read_text())
    assert saved['forget_pending'] == [] and [
        len(r['embedding']) for r in saved['people']] == [DIM, 0, 0]
    assert sync.expire(NOW + 2 * day * S) is None   # nothing left to drop
    sync.close()
    # A roster saved before its faces expired drops them as it loads.
    again = PeopleSync('r1', DIM, path=tmp_path / 'again.json', face_age_s=day)
    again.start(NOW)
    again.received(PersonRecord('barack', WITHDRAW, NOW, 'r2', tuple(faces['obama.jpg'])),
                   NOW, 0.0)
    again.close()
    restarted = PeopleSync('r1', DIM, path=tmp_path / 'again.json', face_age_s=day)
    change, _ = restarted.start(NOW + 2 * day * S)
    assert [len(r.embedding) for r in change.publish] == [0] and not restarted.forgets_pending()
    restarted.close()


def test_a_roster_the_disk_refuses_still_goes_to_the_fleet(tmp_path: Path, faces) -> None:
    """A save that fails (its temporary file cannot be written) costs no change.

    The change is still published and told to the tracker; save_error says why until a
    later save succeeds.
    """
    sync = PeopleSync('r1', DIM, path=tmp_path / 'people.json')
    sync.start(NOW)
    (tmp_path / 'people.json.tmp').mkdir()   # where the next save writes: it cannot
    change = sync.local(PersonRecord('barack', ENROLL, NOW, 'r1', tuple(faces['obama.jpg'])))
    assert [r.person_id for r in change.publish] == ['barack']
    assert [r.person_id for r in change.enrolled] == ['barack']
    assert 'roster not saved to' in sync.save_error and 'Is a directory' in sync.save_error
    (tmp_path / 'people.json.tmp').rmdir()
    sync.local(PersonRecord('joe', ENROLL, NOW + S, 'r1', tuple(faces['biden.jpg'])))
    assert sync.save_error is None
    sync.close()
    restarted = PeopleSync('r1', DIM, path=tmp_path / 'people.json')
    assert {r.person_id for r in restarted.start(NOW)[0].publish} == {'barack', 'joe'}
    restarted.close()


def test_shrink_jpeg(faces, shared_dir: Path) -> None:
    """Thumbnails are scaled down, never up; bytes that are no image give None."""
    image = cv2.imread(str(shared_dir / 'data' / 'faces' / 'obama.jpg'))
    jpeg = cv2.imencode('.jpg', image)[1].tobytes()
    small = shrink_jpeg(jpeg, 160)
    decoded = cv2.imdecode(np.frombuffer(small, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape[1] == 160 and len(small) < len(jpeg) / 10
    tiny = cv2.imencode('.jpg', image[:50, :50])[1].tobytes()
    assert cv2.imdecode(np.frombuffer(shrink_jpeg(tiny, 160), np.uint8), 1).shape[1] == 50
    assert shrink_jpeg(b'not a jpeg', 160) is None


def test_fleet_asks_spots_its_answers_in_serialized_bytes() -> None:
    """Only bytes holding an open request id are worth decoding."""
    asks = FleetAsks(PeerRoster('r1'))
    gathering = asks.open('0123abcd', 0.0)
    assert asks.awaits(b'\x00\x01\x00\x00....0123abcd\x00...')
    assert not asks.awaits(b'\x00\x01\x00\x00....9999abcd\x00...')
    asks.close(gathering)
    assert not asks.awaits(b'....0123abcd...')
