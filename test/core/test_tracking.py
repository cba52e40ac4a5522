"""PersonTracker and EmbeddingScheduler on synthetic scenes.

Boxes move at 30 FPS; faces are noisy copies of one random embedding per person.
"""

from dataclasses import replace
import json

import numpy as np
import pytest

from facetrack_ros.core.embedding import cosine_similarity, EmbeddingError, l2_normalize
from facetrack_ros.core.tracking import (BREAK_MIN_QUALITY, Detection, EmbeddingScheduler,
                                         EventKind,
                                         PersonEventRecord, PersonTracker, TrackedPerson,
                                         TrackerConfig)

FPS = 30.0
CONFIG = TrackerConfig()
IN_KINDS = (EventKind.PERSON_IN, EventKind.PERSON_RETURNED)


def _face(seed: int) -> np.ndarray:
    """Return the unit 'true' face embedding of person seed."""
    return l2_normalize(np.random.default_rng(seed).normal(size=CONFIG.embedding_dim))


def _sighting(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return a new photo of face: cosine about 0.99 to it and 0.98 to other photos of it.

    Like dlib on real faces (same person >= 0.95, see embedding.py); random faces are near 0.
    """
    return l2_normalize(face + 0.15 * l2_normalize(rng.normal(size=face.size)))


def _box(x: float, y: float = 100.0, w: float = 80.0, h: float = 200.0) -> Detection:
    return Detection(np.array([x, y, x + w, y + h]), 0.9)


def _owner(person: TrackedPerson, bodies: dict[str, Detection]) -> str:
    """Return which body's detection the tracked box is (the tracker reports detection boxes)."""
    return next(name for name, det in bodies.items() if np.allclose(person.box, det.box))


def _check_pairing(events: list[PersonEventRecord], closed: bool = True) -> None:
    """Assert each person's events go IN (or RETURNED after an OUT), OUT, ... in stamp order."""
    by_person: dict[str, list[PersonEventRecord]] = {}
    for event in events:
        by_person.setdefault(event.person_id, []).append(event)
    for person_id, history in by_person.items():
        kinds = [e.kind for e in history]
        assert kinds[0] is EventKind.PERSON_IN, (person_id, kinds)
        assert all(k in IN_KINDS for k in kinds[0::2]), (person_id, kinds)
        assert all(k is EventKind.PERSON_OUT for k in kinds[1::2]), (person_id, kinds)
        assert EventKind.PERSON_IN not in kinds[1:], (person_id, kinds)
        assert [e.stamp for e in history] == sorted(e.stamp for e in history)
        if closed:
            assert kinds[-1] is EventKind.PERSON_OUT, (person_id, kinds)


def _run_empty(tracker: PersonTracker, start: int, frames: int) -> list[PersonEventRecord]:
    """Feed frames without detections from frame number start; return their events."""
    events = []
    for i in range(start, start + frames):
        events += tracker.update(i / FPS, [])[1]
    return events


def test_walker_gets_one_in_one_id_and_one_out() -> None:
    """100 frames across the image: one PERSON_IN, one id, then one PERSON_OUT after 2 s."""
    tracker = PersonTracker(CONFIG)
    rng = np.random.default_rng(0)
    events, ids = [], set()
    for i in range(100):
        persons, new = tracker.update(i / FPS, [_box(20 + 5 * i)])
        events += new
        assert len(persons) == 1
        ids.add((persons[0].track_id, persons[0].person_id))
        if i == 2:  # the face node answers a frame late
            events += tracker.add_face(1 / FPS, persons[0].track_id, _sighting(_face(1), rng), .8)
    assert [e.kind for e in events] == [EventKind.PERSON_IN]
    assert events[0].stamp == pytest.approx(1 / FPS)  # stamped at the face's frame
    assert events[0].embedding is not None
    assert ids == {(1, '')} | {(1, events[0].person_id)}
    assert tracker.person_of_track(1) == events[0].person_id
    assert tracker.active_count == 1

    last_seen = 99 / FPS
    out = _run_empty(tracker, 100, 90)
    assert [e.kind for e in out] == [EventKind.PERSON_OUT]
    assert out[0].person_id == events[0].person_id
    assert last_seen + CONFIG.absence_timeout_s <= out[0].stamp \
        <= last_seen + CONFIG.absence_timeout_s + 1 / FPS
    assert out[0].duration == pytest.approx(last_seen)
    np.testing.assert_allclose(out[0].box, _box(20 + 5 * 99).box)
    assert tracker.active_count == 0
    _check_pairing(events + out)


def test_without_a_face_the_in_comes_after_identity_wait() -> None:
    """A track with no face is announced once identity_wait_s after its first sighting."""
    tracker = PersonTracker(CONFIG)
    events = []
    for i in range(45):
        persons, new = tracker.update(i / FPS, [_box(100 + i)])
        events += [(i, e) for e in new]
        assert persons[0].person_id == ('' if i < 30 else 'person-1')
        assert tracker.person_of_track(persons[0].track_id) == (persons[0].person_id or None)
    assert [(i, e.kind) for i, e in events] == [(30, EventKind.PERSON_IN)]
    assert events[0][1].embedding is None
    assert tracker.person_embedding('person-1') is None


def test_two_people_crossing_keep_their_ids() -> None:
    """Boxes that cross (IoU up to 0.8 in the middle) keep their person ids by motion."""
    tracker = PersonTracker(CONFIG)
    rng = np.random.default_rng(1)
    faces = {'left': _face(1), 'right': _face(2)}
    ids: dict[str, set[str]] = {'left': set(), 'right': set()}
    events = []
    for i in range(130):
        bodies = {'left': _box(40 + 4 * i), 'right': _box(560 - 4 * i, y=110)}
        persons, new = tracker.update(i / FPS, list(bodies.values()))
        events += new
        for person in persons:
            owner = _owner(person, bodies)
            ids[owner].add(person.person_id)
            if i % 10 == 5:
                events += tracker.add_face(i / FPS, person.track_id,
                                           _sighting(faces[owner], rng), 0.8)
    assert ids['left'] == {'', 'person-1'} and ids['right'] == {'', 'person-2'}
    assert [e.kind for e in events] == [EventKind.PERSON_IN] * 2


def test_faces_undo_a_bytetrack_swap() -> None:
    """Two people meet and turn back: faces undo ByteTrack's swap of their tracks.

    ByteTrack's motion model expects them to walk on, so it swaps the tracks; the first
    unambiguous faces afterwards give each body its person id back.
    """
    tracker = PersonTracker(CONFIG)
    rng = np.random.default_rng(2)
    faces = {'a': _face(1), 'b': _face(2)}
    track_of: dict[str, set[int]] = {'a': set(), 'b': set()}
    person_of: dict[str, list[str]] = {'a': [], 'b': []}
    for i in range(120):
        step = min(i, 60) - max(0, i - 60)  # walk in for 2 s, then back out
        bodies = {'a': _box(50 + 4 * step), 'b': _box(530 - 4 * step, y=110)}
        persons, _ = tracker.update(i / FPS, list(bodies.values()))
        for person in persons:
            owner = _owner(person, bodies)
            track_of[owner].add(person.track_id)
            person_of[owner].append(person.person_id)
            if i % 5 == 2:
                tracker.add_face(i / FPS, person.track_id, _sighting(faces[owner], rng), 0.8)
    assert track_of['a'] == track_of['b'] == {1, 2}, 'the scene no longer makes ByteTrack swap'
    assert person_of['a'][-30:] == ['person-1'] * 30
    assert person_of['b'][-30:] == ['person-2'] * 30


def _visit(tracker: PersonTracker, start: int, frames: int, x: float, face: np.ndarray | None,
           rng: np.random.Generator) -> tuple[list[TrackedPerson], list[PersonEventRecord]]:
    """Show one person standing at x for frames frames, sending a face on the second one."""
    seen, events = [], []
    for i in range(start, start + frames):
        persons, new = tracker.update(i / FPS, [_box(x)])
        seen += persons
        events += new
        if i == start + 1 and face is not None:
            events += tracker.add_face(i / FPS, persons[0].track_id, _sighting(face, rng), 0.8)
    return seen, events


def test_returning_face_is_person_returned_and_a_new_face_a_new_person() -> None:
    """Back 20 s after PERSON_OUT with the same face: RETURNED, old id. Another face: new IN."""
    tracker = PersonTracker(CONFIG)
    rng = np.random.default_rng(3)
    _, events = _visit(tracker, 0, 60, 100, _face(1), rng)
    events += _run_empty(tracker, 60, 90)
    assert [e.kind for e in events] == [EventKind.PERSON_IN, EventKind.PERSON_OUT]

    start = int(20 * FPS)
    seen, back = _visit(tracker, start, 60, 300, _face(1), rng)
    assert [(e.kind, e.person_id) for e in back] == [(EventKind.PERSON_RETURNED, 'person-1')]
    assert seen[-1].track_id != 1 and seen[-1].match_similarity >= CONFIG.min_similarity
    back += _run_empty(tracker, start + 60, 90)
    # This appearance only, from the frame that confirmed the track (its second) to the last.
    assert back[-1].duration == pytest.approx(58 / FPS)

    seen, other = _visit(tracker, 2 * start, 60, 300, _face(2), rng)
    assert [(e.kind, e.person_id) for e in other] == [(EventKind.PERSON_IN, 'person-2')]
    _check_pairing(events + back + other, closed=False)
    assert set(tracker.persons) == {'person-1', 'person-2'}


def test_a_cut_that_hands_a_box_to_someone_else_breaks_the_identity() -> None:
    """One box kept by ByteTrack across a camera cut: the new face makes a new person."""
    tracker = PersonTracker(CONFIG)
    rng = np.random.default_rng(5)
    events: list[PersonEventRecord] = []
    for i in range(120):
        persons, new = tracker.update(i / FPS, [_box(200 + i * 0.5)])
        events += new
        if i % 20 == 5:  # a face every 20 frames: person 1's before the cut, person 2's after
            face = _sighting(_face(1 if i < 60 else 2), rng)
            events += tracker.add_face(i / FPS, persons[0].track_id, face, 0.9)
    assert len({p.track_id for p in persons}) == 1, 'ByteTrack kept one track throughout'
    assert [(e.kind, e.person_id) for e in events] == [
        (EventKind.PERSON_IN, 'person-1'), (EventKind.PERSON_IN, 'person-2')]
    assert persons[0].person_id == 'person-2'
    events += _run_empty(tracker, 120, 90)
    _check_pairing(events)
    # A poor face of someone else is ignored rather than trusted.
    tracker = PersonTracker(CONFIG)
    for i in range(40):
        persons, _ = tracker.update(i / FPS, [_box(200)])
        if i == 5:
            tracker.add_face(i / FPS, persons[0].track_id, _face(1), 0.9)
    tracker.add_face(40 / FPS, persons[0].track_id, _face(2), BREAK_MIN_QUALITY / 2)
    assert tracker.person_of_track(persons[0].track_id) == 'person-1'


def test_brief_occlusion_with_new_track_is_the_same_appearance() -> None:
    """Gone 0.5 s, back elsewhere on a new track, same face: no new IN, same id, one OUT."""
    tracker = PersonTracker(CONFIG)
    rng = np.random.default_rng(4)
    seen, events = _visit(tracker, 0, 60, 100, _face(1), rng)
    events += _run_empty(tracker, 60, 15)
    later, more = _visit(tracker, 75, 60, 400, _face(1), rng)
    assert later[0].track_id != seen[0].track_id
    assert {p.person_id for p in later[2:]} == {'person-1'}
    out = _run_empty(tracker, 135, 90)
    assert [e.kind for e in events + more + out] == [EventKind.PERSON_IN, EventKind.PERSON_OUT]
    assert out[0].duration == pytest.approx(134 / FPS)  # the whole visit, gap included
    assert out[0].track_id == later[0].track_id


def _walk_behind_obstacle(tracker: PersonTracker, reappear_dx: float, height: float = 200.0
                          ) -> tuple[list[TrackedPerson], list[TrackedPerson],
                                     list[PersonEventRecord]]:
    """Walk, vanish past ByteTrack's buffer, reappear and walk on; no faces.

    The walk goes right at 60 px/s for 2 s, the gap lasts 1.5 s, and the walker reappears
    reappear_dx px right of where the walk stopped, height px tall. Return the tracks before
    and after the gap and every event, through the final PERSON_OUT(s).
    """
    before, after, events = [], [], []
    for i in range(60):
        persons, new = tracker.update(i / FPS, [_box(100 + 2 * i)])
        before += persons
        events += new
    events += _run_empty(tracker, 60, 45)
    for i in range(105, 165):
        x = 100 + 2 * 59 + reappear_dx + 2 * (i - 105)
        persons, new = tracker.update(i / FPS, [_box(x, h=height)])
        after += persons
        events += new
    return before, after, events + _run_empty(tracker, 165, 120)


def test_walker_lost_behind_an_obstacle_keeps_their_id_without_a_face() -> None:
    """A new track starting where the lost walker was heading continues that person at once."""
    tracker = PersonTracker(CONFIG)
    # 1.5 s at 60 px/s: 90 px further on, where the person's velocity says they would be.
    before, after, events = _walk_behind_obstacle(tracker, reappear_dx=90)
    assert after[0].track_id != before[-1].track_id, 'ByteTrack should have dropped the track'
    assert {p.person_id for p in after} == {'person-1'}
    assert [(e.kind, e.person_id) for e in events] == [
        (EventKind.PERSON_IN, 'person-1'), (EventKind.PERSON_OUT, 'person-1')]
    assert events[-1].duration == pytest.approx(164 / FPS)


@pytest.mark.parametrize('reappear_dx, height, relink_distance', [
    (400, 200.0, CONFIG.relink_distance),   # far from where the walker was heading
    (90, 420.0, CONFIG.relink_distance),    # there, but twice as tall: someone nearer
    (90, 200.0, 0.0),                       # re-linking switched off
])
def test_a_new_track_elsewhere_or_unlike_the_lost_walker_is_someone_new(
        reappear_dx: float, height: float, relink_distance: float) -> None:
    """Without a motion match the new track waits identity_wait_s and becomes a new person."""
    tracker = PersonTracker(replace(CONFIG, relink_distance=relink_distance))
    _, after, events = _walk_behind_obstacle(tracker, reappear_dx, height)
    assert after[int(CONFIG.identity_wait_s * FPS)].person_id == 'person-2'
    assert sorted((e.kind, e.person_id) for e in events) == [
        (EventKind.PERSON_IN, 'person-1'), (EventKind.PERSON_IN, 'person-2'),
        (EventKind.PERSON_OUT, 'person-1'), (EventKind.PERSON_OUT, 'person-2')]


def test_a_track_seen_together_with_the_person_is_not_relinked_to_them() -> None:
    """Someone appearing just ahead of a walker who is still in view is a second person.

    Only persons missing from the frame can be continued by a new track.
    """
    tracker = PersonTracker(CONFIG)
    events = []
    for i in range(120):
        bodies = [_box(100 + 2 * i)]
        if i >= 45:
            bodies.append(_box(100 + 2 * i + 90, y=100))
        persons, new = tracker.update(i / FPS, bodies)
        events += new
    assert {p.person_id for p in persons} == {'person-1', 'person-2'}
    assert [e.kind for e in events] == [EventKind.PERSON_IN] * 2


def test_two_walkers_lost_together_wait_for_their_faces() -> None:
    """Two people lost side by side and two new tracks where both were heading: a guess.

    Each new track is within relink_distance of either person, so neither is continued by
    motion; both wait identity_wait_s and become new persons rather than risk a swap.
    """
    tracker = PersonTracker(CONFIG)
    events = []
    for i in range(165):
        if 60 <= i < 105:
            bodies = []
        else:
            bodies = [_box(100 + 2 * i), _box(220 + 2 * i)]
        persons, new = tracker.update(i / FPS, bodies)
        events += new
    assert sorted(p.person_id for p in persons) == ['person-3', 'person-4']
    assert [e.person_id for e in events if e.kind is EventKind.PERSON_IN] == [
        'person-1', 'person-2', 'person-3', 'person-4']
    _check_pairing(events, closed=False)


def test_old_track_refound_after_reidentification_stays_the_same_person() -> None:
    """Occluded briefly, re-identified on a new track, then ByteTrack re-finds the old track.

    The old track comes back as the same person at once: no second person, no new event.
    """
    tracker = PersonTracker(CONFIG)
    rng = np.random.default_rng(9)
    seen, events = _visit(tracker, 0, 60, 100, _face(1), rng)
    events += _run_empty(tracker, 60, 5)
    elsewhere, more = _visit(tracker, 65, 10, 400, _face(1), rng)
    assert elsewhere[0].track_id != seen[0].track_id
    assert elsewhere[-1].person_id == 'person-1'
    # Back where the old track was lost, within track_buffer_s: ByteTrack re-finds that track.
    back, later = _visit(tracker, 75, 60, 100, None, rng)
    assert {p.track_id for p in back} == {seen[0].track_id}, 'ByteTrack did not re-find it'
    assert {p.person_id for p in back} == {'person-1'}
    assert set(tracker.persons) == {'person-1'}
    out = _run_empty(tracker, 135, 90)
    assert [(e.kind, e.person_id) for e in events + more + later + out] == [
        (EventKind.PERSON_IN, 'person-1'), (EventKind.PERSON_OUT, 'person-1')]
    assert out[0].track_id == seen[0].track_id


def test_reset_restarts_tracking_after_time_jumps_back() -> None:
    """A rosbag loop: reset() ends the appearances, forgets tracks and keeps faces for re-id."""
    tracker = PersonTracker(CONFIG)
    rng = np.random.default_rng(10)
    seen, events = _visit(tracker, 0, 60, 100, _face(1), rng)
    with pytest.raises(ValueError, match='reset'):
        tracker.update(0.0, [_box(100)])
    out = tracker.reset(0.0)
    assert [(e.kind, e.person_id, e.stamp) for e in out] == [
        (EventKind.PERSON_OUT, 'person-1', 59 / FPS)]
    assert out[0].duration == pytest.approx(59 / FPS)
    assert tracker.active_count == 0
    # Person times continue the old timeline into the new one.
    assert tracker.persons['person-1'].last_seen == pytest.approx(0.0)
    assert tracker.persons['person-1'].first_seen == pytest.approx(-59 / FPS)

    replay, back = _visit(tracker, 0, 60, 100, _face(1), rng)
    assert [(e.kind, e.person_id) for e in back] == [(EventKind.PERSON_RETURNED, 'person-1')]
    assert replay[-1].track_id > seen[-1].track_id   # track ids are never reused
    # A late face of the track from before the reset is ignored, not put on a new track.
    assert tracker.add_face(1 / FPS, seen[-1].track_id, _sighting(_face(2), rng), 0.9) == []
    _, other = _visit(tracker, 60, 30, 400, _face(2), rng)
    assert [(e.kind, e.person_id) for e in other] == [(EventKind.PERSON_IN, 'person-2')]
    gone = _run_empty(tracker, 90, 90)
    assert sorted((e.kind, e.person_id) for e in gone) == [
        (EventKind.PERSON_OUT, 'person-1'), (EventKind.PERSON_OUT, 'person-2')]
    assert tracker.active_count == 0
    with pytest.raises(ValueError, match='finite'):
        tracker.reset(float('nan'))


def test_visible_persons_id_is_never_taken() -> None:
    """A new track with the face of someone visible on another track becomes a new person."""
    tracker = PersonTracker(CONFIG)
    rng = np.random.default_rng(5)
    twin = _face(1)
    events = []
    for i in range(60):
        bodies = [_box(50)] + ([_box(400)] if i >= 30 else [])
        persons, new = tracker.update(i / FPS, bodies)
        events += new
        if i in (1, 31):
            events += tracker.add_face(i / FPS, persons[-1].track_id, _sighting(twin, rng), .8)
    assert [(e.kind, e.person_id) for e in events] == [(EventKind.PERSON_IN, 'person-1'),
                                                       (EventKind.PERSON_IN, 'person-2')]


def test_faces_from_overlapping_boxes_are_ignored() -> None:
    """A face taken while the box overlaps another person's box may not be this person's."""
    tracker = PersonTracker(CONFIG)
    persons, _ = tracker.update(0.0, [_box(100), _box(120)])
    assert tracker.add_face(0.0, persons[0].track_id, _face(1), 0.9) == []
    assert persons[0].person_id == '' and tracker.persons == {}


def test_in_and_out_always_pair_up() -> None:
    """Random comings, goings, missed detections, swapped faces: events stay well formed."""
    rng = np.random.default_rng(6)
    tracker = PersonTracker(replace(CONFIG, reid_memory_s=30.0))
    walkers: dict[int, tuple[float, float, int]] = {}  # walker -> (x, speed, face seed)
    events = []
    for i in range(3000):
        if rng.random() < 0.02 and len(walkers) < 5:
            walkers[i] = (rng.uniform(0, 600), rng.uniform(-3, 3), int(rng.integers(1, 8)))
        for key in [k for k in walkers if rng.random() < 0.005]:
            del walkers[key]
        walkers = {k: (x + v, v, s) for k, (x, v, s) in walkers.items()}
        shown = [(k, _box(x, y=20 + 60 * (k % 5))) for k, (x, _, _) in walkers.items()
                 if rng.random() > 0.1]
        persons, new = tracker.update(i / FPS, [d for _, d in shown])
        events += new
        for person in persons:
            if rng.random() < 0.1:
                seed = next(walkers[k][2] for k, d in shown if np.allclose(d.box, person.box))
                face = _face(seed if rng.random() > 0.05 else int(rng.integers(1, 8)))
                events += tracker.add_face(i / FPS, person.track_id, _sighting(face, rng),
                                           float(rng.uniform(0.2, 1)))
    events += _run_empty(tracker, 3000, 90)
    assert sum(e.kind is EventKind.PERSON_OUT for e in events) > 10
    assert any(e.kind is EventKind.PERSON_RETURNED for e in events)
    _check_pairing(events)
    assert tracker.active_count == 0
    assert all(json.loads(json.dumps(e.to_json_dict()))['kind'] == e.kind.name for e in events)


def test_gone_persons_are_forgotten_after_reid_memory() -> None:
    """After reid_memory_s a person is dropped, and the same face is a new person."""
    tracker = PersonTracker(replace(CONFIG, reid_memory_s=10.0))
    rng = np.random.default_rng(7)
    _, events = _visit(tracker, 0, 30, 100, _face(1), rng)
    events += _run_empty(tracker, 30, int(12 * FPS))
    assert tracker.persons == {}
    _, again = _visit(tracker, int(13 * FPS), 30, 100, _face(1), rng)
    assert [(e.kind, e.person_id) for e in again] == [(EventKind.PERSON_IN, 'person-2')]


def test_running_embedding_keeps_the_best_samples() -> None:
    """The embedding is the quality-weighted mean of the max_samples best faces, unit length."""
    tracker = PersonTracker(replace(CONFIG, max_samples=3))
    rng = np.random.default_rng(8)
    persons, _ = tracker.update(0.0, [_box(100)])
    track = persons[0].track_id
    samples = [_sighting(_face(1), rng) for _ in range(5)]
    for sample, quality in zip(samples, [0.9, 0.8, 0.7, 0.1, 0.95]):
        tracker.add_face(0.0, track, sample, quality)
    expected = l2_normalize(0.9 * samples[0] + 0.8 * samples[1] + 0.95 * samples[4])
    embedding = tracker.person_embedding('person-1')
    np.testing.assert_allclose(embedding, expected, atol=1e-6)
    assert not embedding.flags.writeable
    np.testing.assert_array_equal(tracker.persons['person-1'].embedding, embedding)
    # A face unlike the person's is not mixed in.
    tracker.add_face(0.0, track, _face(2), 1.0)
    np.testing.assert_allclose(tracker.person_embedding('person-1'), expected, atol=1e-6)
    assert float(cosine_similarity(_face(1), embedding[None])[0]) > 0.95


def test_track_buffer_follows_the_measured_frame_rate() -> None:
    """track_buffer_s is seconds: at 10 FPS a 1.5 s gap is past it though under 30 frames."""
    tracker = PersonTracker(replace(CONFIG, track_buffer_s=1.0, absence_timeout_s=5.0))
    track_ids = []
    for i in range(120):
        gap = 60 <= i < 75 or 90 <= i < 98  # 1.5 s, then 0.8 s
        persons, _ = tracker.update(i / 10.0, [] if gap else [_box(100)])
        track_ids += [p.track_id for p in persons]
    assert sorted(set(track_ids)) == [1, 2]
    assert track_ids[-1] == 2  # the 0.8 s gap kept the track


@pytest.mark.parametrize('change, reason', [
    ({'frame_rate': 0.0}, 'frame_rate'),
    ({'track_low_thresh': 0.5}, 'track_low_thresh'),
    ({'new_track_thresh': 0.0}, 'new_track_thresh'),
    ({'match_thresh': 1.5}, 'match_thresh'),
    ({'track_buffer_s': -1.0}, 'track_buffer_s'),
    ({'relink_distance': -0.5}, 'relink_distance'),
    ({'identity_wait_s': float('nan')}, 'identity_wait_s'),
    ({'absence_timeout_s': 0.0}, 'absence_timeout_s'),
    ({'reid_memory_s': 1.0}, 'reid_memory_s'),
    ({'min_similarity': 2.0}, 'min_similarity'),
    ({'swap_margin': -0.1}, 'swap_margin'),
    ({'max_samples': 0}, 'max_samples'),
    ({'min_face_quality': 1.5}, 'min_face_quality'),
    ({'embedding_dim': 0}, 'embedding_dim'),
])
def test_invalid_config_is_refused_with_a_reason(change: dict, reason: str) -> None:
    """Each unusable setting raises ValueError naming it."""
    with pytest.raises(ValueError, match=reason):
        PersonTracker(replace(CONFIG, **change))


@pytest.mark.parametrize('embedding, reason', [
    (np.ones(127), '127 values, expected 128'),
    (np.full(128, np.nan), 'NaN'),
    (np.zeros(128), 'zero length'),
])
def test_bad_embeddings_are_refused_with_a_reason(embedding: np.ndarray, reason: str) -> None:
    """Wrong length, NaN and zero embeddings raise EmbeddingError, a ValueError."""
    tracker = PersonTracker(CONFIG)
    persons, _ = tracker.update(0.0, [_box(100)])
    with pytest.raises(EmbeddingError, match=reason):
        tracker.add_face(0.0, persons[0].track_id, embedding, 0.5)
    assert issubclass(EmbeddingError, ValueError)


def test_bad_inputs_raise() -> None:
    """Quality out of range, time going back and NaN boxes raise ValueError."""
    tracker = PersonTracker(CONFIG)
    persons, _ = tracker.update(1.0, [_box(100)])
    with pytest.raises(ValueError, match='quality'):
        tracker.add_face(1.0, persons[0].track_id, _face(1), 1.5)
    with pytest.raises(ValueError, match='goes back'):
        tracker.update(0.5, [])
    with pytest.raises(ValueError, match='NaN'):
        tracker.update(2.0, [Detection(np.array([0, 0, np.nan, 1.0]), 0.9)])
    assert tracker.add_face(1.0, 999, _face(1), 0.5) == []  # unknown track: ignored


def _tracked(track_id: int, width: float) -> TrackedPerson:
    return TrackedPerson(track_id, '', np.array([0, 0, width, 2 * width]), 0.9, 0.0)


def test_scheduler_puts_new_tracks_first_and_bounds_each_frame() -> None:
    """New tracks (largest first) come first, at most max_per_frame, the rest next frame."""
    scheduler = EmbeddingScheduler(refresh_s=2.0, max_per_frame=2)
    persons = [_tracked(i, 10.0 * i) for i in range(1, 6)]
    assert scheduler.select(0.0, persons) == [5, 4]
    assert scheduler.select(0.1, persons) == [3, 2]
    assert scheduler.select(0.2, persons) == [1]
    for stamp in (0.3, 1.0, 1.9):
        assert scheduler.select(stamp, persons) == []  # embedded, not yet due
    persons.append(_tracked(9, 5.0))
    assert scheduler.select(2.0, persons) == [9, 4]  # new first, then the stalest


def test_scheduler_refreshes_poor_faces_first_and_takes_grown_boxes() -> None:
    """Refresh favours poor faces; a box grown by better_box_ratio is worth a new embedding."""
    scheduler = EmbeddingScheduler(refresh_s=1.0, better_box_ratio=1.3, max_per_frame=4)
    persons = [_tracked(1, 50.0), _tracked(2, 50.0)]
    assert scheduler.select(0.0, persons) == [1, 2]
    scheduler.record(1, 0.0, 0.9)
    scheduler.record(2, 0.0, 0.2)
    assert scheduler.select(1.0, persons) == [2, 1]
    persons[0] = _tracked(1, 60.0)  # area x1.44
    assert scheduler.select(1.1, persons) == [1]
    assert scheduler.select(1.2, persons) == []
    scheduler.record(1, 1.1, 0.9, box=np.array([0, 0, 50.0, 100.0]))  # the face's real box
    assert scheduler.select(1.3, persons) == [1]


def test_scheduler_forgets_tracks_gone_for_refresh_s() -> None:
    """A track unseen for refresh_s is new again; one missing briefly is not."""
    scheduler = EmbeddingScheduler(refresh_s=1.0)
    assert scheduler.select(0.0, [_tracked(1, 50.0)]) == [1]
    assert scheduler.select(0.5, []) == []
    assert scheduler.select(0.6, [_tracked(1, 50.0)]) == []
    assert scheduler.select(1.7, []) == []
    assert scheduler.select(1.8, [_tracked(1, 50.0)]) == [1]


def test_scheduler_refuses_bad_settings() -> None:
    """Non-positive refresh, ratio <= 1 and an empty budget raise ValueError."""
    for kwargs in ({'refresh_s': 0.0}, {'better_box_ratio': 1.0}, {'max_per_frame': 0}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            EmbeddingScheduler(**kwargs)
