"""The tracker state file: atomic and private, and what restarts continue from."""

import json
import stat

import numpy as np
import pytest

from facetrack_ros.core.embedding import l2_normalize
from facetrack_ros.core.event_log import EventLog
from facetrack_ros.core.owner_lock import InUseError
from facetrack_ros.core.tracker_state import (highest_sequence_in_log, load_state, save_state,
                                              set_aside, StateFileError, StateStore,
                                              TrackerState)
from facetrack_ros.core.tracking import (Detection, EventKind, EventReason, PersonTracker,
                                         TrackerConfig)

CONFIG = TrackerConfig()
FPS = 30.0


def _face(seed: int) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).normal(size=CONFIG.embedding_dim))


def _box(x: float) -> Detection:
    return Detection(np.array([x, 100, x + 80, 300], np.float32), 0.9)


def _run(tracker: PersonTracker, path, start: float, visitors: list[int]) -> list:
    """Show each visitor (a face seed) for 2 s, one after another, then nobody for 3 s.

    The state is saved whenever the tracker asks for it (as the node does before it
    publishes new ids); return the events.
    """
    events = []
    t = start
    for seed in visitors:
        for i in range(60):
            persons, new = tracker.update(t, [_box(100 + 100 * (seed % 4))])
            if i == 2:
                new += tracker.add_face(t, persons[0].track_id, _face(seed), 0.95)
            if tracker.save_due:
                save_state(path, tracker.snapshot())
            events += new
            t += 1 / FPS
        for _ in range(90):
            events += tracker.update(t, [])[1]
            t += 1 / FPS
    return events


def test_ids_never_repeat_across_restarts_and_people_seen_before_return(tmp_path) -> None:
    """Five restarts, some without a final save (a crash): no id twice; person 1 RETURNS."""
    path = tmp_path / 'logs' / 'tracker_state.json'
    issued, regular = [], None
    for restart in range(5):
        tracker = PersonTracker(CONFIG, id_prefix='r1')
        state = load_state(path)
        assert (state is None) == (restart == 0)
        if state is not None:  # after a crash, people saved while present get their OUT
            assert all((e.kind, e.reason) == (EventKind.PERSON_OUT, EventReason.SHUTDOWN)
                       for e in tracker.restore(state))
        events = _run(tracker, path, 100.0 * (restart + 1), [1, 10 + restart])
        kinds = {(e.kind, e.person_id) for e in events if e.kind is not EventKind.PERSON_OUT}
        issued += [e.person_id for e in events if e.kind is EventKind.PERSON_IN]
        if restart == 0:
            regular = next(e.person_id for e in events if e.kind is EventKind.PERSON_IN)
        else:
            assert (EventKind.PERSON_RETURNED, regular) in kinds
        if restart % 2 == 0:  # a clean stop; the others crash without saving again
            save_state(path, tracker.snapshot())
    assert len(issued) == len(set(issued)) == 6
    assert all(pid.startswith('r1-') for pid in issued)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ['tracker_state.json'], 'no temporaries'


def test_people_in_view_when_the_tracker_died_get_their_out_on_restart(tmp_path) -> None:
    """Saved while present (a crash): the restart sends their PERSON_OUT (SHUTDOWN)."""
    path = tmp_path / 'state.json'
    tracker = PersonTracker(CONFIG)
    for i in range(60):
        persons, _ = tracker.update(i / FPS, [_box(100)])
        if i == 2:
            tracker.add_face(i / FPS, persons[0].track_id, _face(1), 0.95)
    save_state(path, tracker.snapshot())
    restarted = PersonTracker(CONFIG)
    events = restarted.restore(load_state(path))
    assert [(e.kind, e.reason, e.person_id, e.stamp) for e in events] == [
        (EventKind.PERSON_OUT, EventReason.SHUTDOWN, 'person-000001', 59 / FPS)]
    assert events[0].duration == pytest.approx(59 / FPS)
    np.testing.assert_allclose(restarted.person_embedding('person-000001'),
                               tracker.person_embedding('person-000001'), atol=1e-6)
    assert restarted.active_count == 0


def test_memory_is_bounded_by_reid_memory(tmp_path) -> None:
    """People forgotten after reid_memory_s are not written to the state file."""
    tracker = PersonTracker(TrackerConfig(reid_memory_s=10.0))
    path = tmp_path / 'state.json'
    _run(tracker, path, 0.0, [1, 2])
    assert len(tracker.snapshot().persons) == 2
    for i in range(20 * 30):
        tracker.update(20 + i / FPS, [])
    save_state(path, tracker.snapshot())
    assert json.loads(path.read_text())['persons'] == []


