"""The identity evaluation's own parts: composed clips and their truth, and the metrics.

The metrics are checked on synthetic tracks whose errors are known (a swap, a flap, a wrong
RETURNED, a missed face), so a harness that stopped counting one would fail here.
"""

from dataclasses import replace
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from facetrack_ros.evaluation.clips import (ClipTruth, compose, decode_frame_number,
                                            encode_frame_number, frame_numbers)
from facetrack_ros.evaluation.identity import (appearances, EventRecord, evaluate, face_owner,
                                               FaceRecord, LATE_OUT_S, match_boxes, Present, Shot,
                                               TrackBox, Truth, truth_from_shots)
from facetrack_ros.evaluation.photos import (MULTI_FACE_PHOTOS, photo_path, PHOTO_IDENTITIES,
                                             read_master_pairs)
from facetrack_ros.evaluation.scenes import SCENES

FPS = 10.0
A_BOX, B_BOX, C_BOX = (0.0, 0.0, 10.0, 20.0), (30.0, 0.0, 40.0, 20.0), (60.0, 0.0, 70.0, 20.0)


def _truth() -> Truth:
    """Return A in view frames 0-99 (face 60 px), B 0-59 (face 60 px), C 100-139."""
    frames = []
    for index in range(140):
        persons = []
        if index < 100:
            persons.append(Present('A', A_BOX, 1.0, 60.0, 1.0))
        if index < 60:
            persons.append(Present('B', B_BOX, 1.0, 60.0, 1.0))
        if index >= 100:
            persons.append(Present('C', C_BOX, 1.0, 20.0, 1.0))
        frames.append(persons)
    return Truth('synthetic', FPS, frames, ['A', 'B', 'C'])


def _event(frame: int, kind: str, person: str, box: tuple, track: int) -> EventRecord:
    return EventRecord(frame, kind, person, track, box, 1000.0 + frame / FPS + 0.5)


def test_a_swap_is_counted_as_switches_and_merged_ids() -> None:
    """ByteTrack-style swap at frame 30: A and B each change id once, both ids span two."""
    tracks = []
    for frame in range(0, 60, 2):
        tracks.append(TrackBox(frame, 1, 'p1' if frame < 30 else 'p2', A_BOX))
        tracks.append(TrackBox(frame, 2, 'p2' if frame < 30 else 'p1', B_BOX))
    report = evaluate(_truth(), tracks, [], [])
    assert report.id_switches == 2, report.details
    assert report.merged_ids == 2, report.details
    assert report.flaps == 0 and report.wrong_returned == 0


def test_a_flap_a_wrong_returned_and_a_missed_face_are_counted() -> None:
    """A is reported OUT while in view; B's id comes back on C; only A's face is embedded."""
    tracks = [TrackBox(f, 1, 'p1', A_BOX) for f in range(0, 100, 2)]
    tracks += [TrackBox(f, 2, 'p2', B_BOX) for f in range(0, 60, 2)]
    tracks += [TrackBox(f, 3, 'p2', C_BOX) for f in range(110, 140, 2)]
    events = [_event(4, 'PERSON_IN', 'p1', A_BOX, 1), _event(4, 'PERSON_IN', 'p2', B_BOX, 2),
              _event(50, 'PERSON_OUT', 'p1', A_BOX, 1),        # A is in view: a flap
              _event(52, 'PERSON_RETURNED', 'p1', A_BOX, 1),
              _event(80, 'PERSON_OUT', 'p2', B_BOX, 2),        # B left at 59: not a flap
              _event(110, 'PERSON_RETURNED', 'p2', C_BOX, 3)]  # p2 was B: wrong
    faces = [FaceRecord(10, 1, 'p1', A_BOX)]
    stamps = [1000.0 + i / FPS for i in range(140)]
    report = evaluate(_truth(), tracks, events, faces, stamps)
    assert report.real_persons == 3
    assert (report.person_in, report.returned, report.person_out) == (2, 2, 2)
    assert report.flaps == 1, report.details
    assert report.wrong_returned == 1, report.details
    assert report.merged_ids == 1, report.details      # p2 on B, then on C
    assert report.id_switches == 0, report.details
    # A (frames 0-99) and B (0-59) had a 60 px face for over a second, only A's was embedded;
    # C's face is 20 px.
    assert (report.faces_eligible, report.faces_covered) == (2, 1)
    assert report.face_coverage == 0.5
    # INs 0.5 s after frame 4 for appearances starting at 0; C's RETURNED 1.0 s after 100.
    assert report.latency_in == pytest.approx([0.9, 0.9, 1.5])
    # B's OUT at frame 80, 0.5 s late, B last in view at 59.
    assert report.latency_out == pytest.approx([(80 - 59) / FPS + 0.5])
    # The probe missed frames 0-9 and 55-65 (a busy machine): their stamps are estimated.
    missed = [math.nan if i < 10 or 55 <= i <= 65 else stamp for i, stamp in enumerate(stamps)]
    estimated = evaluate(_truth(), tracks, events, faces, missed)
    assert estimated.latency_in == pytest.approx(report.latency_in)
    assert estimated.latency_out == pytest.approx(report.latency_out)


