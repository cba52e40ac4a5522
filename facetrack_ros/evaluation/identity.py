"""Identity metrics of a tracker run against per-frame ground truth (ROS-free).

What the graph published (tracks, events, identified faces, each placed on a frame of the
clip) is matched to the truth of that frame by box overlap, and counted:

- real persons: identities in the truth; PERSON_IN per real person: INs over that.
- who a person id is: the real person most of the faces identified under it so far were
  taken from (whom a search by the id finds), or, before any, the one it was shown on most
  (for an OUT: last).
- flaps: PERSON_OUTs of a person who had not left: the OUT falls inside the appearance of
  the id's real person in which the id last showed them or had their face (in view, or out
  of view for less than ABSENCE_S and back; the IN or RETURNED that follows is the other
  half of the flap). An OUT after the person left is no flap, however soon, nor one that
  comes after they are back.
  OUTs sent after the clip's last frame (the input ended) are not flaps, nor OUTs that say
  the input ended (INPUT_STALLED, SHUTDOWN) stamped at the last frame the graph processed:
  the tracker stamps them there, before the clip's last frame when the detector skipped the
  last ones. Nor is an OUT that says the id was someone known (RECOGNISED): nobody was
  reported gone, their appearance goes on under that person's id (an id switch).
- wrong RETURNED: a PERSON_RETURNED whose box is a different real person than the one the
  person id was until then (one id given to a second real person).
- merged ids: person ids seen on two or more real persons, each for at least MERGE_MIN_FRAMES
  processed frames.
- id switches: while a real person stays in view (an appearance), the person id on them
  changes from one id to another (track-to-truth matching by IoU, as CLEAR-MOT counts).
- unannounced appearances (a detail line, not counted): an appearance the tracker showed
  with a person id but gave no PERSON_IN or PERSON_RETURNED, say because no OUT came since
  the appearance before.
- misfiled faces: faces published with a person id whose real person is not the one most of
  that id's faces were taken from (a search by the id finds them: it returns someone else);
  of two equally many, the one filed first. A face is whose face box holds it (face_owner).
- wrong-id boxes: boxes published on one real person with a person id that stands for
  another: the one most of the id's faces were taken from, or, for an id without faces, the
  one it was shown on most. Merged ids count only ids shown on a second person for
  MERGE_MIN_FRAMES frames; this counts every such box, a frame or two at a crossing too.
- withheld-id boxes: boxes published on a real person with no person id after their own id
  (one that stands for them) had been shown on them in the same appearance: what the
  tracker's caution costs (an id held back from a track in doubt, contradicted or handed
  over, which may have been carried onto someone else, until a face confirms it; or not
  yet given to a new track of theirs).
- face coverage: appearances with at least a second in view with a face of FACE_MIN_PX or
  more (nearly unoccluded), over those for which at least one face embedding reached
  identified_faces with a person id.
- latency: from the first frame a person is in view to the receipt of their IN or RETURNED,
  and from the last frame in view to the receipt of their OUT [s] (an OUT for the input's end,
  INPUT_STALLED or SHUTDOWN, is not counted: its time is the input's stall timeout). A frame
  whose stamp is unknown (the probe missed it on a busy machine) is stamped from the known
  ones: between two linearly, before the first and after the last at the clip's rate.
"""

import bisect
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
import statistics
from typing import Iterable, Sequence

import numpy as np

from facetrack_ros.evaluation.clips import ClipTruth

#: Out of view at least this long, a person has left [s]; shorter gaps are occlusions.
#: Equal to the tracker's default absence_timeout.
ABSENCE_S = 2.0
#: An OUT received later than this after the person left is listed in the details [s].
LATE_OUT_S = 3 * ABSENCE_S
#: PERSON_OUT reasons that end appearances because the input ended, not because anyone left.
INPUT_ENDED_REASONS = frozenset({'INPUT_STALLED', 'SHUTDOWN'})
#: PERSON_OUT reason of an id whose person was found to be someone known: nobody left.
RENAMED_REASON = 'RECOGNISED'
#: A truth person is in view from this visible fraction of their body on.
IN_VIEW_MIN = 0.3
#: Least IoU of a published box and a truth box to be the same person.
MATCH_IOU = 0.4
#: A person id on a second real person for at least this many processed frames is merged.
MERGE_MIN_FRAMES = 5
#: Face coverage: faces at least this high [px] and this visible, in view at least FACE_MIN_S.
FACE_MIN_PX = 40.0
FACE_MIN_VISIBLE = 0.9
FACE_MIN_S = 1.0