@pytest.mark.parametrize('text, reason', [
    ('{"version": 1, "next_sequence": 5', 'not JSON'),
    ('{"version": 7}', 'version 7'),
    ('{"version": 1, "next_sequence": 5, "next_track_id": 1, "persons": [{}]}',
     'not a tracker state'),
    ('{"version": 1, "next_sequence": 0, "next_track_id": 1, "persons": []}', '>= 1'),
    ('[]', 'not a tracker state'),
])
def test_damaged_state_files_are_refused_with_a_reason(tmp_path, text: str, reason: str) -> None:
    """A damaged file raises StateFileError naming the problem; it can be set aside."""
    path = tmp_path / 'state.json'
    path.write_text(text)
    with pytest.raises(StateFileError, match=reason):
        load_state(path)
    moved = set_aside(path)
    assert not path.exists() and moved.read_text() == text
    assert load_state(path) is None


def test_the_event_log_bounds_the_sequence_when_the_state_is_lost(tmp_path) -> None:
    """The highest id of this robot in the event log; other robots' ids do not count."""
    with EventLog(tmp_path) as log:
        for stamp, person in ((1e9, 'r1-000007'), (1e9 + 86400, 'r1-000012'),
                              (1e9, 'r2-000099'), (1e9, 'alice')):
            log.append({'kind': 'PERSON_IN', 'stamp': stamp, 'person_id': person})
    assert highest_sequence_in_log(tmp_path, 'r1') == 12
    assert highest_sequence_in_log(tmp_path, 'r3') == 0
    assert highest_sequence_in_log(tmp_path / 'missing', 'r1') == 0


def test_the_store_restores_sets_damaged_files_aside_and_continues_the_log(tmp_path) -> None:
    """StateStore: a damaged file is kept aside; ids always go on after the log's highest.

    Also past a valid but stale file (a save the disk refused while the log took the ids) and
    with no state kept at all.
    """
    with EventLog(tmp_path) as log:
        log.append({'kind': 'PERSON_IN', 'stamp': 1e9, 'person_id': 'r1-000030'})
    path = tmp_path / 'tracker_state.json'
    path.write_text('{"version": 1, "next_sequence": 5')
    store = StateStore(path, tmp_path)
    tracker = PersonTracker(CONFIG, id_prefix='r1')
    events, note = store.restore(tracker, 'r1')
    assert events == [] and 'unreadable' in note and store.damaged_copy.exists()
    store.save(tracker)
    assert load_state(path).next_sequence == 31, 'no id below it is handed out'
    store.close()
    save_state(path, TrackerState(5, 1, ()))   # stale: saved before r1-000030 was logged
    store = StateStore(path, tmp_path)
    stale = PersonTracker(CONFIG, id_prefix='r1')
    events, note = store.restore(stale, 'r1')
    assert events == [] and note.startswith('restored 0 people')
    store.save(stale)
    assert load_state(path).next_sequence == 31
    store.close()
    unkept = StateStore(None, tmp_path)
    nothing_kept = PersonTracker(CONFIG, id_prefix='r1')
    assert unkept.restore(nothing_kept, 'r1')[0] == []
    assert nothing_kept.snapshot().next_sequence == 31
    unkept.close()


def test_a_second_tracker_on_one_event_log_or_state_file_is_refused(tmp_path) -> None:
    """Two trackers on one event log or state file would hand out the same ids.

    The second is refused, whatever its own state_file; the locks end with close() (and with
    the process, however it ends).
    """
    events = tmp_path / 'events'
    first = StateStore(events / 'tracker_state.json', events)
    first.restore(PersonTracker(CONFIG, id_prefix='r1'), 'r1')
    for path in (events / 'tracker_state.json', events / 'rear.json', None):
        with pytest.raises(InUseError, match='tracker.lock is held by a tracker'):
            StateStore(path, events).restore(PersonTracker(CONFIG), 'r1')
    first.close()
    again = StateStore(None, events)
    again.restore(PersonTracker(CONFIG), 'r1')
    again.close()

    shared = tmp_path / 'state' / 'shared.json'   # one state file, two event logs
    front = StateStore(shared, tmp_path / 'front')
    front.restore(PersonTracker(CONFIG), 'r2')
    with pytest.raises(InUseError, match='shared.json.lock is held by a tracker'):
        StateStore(shared, tmp_path / 'rear').restore(PersonTracker(CONFIG), 'r2')
    rear = StateStore(tmp_path / 'state' / 'rear.json', tmp_path / 'rear')
    rear.restore(PersonTracker(CONFIG), 'r3')   # files of its own: allowed
    for store in (front, rear):
        store.close()