@pytest.mark.parametrize('returned_on', ['B', 'A'])
def test_an_id_is_whom_its_faces_show_not_whom_it_was_shown_on(returned_on: str) -> None:
    """At a low rate an id founded by B's face is shown on A twice, never on B.

    B's own track showed no id while pending; the face decided p1 after the track had
    moved on, and ByteTrack carried p1 onto A for two frames. p1 is B: its OUT after B left
    is no flap (though A, on whom it was last shown, is in view), and its RETURNED on B when
    B comes back is right; on A it is wrong.
    """
    frames = [[Present('A', A_BOX, 1.0, 60.0, 1.0)]
              + ([Present('B', B_BOX, 1.0, 60.0, 1.0)] if f < 40 or f >= 80 else [])
              for f in range(140)]
    truth = Truth('doorway-like', FPS, frames, ['A', 'B'])
    tracks = [TrackBox(f, 1, 'p1' if f in (20, 22) else 'p0', A_BOX) for f in range(0, 140, 2)]
    tracks += [TrackBox(f, 2, '', B_BOX) for f in range(0, 40, 2)]
    returned_box = B_BOX if returned_on == 'B' else A_BOX
    events = [_event(4, 'PERSON_IN', 'p0', A_BOX, 1), _event(10, 'PERSON_IN', 'p1', B_BOX, 2),
              _event(64, 'PERSON_OUT', 'p1', A_BOX, 1),
              _event(84, 'PERSON_RETURNED', 'p1', returned_box, 3)]
    faces = [FaceRecord(10, 2, 'p1', B_BOX), FaceRecord(12, 2, 'p1', B_BOX)]
    report = evaluate(truth, tracks, events, faces)
    assert report.flaps == 0, report.details
    assert report.wrong_returned == (returned_on == 'A'), report.details


def test_clean_tracks_count_no_error() -> None:
    """One id per person, OUTs after they left: nothing to report."""
    tracks = [TrackBox(f, 1, 'p1', A_BOX) for f in range(0, 100, 3)]
    tracks += [TrackBox(f, 2, 'p2', B_BOX) for f in range(0, 60, 3)]
    tracks += [TrackBox(f, 3, 'p3', C_BOX) for f in range(100, 140, 3)]
    events = [_event(3, 'PERSON_IN', 'p1', A_BOX, 1), _event(3, 'PERSON_IN', 'p2', B_BOX, 2),
              _event(82, 'PERSON_OUT', 'p2', B_BOX, 2), _event(103, 'PERSON_IN', 'p3', C_BOX, 3),
              _event(122, 'PERSON_OUT', 'p1', A_BOX, 1)]
    report = evaluate(_truth(), tracks, events, [])
    assert (report.flaps, report.wrong_returned, report.id_switches, report.merged_ids) == (
        0, 0, 0, 0), report.details
    assert report.in_per_person == 1.0
    assert report.track_recall == 1.0


