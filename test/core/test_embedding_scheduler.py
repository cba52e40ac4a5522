"""EmbeddingScheduler: faces where information is missing first, within a per-frame budget."""

from dataclasses import replace

import numpy as np
import pytest

from facetrack_ros.core.embedding_scheduler import EmbeddingScheduler, THOROUGH_EVERY
from facetrack_ros.core.face import FaceSearch
from facetrack_ros.core.embedding import MIN_DECISION_QUALITY
from facetrack_ros.core.tracking import SLOW_INTERVAL_S, TrackedPerson

GOOD = 0.9  # a usable face
POOR = MIN_DECISION_QUALITY / 2
CONFIRMED = 0.97  # match_similarity of a track whose faces match its person


def _tracked(track_id: int, width: float, person_id: str | None = None) -> TrackedPerson:
    """Return a track of person_id (by default one of its own) whose faces match them.

    person_id '': pending.
    """
    person_id = f'p{track_id}' if person_id is None else person_id
    return TrackedPerson(track_id, person_id, np.array([0, 0, width, 2 * width]), 0.9,
                         CONFIRMED if person_id else 0.0)


def test_tracks_without_a_face_come_first_largest_first_within_the_budget() -> None:
    """New tracks, largest box first, at most max_per_frame; the rest on the next frames."""
    scheduler = EmbeddingScheduler(refresh_s=2.0, max_per_frame=2, retry_s=0.25)
    persons = [_tracked(i, 10.0 * i) for i in range(1, 6)]
    assert scheduler.select(0.0, persons) == [5, 4]
    assert scheduler.select(0.1, persons) == [3, 2]
    assert scheduler.select(0.2, persons) == [1]
    for track_id in (5, 4, 3, 2, 1):
        scheduler.record(track_id, 0.2, GOOD if track_id != 3 else 0.6)
    for stamp in (0.3, 1.0, 2.1):
        assert scheduler.select(stamp, persons) == []  # usable faces, not yet due
    persons.append(_tracked(9, 5.0))
    assert scheduler.select(2.3, persons) == [9, 3]  # new first, then the poorest face


def test_a_face_not_found_is_tried_again_sooner_than_refresh() -> None:
    """No face (or a poor one): retried after retry_s, not refresh_s (issue 9, 4).

    After a miss the wait is doubled; a usable face resets it.
    """
    scheduler = EmbeddingScheduler(refresh_s=2.0, max_per_frame=4, retry_s=0.25)
    person = [_tracked(1, 50.0)]
    assert scheduler.select(0.0, person) == [1]
    scheduler.record(1, 0.0, 0.0)  # turned away: next try after 0.5 s
    assert scheduler.select(0.3, person) == []
    assert scheduler.select(0.5, person) == [1]
    scheduler.record(1, 0.5, POOR)  # blurred: 0.5 s again
    assert scheduler.select(0.9, person) == []
    assert scheduler.select(1.0, person) == [1]
    scheduler.record(1, 1.0, GOOD)
    assert scheduler.select(1.3, person) == []
    assert scheduler.select(3.0, person) == [1]  # refresh
    scheduler.record(1, 3.0, 0.0)  # a refresh that found nothing waits refresh_s again
    assert scheduler.select(3.3, person) == []
    assert scheduler.select(5.0, person) == [1]


def test_every_third_try_without_a_usable_face_is_thorough() -> None:
    """The slow detector runs on every THOROUGH_EVERY-th miss in a row, never after a face.

    The other tries of a track without a usable face search close-ups too (CLOSE_UP); a
    periodic refresh of a usable face uses the fast detector alone, until it misses
    THOROUGH_EVERY - 1 times.
    """
    scheduler = EmbeddingScheduler(refresh_s=10.0, max_per_frame=1, retry_s=0.0)
    person = [_tracked(1, 50.0)]
    assert scheduler.search(1) is FaceSearch.FAST  # a track the scheduler does not know
    searches = []
    for index in range(7):  # frames 0.5 s apart: not a slow rate
        assert scheduler.select(index / 2, person) == [1]
        searches.append(scheduler.search(1))
        scheduler.record(1, index / 2, POOR if index % 2 else 0.0)
    assert THOROUGH_EVERY == 3
    close_up, thorough = FaceSearch.CLOSE_UP, FaceSearch.THOROUGH
    assert searches == [close_up, close_up, thorough, close_up, close_up, thorough, close_up]
    scheduler.record(1, 3.5, GOOD)  # a face of an ordinary (not thorough) search
    searches = []
    for stamp in (17.0, 27.0, 37.0):  # refreshes that find no face
        assert scheduler.select(stamp, person) == [1]
        searches.append(scheduler.search(1))
        scheduler.record(1, stamp, 0.0)
    assert searches == [FaceSearch.FAST, FaceSearch.FAST, thorough]