@dataclass(frozen=True)
class Present:
    """A real person in a frame. box None: where is unknown (by-eye truth of a shot).

    face_px 0 means the face size is unknown or there is no face to see; face_box None, where
    the face is unknown.
    """

    identity: str
    box: tuple[float, float, float, float] | None
    visible: float = 1.0
    face_px: float = 0.0
    face_visible: float = 0.0
    face_box: tuple[float, float, float, float] | None = None


@dataclass
class Truth:
    """Who is in view in each frame of a clip, at the clip's frame rate."""

    name: str
    fps: float
    frames: list[list[Present]]
    identities: list[str]

    @classmethod
    def from_clip(cls, clip: ClipTruth) -> 'Truth':
        """Convert the truth of a composed clip."""
        frames = [[Present(p.identity, p.box, p.visible, p.face_px, p.face_visible, p.face_box)
                   for p in persons] for persons in clip.frames]
        return cls(clip.name, clip.fps, frames, list(clip.identities))


@dataclass(frozen=True)
class Shot:
    """By-eye truth of a stretch of a real video.

    Frames first..last (inclusive) show these people the whole time. boxes, where given, say
    roughly where each one stands (a static shot); a shot of one person needs none.
    face_px: face heights seen in the shot [px].
    """

    first: int
    last: int
    people: tuple[str, ...]
    boxes: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    face_px: dict[str, float] = field(default_factory=dict)


def truth_from_shots(name: str, fps: float, frame_count: int, shots: Sequence[Shot]
                     ) -> Truth:
    """Build per-frame truth from by-eye shots."""
    frames: list[list[Present]] = [[] for _ in range(frame_count)]
    for shot in shots:
        for index in range(shot.first, min(shot.last, frame_count - 1) + 1):
            frames[index] = [Present(who, shot.boxes.get(who), 1.0, shot.face_px.get(who, 0.0),
                                     1.0) for who in shot.people]
    identities = sorted({who for shot in shots for who in shot.people})
    return Truth(name, fps, frames, identities)


@dataclass(frozen=True)
class TrackBox:
    """A person box the tracker published for a frame; person_id '' while pending."""

    frame: int
    track_id: int
    person_id: str
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class EventRecord:
    """A PersonEvent placed on a frame; received is the wall time it arrived [s].

    reason: the REASON_* name without its prefix (EventReason's names), '' when unknown.
    """

    frame: int
    kind: str
    person_id: str
    track_id: int
    box: tuple[float, float, float, float]
    received: float
    reason: str = ''


@dataclass(frozen=True)
class FaceRecord:
    """A face published on identified_faces for a frame: its person's box and its own."""

    frame: int
    track_id: int
    person_id: str
    box: tuple[float, float, float, float]
    face_box: tuple[float, float, float, float] | None = None


@dataclass
class ClipReport:
    """The metrics of one run on one clip (see the module doc). None: not measurable."""

    clip: str
    real_persons: int
    person_in: int
    returned: int
    person_out: int
    flaps: int | None
    wrong_returned: int | None
    merged_ids: int | None
    id_switches: int | None
    misfiled_faces: int | None
    wrong_id_boxes: int | None
    withheld_id_boxes: int | None
    faces_eligible: int | None
    faces_covered: int | None
    latency_in: list[float]
    latency_out: list[float]
    processed_frames: int
    track_recall: float | None
    details: list[str] = field(default_factory=list)
    #: Frames the graph processed (tracks messages), set by the harness; 0 when not known.
    detector_frames: int = 0

    @property
    def in_per_person(self) -> float:
        """PERSON_IN events per real person."""
        return self.person_in / max(self.real_persons, 1)

    @property
    def face_coverage(self) -> float | None:
        """Covered over eligible appearances, or None when none is eligible or measurable."""
        if not self.faces_eligible:
            return None
        return self.faces_covered / self.faces_eligible

    def as_dict(self) -> dict:
        """Plain types for JSON."""
        return {**asdict(self), 'in_per_person': self.in_per_person,
                'face_coverage': self.face_coverage}


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Return the IoU of two x1, y1, x2, y2 boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_boxes(truth: Sequence[Sequence[float]], boxes: Sequence[Sequence[float]],
                min_iou: float = MATCH_IOU, visible: Sequence[float] | None = None
                ) -> dict[int, int]:
    """Match boxes to truth boxes one to one, greedily by IoU.

    Return {box index: truth index} for the pairs with an IoU of at least min_iou.
    visible: the visible fraction of each truth person, to weigh the IoU by: a detector box
    over two people who overlap shows the one in front (see identify).
    """
    weights = [1.0] * len(truth) if visible is None else list(visible)
    pairs = sorted(((box_iou(t, b) * weights[ti], box_iou(t, b), bi, ti)
                    for ti, t in enumerate(truth) for bi, b in enumerate(boxes)),
                   reverse=True)
    matched: dict[int, int] = {}
    used: set[int] = set()
    for _, iou, bi, ti in pairs:
        if iou < min_iou:
            continue
        if bi not in matched and ti not in used:
            matched[bi] = ti
            used.add(ti)
    return matched