def test_a_late_out_is_named_in_the_details() -> None:
    """An OUT received over LATE_OUT_S after its person left is listed; one on time is not."""
    tracks = [TrackBox(f, 1, 'p1', A_BOX) for f in range(0, 100, 3)]
    tracks += [TrackBox(f, 2, 'p2', B_BOX) for f in range(0, 60, 3)]
    late = EventRecord(80, 'PERSON_OUT', 'p2', 2, B_BOX, 1000.0 + 59 / FPS + LATE_OUT_S + 1.0)
    events = [_event(3, 'PERSON_IN', 'p1', A_BOX, 1), _event(3, 'PERSON_IN', 'p2', B_BOX, 2),
              late, _event(122, 'PERSON_OUT', 'p1', A_BOX, 1)]
    report = evaluate(_truth(), tracks, events, [], [1000.0 + i / FPS for i in range(140)])
    assert report.latency_out == pytest.approx([LATE_OUT_S + 1.0, (122 - 99) / FPS + 0.5])
    assert [d for d in report.details if d.startswith('late OUT')] == [
        f'late OUT: p2 (B) at frame 80, {LATE_OUT_S + 1.0:.2f} s after B left at frame 59']
    # The same OUT made by the input's end (B left shortly before it) is no latency.
    stalled = EventRecord(80, 'PERSON_OUT', 'p2', 2, B_BOX, late.received, 'INPUT_STALLED')
    report = evaluate(_truth(), tracks, [stalled if e is late else e for e in events], [],
                      [1000.0 + i / FPS for i in range(140)])
    assert report.latency_out == pytest.approx([(122 - 99) / FPS + 0.5])
    assert not [d for d in report.details if d.startswith('late OUT')]


def test_an_out_soon_after_leaving_is_no_flap_one_in_an_occlusion_is() -> None:
    """B left after frame 59: an OUT at 76 (lost at 56, 2 s later) is right, however soon.

    A is hidden in frames 40-54 (1.5 s, one appearance): an OUT at 50 is a flap.
    """
    truth = _truth()
    for index in range(40, 55):
        truth.frames[index] = [p for p in truth.frames[index] if p.identity != 'A']
    tracks = [TrackBox(f, 1, 'p1', A_BOX) for f in range(0, 40, 2)]
    tracks += [TrackBox(f, 2, 'p2', B_BOX) for f in range(0, 57, 2)]
    events = [_event(4, 'PERSON_IN', 'p1', A_BOX, 1), _event(4, 'PERSON_IN', 'p2', B_BOX, 2),
              _event(76, 'PERSON_OUT', 'p2', B_BOX, 2)]
    assert evaluate(truth, tracks, events, []).flaps == 0
    events.append(_event(50, 'PERSON_OUT', 'p1', A_BOX, 1))
    report = evaluate(truth, tracks, events, [])
    assert report.flaps == 1 and 'OUT p1 at frame 50' in report.details[0], report.details


def test_an_out_that_comes_after_the_person_left_and_came_back_is_no_flap() -> None:
    """An OUT of someone who left and is back, or judged by a stale box, is no flap.

    A is out of view in frames 40-69 (3 s: two appearances); the OUT of the id last seen on
    A at 38 comes at 72, after A came back: late, not a flap. An id named only after its
    track was lost is judged by whom that track showed, not by its stale box's overlap with
    whoever stands there at the OUT (hamilton: Miranda's box after a cut to a close-up).
    """
    truth = _truth()
    for index in range(40, 70):
        truth.frames[index] = [p for p in truth.frames[index] if p.identity != 'A']
    tracks = [TrackBox(f, 1, 'p1', A_BOX) for f in range(0, 40, 2)]
    events = [_event(4, 'PERSON_IN', 'p1', A_BOX, 1),
              _event(72, 'PERSON_OUT', 'p1', A_BOX, 1)]
    assert evaluate(truth, tracks, events, []).flaps == 0
    in_occlusion = [events[0], _event(60, 'PERSON_OUT', 'p1', A_BOX, 1)]
    assert evaluate(_truth(), tracks, in_occlusion, []).flaps == 1  # A never left
    pending = [TrackBox(f, 2, '', B_BOX) for f in range(0, 30, 2)]  # B's track, then lost
    late = [_event(40, 'PERSON_IN', 'p2', B_BOX, 2), _event(90, 'PERSON_OUT', 'p2', A_BOX, 2)]
    report = evaluate(_truth(), pending, late, [])
    assert report.flaps == 0, report.details  # B left at 59; A, in view at 90, is not p2