def test_at_a_slow_rate_a_track_without_a_face_is_searched_thoroughly_at_once() -> None:
    """Frames SLOW_INTERVAL_S apart: a walker is a new track in each of their few frames.

    Such a track never reaches a third miss, so its first try searches thoroughly; a track
    with a usable face is refreshed by the fast detector as at any rate, and a face found so
    does not make the track one only the thorough search finds.
    """
    scheduler = EmbeddingScheduler(refresh_s=2.0, max_per_frame=2, retry_s=0.0)
    assert scheduler.select(0.0, [_tracked(1, 50.0)]) == [1]
    assert scheduler.search(1) is FaceSearch.CLOSE_UP  # the first frame: no rate known yet
    scheduler.record(1, 0.0, GOOD)
    assert scheduler.select(SLOW_INTERVAL_S / 2, [_tracked(2, 50.0)]) == [2]
    assert scheduler.search(2) is FaceSearch.CLOSE_UP
    later = SLOW_INTERVAL_S / 2 + SLOW_INTERVAL_S
    assert scheduler.select(later, [_tracked(1, 50.0), _tracked(3, 40.0)]) == [3]
    assert scheduler.search(3) is FaceSearch.THOROUGH
    scheduler.record(3, later, GOOD)
    assert scheduler.select(later + 2.0, [_tracked(1, 50.0)]) == [1]  # refresh
    assert scheduler.search(1) is FaceSearch.FAST
    # Track 3's face may be one the fast detector finds too: when needed again at a fast
    # rate, it is searched as any other track.
    questioned = replace(_tracked(3, 40.0), match_similarity=0.8)
    assert scheduler.select(later + 2.5, [questioned]) == [3]
    assert scheduler.search(3) is FaceSearch.CLOSE_UP


def test_a_face_only_a_thorough_search_found_is_searched_thoroughly_when_needed() -> None:
    """Someone in three-quarter view: HOG misses them, so a face they need comes from the CNN.

    Needed: pending or in question; a periodic refresh keeps the every-third-miss rule.
    """
    scheduler = EmbeddingScheduler(refresh_s=2.0, max_per_frame=1, retry_s=0.0)
    person = _tracked(1, 50.0)
    for stamp in range(3):
        scheduler.select(float(stamp), [person])
        scheduler.record(1, float(stamp), GOOD if stamp == 2 else 0.0)  # the thorough try
    assert scheduler.select(4.0, [person]) == [1]  # refresh
    assert scheduler.search(1) is FaceSearch.FAST
    scheduler.record(1, 4.0, 0.0)
    questioned = replace(person, match_similarity=0.8)
    assert scheduler.select(4.5, [questioned]) == [1]
    assert scheduler.search(1) is FaceSearch.THOROUGH


def test_a_track_whose_face_contradicted_its_person_is_tried_again_soon() -> None:
    """One contradicting face (a swap at a crossing?): the next face decides, within retry_s."""
    scheduler = EmbeddingScheduler(refresh_s=2.0, max_per_frame=1, retry_s=0.25)
    person = _tracked(1, 50.0)
    assert scheduler.select(0.0, [person]) == [1]
    scheduler.record(1, 0.0, GOOD)
    assert scheduler.select(0.5, [person]) == []  # confirmed: refreshed after refresh_s
    questioned = replace(person, match_similarity=0.81)
    assert scheduler.select(0.5, [questioned]) == [1]
    scheduler.record(1, 0.5, GOOD)
    assert scheduler.select(0.8, [questioned]) == [1]
    scheduler.record(1, 0.8, GOOD)
    assert scheduler.select(1.1, [replace(person, match_similarity=0.97)]) == []


def test_a_named_track_with_no_face_compared_on_it_keeps_being_tried() -> None:
    """Named by motion, or its faces set aside (its box overlapped another): retry_s.

    The crossing clip's Mayer, whose box lay inside one over her and Musk, had a face tried
    while her faces did not count, and none in the 2 s after the other box went.
    """
    scheduler = EmbeddingScheduler(refresh_s=2.0, max_per_frame=1, retry_s=0.25)
    unconfirmed = replace(_tracked(1, 50.0), match_similarity=0.0)
    assert scheduler.select(0.0, [unconfirmed]) == [1]
    scheduler.record(1, 0.0, GOOD)
    assert scheduler.select(0.1, [unconfirmed]) == []
    assert scheduler.select(0.3, [unconfirmed]) == [1]
    scheduler.record(1, 0.3, GOOD)
    assert scheduler.select(0.6, [_tracked(1, 50.0)]) == []  # compared: refresh_s


def test_two_tracks_showing_one_person_keep_being_tried() -> None:
    """One of them may be someone else: ByteTrack carried a new track onto a passer-by."""
    scheduler = EmbeddingScheduler(refresh_s=2.0, max_per_frame=2, retry_s=0.25)
    persons = [_tracked(1, 50.0, person_id='p'), _tracked(2, 60.0, person_id='p')]
    assert scheduler.select(0.0, persons) == [2, 1]
    for track_id in (1, 2):
        scheduler.record(track_id, 0.0, GOOD)
    assert scheduler.select(0.3, persons) == [2, 1]
    assert scheduler.select(0.6, [persons[0], _tracked(2, 60.0, person_id='q')]) == []