def identify(persons: Sequence[Present], boxes: Sequence[Sequence[float]]
             ) -> list[str | None]:
    """Return the real person behind each box of one frame, None where none matches.

    A frame whose truth has one person without a box (by-eye truth) gives them the largest
    box (the others are background figures or duplicates). Where two people overlap, one box
    over both is the one more in view: the box of someone walking in front of a person they
    hide (Clooney past Musk) is not the hidden person's.
    """
    if len(persons) == 1 and persons[0].box is None:
        if not boxes:
            return []
        largest = max(range(len(boxes)), key=lambda i: (boxes[i][2] - boxes[i][0])
                      * (boxes[i][3] - boxes[i][1]))
        return [persons[0].identity if i == largest else None for i in range(len(boxes))]
    located = [p for p in persons if p.box is not None]
    matched = match_boxes([p.box for p in located], boxes,
                          visible=[p.visible for p in located])
    return [located[matched[i]].identity if i in matched else None for i in range(len(boxes))]


def face_owner(persons: Sequence[Present], face: FaceRecord) -> str | None:
    """Return the real person a face was taken from, None where no one matches.

    Whose face it is where the truth knows where faces are: the person whose face box holds
    the face's centre, the nearest if several, among those whose face shows (in a crossing,
    one person's face inside another's box is theirs, and a face hidden behind it is no one's).
    Otherwise, or if no face box holds it, whose box it was found in.
    """
    if face.face_box is not None:
        x = (face.face_box[0] + face.face_box[2]) / 2
        y = (face.face_box[1] + face.face_box[3]) / 2
        holding = [p for p in persons if p.face_box is not None and p.face_visible > 0
                   and p.face_box[0] <= x <= p.face_box[2] and p.face_box[1] <= y <= p.face_box[3]]
        if holding:
            return min(holding, key=lambda p: (p.face_box[0] + p.face_box[2] - 2 * x) ** 2
                       + (p.face_box[1] + p.face_box[3] - 2 * y) ** 2).identity
    return identify(persons, [face.box])[0]


def appearances(truth: Truth) -> dict[str, list[tuple[int, int]]]:
    """Return each real person's appearances: (first, last) frames in view.

    Gaps shorter than ABSENCE_S are joined (occlusions, not exits).
    """
    seen: dict[str, list[int]] = defaultdict(list)
    for index, persons in enumerate(truth.frames):
        for person in persons:
            if person.visible >= IN_VIEW_MIN:
                seen[person.identity].append(index)
    gap = ABSENCE_S * truth.fps
    result = {}
    for identity, frames in seen.items():
        spans = [[frames[0], frames[0]]]
        for index in frames[1:]:
            if index - spans[-1][1] < gap:
                spans[-1][1] = index
            else:
                spans.append([index, index])
        result[identity] = [tuple(span) for span in spans]
    return result


def _within_appearance(spans: dict[str, list[tuple[int, int]]], identity: str,
                       frame: int, since: int | None = None) -> bool:
    """Whether frame lies inside one of identity's appearances (they had not left).

    since: a frame that appearance must hold too (they had not left since then).
    """
    start = frame if since is None else min(since, frame)
    return any(first <= start and frame <= last for first, last in spans.get(identity, []))