def test_an_appearance_given_no_event_is_named_in_the_details() -> None:
    """A leaves in frames 40-69 (3 s) and comes back under p1, but no OUT or RETURNED came.

    Such a run has one event fewer than the truth without any count showing it: the
    details name the appearance. With the OUT and the RETURNED, or with A never shown with
    an id again, they do not.
    """
    truth = _truth()
    for index in range(40, 70):
        truth.frames[index] = [p for p in truth.frames[index] if p.identity != 'A']
    tracks = [TrackBox(f, 1, 'p1', A_BOX) for f in [*range(0, 40, 2), *range(70, 100, 2)]]
    events = [_event(4, 'PERSON_IN', 'p1', A_BOX, 1)]

    def unannounced(report) -> list[str]:
        return [d for d in report.details if d.startswith('unannounced')]

    assert unannounced(evaluate(truth, tracks, events, [])) == [
        'unannounced: A frames 70-99 shown as [\'p1\'], with no IN or RETURNED']
    told = events + [_event(62, 'PERSON_OUT', 'p1', A_BOX, 1),
                     _event(72, 'PERSON_RETURNED', 'p1', A_BOX, 1)]
    assert unannounced(evaluate(truth, tracks, told, [])) == []
    unnamed = [replace(t, person_id='') if t.frame >= 70 else t for t in tracks]
    assert unannounced(evaluate(truth, unnamed, events, [])) == []


def test_a_track_announced_after_it_vanished_is_whom_its_last_box_showed() -> None:
    """B's pending track vanishes at frame 48; B walks on on a new track, shown p2 from 52.

    The tracker announces p2 at frame 50 on the vanished track (a slow rate: a track is
    known to have vanished only in the next frame), with its last box, where nobody stands
    at frame 50. That PERSON_IN is B's: no appearance goes unannounced.
    """
    truth = _truth()
    for index in range(50, 60):
        truth.frames[index] = [replace(p, box=C_BOX) if p.identity == 'B' else p
                               for p in truth.frames[index]]
    tracks = [TrackBox(f, 1, 'p1', A_BOX) for f in range(0, 60, 2)]
    tracks += [TrackBox(f, 2, '', B_BOX) for f in range(0, 50, 2)]
    tracks += [TrackBox(f, 3, 'p2' if f >= 52 else '', C_BOX) for f in range(50, 60, 2)]
    events = [_event(4, 'PERSON_IN', 'p1', A_BOX, 1), _event(50, 'PERSON_IN', 'p2', B_BOX, 2)]
    report = evaluate(truth, tracks, events, [])
    assert report.person_in == 2
    assert not [d for d in report.details if d.startswith('unannounced')], report.details
    assert report.merged_ids == 0 and report.wrong_returned == 0


def test_out_after_the_clip_ended_is_no_flap() -> None:
    """People in view at the end leave with the input: their OUT is not a flap."""
    tracks = [TrackBox(f, 3, 'p3', C_BOX) for f in range(100, 140, 3)]
    events = [_event(103, 'PERSON_IN', 'p3', C_BOX, 3),
              _event(145, 'PERSON_OUT', 'p3', C_BOX, 3)]
    assert evaluate(_truth(), tracks, events, []).flaps == 0