def test_pending_tracks_come_first_and_keep_being_tried() -> None:
    """A pending track needs faces even after a usable one (after tracks that have none)."""
    scheduler = EmbeddingScheduler(refresh_s=2.0, max_per_frame=1, retry_s=0.0)
    persons = [_tracked(1, 80.0), _tracked(2, 20.0, person_id='')]
    assert scheduler.select(0.0, persons) == [2]
    scheduler.record(2, 0.0, GOOD)
    assert scheduler.select(0.1, persons) == [1]
    scheduler.record(1, 0.1, GOOD)
    assert scheduler.select(0.2, persons) == [2]  # still pending: its decision needs faces


def test_refresh_favours_poor_faces_and_takes_grown_boxes() -> None:
    """Refresh favours poorer faces; a box grown by better_box_ratio is worth a new face."""
    scheduler = EmbeddingScheduler(refresh_s=1.0, better_box_ratio=1.3, max_per_frame=4)
    persons = [_tracked(1, 50.0), _tracked(2, 50.0)]
    assert scheduler.select(0.0, persons) == [1, 2]
    scheduler.record(1, 0.0, 0.95)
    scheduler.record(2, 0.0, 0.6)
    assert scheduler.select(1.0, persons) == [2, 1]
    scheduler.record(1, 1.0, 0.95)
    scheduler.record(2, 1.0, 0.6)
    persons[0] = _tracked(1, 60.0)  # area x1.44
    assert scheduler.select(1.1, persons) == [1]
    scheduler.record(1, 1.1, 0.95, box=np.array([0, 0, 50.0, 100.0]))  # the face's real box
    assert scheduler.select(1.2, persons) == [1]
    scheduler.record(1, 1.2, 0.95)  # the box it was selected with
    assert scheduler.select(1.3, persons) == []


def test_tracks_gone_for_refresh_s_are_forgotten() -> None:
    """A track unseen for refresh_s is new again; one missing briefly is not."""
    scheduler = EmbeddingScheduler(refresh_s=1.0)
    assert scheduler.select(0.0, [_tracked(1, 50.0)]) == [1]
    scheduler.record(1, 0.0, GOOD)
    assert scheduler.select(0.5, []) == []
    assert scheduler.select(0.6, [_tracked(1, 50.0)]) == []
    assert scheduler.select(1.7, []) == []
    assert scheduler.select(1.8, [_tracked(1, 50.0)]) == [1]


def test_a_replay_that_loops_starts_the_tracks_afresh() -> None:
    """Time going back more than refresh_s (a bag looped) forgets every track's attempts.

    The tracker restarts its track ids then: attempts stamped in what is now the future kept
    track 1 from a try until time caught up with them (a bag's length).
    """
    scheduler = EmbeddingScheduler(refresh_s=2.0)
    assert scheduler.select(1060.0, [_tracked(1, 50.0, '')]) == [1]
    scheduler.record(1, 1060.0, 0.0)
    assert scheduler.select(1000.0, [_tracked(1, 50.0, '')]) == [1]
    assert scheduler.select(1000.1, [_tracked(1, 50.0, '')]) == [], 'tried at 1000.0'
    # Frames slightly out of order (within refresh_s) change nothing.
    assert scheduler.select(999.0, [_tracked(1, 50.0, '')]) == []


def _coverage(seed: int, retry_s: float) -> float:
    """Return the share of a crowd that got a usable face (see the test below)."""
    rng = np.random.default_rng(seed)
    scheduler = EmbeddingScheduler(refresh_s=2.0, max_per_frame=2, retry_s=retry_s)
    stays = {i: (start, start + rng.uniform(1.0, 5.0))
             for i, start in enumerate(np.sort(rng.uniform(0, 100, 200)))}
    embedded = set()
    for frame in range(int(110 * 8)):
        stamp = frame / 8
        persons = [_tracked(i, 40.0, '' if i not in embedded else None)
                   for i, (start, end) in stays.items() if start <= stamp < end]
        for track_id in scheduler.select(stamp, persons):
            found = rng.random() < 0.5
            scheduler.record(track_id, stamp, GOOD if found else 0.0)
            if found:
                embedded.add(track_id)
    return len(embedded) / len(stays)


def test_everyone_in_view_for_a_second_gets_a_face() -> None:
    """A crowd at 8 detections/s, 2 faces a frame, faces found one try in two.

    Coverage as in issue 9: every person in view for at least 1 s gets a usable embedding.
    200 people arrive at random over 100 s and stay 1 to 5 s, up to 14 at once. Retrying
    after retry_s (0.5 s after a miss) reaches 96-98 % over three crowds; retrying after
    2 s (4 s after a miss), as rarely as refresh_s, 53-56 %.
    """
    for seed in range(3):
        assert _coverage(seed, retry_s=0.25) >= 0.95
        assert _coverage(seed, retry_s=2.0) <= 0.8


def test_bad_settings_are_refused() -> None:
    """Non-positive refresh, ratio <= 1, an empty budget, bad retry or quality: ValueError."""
    for kwargs in ({'refresh_s': 0.0}, {'better_box_ratio': 1.0}, {'max_per_frame': 0},
                   {'retry_s': -1.0}, {'usable_quality': 1.5}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            EmbeddingScheduler(**kwargs)