def _filled(stamps: Sequence[float], fps: float) -> np.ndarray:
    """Return stamps with every NaN estimated from the known ones (see the module doc)."""
    stamps = np.asarray(stamps, dtype=np.float64)
    known = np.flatnonzero(np.isfinite(stamps))
    if not len(known):
        return stamps
    frames = np.arange(len(stamps))
    filled = np.interp(frames, known, stamps[known])
    first, last = known[0], known[-1]
    filled[:first] = stamps[first] - (first - frames[:first]) / fps
    filled[last + 1:] = stamps[last] + (frames[last + 1:] - last) / fps
    return filled


def _latency(stamps: Sequence[float], frame: int, received: float) -> float | None:
    if 0 <= frame < len(stamps) and np.isfinite(stamps[frame]):
        return received - stamps[frame]
    return None


def evaluate(truth: Truth, tracks: Iterable[TrackBox], events: Iterable[EventRecord],
             faces: Iterable[FaceRecord], frame_stamps: Sequence[float] | None = None
             ) -> ClipReport:
    """Count the identity metrics of one run (see the module doc).

    frame_stamps: the capture stamp of each frame of the clip [s, same clock as the events'
    received times], for latencies; NaN where unknown (estimated from the others).
    """
    tracks, events, faces = list(tracks), list(events), list(faces)
    located = any(p.box is not None for persons in truth.frames for p in persons)
    last_frame = len(truth.frames) - 1
    details: list[str] = []

    # Who each published box is.
    by_frame: dict[int, list[TrackBox]] = defaultdict(list)
    for track in tracks:
        by_frame[track.frame].append(track)
    who: dict[tuple[int, int], str] = {}  # (frame, track id) -> real person
    person_frames: dict[str, Counter] = defaultdict(Counter)
    # real person -> (frame, person id) of every box shown on them; '' for no id
    timeline: dict[str, list[tuple[int, str]]] = defaultdict(list)
    hits = expected = 0
    for frame in sorted(by_frame):
        if not 0 <= frame <= last_frame:
            continue
        boxes = by_frame[frame]
        persons = truth.frames[frame]
        names = identify(persons, [b.box for b in boxes])
        for box, name in zip(boxes, names):
            if name is None:
                continue
            who[(frame, box.track_id)] = name
            timeline[name].append((frame, box.person_id))
            if box.person_id:
                person_frames[box.person_id][name] += 1
        if located:
            expected += sum(p.visible >= 0.5 for p in persons)
            hits += len({n for n in names if n})

    # track id -> the frames that showed it, ascending
    shown_in: dict[int, list[int]] = defaultdict(list)
    for frame in sorted(by_frame):
        for track in by_frame[frame]:
            shown_in[track.track_id].append(frame)

    def event_person(event: EventRecord) -> str | None:
        """Return the real person an IN or RETURNED event's box shows.

        A track announced in a frame that no longer shows it (it vanished at a slow rate)
        carries its last box: whom that box showed in its own frame.
        """
        if not 0 <= event.frame <= last_frame:
            return None
        frames = shown_in.get(event.track_id, [])
        index = bisect.bisect_right(frames, event.frame)
        if index and frames[index - 1] < event.frame:
            return who.get((frames[index - 1], event.track_id))
        name = identify(truth.frames[event.frame], [event.box])[0]
        return name or who.get((event.frame, event.track_id))

    spans = appearances(truth)
    # The graph's last processed frame, where the tracker stamps the OUTs of the input's end.
    input_end = max((t.frame for t in tracks), default=last_frame)
    kinds = Counter(e.kind for e in events)
    flaps = wrong = 0
    latency_in: list[float] = []
    latency_out: list[float] = []
    owner_so_far: dict[str, Counter] = defaultdict(Counter)
    # person id -> the real person it was last seen on, and the frame
    last_owner: dict[str, tuple[str, int]] = {}
    # track id -> (frame, real person) of its boxes, for ids named after their track was lost
    track_owner: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for (frame, track_id), name in sorted(who.items()):
        track_owner[track_id].append((frame, name))
    tracked = sorted(((t.frame, t.person_id, who.get((t.frame, t.track_id)))
                      for t in tracks if t.person_id), key=lambda x: x[0])
    # Who each identified face is. The faces counted for a person id say whom it stands for
    # (whom a search by it finds), more surely than the boxes shown with it: at a low rate an
    # id is founded by a face of a frame its track showed under another id, and a track
    # carried onto the next person shows it on them before their face takes it off.
    face_names = [(face, face_owner(truth.frames[face.frame], face))
                  for face in faces if face.person_id and 0 <= face.frame <= last_frame]
    counted = sorted(((face.frame, face.person_id, name) for face, name in face_names if name),
                     key=lambda x: x[0])
    faces_so_far: dict[str, Counter] = defaultdict(Counter)
    # (person id, real person) -> the latest frame the id was shown on them or had their face
    latest_on: dict[tuple[str, str], int] = {}
    position = face_position = 0
    stamps = _filled(frame_stamps, truth.fps) if frame_stamps is not None else []
    announced: set[tuple[str, int]] = set()
    for event in sorted(events, key=lambda e: (e.frame, e.received)):
        while position < len(tracked) and tracked[position][0] < event.frame:
            frame, pid, name = tracked[position]
            if name:
                owner_so_far[pid][name] += 1
                last_owner[pid] = (name, frame)
                latest_on[(pid, name)] = frame
            position += 1
        while face_position < len(counted) and counted[face_position][0] < event.frame:
            frame, pid, name = counted[face_position]
            faces_so_far[pid][name] += 1
            latest_on[(pid, name)] = max(frame, latest_on.get((pid, name), frame))
            face_position += 1
        if faces_so_far[event.person_id]:
            owner = faces_so_far[event.person_id].most_common(1)[0][0]
            owner_since: tuple[str, int | None] | None = (
                owner, latest_on[(event.person_id, owner)])
        else:
            owner_since = last_owner.get(event.person_id)
        if event.kind == 'PERSON_OUT':
            if event.reason == RENAMED_REASON:
                continue
            # An OUT's box is where the person was last seen, seconds before: who the id
            # was last seen on says who was reported gone, or who its track last showed.
            earlier = [(name, frame) for frame, name in track_owner.get(event.track_id, [])
                       if frame <= event.frame]
            name, since = owner_since or (
                earlier[-1] if earlier else (event_person(event), None))
            if name is None:
                continue
            ended = event.frame >= last_frame or (
                event.reason in INPUT_ENDED_REASONS and event.frame >= input_end)
            if not ended and _within_appearance(spans, name, event.frame, since):
                flaps += 1
                details.append(f'flap: OUT {event.person_id} at frame {event.frame}, '
                               f'{name} still in view')
                continue
            span = next((s for s in reversed(spans.get(name, [])) if s[1] <= event.frame),
                        None)
            # People still in view when the clip ends leave with the input, not by walking
            # out; nor is an OUT the input's end made (someone who left just before it, not
            # yet shown absent in enough frames) a measure of how soon absence is seen.
            if (span is not None and span[1] < last_frame - 1
                    and event.reason not in INPUT_ENDED_REASONS
                    and (name, span[0]) in announced):
                value = _latency(stamps, span[1], event.received)
                if value is not None:
                    latency_out.append(value)
                    if value > LATE_OUT_S:
                        details.append(f'late OUT: {event.person_id} ({name}) at frame '
                                       f'{event.frame}, {value:.2f} s after {name} left at '
                                       f'frame {span[1]}')
            continue
        name = event_person(event)
        before = faces_so_far[event.person_id] or owner_so_far[event.person_id]
        if name is None and before:
            name = before.most_common(1)[0][0]
        if event.kind == 'PERSON_RETURNED' and name is not None:
            if before and before.most_common(1)[0][0] != name:
                wrong += 1
                details.append(f'wrong RETURNED: {event.person_id} (was '
                               f'{before.most_common(1)[0][0]}) given to {name} at frame '
                               f'{event.frame}')
        if name is None:
            continue
        span = next((s for s in spans.get(name, []) if s[0] <= event.frame <= s[1]), None)
        if span is not None and (name, span[0]) not in announced:
            announced.add((name, span[0]))
            value = _latency(stamps, span[0], event.received)
            if value is not None:
                latency_in.append(value)

    merged = 0
    for pid, counts in person_frames.items():
        common = counts.most_common()
        if len(common) > 1 and common[1][1] >= MERGE_MIN_FRAMES:
            merged += 1
            details.append(f'merged: {pid} on {dict(counts)} frames')

    switches = 0
    for name, seq in timeline.items():
        for first, last in spans.get(name, []):
            ids = [pid for frame, pid in seq if first <= frame <= last and pid]
            if ids and (name, first) not in announced:
                details.append(f'unannounced: {name} frames {first}-{last} shown as '
                               f'{list(dict.fromkeys(ids))}, with no IN or RETURNED')
            changes = sum(a != b for a, b in zip(ids, ids[1:]))
            if changes:
                switches += changes
                details.append(f'switch: {name} frames {first}-{last}: '
                               f'{list(dict.fromkeys(ids))}')

    misfiled = 0
    filed: dict[str, Counter] = defaultdict(Counter)  # person id -> real persons of its faces
    for face, name in face_names:
        if name:
            filed[face.person_id][name] += 1
    # Whom each id stands for: whom most of its faces came from, else whom it was shown on
    # most (of two equally many, the first).
    owners = {pid: (filed.get(pid) or person_frames[pid]).most_common(1)[0][0]
              for pid in {*person_frames, *filed}}
    for pid, counts in filed.items():
        owner = owners[pid]
        for name, count in counts.items():
            if name != owner:
                misfiled += count
                details.append(f'misfiled: {count} face(s) of {name} under {pid} ({owner})')

    wrong_id = 0
    for pid, counts in person_frames.items():
        for name in counts:
            if name != owners[pid]:
                frames = [frame for frame, shown in timeline[name] if shown == pid]
                wrong_id += len(frames)
                details.append(f'wrong-id boxes: {len(frames)} of {name} under {pid} '
                               f'({owners[pid]}), first frame {frames[0]}, last {frames[-1]}')

    withheld = 0
    for name, seq in timeline.items():
        for first, last in spans.get(name, []):
            shown = [pid for frame, pid in seq if first <= frame <= last]
            own = next((i for i, pid in enumerate(shown) if pid and owners[pid] == name), None)
            without = 0 if own is None else shown[own:].count('')
            if without:
                withheld += without
                details.append(f'withheld: {without} boxes of {name} frames {first}-{last} '
                               f'shown with no id after {shown[own]}')

    eligible = covered = 0
    face_seen = defaultdict(list)
    for face, name in face_names:
        if name:
            face_seen[name].append(face.frame)
    need = int(round(FACE_MIN_S * truth.fps))
    for name, name_spans in spans.items():
        for first, last in name_spans:
            run = best = 0
            for index in range(first, last + 1):
                ok = any(p.identity == name and p.visible >= 0.5 and p.face_px >= FACE_MIN_PX
                         and p.face_visible >= FACE_MIN_VISIBLE for p in truth.frames[index])
                run = run + 1 if ok else 0
                best = max(best, run)
            if best >= need:
                eligible += 1
                if any(first <= f <= last for f in face_seen[name]):
                    covered += 1
                else:
                    details.append(f'no face: {name} frames {first}-{last}')

    if not any(truth.frames):  # counts only (by-eye totals without frames)
        flaps = wrong = merged = switches = misfiled = wrong_id = withheld = None
        eligible = covered = None
    return ClipReport(
        clip=truth.name, real_persons=len(truth.identities), person_in=kinds['PERSON_IN'],
        returned=kinds['PERSON_RETURNED'], person_out=kinds['PERSON_OUT'], flaps=flaps,
        wrong_returned=wrong, merged_ids=merged, id_switches=switches,
        misfiled_faces=misfiled, wrong_id_boxes=wrong_id, withheld_id_boxes=withheld,
        faces_eligible=eligible, faces_covered=covered,
        latency_in=latency_in, latency_out=latency_out, processed_frames=len(by_frame),
        track_recall=hits / expected if expected else None, details=details)


def spread(values: Sequence[float | None]) -> str:
    """Return 'min..max' (or the single value) of values, '-' when none is known."""
    known = [v for v in values if v is not None]
    if not known:
        return '-'
    low, high = min(known), max(known)

    def text(v: float) -> str:
        return f'{v:.0f}' if float(v).is_integer() else f'{v:.2f}'
    return text(low) if low == high else f'{text(low)}..{text(high)}'


def median(values: Sequence[float]) -> float | None:
    """Median of values, None when empty."""
    return statistics.median(values) if values else None