def test_an_out_for_the_input_end_at_the_last_processed_frame_is_no_flap() -> None:
    """C is in view to the clip's end; the detector's last frame was 138, not 139.

    The tracker stamps the OUTs of the input's end at its last frame: no flap. The same OUT
    for LEFT_VIEW, or one for a stall after which frames came again, is one.
    """
    tracks = [TrackBox(f, 3, 'p3', C_BOX) for f in range(100, 139, 2)]
    events = [_event(102, 'PERSON_IN', 'p3', C_BOX, 3)]
    for reason, flaps in (('INPUT_STALLED', 0), ('SHUTDOWN', 0), ('LEFT_VIEW', 1)):
        out = replace(_event(138, 'PERSON_OUT', 'p3', C_BOX, 3), reason=reason)
        assert evaluate(_truth(), tracks, [*events, out], []).flaps == flaps, reason
    stalled = replace(_event(120, 'PERSON_OUT', 'p3', C_BOX, 3), reason='INPUT_STALLED')
    report = evaluate(_truth(), tracks, [*events, stalled], [])
    assert report.flaps == 1 and 'OUT p3 at frame 120' in report.details[0], report.details


def test_an_out_of_an_id_recognised_as_someone_known_is_no_flap() -> None:
    """C came in under a new id (p4) and was recognised as p3 at frame 120: a switch.

    The OUT of p4 says so (RECOGNISED): nobody was reported gone. For LEFT_VIEW it is a flap.
    """
    tracks = [TrackBox(f, 3, 'p4' if f < 120 else 'p3', C_BOX) for f in range(100, 140, 2)]
    events = [_event(102, 'PERSON_IN', 'p4', C_BOX, 3),
              _event(120, 'PERSON_RETURNED', 'p3', C_BOX, 3)]
    for reason, flaps in (('RECOGNISED', 0), ('LEFT_VIEW', 1)):
        out = replace(_event(120, 'PERSON_OUT', 'p4', C_BOX, 3), reason=reason)
        report = evaluate(_truth(), tracks, [*events, out], [])
        assert (report.flaps, report.id_switches) == (flaps, 1), (reason, report.details)


def test_a_face_filed_under_someone_elses_id_is_counted() -> None:
    """B's faces under A's id, for fewer frames than a merge, are misfiled; A's own are not."""
    tracks = [TrackBox(f, 1, 'p1', A_BOX) for f in range(0, 60, 2)]
    faces = [FaceRecord(f, 1, 'p1', A_BOX) for f in (10, 12, 14)]
    faces += [FaceRecord(f, 2, 'p1', B_BOX) for f in (20, 22)]  # B's box, A's id
    faces += [FaceRecord(24, 2, '', B_BOX)]                     # pending: no id
    report = evaluate(_truth(), tracks, [], faces)
    assert report.misfiled_faces == 2, report.details
    assert report.merged_ids == 0, report.details
    assert any(line.startswith('misfiled: 2 face(s) of B under p1 (A)')
               for line in report.details), report.details
    faces[3:5] = [replace(face, person_id='p2') for face in faces[3:5]]
    assert evaluate(_truth(), tracks, [], faces).misfiled_faces == 0


def test_a_box_shown_under_someone_elses_id_for_a_frame_or_two_is_counted() -> None:
    """B shown with A's id for two frames (too few for a merge) gives two wrong-id boxes.

    The id is whom its faces say, not whom its boxes show most: p2 shown on A (40 boxes)
    more often than on B (28), but its face is B's, makes A's boxes the wrong ones.
    """
    tracks = [TrackBox(f, 1, 'p1', A_BOX) for f in range(0, 60, 2)]
    tracks += [TrackBox(f, 2, 'p1' if f in (30, 32) else 'p2', B_BOX) for f in range(0, 60, 2)]
    report = evaluate(_truth(), tracks, [], [])
    assert (report.wrong_id_boxes, report.merged_ids) == (2, 0), report.details
    assert 'wrong-id boxes: 2 of B under p1 (A), first frame 30, last 32' in report.details
    assert evaluate(_truth(), tracks[:30], [], []).wrong_id_boxes == 0
    shown_on_a = [TrackBox(f, 3, 'p2', A_BOX) for f in range(60, 100)]
    assert evaluate(_truth(), tracks + shown_on_a, [], []).wrong_id_boxes == 2 + 28
    report = evaluate(_truth(), tracks + shown_on_a, [], [FaceRecord(10, 2, 'p2', B_BOX)])
    assert report.wrong_id_boxes == 2 + 40, report.details


def test_boxes_shown_with_no_id_after_an_id_are_counted_per_appearance() -> None:
    """A shows no id at first (pending), then p1, then no id for 3 frames (doubt): 3 withheld.

    Boxes with no id before any id was shown are a pending track, not a withheld id; the id
    comes back after the gap, so no switch is counted for the gap itself. B, shown A's id
    p1 for 3 frames and then no id, had no id of their own withheld: those are wrong-id
    boxes, and hiding the id then is no cost.
    """
    def shown(frame: int) -> str:
        if frame < 10 or 30 <= frame < 36:
            return ''
        return 'p1' if frame < 50 else 'p3'
    tracks = [TrackBox(f, 1, shown(f), A_BOX) for f in range(0, 60, 2)]
    tracks += [TrackBox(f, 2, 'p1' if f < 6 else '', B_BOX) for f in range(0, 20, 2)]
    report = evaluate(_truth(), tracks, [], [])
    assert report.withheld_id_boxes == 3, report.details
    assert (report.id_switches, report.wrong_id_boxes) == (1, 3), report.details
    assert 'withheld: 3 boxes of A frames 0-99 shown with no id after p1' in report.details
    assert evaluate(_truth(), [t for t in tracks if t.frame >= 36], [], []
                    ).withheld_id_boxes == 0


def test_a_face_is_whose_face_box_holds_it_else_whose_box_it_was_found_in() -> None:
    """In a crossing A's face lies in B's box: A's, by the truth's face boxes; else B's."""
    a = Present('A', (0.0, 0.0, 40.0, 100.0), 1.0, 20.0, 1.0, (10.0, 0.0, 30.0, 20.0))
    b = Present('B', (20.0, 0.0, 60.0, 100.0), 1.0, 20.0, 1.0, (35.0, 0.0, 55.0, 20.0))
    in_b = FaceRecord(0, 2, 'p2', b.box, (12.0, 2.0, 28.0, 18.0))
    assert face_owner([a, b], in_b) == 'A'
    assert face_owner([a, b], replace(in_b, face_box=None)) == 'B'
    assert face_owner([a, b], replace(in_b, face_box=(70.0, 0.0, 80.0, 10.0))) == 'B'
    assert face_owner([replace(a, face_box=None), b], in_b) == 'B'
    assert face_owner([replace(a, face_visible=0.0), b], in_b) == 'B', 'A hidden: not A\'s'


def test_appearances_join_occlusions_and_split_exits() -> None:
    """A gap under ABSENCE_S is one appearance; a longer one makes two."""
    frames = [[Present('A', A_BOX)] if (i < 10 or 25 <= i < 40 or i >= 70) else []
              for i in range(80)]
    spans = appearances(Truth('t', FPS, frames, ['A']))
    assert spans == {'A': [(0, 39), (70, 79)]}


def test_by_eye_shots_identify_boxes() -> None:
    """A one-person shot gives every box to them; a shot with boxes matches by IoU."""
    truth = truth_from_shots('eye', FPS, 30, [
        Shot(0, 9, ('A', 'B'), boxes={'A': A_BOX, 'B': B_BOX}), Shot(10, 29, ('A',))])
    anywhere = (100.0, 100.0, 150.0, 200.0)
    tracks = [TrackBox(f, 1, 'p1', A_BOX) for f in range(0, 10)]
    tracks += [TrackBox(f, 2, 'p2', B_BOX) for f in range(0, 10)]
    tracks += [TrackBox(f, 1, 'p1', anywhere) for f in range(10, 30)]
    report = evaluate(truth, tracks, [], [])
    assert (report.merged_ids, report.id_switches) == (0, 0), report.details
    # B's id on a larger box, so on the only person of shot 2 (A), for 6 frames: merged, and A
    # switched ids twice (p1 -> p2 -> p1).
    tracks += [TrackBox(f, 3, 'p2', (90.0, 90.0, 160.0, 210.0)) for f in range(20, 26)]
    report = evaluate(truth, tracks, [], [])
    assert (report.merged_ids, report.id_switches) == (1, 2), report.details


def test_match_boxes_is_one_to_one() -> None:
    """Each truth box takes at most one box, the best overlapping."""
    truth = [A_BOX, B_BOX]
    boxes = [(1.0, 0.0, 11.0, 20.0), (0.0, 0.0, 10.0, 20.0), (31.0, 0.0, 41.0, 20.0)]
    assert match_boxes(truth, boxes) == {1: 0, 2: 1}


def test_a_box_over_two_overlapping_people_is_the_one_in_view() -> None:
    """Someone walks in front of a person they hide: the one box is the one in front.

    By IoU alone it is the hidden person's (crossing clip: Aniston in front of Johansson,
    visible 0.25, who then counted as wearing Aniston's id); weighed by how much of each is
    in view, it is Aniston's. With a box for each, each keeps theirs.
    """
    hidden, front = (10.0, 0.0, 40.0, 60.0), (14.0, 0.0, 46.0, 60.0)
    box = (11.0, 0.0, 41.0, 60.0)
    assert match_boxes([hidden, front], [box]) == {0: 0}
    assert match_boxes([hidden, front], [box], visible=[0.25, 1.0]) == {0: 1}
    assert match_boxes([hidden, front], [front, hidden], visible=[0.25, 1.0]) == {0: 1, 1: 0}


@pytest.mark.parametrize('number', [0, 1, 1234, 65535])
def test_frame_numbers_survive_jpeg(number: int) -> None:
    """The corner code decodes after JPEG compression; a plain corner decodes to None."""
    image = np.full((64, 256, 3), 120, np.uint8)
    encode_frame_number(image, number)
    ok, data = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok
    assert decode_frame_number(cv2.imdecode(data, cv2.IMREAD_COLOR)) == number
    assert decode_frame_number(np.full((64, 256, 3), 120, np.uint8)) is None


def test_photo_labels_reproduce_master_csv(shared_dir: Path) -> None:
    """The identities of img1..img25 give master.csv's 300 decisions exactly."""
    pairs = read_master_pairs(shared_dir)
    assert len(pairs) == 300
    for pair in pairs:
        same = PHOTO_IDENTITIES[pair.first] == PHOTO_IDENTITIES[pair.second]
        assert same == pair.same, pair
    for key in [*PHOTO_IDENTITIES, *MULTI_FACE_PHOTOS]:
        assert photo_path(shared_dir, key).is_file(), key


@pytest.fixture(scope='module')
def short_clip(shared_dir: Path, tmp_path_factory):
    """Compose the short scene into a fresh folder."""
    return compose(SCENES['short'], shared_dir, tmp_path_factory.mktemp('clips'))


def test_composed_clip_matches_its_truth(short_clip, shared_dir: Path, tmp_path: Path) -> None:
    """Every frame is numbered, the truth has a line per frame, and composing is repeatable."""
    truth = ClipTruth.read(short_clip.truth)
    numbers = frame_numbers(short_clip.video)
    assert numbers == list(range(len(truth.frames))) and len(numbers) == 80
    assert truth.identities == ['biden', 'obama']
    # Obama stands from 2.5 s on; Biden passes behind him, so he is partly hidden a while.
    assert all(any(p.identity == 'obama' and p.visible > 0.9 for p in frame)
               for frame in truth.frames[25:])
    assert min(p.visible for frame in truth.frames for p in frame
               if p.identity == 'biden' and 0.3 < p.face_box[0] / 640 < 0.5) < 0.6
    for frame in truth.frames:
        for person in frame:
            x1, y1, x2, y2 = person.box
            assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 360
            assert person.face_px in (70.0, 60.0)
    again = compose(SCENES['short'], shared_dir, tmp_path, short_clip.video.parent / 'sprites')
    assert again.truth.read_text() == short_clip.truth.read_text()
    first, second = (cv2.VideoCapture(str(c.video)) for c in (short_clip, again))
    for _ in range(5):
        assert np.array_equal(first.read()[1], second.read()[1])
