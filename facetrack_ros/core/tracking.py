"""Person tracking: ByteTrack boxes, face identity and body cues, and PERSON_IN/OUT events.

ByteTrack (core.bytetrack) follows the person boxes from frame to frame by Kalman motion and
IoU. PersonTracker puts person ids on its tracks and says when people come and go:

- Presence rests on evidence only: time moves with the stamps of the frames passed to update()
  (camera time), never with the wall clock. A person is reported PERSON_OUT (LEFT_VIEW) once
  processed frames have not shown them for absence_timeout_s *and* in evidence_frames frames
  in a row, so a slow detector delays events and never creates them. end_appearances() ends
  every appearance for another reason (input stalled, shutdown); people still in place when
  input resumes come back under their ids.
- Identity rests on faces judged with their uncertainty (core.identity): a face too poor to
  decide is ignored; a match needs a margin over the next-best person; a decision needs two
  agreeing faces or one very good one; good faces that contradict a track split it. A track
  whose latest good face contradicts its person shows no person id meanwhile. ByteTrack may
  hand someone's track to a passer-by: their face on a new track elsewhere then waits (up to
  identity_max_wait_s) for a face on the old one, and takes their id back when it
  contradicts them. A person announced without a face whose faces then match someone known
  (come in facing away) was that one: PERSON_OUT (RECOGNISED) of the new id, and the known
  person's PERSON_RETURNED.
- Motion keeps identities between faces, bounded by the body cue (core.identity): a box that
  looks unlike its track (a camera cut, a ByteTrack swap) starts a new track, and its person
  can then be found again by face only; a new track that starts where a present person whose
  track was lost was heading, and looks like them, continues them (motion re-linking); a
  track never brings back someone who already left (the next person through a doorway).
  A lost track found again (or re-linked) looking less like a person with a known face than
  usual, or after it was missing from a processed frame for over half a second, is in doubt:
  it shows no person id and does not count as a sighting until a face confirms it or splits
  it off, so the next person through a door is never shown under the previous one's id on
  looks alone. Nor is it evidence of their absence, until a good face on it fails to confirm
  them: faces too poor to decide never end the doubt of someone who is still there. So are
  two named tracks whose new boxes look crossed, each more like the other's latest box:
  ByteTrack, matching by overlap alone, swapped two people who traded places.
- A slow detector loses walkers: a box that moved more than its width between two frames
  overlaps nothing, and ByteTrack never confirms a track of such boxes; nor does ByteTrack
  find a lost track again on boxes of low score. A box no track took that continues a
  missing person (as re-linking requires, within FOLLOW_MAX_GAP_S, or at any gap where they
  stood still, FOLLOW_STILL_IOU, or where their walk took them, FOLLOW_ON_COURSE) counts as
  a sighting of them, so they are not reported gone while they walk or after someone passed
  in front; so does a box on their course that ByteTrack gave to someone else's track in
  doubt, and a faint box (track_low_thresh or less, in no track) on their last box: someone
  standing whom a passer-by's nearness made faint. At a slow rate, where a walker moves a
  body width between frames, ByteTrack's box for a track one box old is a guess (whoever
  stands nearest), as is a box of another height than its track's trend foresees, a re-link
  to someone of no known walk who may be elsewhere, or to someone with a face missing from a
  whole processed frame: none shows an id until a face confirms it; a walker's faces on
  their successive new tracks vote together; and a track
  missing after two boxes, with a face that may decide, is announced then (with its faces),
  not at a third box that will not come; after one box, if that face found no one known and
  no new track may be the person walking on.
- One person may be several boxes (a post splits them in two, the detector doubles a box):
  a new track born beside a present person that is a part of their box, or that shows their
  face, takes their id without an event; the same face farther away is someone else, once
  no face on the person's track said otherwise. One box may be several people: the
  detector's box of two standing close is nobody new, and keeps a person whose own box it
  replaced present until it shrinks back to them; a person's box that someone vanished into
  (one stepped in front of the other) shows no id, and its faces may be either's, until the
  two part.
- Enrolled people (set_known_people, from the fleet) are matched like remembered ones, and
  then carry their enrolled name as person id.

Person ids are `<id_prefix>-<sequence>`, the sequence continuing across restarts through
snapshot()/restore() (core.tracker_state), so an id is never handed out twice.
"""

from collections import Counter, deque
import copy
from dataclasses import dataclass, field
import enum
import itertools
import math
import statistics
from typing import Sequence

import numpy as np

from facetrack_ros.core.bytetrack import ByteTrackMotion, ByteTrackSettings
from facetrack_ros.core.embedding import (cosine_similarity, DEFAULT_MIN_SIMILARITY,
                                          DLIB_EMBEDDING_DIM, l2_normalize,
                                          MIN_DECISION_QUALITY, validate_embedding)
from facetrack_ros.core.identity import (APPEARANCE_ADRIFT_RELINK_SIMILARITY,
                                         APPEARANCE_MAX_DROP, APPEARANCE_MIN_SIMILARITY,
                                         APPEARANCE_FIRST_MIN_SIMILARITY,
                                         APPEARANCE_HANDOVER_MIN_SIMILARITY,
                                         APPEARANCE_PENDING_MIN_SIMILARITY,
                                         APPEARANCE_REFIND_MAX_DROP,
                                         APPEARANCE_RELINK_MIN_SIMILARITY,
                                         APPEARANCE_STABILITY_SMOOTHING,
                                         APPEARANCE_SWAP_MIN_GAIN, appearance_similarity,
                                         blend_appearance, CONTRADICTION_MAX_SIMILARITY,
                                         decide, FaceVote, Gallery, HANDOVER_GAP_S,
                                         IdentityRules, judge_face, MATCH_MARGIN,
                                         STRONG_FACE_QUALITY, STRONG_MATCH_QUALITY,
                                         VoteKind)
from facetrack_ros.core.tracker_state import id_digest, PersonRecord, TrackerState

#: Faces of a track whose box overlaps another visible track's box by at least this IoU are
#: ignored: the face in the crop may be the other person's, which would poison embeddings.
AMBIGUOUS_BOX_IOU = 0.3
#: ... unless the face's own box lies this little inside every such box (as a part of its
#: area): a head is inside its person's box, so a face mostly outside theirs is not theirs
#: (the crossing replay at 5.5/s: every face of Musk in a box over him and Mayer was set
#: aside, and he was reported gone while in view).
FACE_OTHER_MAX_INSIDE = 0.25
#: ... or unless another face of that frame, apart from it, lies at least this much inside
#: that person's box: theirs (the face node searched both boxes and found two faces). The
#: crossing replay at 0.5/s: Mayer's faces (0.71, 0.82), in a box crossing Musk's, were set
#: aside beside Musk's own, and the walker, seen in two frames, got no face.
FACE_OWN_MIN_INSIDE = 0.5
#: A late frame's box shows a track's person when it overlaps the track's box this much.
LATE_MATCH_IOU = 0.5
#: Person ids are reserved this many at a time: the reservation is saved before any of them
#: is used, so a crash can skip ids but never hand one out twice.
ID_BLOCK = 16
#: Forgets remembered as taken (stamp, id digest): more than the history's announcements a
#: restarted tracker hears again (person_forgotten keeps 10).
FORGETS_REMEMBERED = 64

#: A pending track whose box and a present person's box (of this frame or the one before)
#: overlap by this much of the smaller one, and that looks like them, is a part of them: a
#: post or a passer-by split the detector's box of one person in two.
PART_MIN_OVERLAP = 0.85
#: ... and that spans at least this part of their box's height or width: the detector's second
#: box of one person keeps their scale (the upper body, one side), while a box small both ways
#: inside someone's box is a person farther away, seen past them.
PART_MIN_SPAN = 0.5
#: ... and whose top lies at most this much [their box's height] above theirs: a part of
#: someone is no taller than they are, while a person beside them whom the detector's box
#: of them took in is (the group clip at 8/s: Clooney walking in beside DiCaprio, his head
#: above DiCaprio's, was shown DiCaprio's id until his face came).
PART_MAX_RISE = 0.05
#: ... and whose area is at most this many times theirs: a box twice a person's size that
#: holds them holds someone else too (sizes_720p at 9/s: a box over Mayer and Biden walking
#: past her was taken for a part of Mayer, and carried her id onto Biden).
PART_MAX_GROWTH = 1.5
#: A person's box that shrank to at most this part of their widest box of the last
#: PART_MEMORY_S, and that makes that box up together with a new track's box (IoU at least
#: PART_UNION_MIN_IOU), was split in two by the detector: the new track is the other part.
#: (_join_parts: their box of the frame before counts while their box shrinks this much.)
PART_MAX_SHRINK = 0.8
PART_UNION_MIN_IOU = 0.8
#: The two parts overlap by at most this much of the smaller one: halves of one person lie
#: either side of what hides the middle (the alone clip's post: 0), while two people whom one
#: box held stand partly in front of each other (the group clip: 0.33, and the next person
#: was shown under the one beside him until a face split them). A pending track that overlaps
#: a person's box of this frame more is across them, not the rest of them (_join_parts).
PART_SPLIT_MAX_OVERLAP = 0.1
#: How long a person's widest box is kept to compare their shrunk box with [s], counted from
#: their last box that was a shrunk part of it (PART_MAX_SHRINK, PART_MIN_OVERLAP): behind a
#: post, one half of someone standing may go undetected for seconds before it becomes a
#: track (the alone clip at 5-9 detections/s: that half became a second person, who was
#: later reported gone while in view).
PART_MEMORY_S = 1.0
#: A new track whose box holds this much of each of two other tracks' boxes, and is their
#: union, is the detector's box of the two together, not a third person (crossing clip at
#: 5/s: such a box over Mayer and Musk became a person, reported gone as they stepped apart).
GROUP_INSIDE = 0.85
#: A named track's box at most this fraction as wide, or as tall, as its person's box of the
#: frame before, while it and another box of this frame lie at least SPLIT_MIN_INSIDE inside
#: that box, is one of two the detector split it into: the box before held someone else too
#: (_split_off).
SPLIT_MAX_SIZE = 0.75
SPLIT_MIN_INSIDE = 0.5
#: ... and the two boxes' widths (heights) add up to at least this many times its width
#: (height): two people side by side, or one before the other, overlap, while a post's two
#: halves of one person add up to less than it.
SPLIT_MIN_SIZES = 1.2
#: Boxes apart by at most this [person heights] touch: a person's face on a second box this
#: near theirs makes that box a part of them; farther away it is someone else (a twin).
PART_MAX_GAP = 0.25
#: A pending track that walks across a present person this fast or faster [their heights a
#: second] is someone passing them, not a part of them: a part walks with its person (the
#: swap clip at the camera's rate: Jolie, walking in front of Aniston standing at 1.2 of
#: Aniston's heights a second, was shown under Aniston's id until her face came). Half a
#: brisk walk (WALK_MAX_SPEED): a part's box shifts as what hides the rest moves.
PART_CROSS_SPEED = 0.5

#: Weight of a zero-quality face in a running embedding, so the weighted mean stays defined.
_MIN_SAMPLE_WEIGHT = 1e-3
#: Largest height ratio between a lost person and a new track that continues them: a box
#: much taller or shorter at the same place is someone nearer or farther from the camera.
RELINK_MAX_HEIGHT_RATIO = 1.5
#: At a slow rate (SLOW_INTERVAL_S) a named track's box whose height is off the track's own
#: trend by more than this ratio is a guess (PersonTracker._guessed; at any rate, if it looks
#: less like the track than usual, _Track.refound_unlike): someone else stepped
#: into the spot between two frames (the doorway at 1/s: Aniston, 1.3 times Jolie's height,
#: shown Jolie's id until her face came back; such steps took the doorway's replays at 1/s
#: from 3..8 id switches to 0..4).
#: Someone walking towards the camera grows on a trend, which the track follows.
SLOW_RESCALE_RATIO = 1.2
#: A box more than RELINK_MAX_BACK of a walker's heights behind their last box (walking at
#: WALKING_MIN_SPEED heights a second or more) re-links to them only in doubt: it may be the
#: next person through the door they walked out of (the doorway replay at 6/s: Aniston,
#: entering as Jolie left, shown under Jolie's id), or them, if ByteTrack had carried their
#: track ahead onto someone else, or their velocity lags as they stop (Musk in the crossing).
#: A box that overlaps their last box by BEHIND_MAX_IOU or more is where they were, whichever
#: way they seemed to walk (Musk's box of the crossing overlapped his last one by 0.5).
WALKING_MIN_SPEED = 0.2
RELINK_MAX_BACK = 0.25
BEHIND_MAX_IOU = 0.3
#: A track's box that overlaps its last one by less than this [IoU] is ByteTrack's guess by
#: motion, as one after a missed frame or off the track's height trend (SLOW_RESCALE_RATIO)
#: is, if it looks less like the track than usual (_Track.refound_unlike): the doorway at 1.7/s,
#: Perry's track, walking out, was continued onto Obama coming in (0.07 IoU, looking 0.29
#: less like it than usual) and showed Perry's id on him for 5 frames.
JUMP_MAX_IOU = 0.2
#: A track's box this long [s] after its last one is found again, as after a missed frame:
#: frames this far apart (a detector at 2 Hz or slower) let a walker move most of a body width,
#: and ByteTrack's box may be whoever now stands where the track was heading. If it looks less
#: like the track than usual (_Track.refound_unlike) the track is in doubt. In the replays
#: (all steps) this took the id switches from 131 to 76; without _torn it added 3 where two
#: walkers cross. A track that was missing from a processed frame for this long is in doubt
#: however alike it looks (_Track.missed): in the replays id switches fell from 79 to 37 over
#: all steps and from 29 to 21 in the draws, boxes shown with someone else's id from 142 to 80
#: and 36 to 25; boxes of a person shown with no id after an id was shown on them rose from
#: 1854 to 1875 of 51524 and from 746 to 785 of 18414.
REFIND_GAP_S = 0.5
#: A box no track took continues a missing person only this soon after their last sighting
#: [s]. Replays at 1 detection/s showed a longer gap guessing wrong where two people cross.
FOLLOW_MAX_GAP_S = 0.9
#: ... except a box that overlaps their last box this much [IoU]: they have not moved, and
#: someone standing still who scores low for a while (turned, half hidden) is no guess.
FOLLOW_STILL_IOU = 0.7
#: ... or this much for someone a face can confirm, whose box must look as much like them as
#: usual: someone standing while a passer-by hides them for two seconds shifts a little
#: (sizes_720p at 3/s: Musk, seen again at 0.52 of his last box, was reported gone).
FOLLOW_STILL_IOU_LOOKS = 0.5
#: ... or a box within this distance [person heights] of where their walk would have taken
#: them (for someone without a face, of their way there: _off_path): a replay at 5
#: detections/s lost a walker seen again 1.0 s later 0.02 heights off.
#: After a gap longer than FOLLOW_MAX_GAP_S the distance grows with it, up to the absence
#: timeout: a walking speed known roughly sends them farther astray the longer they are
#: unseen (sizes_720p replay at 5.5/s: Biden, seen again 1.9 s later 0.32 heights off, was
#: reported gone).
FOLLOW_ON_COURSE = 0.25
#: Frames this far apart or more [s] (the measured median) are a slow rate. A track is then
#: taken from its first box, not ByteTrack's second: at 0.5 detections/s someone in view for
#: 3 s is detected once or twice, and a walker's boxes 2 s apart rarely overlap: unconfirmed,
#: they were never tracked, and no face was tried (the doorway's first person in every graph
#: run at 0.5 Hz). And the box ByteTrack gives a named track may be a guess (_guessed).
SLOW_INTERVAL_S = 1.0
#: ... and such a track is announced without a face only from its third box on, as after
#: ByteTrack's confirmation: at 1 detection/s its second box comes identity_wait_s after
#: its first, before the face of that box is back (the alone replay: a part of the person
#: the detector boxed apart became someone new, later reported gone while in view). A
#: track missing after two boxes with a face that may decide is announced then, after one
#: box if that face found no one and no new track may be them walking on
#: (PersonTracker._settle_by_time, vanished).
IDENTITY_MIN_FRAMES = 3
#: At a slow rate a walker's boxes rarely overlap, so they are a new pending track in every
#: frame, each with one face, mostly too poor to found a person alone (the crossing at 0.5/s:
#: Johansson's faces of quality 0.66-0.76). The first face of a pending track pools the faces
#: of a pending track last seen at most this many frame intervals before it began, whose
#: latest face matches it (min_similarity): one walker's faces vote together.
POOL_MAX_GAP_FRAMES = 2
#: How far someone whose walk is unknown may have gone [person heights a second]: a brisk
#: walk (the crossing at 0.5/s: Johansson, 1.03 heights from her last box 2 s later).
WALK_MAX_SPEED = 1.0
#: A new track begun longer than this after someone was last seen (or maybe seen: a track of
#: theirs in doubt, a box that held them) is no sign that they walk on
#: (PersonTracker._walking_on) [s]: behind a passer-by they reappear within seconds
#: (sizes_720p at 1/s: Biden, 3.3 s), while a stream of look-alikes (people in one uniform)
#: would otherwise keep them present for ever.
WALKING_ON_MAX_GAP_S = 4.0
#: How fast [heights/s] a walker whose track ByteTrack lost between two frames may have gone
#: on, for whether a new track may be them (PersonTracker._continuations, _walking_on): twice
#: WALK_MAX_SPEED, as the composed clips' walkers cover up to 1.4 heights a second and a
#: wrong "may be" costs little.
CONTINUE_MAX_SPEED = 2 * WALK_MAX_SPEED
#: Weight of the newest walk in a smoothed velocity when it was measured over
#: _VELOCITY_SMOOTHING_PERIOD_S: detector boxes jitter by a few pixels, which over a 0.1 s
#: frame gap is tens of px/s. A walk measured over n such periods weighs as n of them: over
#: 0.6 s the jitter is a few px/s, and 0.3 per box kept someone who set off walking at a slow
#: rate 0.6 heights behind where they were (the sizes_720p replay at 1.25-2.5/s: Biden
#: reported gone while walking off).
_VELOCITY_SMOOTHING = 0.3
_VELOCITY_SMOOTHING_PERIOD_S = 0.1
#: A box whose width or height changed by more than this factor since the last sighting
#: moved its centre by its change of shape (a passer-by merged into it, legs hidden), not
#: by the person's walk: it does not update the velocity. A replay at 5 detections/s lost a
#: walker whose box, for one frame, also held the person he passed.
_VELOCITY_MAX_SHAPE_CHANGE = 1.3
#: A box side this close to the image's left or right edge [fraction of the image's width]
#: is cut by it: it shows where the image ends, not where the person is (_cut_sides).
EDGE_MARGIN = 0.005
#: Intervals between processed frames whose median is taken for the frame interval.
RATE_WINDOW = 9


def usable_box(box: Sequence[float] | np.ndarray) -> bool:
    """Return whether box is 4 finite numbers x1, y1, x2, y2 with x1 < x2 and y1 < y2 [px]."""
    values = np.asarray(box, dtype=np.float64)
    return (values.shape == (4,) and bool(np.all(np.isfinite(values)))
            and values[2] > values[0] and values[3] > values[1])


@dataclass(frozen=True)
class Detection:
    """One person box from the detector.

    box: x1, y1, x2, y2 [px], shape (4,).
    confidence: detector score [0..1].
    appearance: unit body descriptor (core.detection.body_appearance), or None.
    """

    box: np.ndarray
    confidence: float
    appearance: np.ndarray | None = None


@dataclass(frozen=True)
class TrackerConfig:
    """Settings of PersonTracker; times are in seconds of the stamps passed in.

    These defaults are the tracker node's parameter defaults (one place for both).
    """

    #: Expected detection rate [Hz]: converts track_buffer_s to ByteTrack frames until the
    #: rate has been measured from the stamps.
    frame_rate: float = 30.0
    #: Detections scoring at least this take part in ByteTrack's first association [0..1].
    track_high_thresh: float = 0.5
    #: Detections scoring above this (and below track_high_thresh) can only extend tracks;
    #: those scoring this or less (faint) only show a missing person still standing where
    #: they were (_follow_unclaimed) [0..1].
    track_low_thresh: float = 0.35
    #: Unmatched detections scoring at least this start a new track [0..1].
    new_track_thresh: float = 0.6
    #: Largest ByteTrack matching cost (1 - IoU, fused with the score) still matched [0..1].
    match_thresh: float = 0.8
    #: Fuse detection scores into ByteTrack's IoU cost.
    fuse_score: bool = True
    #: How long ByteTrack keeps a lost track for re-finding it by motion [s].
    track_buffer_s: float = 2.0
    #: A new track continues a present person whose track was lost if it starts within this
    #: distance [person heights] of where that person was heading; 0 disables re-linking.
    relink_distance: float = 1.0
    #: How long a confirmed track waits for a face before its PERSON_IN is decided [s]; a
    #: faceless one beside someone it may be a part of waits until they part.
    identity_wait_s: float = 1.0
    #: How long a track whose faces point at a remembered person waits for the confirming
    #: face before it is taken for someone new [s].
    identity_max_wait_s: float = 3.0
    #: A person unseen for this long (and evidence_frames frames) gets PERSON_OUT [s].
    absence_timeout_s: float = 2.0
    #: Processed frames in a row that must miss a person before PERSON_OUT: evidence of
    #: absence, whatever the frame rate.
    evidence_frames: int = 3
    #: How long after their last sighting a person can still be re-identified by face [s].
    reid_memory_s: float = 600.0
    #: Cosine similarity from which a face is taken to belong to a person [-1..1].
    min_similarity: float = DEFAULT_MIN_SIMILARITY
    #: How much better [cosine] a face must match its best person than the next-best one.
    match_margin: float = MATCH_MARGIN
    #: A good face of a named track contradicts its person only below this similarity to them
    #: [cosine]: two such faces, or one strong one, split the track.
    contradiction_similarity: float = CONTRADICTION_MAX_SIMILARITY
    #: How much better [cosine] a face must match another visible person than its own track's
    #: person before the two tracks' person ids are swapped.
    swap_margin: float = 0.1
    #: Faces of lower quality [0..1] are ignored.
    min_face_quality: float = MIN_DECISION_QUALITY
    #: A face at least this good [0..1] decides alone; poorer ones need a second, agreeing face.
    strong_face_quality: float = STRONG_FACE_QUALITY
    #: A face at least this good [0..1] matches a known person alone (calibrated lower: a
    #: false match is no likelier from it than from strong_face_quality).
    strong_match_quality: float = STRONG_MATCH_QUALITY
    #: Face samples kept per person for the running embedding (the best by quality).
    max_samples: int = 20
    #: Length of the face embeddings passed to add_face.
    embedding_dim: int = DLIB_EMBEDDING_DIM

    def validate(self) -> None:
        """Raise ValueError naming the first setting that cannot work."""
        for name, value in vars(self).items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f'{name} must be finite, got {value}')
        checks = [
            (self.frame_rate > 0, 'frame_rate must be > 0 Hz'),
            (0 <= self.track_low_thresh <= self.track_high_thresh <= 1,
             'need 0 <= track_low_thresh <= track_high_thresh <= 1'),
            (0 < self.new_track_thresh <= 1, 'new_track_thresh must be in (0, 1]'),
            (0 < self.match_thresh <= 1, 'match_thresh must be in (0, 1]'),
            (self.track_buffer_s > 0, 'track_buffer_s must be > 0 s'),
            (self.relink_distance >= 0, 'relink_distance must be >= 0 person heights'),
            (self.identity_wait_s >= 0, 'identity_wait_s must be >= 0 s'),
            (self.identity_max_wait_s >= self.identity_wait_s,
             'identity_max_wait_s must be >= identity_wait_s'),
            (self.absence_timeout_s > 0, 'absence_timeout_s must be > 0 s'),
            (self.evidence_frames >= 1, 'evidence_frames must be >= 1'),
            (self.reid_memory_s >= self.absence_timeout_s,
             'reid_memory_s must be >= absence_timeout_s, or no one could be re-identified'),
            (-1 <= self.min_similarity <= 1, 'min_similarity must be in [-1, 1]'),
            (self.match_margin >= 0, 'match_margin must be >= 0'),
            (-1 <= self.contradiction_similarity <= self.min_similarity - self.match_margin,
             'need -1 <= contradiction_similarity <= min_similarity - match_margin'),
            (self.swap_margin >= 0, 'swap_margin must be >= 0'),
            (0 <= self.min_face_quality <= self.strong_match_quality
             <= self.strong_face_quality <= 1, 'need 0 <= min_face_quality <= '
             'strong_match_quality <= strong_face_quality <= 1'),
            (self.max_samples >= 1, 'max_samples must be >= 1'),
            (self.embedding_dim >= 1, 'embedding_dim must be >= 1'),
        ]
        for ok, reason in checks:
            if not ok:
                raise ValueError(f'invalid tracker config: {reason}')

    def identity_rules(self) -> IdentityRules:
        """Return the face decision thresholds of this config."""
        return IdentityRules(self.min_similarity, self.match_margin, self.min_face_quality,
                             self.strong_face_quality, self.strong_match_quality)


class EventKind(enum.IntEnum):
    """Kind of a person event; the values are those of facetrack_ros/msg/PersonEvent."""

    PERSON_IN = 1
    PERSON_OUT = 2
    PERSON_RETURNED = 3


class EventReason(enum.IntEnum):
    """Why an event happened; the values are PersonEvent's REASON_* constants."""

    UNSPECIFIED = 0
    FACE = 1             # IN/RETURNED: decided by faces (new to everyone, or remembered)
    NO_FACE = 2          # IN: no face decided it within identity_wait; a new person
    ENROLLED = 3         # IN/RETURNED: faces matched a person enrolled in the fleet
    INPUT_RESUMED = 4    # RETURNED: still in place when input came back after a stall
    LEFT_VIEW = 10       # OUT: processed frames stopped showing the person
    INPUT_STALLED = 11   # OUT: no input for the node's input_timeout
    TIME_JUMP = 12       # OUT: time jumped back (replay loop, sim-time reset)
    SHUTDOWN = 13        # OUT: the tracker stopped, or restarted after a crash
    FORGOTTEN = 14       # OUT: the person's enrolled name was withdrawn, or forget_person
    RECOGNISED = 15      # OUT: faces showed a person announced without one was someone known


@dataclass(frozen=True)
class PersonEventRecord:
    """A change in who is in view.

    stamp: time of the frame (or face) that caused the event [s].
    track_id: the person's track at the time of the event.
    box, confidence: the person's last box x1, y1, x2, y2 [px] and detector score.
    duration: for PERSON_OUT, first to last sighting of the appearance [s]; 0 otherwise.
    embedding: the person's running face embedding, or None if no face was seen.
    reason: why (EventReason).
    """

    kind: EventKind
    stamp: float
    person_id: str
    track_id: int
    box: np.ndarray
    confidence: float
    duration: float
    embedding: np.ndarray | None
    reason: EventReason = EventReason.UNSPECIFIED

    def to_json_dict(self) -> dict:
        """Return the event as plain JSON types; kind and reason are names, e.g. 'PERSON_IN'."""
        return {
            'kind': self.kind.name,
            'reason': self.reason.name,
            'stamp': float(self.stamp),
            'person_id': self.person_id,
            'track_id': int(self.track_id),
            'box': [float(v) for v in self.box],
            'confidence': float(self.confidence),
            'duration': float(self.duration),
            'embedding': None if self.embedding is None else [float(v) for v in self.embedding],
        }


@dataclass(frozen=True)
class TrackedPerson:
    """One track seen in the latest frame.

    person_id: stable person id, or '' while the track's identity is pending (no PERSON_IN yet)
    or in question (found again looking less alike or after a miss, or its latest good face
    contradicted its person: the box may have passed to someone else).
    box: x1, y1, x2, y2 [px] of the detection matched to the track; confidence its score.
    match_similarity: cosine similarity of the track's latest face to its person's running
    embedding before that face was added (of a track whose faces made a new person: of the
    latest of them to the embedding they made); 0 when there was none to compare, or none of
    a frame since the track was found again after a miss (_Track.refound_at).
    """

    track_id: int
    person_id: str
    box: np.ndarray
    confidence: float
    match_similarity: float


@dataclass(frozen=True)
class PersonInfo:
    """Read-only view of a known person for history and search.

    embedding: running face embedding (unit length, read-only), or None if no face was seen.
    first_seen, last_seen: first sighting ever and latest sighting [s].
    present: True between the person's PERSON_IN/RETURNED and PERSON_OUT.
    """

    person_id: str
    embedding: np.ndarray | None
    first_seen: float
    last_seen: float
    present: bool


class PersonState(enum.Enum):
    """Where a person is in the IN/OUT cycle."""

    PRESENT = 1  # PERSON_IN/RETURNED sent, no PERSON_OUT since (may be briefly unseen)
    GONE = 2     # PERSON_OUT sent; kept for re-identification until reid_memory_s


def _centre(box: np.ndarray) -> np.ndarray:
    return (box[:2] + box[2:]) / 2


def _height(box: np.ndarray) -> float:
    return max(float(box[3] - box[1]), 1.0)


def _heading_box(person: '_Person | _Track', stamp: float) -> np.ndarray:
    """Return the person's last box moved on as they were walking, to stamp."""
    shift = person.velocity * (stamp - person.last_seen)
    return person.box + np.concatenate([shift, shift]).astype(np.float32)


def _still(person: '_Person') -> bool:
    """Return whether the person was walking slower than WALKING_MIN_SPEED."""
    return float(np.linalg.norm(person.velocity)) < WALKING_MIN_SPEED * _height(person.box)


def _behind(person: '_Person', box: np.ndarray) -> bool:
    """Return whether box lies behind a walking person's last box (RELINK_MAX_BACK)."""
    if _still(person) or box_iou(person.box, box[None])[0] >= BEHIND_MAX_IOU:
        return False
    ahead = (float(np.dot(_centre(box) - _centre(person.box), person.velocity))
             / float(np.linalg.norm(person.velocity)))
    return ahead < -RELINK_MAX_BACK * _height(person.box)


def _apart(a: '_Track', b: '_Track') -> bool:
    """Return whether two tracks walk apart: across, opposite ways, each WALKING_MIN_SPEED.

    Parts of one person walk together; two such tracks show two people.
    """
    if not (a.walked and b.walked):
        return False
    pace = [float(t.velocity[0]) / _height(t.box) for t in (a, b)]
    return pace[0] * pace[1] < 0 and min(map(abs, pace)) >= WALKING_MIN_SPEED


def _smoothing(interval: float) -> float:
    """Return the weight in a smoothed velocity of a walk measured over interval [s]."""
    return 1.0 - (1.0 - _VELOCITY_SMOOTHING) ** (interval / _VELOCITY_SMOOTHING_PERIOD_S)


def _cut_sides(box: np.ndarray, frame_size: tuple[int, int] | None) -> tuple[bool, bool]:
    """Return whether box's left and right sides lie on the image's edges (EDGE_MARGIN).

    Someone entering or leaving by a side shows a part there. The image's top and bottom are
    left out: the bottom cuts the legs of most people near the camera, who walk across it.
    """
    if frame_size is None:
        return False, False
    margin = EDGE_MARGIN * frame_size[0]
    return bool(box[0] <= margin), bool(box[2] >= frame_size[0] - margin)


def _partial(box: np.ndarray, frame_size: tuple[int, int] | None) -> bool:
    """Return whether box is cut by the image's left or right edge: it shows a part."""
    return any(_cut_sides(box, frame_size))


def _walk(before: np.ndarray, after: np.ndarray, interval: float,
          frame_size: tuple[int, int] | None) -> np.ndarray | None:
    """Return the velocity [px/s] of a box's centre from before to after, interval [s] apart.

    Where one side of either box is cut by the image's left or right edge (frame_size: width,
    height [px]; None: unknown), the box widens or narrows as the person enters or leaves,
    so the walk across is that of its other side (the crossing at 1/s: Dorsey, measured
    walking in at a fraction of his pace, was then looked for where he was not). None when
    the box changed shape by more than _VELOCITY_MAX_SHAPE_CHANGE (its width only where no
    such side tells).
    """
    left, right = (a or b for a, b in zip(_cut_sides(before, frame_size),
                                          _cut_sides(after, frame_size)))
    change = (after[2:] - after[:2]) / np.maximum(before[2:] - before[:2], 1e-6)
    if np.any(((change > _VELOCITY_MAX_SHAPE_CHANGE) | (change < 1 / _VELOCITY_MAX_SHAPE_CHANGE))
              & [left == right, True]):
        return None
    walk = _centre(after) - _centre(before)
    if left != right:
        walk[0] = after[2] - before[2] if left else after[0] - before[0]
    return walk / interval


@dataclass
class _Person:
    """Mutable record of one person."""

    person_id: str
    track_id: int
    first_seen: float
    appearance_start: float  # first sighting of the current appearance, for PERSON_OUT duration
    last_seen: float
    box: np.ndarray
    confidence: float
    last_event_stamp: float
    velocity: np.ndarray  # of the box centre at the latest sighting, x, y [px/s]
    body: np.ndarray | None = None  # body appearance at the latest sighting
    body_stability: float | None = None  # their track's usual similarity to it then
    # Their largest box of the last PART_MEMORY_S and when it was seen, to find their parts.
    widest: np.ndarray | None = None
    widest_at: float = -math.inf
    previous_box: np.ndarray | None = None  # of the sighting before the latest (_stood)
    state: PersonState = PersonState.PRESENT
    ended_by: EventReason = EventReason.UNSPECIFIED  # reason of the latest PERSON_OUT
    missed_frames: int = 0  # processed frames in a row without the person
    held_at: float = -math.inf  # latest track in doubt or doubted box of them, if any (_expire)
    # Latest box no track took that may show them but does not count as a sighting (it looks
    # less like them than their track did, or no rule lets it show them: _follow_unclaimed):
    # no sighting, nor evidence that they left.
    doubted_at: float = -math.inf
    in_doubt_at: float = -math.inf  # latest box of a track of theirs in doubt (_walking_on)
    unseen_since: float = -math.inf  # first processed frame after their last sighting
    adrift: bool = False  # their track's box turned out to show someone else (see _relink)
    enrolled: bool = False  # the id is a name enrolled in the fleet
    # The track whose faces founded them (_new_person); -1 if none of this run's did
    # (enrolled, or remembered from before a restart).
    founded_on: int = -1
    # Best face samples as (quality, unit vector); embedding is their cached weighted mean.
    samples: list[tuple[float, np.ndarray]] = field(default_factory=list)
    embedding: np.ndarray | None = None

    def walk_to(self, stamp: float, box: np.ndarray,
                frame_size: tuple[int, int] | None) -> np.ndarray:
        """Return their velocity [px/s] smoothed with the walk from their last box to box."""
        interval = stamp - self.last_seen
        step = _walk(self.box, box, interval, frame_size) if interval > 0 else None
        return (self.velocity if step is None
                else self.velocity + _smoothing(interval) * (step - self.velocity))

    def add_sample(self, vector: np.ndarray, quality: float, max_samples: int) -> None:
        """Keep the max_samples best faces and refresh the running embedding."""
        if len(self.samples) >= max_samples:
            worst = min(range(len(self.samples)), key=lambda i: self.samples[i][0])
            if quality <= self.samples[worst][0]:
                return
            del self.samples[worst]
        self.samples.append((quality, vector))
        weights = np.array([max(q, _MIN_SAMPLE_WEIGHT) for q, _ in self.samples], np.float32)
        vectors = np.stack([v for _, v in self.samples])
        embedding = l2_normalize(weights @ vectors)
        embedding.flags.writeable = False  # shared with PersonInfo and events without copies
        self.embedding = embedding


#: The fields of a _Person that its latest sighting sets (_see, _split).
_SIGHTING = ('track_id', 'last_seen', 'box', 'previous_box', 'confidence', 'velocity', 'body',
             'body_stability', 'widest', 'widest_at', 'adrift')


@dataclass
class _Face:
    """A face kept for a decision: embedding, quality, verdict, and the caller's tag."""

    vector: np.ndarray
    quality: float
    tag: object
    vote: FaceVote | None = None
    alone: bool = True  # its box overlapped no other person's in its frame (FaceVote.alone)


@dataclass
class _FrameFaces:
    """Faces of a frame in which boxes overlapped: face boxes by track, and faces set aside."""

    boxes: dict[int, np.ndarray] = field(default_factory=dict)
    aside: list[tuple[int, _Face, np.ndarray | None]] = field(default_factory=list)


@dataclass
class _Track:
    """A ByteTrack track as PersonTracker sees it; person_id None means identity pending."""

    track_id: int
    first_seen: float
    last_seen: float
    box: np.ndarray
    confidence: float
    first_box: np.ndarray
    person_id: str | None = None
    similarity: float = 0.0
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))  # [px/s]
    walked: bool = False  # velocity measured: two boxes alike in shape (_walk) have shown it
    growth: float = 0.0  # smoothed rate of change of the box's log height [1/s]
    body: np.ndarray | None = None  # running body appearance
    last_body: np.ndarray | None = None  # body appearance of its latest box
    body_partial: bool = False  # body is of boxes cut by the image's left or right edge only
    body_stability: float | None = None  # usual similarity of its boxes to body
    frames: int = 0  # processed frames that showed the track
    # Found again after a miss of over REFIND_GAP_S or looking less like itself
    # (APPEARANCE_REFIND_MAX_DROP), among other reasons (update): its box may be someone
    # else; its person is not seen through it until a face confirms.
    doubtful: bool = False
    # Stamp of the frame that put it in doubt [s]: a face of an earlier frame, arriving late,
    # shows whoever its box held then, and ends no doubt.
    doubt_since: float = -math.inf
    # In doubt, and a good face on it contradicted its person: no longer likely theirs. (A
    # face between contradiction and match, such as a half-hidden one, denies nothing: most
    # such faces are the person's own, see CONTRADICTION_MAX_SIMILARITY.)
    denied: bool = False
    # Continued after a long gap onto a box unlike it (handed_over): maybe the next person on
    # the spot its person left. Its person is still seen through it, but it shows no person
    # id until a face confirms them (or splits it off).
    unnamed: bool = False
    # Stamp of the box from which the track is taken to show whom it shows now [s]: after its
    # box looked like someone else (a cut, a hand-over), faces of its earlier frames that
    # arrive late are not theirs.
    since: float = -math.inf
    # Stamp of the frame that found it again after a miss (missed) or a gap of over
    # REFIND_GAP_S and 1.5 frames [s], until a face of that frame or a later one is compared
    # on it; else None. Faces of earlier frames end no doubt. Its box may be the
    # next person on the spot though it looks alike, so a face is wanted soon, not at the
    # next refresh (the doorway at 3/s: Jolie's track, found again 1 s on, on Aniston,
    # looking as much like it as usual, showed Jolie's id on her for 5 frames).
    refound_at: float | None = None
    # People who vanished into its box, which held its own person too (_engulfed): the face
    # in its crop may be theirs.
    engulfed: list[str] = field(default_factory=list)
    # Pending, and its box was a group's box at its latest frame: the people in it no track
    # shows (_group_of); None if it was not.
    group: list[str] | None = None
    # Re-linked to its person (_relink): the person as they were before, to go back to if a
    # face shows the box was someone else's (_split); None once a face confirmed it.
    took_over: '_Person | None' = None
    # Persons whose box touched the track's first box, or whom it was split off (_split):
    # the only ones it can be a part of.
    born_beside: set[str] = field(default_factory=set)
    # Faces while pending (with their votes), or matching someone known while bound to a
    # person without a face (_first_face); good faces contradicting the bound person since
    # the last agreeing one.
    faces: list[_Face] = field(default_factory=list)
    contradictions: list[_Face] = field(default_factory=list)
    # Faces too poor to vote, seen while pending (and, when it is announced without a face,
    # its ambiguous ones): reported, uncounted, as the track's person's once it has one.
    witnessed: list[_Face] = field(default_factory=list)
    # Vanished at a slow rate after one box, with a face that found no one, but tracks new
    # then may show its person walking on (_continuations): their ids. Announced once each
    # has shown a face unlike its own (_release_withheld).
    withheld_for: set[int] = field(default_factory=set)

    def move(self, stamp: float, box: np.ndarray, confidence: float,
             body: np.ndarray | None, frame_size: tuple[int, int] | None) -> None:
        """Take the track's box at stamp and update its smoothed velocity and appearance."""
        handed_over = self.handed_over(stamp, body)
        interval = stamp - self.last_seen
        step = _walk(self.box, box, interval, frame_size) if interval > 0 else None
        if interval > 0:
            growth = math.log(_height(box) / _height(self.box)) / interval
            self.growth = growth if self.frames < 2 else (
                self.growth + _smoothing(interval) * (growth - self.growth))
        if step is not None:
            self.velocity = (step if not self.walked else
                             self.velocity + _smoothing(interval) * (step - self.velocity))
            self.walked = True
        self.last_seen, self.box, self.confidence = stamp, box, confidence
        similarity = appearance_similarity(self.body, body)
        if similarity is not None:
            self.body_stability = similarity if self.body_stability is None else (
                self.body_stability
                + APPEARANCE_STABILITY_SMOOTHING * (similarity - self.body_stability))
            if similarity < APPEARANCE_PENDING_MIN_SIMILARITY or handed_over:
                self.faces.clear()  # pending: they may have been someone else's
                self.witnessed.clear()
                self.since = stamp
                if self.person_id is None:  # and may continue someone missing (_relink)
                    self.first_seen, self.first_box, self.body = stamp, box, None
        partial = _partial(box, frame_size)
        if body is not None and self.body_partial and not partial:
            # The looks of a part give way to the whole's (the crossing at 1/s: Dorsey's,
            # blended from boxes that showed him walking in, were unlike his box 2 s later).
            self.body = None
        self.body = blend_appearance(self.body, body)
        self.last_body = body
        if body is not None:
            self.body_partial = partial and (self.body is body or self.body_partial)
        self.frames += 1

    def refound_unlike(self, stamp: float, box: np.ndarray, body: np.ndarray | None,
                       interval: float) -> bool:
        """Return whether a box after a miss or a jump looks less like the track than usual.

        interval: the time between processed frames [s]; a gap of over 1.5 of them is a miss,
        and so is one of over REFIND_GAP_S, unless the box was handed over (handed_over: it
        then shows no id, and its person still counts as seen). A jump is a box that overlaps
        the track's last one by under JUMP_MAX_IOU, or is off its height trend (off_trend: the
        doorway at 1.25/s, Jolie's track, walking out, carried onto Aniston coming in, 1.3
        times her height and 0.07 less like it than usual).
        """
        similarity = appearance_similarity(self.body, body)
        gap = stamp - self.last_seen
        return (similarity is not None and self.body_stability is not None
                and (gap > 1.5 * interval
                     or gap > REFIND_GAP_S and not self.handed_over(stamp, body)
                     or box_iou(self.box, box[None])[0] < JUMP_MAX_IOU
                     or self.off_trend(stamp, box))
                and similarity < self.body_stability - APPEARANCE_REFIND_MAX_DROP)

    @property
    def shown_similarity(self) -> float:
        """Return its match_similarity: 0 while no face was compared since it was found again."""
        return 0.0 if self.refound_at is not None else self.similarity

    @property
    def shown_id(self) -> str:
        """Return the person id its boxes show: none while in doubt, contradicted or unnamed."""
        return '' if self.doubtful or self.contradictions or self.unnamed else self.person_id or ''

    def handed_over(self, stamp: float, body: np.ndarray | None) -> bool:
        """Return whether a box after HANDOVER_GAP_S unseen looks too little like the track."""
        similarity = appearance_similarity(self.body, body)
        return (similarity is not None and stamp - self.last_seen >= HANDOVER_GAP_S
                and similarity < APPEARANCE_HANDOVER_MIN_SIMILARITY)

    def rescaled(self, box: np.ndarray) -> bool:
        """Return whether box is much taller or shorter than the track's last box.

        RELINK_MAX_HEIGHT_RATIO: someone nearer or farther from the camera (sizes_720p at
        5.5/s: ByteTrack carried Clooney's track, walking in, onto Musk behind him, 0.62 of
        his height, and showed Clooney's id on him while Musk was reported gone).
        """
        return not _alike_in_height(box, self.box)

    def missed(self, stamp: float, previous: float) -> bool:
        """Return whether the track, back at stamp, was missing from the processed frame before.

        previous: that frame's stamp [s]. Only a miss of over REFIND_GAP_S: a box lost for a
        moment at the camera's rate is no one else's. Whoever stands on its spot now may be
        the next person through the door, as alike in looks as the last (the doorway at 1.7/s:
        Aniston on Jolie's track, lost for 1.2 s, 0.91 like it, its usual 0.91).
        """
        return self.last_seen < previous and stamp - self.last_seen > REFIND_GAP_S

    def off_trend(self, stamp: float, box: np.ndarray) -> bool:
        """Return whether box at stamp is taller or shorter than the track's last and trend.

        More than SLOW_RESCALE_RATIO off both the last box's height (someone who stopped) and
        the height the track's growth leads to (someone walking on; within
        RELINK_MAX_HEIGHT_RATIO of the last box, so a long gap foresees no giant).
        """
        bound = math.log(RELINK_MAX_HEIGHT_RATIO)
        foreseen = math.exp(min(max(self.growth * (stamp - self.last_seen), -bound), bound))
        return all(not 1 / SLOW_RESCALE_RATIO <= _height(box) / (_height(self.box) * scale)
                   <= SLOW_RESCALE_RATIO for scale in (1.0, foreseen))

    def looks_unlike(self, body: np.ndarray | None) -> bool:
        """Return whether a box's body appearance says it shows someone else than the track."""
        similarity = appearance_similarity(self.body, body)
        if similarity is None:
            return False
        if self.body_stability is None and self.person_id is not None:
            # The second box: no usual similarity to drop from. (A pending track forgets its
            # faces then, see move().)
            return similarity < APPEARANCE_FIRST_MIN_SIMILARITY
        if self.body_stability is None:
            return similarity < APPEARANCE_MIN_SIMILARITY
        return (similarity < APPEARANCE_MIN_SIMILARITY
                or similarity < self.body_stability - APPEARANCE_MAX_DROP)


def _looks_like(person: _Person, body: np.ndarray | None, unknown: bool) -> bool:
    """Return whether a body appearance is alike enough to continue the person or be a part.

    APPEARANCE_RELINK_MIN_SIMILARITY; for a person adrift (see PersonTracker._relink),
    APPEARANCE_ADRIFT_RELINK_SIMILARITY, and never unknown. unknown: the answer otherwise
    when either appearance is unknown.
    """
    alike = appearance_similarity(body, person.body)
    if alike is None:
        return unknown and not person.adrift
    return alike >= (APPEARANCE_ADRIFT_RELINK_SIMILARITY if person.adrift
                     else APPEARANCE_RELINK_MIN_SIMILARITY)


def _as_alike_as_usual(person: _Person, body: np.ndarray | None) -> bool | None:
    """Return whether a body appearance is as like the person as their boxes usually are.

    Within APPEARANCE_REFIND_MAX_DROP of their body_stability; None when either is unknown.
    """
    alike = appearance_similarity(body, person.body)
    if alike is None or person.body_stability is None:
        return None
    return alike >= person.body_stability - APPEARANCE_REFIND_MAX_DROP


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Return the intersection of two x1, y1, x2, y2 boxes over the smaller one's area."""
    sides = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None)
    smaller = min(np.prod(a[2:] - a[:2]), np.prod(b[2:] - b[:2]))
    return float(np.prod(sides) / max(smaller, 1e-9))


def _area(box: np.ndarray) -> float:
    return float(np.prod(np.clip(box[2:] - box[:2], 0, None)))


def inside_fraction(part: np.ndarray, whole: np.ndarray) -> float:
    """Return the fraction of part's area inside whole (x1, y1, x2, y2 boxes)."""
    sides = np.clip(np.minimum(part[2:], whole[2:]) - np.maximum(part[:2], whole[:2]), 0, None)
    return float(np.prod(sides)) / max(_area(part), 1e-9)


def _engulfed(box: np.ndarray, own: np.ndarray | None,
              vanished: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[str]:
    """Return who vanished into a track's box that holds its own person too.

    own: the track's person's box of the frame before; vanished: person id -> (box of the
    frame before, that box moved on as they walked: _heading_box), of people no track shows
    now. Both inside the box by GROUP_INSIDE, the one who vanished where they were or where
    their walk took them: the two stand one before the other and the detector gave one box,
    which ByteTrack may give to either (the crossing at 10/s: Aniston's track took
    Johansson's box in front of her and showed her id on Johansson for a second; at 3.3/s
    Dorsey, walking in front of Musk, was a fifth of a box width on by then, and Musk's track
    followed him). It shows either of them until a face tells. (A person whose box was the
    same box, a track just split off, did not vanish into it.)
    """
    if own is None or inside_fraction(own, box) < GROUP_INSIDE:
        return []
    return [pid for pid, (other, heading) in vanished.items()
            if max(inside_fraction(other, box), inside_fraction(heading, box)) >= GROUP_INSIDE
            and not np.array_equal(other, own)]


def _split_off(boxes: np.ndarray, index: int, own: np.ndarray | None) -> bool:
    """Return whether boxes[index] is one of two that the detector split a person's box into.

    own: the box of the track's person in the frame before. This box is at most
    SPLIT_MAX_SIZE as wide, or as tall, as it and lies inside it, as another box of this frame
    does (SPLIT_MIN_INSIDE), the two together wider (taller) than it (SPLIT_MIN_SIZES): that
    box held someone else too, and ByteTrack gives the track to whichever part overlaps it
    more. It shows either of them until a face tells. Side by side: the group clip, frames at
    random at 5-8/s, a box over DiCaprio and Clooney walking in beside him; a frame later
    DiCaprio's track took Clooney's box, and showed DiCaprio's id on him until his face came.
    One before the other: group_tight at 5-8/s, Perry's box, which held DiCaprio in front of
    him, was followed by DiCaprio's shorter box and a faint one of Perry; his track took
    DiCaprio's and showed Perry's id on him for half a second.
    """
    box = boxes[index]
    if own is None or inside_fraction(box, own) < SPLIT_MIN_INSIDE:
        return False
    sizes, own_sizes = box[2:] - box[:2], own[2:] - own[:2]
    shrunk = sizes <= SPLIT_MAX_SIZE * own_sizes
    return any(inside_fraction(other, own) >= SPLIT_MIN_INSIDE
               and np.any(shrunk & (sizes + other[2:] - other[:2] >= SPLIT_MIN_SIZES * own_sizes))
               for number, other in enumerate(boxes) if number != index)


def _may_be_part_of(track: _Track, person: _Person) -> bool:
    """Return whether a pending track may be a part of a person: born beside, not passing them.

    Only a person whose box touched the track's first box (born_beside, PART_MAX_GAP), and
    whom it does not walk across (PART_CROSS_SPEED): a passer-by who walks into someone's box
    from elsewhere, or past them, is not a part of them.
    """
    return person.person_id in track.born_beside and not (
        track.walked and float(np.linalg.norm(track.velocity - person.velocity))
        >= PART_CROSS_SPEED * _height(person.box))


def _splits(earlier: np.ndarray, now: np.ndarray, other: np.ndarray) -> bool:
    """Return whether a box shrank from earlier to now and now with other makes up earlier.

    Shrunk: to at most PART_MAX_SHRINK of its area; made up: the union of now and other has
    the size of earlier: centred on each other (the person may have moved a little since),
    the two overlap by PART_UNION_MIN_IOU; and now and other overlap by at most
    PART_SPLIT_MAX_OVERLAP.
    """
    union = np.concatenate([np.minimum(now[:2], other[:2]), np.maximum(now[2:], other[2:])])
    centred = earlier + np.tile(_centre(union) - _centre(earlier), 2)
    return (_area(now) <= PART_MAX_SHRINK * _area(earlier)
            and float(box_iou(union, centred[None])[0]) >= PART_UNION_MIN_IOU
            and _overlap(now, other) <= PART_SPLIT_MAX_OVERLAP)


def _top_of(box: np.ndarray, whole: np.ndarray) -> bool:
    """Return whether box is the top of whole: a head and shoulders, the rest hidden.

    Inside it (PART_MIN_OVERLAP), its top at whole's (PART_MAX_RISE of whole's height) and at
    most PART_MAX_SHRINK as tall. Such a box looks unlike the whole (its lower half shows a
    chest, not legs), which says nothing of whose it is.
    """
    return (inside_fraction(box, whole) >= PART_MIN_OVERLAP
            and abs(float(box[1] - whole[1])) <= PART_MAX_RISE * _height(whole)
            and _height(box) <= PART_MAX_SHRINK * _height(whole))


def _alike_in_height(box: np.ndarray, earlier: np.ndarray) -> bool:
    """Return whether box is within RELINK_MAX_HEIGHT_RATIO of earlier's height."""
    ratio = float(box[3] - box[1]) / max(float(earlier[3] - earlier[1]), 1.0)
    return 1 / RELINK_MAX_HEIGHT_RATIO <= ratio <= RELINK_MAX_HEIGHT_RATIO


def _spans(part: np.ndarray, whole: np.ndarray) -> bool:
    """Return whether part is at least PART_MIN_SPAN of whole's height or of its width."""
    size, whole_size = part[2:] - part[:2], whole[2:] - whole[:2]
    return bool(np.any(size >= PART_MIN_SPAN * whole_size))


def _adjacent(a: np.ndarray, b: np.ndarray) -> bool:
    """Return whether two boxes overlap or are apart by at most PART_MAX_GAP of a height."""
    gaps = np.maximum(a[:2], b[:2]) - np.minimum(a[2:], b[2:])  # x, y; negative: overlap
    height = max(float(a[3] - a[1]), float(b[3] - b[1]))
    return bool(np.all(gaps <= PART_MAX_GAP * height))


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Return the IoU of one x1, y1, x2, y2 box with each row of boxes (N, 4)."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return inter / np.maximum(area + areas - inter, 1e-9)


def _group_box(index: int, boxes: np.ndarray) -> bool:
    """Return whether boxes[index] is the detector's box of two or more others of boxes.

    It holds GROUP_INSIDE of each, and their union is it (PART_UNION_MIN_IOU).
    """
    box = boxes[index]
    held = [other for i, other in enumerate(boxes)
            if i != index and inside_fraction(other, box) >= GROUP_INSIDE]
    if len(held) < 2:
        return False
    held = np.array(held)
    union = np.concatenate([held.min(axis=0)[:2], held.max(axis=0)[2:]])
    return float(box_iou(box, union[None])[0]) >= PART_UNION_MIN_IOU


def _stood(person: _Person, box: np.ndarray, min_iou: float) -> bool:
    """Return whether box is where the person stood: on their last box or the one before.

    min_iou: the least overlap with either [IoU] (PersonTracker._where_stood chooses it).
    The one before too: a passer-by who made them faint may first have stretched their last
    box over part of the passer-by (sizes_360p at 0.67-1.25/s: Jolie's last box 1.4 times
    her height, taking in Damon's head beside her).
    """
    return any(box_iou(stood, box[None])[0] >= min_iou
               for stood in (person.box, person.previous_box) if stood is not None)


def _one_to_one(pairs: list[tuple]) -> list[tuple]:
    """Return the pairs whose first and second items are each in no other pair."""
    firsts = Counter(first for first, _ in pairs)
    seconds = Counter(second for _, second in pairs)
    return [(a, b) for a, b in pairs if firsts[a] == 1 and seconds[b] == 1]


class PersonTracker:
    """Stable person ids and PERSON_IN/OUT/RETURNED events on top of ByteTrack.

    Call update() once per processed frame with that frame's detections (an empty list is
    evidence too: nobody was seen), and add_face() whenever a face embedding of a track is
    ready, possibly a few frames late. A frame older than the latest one is folded in as
    evidence of presence (see update()). Tracks move through two phases: pending (person_id
    None: confirmed by ByteTrack, no identity yet) and bound (person_id set). Persons are
    PRESENT or GONE (see PersonState).

    Two people who cross keep their ids through ByteTrack's motion model. If ByteTrack swaps
    them anyway, the next unambiguous face of one of the tracks matches the other visible
    person much better than its own, and the two tracks' person ids are swapped back.
    """

    def __init__(self, config: TrackerConfig, id_prefix: str = 'person') -> None:
        """Check config and start with no tracks and no persons."""
        config.validate()
        if not id_prefix:
            raise ValueError('id_prefix must not be empty')
        self._config = config
        self._rules = config.identity_rules()
        self._id_prefix = id_prefix
        self._frame_interval = 1.0 / config.frame_rate  # [s], measured from the stamps
        self._intervals: deque[float] = deque(maxlen=RATE_WINDOW)  # latest ones [s]
        self._motion = ByteTrackMotion(ByteTrackSettings(
            config.track_high_thresh, config.track_low_thresh, config.new_track_thresh,
            config.match_thresh, config.fuse_score), self._buffer_frames())
        self._now = -math.inf  # stamp of the latest update
        self._before = -math.inf  # stamp of the update before it
        self._frame_size: tuple[int, int] | None = None  # its image's width, height [px]
        self._tracks: dict[int, _Track] = {}     # by our track id, unique for ever
        # Tracks split off a person (_split), by their old ids: the track that replaced each
        # (the same box: faces still in flight for the old id are its) and that person.
        self._succeeded_by: dict[int, tuple[_Track, str | None]] = {}
        self._ended: list[_Track] = []  # pending tracks with faces that ByteTrack dropped
        self._by_motion: dict[int, _Track] = {}  # by ByteTrack's id
        self._persons: dict[str, _Person] = {}
        self._known: dict[str, np.ndarray] = {}  # enrolled name -> reference embedding
        self._next_track_id = 1
        self._next_sequence = 1
        self._reserved_until = 1  # ids below this are reserved (saved as used)
        # The forgets taken lately, as (stamp [ns], id_digest): their announcements heard again
        # change nothing. More than the history's announcements kept (FORGOTTEN_QOS, 10).
        self._forgets_taken: deque[tuple[int, str]] = deque(maxlen=FORGETS_REMEMBERED)
        self._save_due = False
        self._attributions: list[tuple[object, str]] = []
        self._stalled_at: float | None = None  # stamp of the last frame before a stall
        self._resumed_at = -math.inf  # stamp of the first frame after the latest stall
        self._stall_length = 0.0  # resumed_at minus the last frame before that stall [s]
        # Tracks whose box was ambiguous (AMBIGUOUS_BOX_IOU) in each recent frame, by stamp,
        # with the boxes of those whose face it may hold: a face arrives frames after its
        # own, when someone may have come near since.
        self._ambiguous_in: dict[float, dict[int, list[np.ndarray]]] = {}
        # Faces of those frames: each track's face box, and the faces set aside meanwhile.
        self._faces_in: dict[float, _FrameFaces] = {}

    # ------------------------------------------------------------------------------------
    # Queries

    @property
    def persons(self) -> dict[str, PersonInfo]:
        """Persons still remembered (present, or gone less than reid_memory_s ago), by id."""
        return {pid: PersonInfo(pid, p.embedding, p.first_seen, p.last_seen,
                                p.state is PersonState.PRESENT)
                for pid, p in self._persons.items()}

    @property
    def active_count(self) -> int:
        """Number of persons in view: PERSON_IN/RETURNED sent and no PERSON_OUT yet."""
        return sum(p.state is PersonState.PRESENT for p in self._persons.values())

    @property
    def now(self) -> float:
        """Stamp of the latest processed frame [s]; -inf before the first."""
        return self._now

    def person_of_track(self, track_id: int) -> str | None:
        """Return the person id of a track, or None while pending or for an unknown track."""
        track = self._tracks.get(track_id)
        return None if track is None else track.person_id

    def person_embedding(self, person_id: str) -> np.ndarray | None:
        """Return the person's running embedding (read-only), or None if unknown or faceless."""
        person = self._persons.get(person_id)
        return None if person is None else person.embedding

    # ------------------------------------------------------------------------------------
    # Frames

    def update(self, stamp: float, detections: Sequence[Detection],
               frame_size: tuple[int, int] | None = None
               ) -> tuple[list[TrackedPerson], list[PersonEventRecord]]:
        """Track one frame's detections; return its visible tracks and the events it caused.

        frame_size: the image's width and height [px]. A box cut by its left or right edge
        shows a part of its person: a walk across is measured from its other side (_walk),
        its looks give way to those of the person's first whole box (_Track.move) and do not
        keep it from showing a missing person (_follow_unclaimed). None: unknown.

        A frame older than the latest one (a late or reordered message) cannot go back
        through ByteTrack: each of its boxes that overlaps a track's box by LATE_MATCH_IOU
        counts as a sighting of that track at stamp, and those tracks are returned (no events).
        Raises ValueError for a stamp that is not finite, for detections with NaN or
        infinite values and for a frame size that is not positive.
        """
        if not math.isfinite(stamp):
            raise ValueError(f'stamp {stamp} is not finite')
        if frame_size is not None and min(frame_size) <= 0:
            raise ValueError(f'frame size {frame_size} is not positive')
        boxes = np.array([d.box for d in detections], np.float32).reshape(-1, 4)
        conf = np.array([d.confidence for d in detections], np.float32)
        bodies = [d.appearance for d in detections]
        if not (np.all(np.isfinite(boxes)) and np.all(np.isfinite(conf))):
            raise ValueError('detections have NaN or infinite boxes or confidences')
        # Faint boxes take part in no track, only in _follow_unclaimed (see there).
        faint = conf <= self._config.track_low_thresh
        faint_boxes, faint_conf = boxes[faint], conf[faint]
        faint_bodies = [body for body, weak in zip(bodies, faint) if weak]
        boxes, conf = boxes[~faint], conf[~faint]
        bodies = [body for body, weak in zip(bodies, faint) if not weak]
        if stamp < self._now:
            return self._fold_late(stamp, boxes, conf), []
        previous = self._before = self._now
        self._advance_clock(stamp)
        self._frame_size = frame_size
        if self._stalled_at is not None:
            self._resumed_at, self._stall_length = stamp, stamp - self._stalled_at
            self._stalled_at = None

        events: list[PersonEventRecord] = []
        visible: list[_Track] = []
        before = {p.person_id: p.box for p in self._persons.values()
                  if p.state is PersonState.PRESENT and p.last_seen == previous}
        matched = self._motion.update(boxes, conf, self._frame_interval >= SLOW_INTERVAL_S)
        still = {self._by_motion[m].person_id for m, _ in matched if m in self._by_motion}
        # Where a walk took them is a guess beyond FOLLOW_MAX_GAP_S (the crossing at 0.5/s: a
        # walker 2 s on put Musk's track in doubt, where it stayed until it took Johansson's
        # box 14 s later).
        vanished = {pid: (box, _heading_box(self._persons[pid], stamp)
                          if stamp - previous <= FOLLOW_MAX_GAP_S else box)
                    for pid, box in before.items() if pid not in still}
        torn = self._torn([m for m, _ in matched])
        swapped = self._swapped(matched, bodies)
        for motion_id, idx in matched:
            body = bodies[idx]
            track = self._by_motion.get(motion_id)
            verdict = None if track is None else self._continuation(track, boxes[idx], body)
            if verdict is not None:
                if verdict == 'unlike' and track.person_id is not None:
                    self._persons[track.person_id].adrift = True  # see _relink
                track = None
            # On the first frame after a stall, whose tracks came back is for their looks to
            # say (their people are gone: no face could end a doubt, see _continuation).
            missed = (track is not None and stamp != self._resumed_at
                      and track.missed(stamp, previous))
            if track is None:
                track = self._new_track(stamp, boxes[idx], float(conf[idx]))
                self._by_motion[motion_id] = track
            elif track.person_id is not None and self._face_can_decide(track.person_id):
                engulfed = _engulfed(boxes[idx], before.get(track.person_id), vanished)
                track.engulfed = list(dict.fromkeys(
                    [pid for pid in track.engulfed if pid not in still] + engulfed))
                if (track.refound_unlike(stamp, boxes[idx], body, self._frame_interval)
                        or missed or track.rescaled(boxes[idx])
                        or engulfed or motion_id in torn or motion_id in swapped
                        or _split_off(boxes, idx, before.get(track.person_id))
                        or self._guessed(track, stamp, idx, boxes, bodies, still)):
                    if not track.doubtful:
                        track.doubt_since = stamp
                    track.doubtful = True
                elif track.handed_over(stamp, body):
                    track.unnamed = True
            if track.person_id is not None and (
                    self._unseen(track.last_seen, stamp, REFIND_GAP_S) or missed):
                track.refound_at = stamp
            track.move(stamp, boxes[idx], float(conf[idx]), body, self._frame_size)
            visible.append(track)
            if track.person_id is not None and not track.doubtful:
                person = self._persons[track.person_id]
                self._see(person, track)
                if person.state is PersonState.GONE:  # after a stall: see _continuation
                    person.appearance_start = stamp
                    events.append(self._announce(EventKind.PERSON_RETURNED, person, track,
                                                 stamp, EventReason.INPUT_RESUMED))
        # After every bound track has been seen: only persons missing from this frame can be
        # continued by a new track. One that continues a missing person is theirs, not a part
        # of someone in view: they step out from behind them (sizes_720p at 5.5-7.5/s: Musk
        # from behind Clooney, taken for a part of him, was shown Clooney's id).
        self._relink([t for t in visible if t.person_id is None], stamp)
        self._join_parts([t for t in visible if t.person_id is None], before, stamp)
        # A group parted once its track's own person shows on a track of their own.
        for track in visible:
            if track.engulfed and any(other is not track and other.person_id == track.person_id
                                      for other in visible):
                track.engulfed = []
        # A box in doubt may show someone else than its track's person (_follow_unclaimed).
        in_doubt = {idx: track.person_id for motion_id, idx in matched
                    if (track := self._by_motion[motion_id]).doubtful or track.contradictions}
        self._follow_unclaimed(stamp, boxes, conf, bodies,
                               {idx for _, idx in matched} - in_doubt.keys(), in_doubt)
        self._follow_unclaimed(stamp, faint_boxes, faint_conf, faint_bodies, set(), {},
                               faint=True)
        for track in visible:
            if track.person_id is None:
                events += self._settle_by_time(track, stamp)
        if self._frame_interval >= SLOW_INTERVAL_S:
            for track in list(self._tracks.values()):
                if track.person_id is None and track.last_seen == previous:
                    events += self._settle_by_time(track, stamp, vanished=True)
                    events += self._pass_on_withheld(track, stamp)
        claimed = {idx for _, idx in matched}
        events += self._expire(stamp, [(boxes[i], bodies[i]) for i in range(len(boxes))
                                       if i not in claimed])
        self._note_ambiguous(stamp)
        return [TrackedPerson(t.track_id, t.shown_id, t.box, t.confidence, t.shown_similarity)
                for t in visible], events

    def _swapped(self, matched: list[tuple[int, int]], bodies: list[np.ndarray | None]
                 ) -> set[int]:
        """Return the motion ids of named tracks ByteTrack swapped: boxes that look crossed.

        matched: (motion id, box index) pairs of this frame; bodies: the boxes' appearances.
        Two tracks of different people whose boxes look more like the other track's latest
        box than like their own, by APPEARANCE_SWAP_MIN_GAIN over the two, were swapped:
        when two people trade places between frames, the box that overlaps each track most is
        the other's (the swap clip at 0.5/s: each shown under the other's id for a frame).
        """
        named = [(m, self._by_motion[m], idx) for m, idx in matched
                 if m in self._by_motion and self._by_motion[m].person_id is not None]
        swapped = set()
        for (m, one, mine), (n, other, theirs) in itertools.combinations(named, 2):
            own = [appearance_similarity(one.last_body, bodies[mine]),
                   appearance_similarity(other.last_body, bodies[theirs])]
            crossed = [appearance_similarity(one.last_body, bodies[theirs]),
                       appearance_similarity(other.last_body, bodies[mine])]
            if (one.person_id != other.person_id and None not in own + crossed
                    and sum(crossed) > sum(own) + APPEARANCE_SWAP_MIN_GAIN):
                swapped |= {m, n}
        return swapped

    def _torn(self, motion_ids: list[int]) -> set[int]:
        """Return the motion ids of tracks that show a person another track shows walking apart.

        One person does not walk two ways at once (_apart). The older track (track ids
        count up) keeps them; the later one, named by a face on a box of two or re-linked
        while the older was lost, is in doubt (the crossing at 1.25/s: Johansson's track,
        named after the face of the walker in front of her when their boxes merged, walked on
        with her while his own track found him again a frame later). Only people a face can
        confirm are doubted (see update).
        """
        tracks = {m: self._by_motion[m] for m in motion_ids if m in self._by_motion}
        return {m for m, track in tracks.items()
                if track.person_id is not None and any(
                    other.person_id == track.person_id and other.track_id < track.track_id
                    and _apart(track, other) for other in tracks.values())}

    def end_appearances(self, reason: EventReason) -> list[PersonEventRecord]:
        """End every present person's appearance for reason; return their PERSON_OUTs.

        The events are stamped at the latest processed frame. Tracks are kept: after
        INPUT_STALLED, a person whose track is still there when frames come again is
        PERSON_RETURNED (INPUT_RESUMED) under their id.
        """
        events = [self._leave(p, self._now, reason) for p in self._persons.values()
                  if p.state is PersonState.PRESENT]
        if reason is EventReason.INPUT_STALLED and math.isfinite(self._now):
            self._stalled_at = self._now
        return events

    def reset(self, stamp: float) -> list[PersonEventRecord]:
        """Restart tracking at stamp after time jumped back (a replay loop, a sim-time reset).

        Every track is forgotten and the next update() may carry any stamp from stamp on.
        Persons still present get their PERSON_OUT (TIME_JUMP), stamped at the latest update.
        Persons and their face embeddings are kept, and their times moved by stamp minus the
        latest update's stamp, as if the new timeline continued the old one without a gap.
        Raises ValueError for a stamp that is not finite.
        """
        if not math.isfinite(stamp):
            raise ValueError(f'reset stamp {stamp} is not finite')
        events = self.end_appearances(EventReason.TIME_JUMP)
        shift = stamp - self._now if math.isfinite(self._now) else 0.0
        for person in self._persons.values():
            person.first_seen += shift
            person.appearance_start += shift
            person.last_seen += shift
            person.last_event_stamp += shift
        self._motion.reset()
        self._tracks.clear()
        self._succeeded_by.clear()
        self._by_motion.clear()
        self._ambiguous_in.clear()
        self._faces_in.clear()
        self._now, self._stalled_at = stamp, None
        return events

    # ------------------------------------------------------------------------------------
    # Faces and enrolled people

    def add_face(self, stamp: float, track_id: int, embedding: np.ndarray, quality: float,
                 tag: object = None, face_box: np.ndarray | None = None
                 ) -> list[PersonEventRecord]:
        """Use a face embedding of a track, seen at stamp [s]; return the events it caused.

        face_box: the face's x1, y1, x2, y2 [px], in the detections' pixels; None if unknown.
        Raises EmbeddingError (a ValueError) for a wrong-length or non-finite embedding and
        ValueError for a quality outside [0, 1] or a face box that is not finite and of
        positive size. A face of a track split off its person is for the track that took its
        place (_split), the same box: a face in flight is not lost (swap at 0.5/s: Jolie,
        shown Aniston's id until Aniston's face named her own box, had her one face dropped
        and was never announced). Faces of unknown tracks, of frames before the track's box
        came to look like someone else (_Track.since), or from a box that overlapped another
        visible person in the face's own frame (AMBIGUOUS_BOX_IOU) unless the face lies outside
        that person's box (FACE_OTHER_MAX_INSIDE) or that box holds another face of the frame
        (FACE_OWN_MIN_INSIDE; a face set aside is used once that face comes), are ignored.
        A face that counts for a person, now or once its track's identity is decided, is
        reported with its tag by take_attributions(). A face below min_face_quality does not
        count, but it was seen on the person's track: it is reported too, so the history can
        find the person by it, unless the track shows no id or the face matches someone else
        better (_attribute_seen). One between contradiction_similarity and a match to the
        track's person is not: it is as likely another's whom the box went to.
        """
        vector = validate_embedding(embedding, self._config.embedding_dim)
        if track_id not in self._tracks and track_id in self._succeeded_by:
            track_id = self._succeeded_by[track_id][0].track_id
        if not 0 <= quality <= 1:
            raise ValueError(f'face quality must be in [0, 1], got {quality}')
        if face_box is not None:
            face_box = np.asarray(face_box, np.float32)
            if (face_box.shape != (4,) or not np.all(np.isfinite(face_box))
                    or np.any(face_box[2:] <= face_box[:2])):
                raise ValueError(f'face box must be a finite x1, y1, x2, y2 of positive size, '
                                 f'got {face_box.tolist()}')
        frame = self._faces_in.get(stamp)
        aside: list[tuple[int, _Face, np.ndarray | None]] = []
        if frame is not None and face_box is not None:
            # This face may be the own face of a box that set earlier ones aside: retry them.
            frame.boxes[track_id] = face_box
            aside, frame.aside = frame.aside, []
        events = self._take_face(stamp, track_id, _Face(vector, quality, tag), face_box)
        for entry in aside:
            events += self._take_face(stamp, *entry)
        return events

    def _set_aside(self, stamp: float, track_id: int, face_box: np.ndarray | None,
                   others: list[np.ndarray]) -> bool:
        """Return whether a face may be another's: in another's box that has no face of its own.

        others: the boxes of others that overlapped the track's in the face's frame; those
        that hold the face (FACE_OTHER_MAX_INSIDE) count, unless a face of the frame apart
        from this one lies inside (FACE_OWN_MIN_INSIDE): that person's own.
        """
        if face_box is None:
            return bool(others)
        frame = self._faces_in.get(stamp)
        faces = [] if frame is None else [
            box for tid, box in frame.boxes.items()
            if tid != track_id and inside_fraction(box, face_box) == 0]
        return any(inside_fraction(face_box, box) > FACE_OTHER_MAX_INSIDE
                   and not any(inside_fraction(face, box) >= FACE_OWN_MIN_INSIDE for face in faces)
                   for box in others)

    def _take_face(self, stamp: float, track_id: int, face: _Face,
                   face_box: np.ndarray | None) -> list[PersonEventRecord]:
        """Use a checked face of a track (add_face), or set it aside; return the events."""
        track = self._tracks.get(track_id)
        if track is None or stamp < track.since:
            return []
        others = self._others_at(track, stamp)
        if self._set_aside(stamp, track_id, face_box, others):
            frame = self._faces_in.get(stamp)
            if frame is not None:
                frame.aside.append((track_id, face, face_box))
            return []
        face.alone = not others
        if face.quality < self._config.min_face_quality:
            if track.person_id is None:
                track.witnessed.append(face)
                del track.witnessed[:-self._config.max_samples]
            else:
                self._confirm_by_poor_face(stamp, track, face)
                self._attribute_seen(track, face)
            return []
        released = self._release_withheld(track, face, stamp) if face.alone else []
        return released + self._use_face(stamp, track, face, others)

    def _confirm_by_poor_face(self, stamp: float, track: _Track, face: _Face) -> None:
        """End a track's doubt by a face too poor to decide that is unmistakably its person.

        A face under min_face_quality decides nothing, but one in a box of its own that
        matches the track's person at poor_confirm_similarity or more, and no one else within
        the match margin, shows the box is still theirs (sizes_720p at 10/s: Mayer, her
        track in doubt after Biden walked past in front of her, showed no id for 5.5 s while
        her 40-px faces, quality 0.47-0.59, matched her at 0.99). Not a track a good face
        contradicted, nor by a face of a frame before the doubt began or the track was found
        again (_confirms_now). A track also unnamed (handed over) stays so: only a face that
        may decide names it.
        """
        if (not track.doubtful or track.denied or track.contradictions or not face.alone
                or not self._confirms_now(track, stamp)):
            return
        person = self._persons[track.person_id]
        if person.state is not PersonState.PRESENT:
            return
        similarity = self._similarity(person, face.vector)  # 0 without a reference face
        if (similarity >= self._rules.poor_confirm_similarity
                and self._best_other(person.person_id, face.vector)
                < similarity - self._config.match_margin):
            track.refound_at, track.similarity = None, similarity
            track.doubtful = False
            self._see(person, track)

    @staticmethod
    def _confirms_now(track: _Track, stamp: float) -> bool:
        """Return whether a face of stamp is of the box its track in doubt shows now.

        Not of a frame before the doubt began, nor before the track was found again after a
        miss (refound_at): late, it shows whoever the box held then (a box shrunk to the
        next person's height at 5/s, confirmed by the previous person's face of the frame
        before).
        """
        return stamp >= track.doubt_since and (track.refound_at is None
                                               or stamp >= track.refound_at)

    def _release_withheld(self, track: _Track, face: _Face, stamp: float
                          ) -> list[PersonEventRecord]:
        """Announce the vanished tracks withheld for track whose faces its face is unlike.

        A face unlike theirs (contradiction_similarity) shows that track is someone else,
        not their person walking on (the doorway at 0.5/s: DiCaprio, seen in one processed
        frame, his face of quality 0.75 finding no one; the next person through the door,
        where he stood 2 s later, began a track that might have been him, and he was never
        announced).
        """
        events = []
        for ended in self._ended:
            if track.track_id in ended.withheld_for and ended.faces and max(
                    float(np.dot(own.vector, face.vector)) for own in ended.faces
            ) < self._config.contradiction_similarity:
                events += self._withhold_for(ended, track.track_id, set(), stamp)
        return events

    def _pass_on_withheld(self, track: _Track, stamp: float) -> list[PersonEventRecord]:
        """Let the tracks withheld for a track that vanished wait on its continuations instead.

        The doorway at 0.5/s: the next person through the door began a track in the frame
        after DiCaprio's, too far in to show a face, and went on on a new track 2 s later.
        """
        events = []
        for ended in self._ended:
            if track.track_id in ended.withheld_for:
                events += self._withhold_for(ended, track.track_id,
                                             self._continuations(track, stamp), stamp)
        return events

    def _withhold_for(self, ended: _Track, track_id: int, successors: set[int], stamp: float
                      ) -> list[PersonEventRecord]:
        """Make a withheld track wait on successors instead of track_id; announce it if on none."""
        ended.withheld_for = (ended.withheld_for - {track_id}) | successors
        if ended.withheld_for or ended.person_id is not None or not ended.faces:
            return []
        return self._make_new_person(ended, stamp, EventReason.FACE, vanished=True)

    def _use_face(self, stamp: float, track: _Track, face: _Face, others: list[np.ndarray]
                  ) -> list[PersonEventRecord]:
        """Let a face of min_face_quality or better decide, confirm or contradict its track."""
        quality, vector = face.quality, face.vector
        if track.person_id is None:
            self._pool(track, face)
            track.faces.append(face)
            return self._settle_by_faces(track, stamp)
        person = self._persons[track.person_id]
        if self._reference(person) is None:  # first faces of a person announced without one
            return self._first_face(track, person, face, stamp, bool(others))
        track.similarity = self._similarity(person, vector)
        if track.refound_at is not None and stamp >= track.refound_at:
            track.refound_at = None
        self._fix_swap(track, vector)
        person = self._persons[track.person_id]  # the swap may have changed it
        if track.similarity >= self._config.min_similarity:
            # Confirmed: the box was theirs after all; unless it holds another's too (a group's
            # box that ByteTrack may hand on to the other: the crossing replay at 9/s), or the
            # face is of a frame before the doubt began or the track was found again: their
            # face of before, late, says nothing of whom the box shows now.
            if (track.doubtful and person.state is PersonState.PRESENT and not others
                    and self._confirms_now(track, stamp)):
                track.doubtful = False
                self._see(person, track)
            if not track.doubtful:
                self._count(person, face)
                track.contradictions.clear()
                track.unnamed = False
                track.took_over = None
            return []
        vote = judge_face(face.vector, face.quality, self._gallery(track), self._rules,
                          face.alone)
        rival = self._rival(track, vote)
        margin = (self._config.match_margin if track.doubtful or track.unnamed
                  else self._config.swap_margin)
        elsewhere = rival is not None and rival.similarity >= track.similarity + margin
        # On a box that looked like someone else after a gap (unnamed), a good face that does
        # not match the track's person contradicts it: the next person on a doorway's spot,
        # whose face scores between contradiction and match against a person whose running
        # embedding blends several faces, would otherwise carry their presence for ever. So
        # does one that matches someone else out of view, unless the track founded the
        # track's person (the doorway at 0.5/s: Jolie's faces, 0.98 to her and 0.89 to
        # Johansson, on Johansson's track carried onto her, kept Johansson present and Jolie
        # unannounced for 22 s). On the founding track they may be that other, founded by a
        # face short of a match (Hamilton: Miranda's second id, at 0.907 to his first; his
        # later faces, 0.95 to it, split his track, and the second id was reported gone while
        # he was in view).
        carried = rival is not None and person.founded_on != track.track_id
        if (track.similarity >= self._config.contradiction_similarity and not carried
                and not elsewhere and not track.unnamed
                and not self._shown_elsewhere(track, face, stamp)):
            # Too like them to contradict, too unlike to count, and not filed under them: as
            # likely another's (at 1.7/s three men walking in file gave ByteTrack's boxes each
            # to the one behind, and the faces of the man on DiCaprio's track, 0.90-0.94 to
            # DiCaprio, were filed under his id for 8 s: group_tight).
            return []
        if track.doubtful:
            track.denied = True
        # A good face clearly unlike the track's person: ByteTrack may have carried the box
        # across a cut or a hand-over. Two such faces, or one very good one, split the track.
        # One that is someone else's, out of view, splits it too. Contradicting faces unlike
        # each other are two other people (the box changed hands again): the latest counts.
        if (track.contradictions and float(np.dot(track.contradictions[-1].vector, vector))
                < self._config.contradiction_similarity):
            track.contradictions.clear()
        track.contradictions.append(face)
        if (quality >= self._config.strong_face_quality or elsewhere
                or len(track.contradictions) >= self._rules.votes_needed
                or self._stepped_in(track, vote)):
            return self._split(track, stamp)
        return []

    def _shown_elsewhere(self, track: _Track, face: _Face, stamp: float) -> bool:
        """Return whether a face on a track in doubt falls short of a person seen elsewhere.

        One person is not in two places: while another track shows them (not in doubt, no
        face against it), a face alone in this box that does not match them is not theirs,
        however alike. Between contradiction and match it would deny nothing, and a
        look-alike who took the track of the person walking beside them kept it for good and
        was never announced (group_tight at 0.5/s: Damon, walking in beside DiCaprio, his faces
        0.92 to DiCaprio's, on a new track re-linked to DiCaprio, while DiCaprio's own new
        track showed his face at 1.0).
        """
        return (track.doubtful and face.alone and self._confirms_now(track, stamp)
                and track.person_id in self._visible_persons(track))

    def _stepped_in(self, track: _Track, vote: FaceVote | None) -> bool:
        """Return whether a face contradicting a track's guessed box shows someone new there.

        vote: the face's judgement against the people out of view (_take_face).

        At a slow rate a box in doubt (_guessed) that shows a face of no one known (NEW) is
        someone who stepped in between the frames (the doorway at 0.5/s: DiCaprio, in one
        processed frame, on the track of the one before him, his face of quality 0.75; the
        next person through took the box 2 s later, and her face, unlike his, cleared his
        from the track's contradictions).
        """
        return (track.doubtful and self._frame_interval >= SLOW_INTERVAL_S
                and vote is not None and vote.kind is VoteKind.NEW)

    def set_known_people(self, people: dict[str, np.ndarray]) -> list[PersonEventRecord]:
        """Replace the enrolled people: {name: face embedding}; return the events it caused.

        A face that matches an enrolled person (by the same rules as re-identification) gives
        the track that name as person id. A name no longer in people is forgotten: its local
        record and faces are dropped, and if the person is in view their appearance ends
        (PERSON_OUT, FORGOTTEN) and their tracks are identified afresh. Raises EmbeddingError
        for an unusable embedding (nothing is changed then).
        """
        known = {name: validate_embedding(vector, self._config.embedding_dim)
                 for name, vector in people.items()}
        events = []
        for person in list(self._persons.values()):
            if person.person_id in known:
                person.enrolled = True
            elif person.enrolled:
                events += self._drop(person)
        self._known = known
        self._index_tracks()
        return events

    def forget(self, person_id: str = '', embedding: np.ndarray | None = None,
               stamp_ns: int = 0) -> tuple[list[str], list[PersonEventRecord]]:
        """Forget a person on request (the history's forget_person); return (ids, events).

        Forgotten: the person named person_id, and every remembered or present person whose
        reference face matches embedding (min_similarity), so a face forgotten under another
        id is not re-learned either. Their faces and records go (the next snapshot has none of
        them); a person in view gets PERSON_OUT (FORGOTTEN) and their tracks are identified
        afresh. An enrolled name stays: the fleet withdraws it through known_people. Raises
        EmbeddingError for an unusable embedding (nothing is changed then).

        stamp_ns: when the history forgot them [ns]. A forget taken before (same stamp, same
        person id: the history's announcement heard again after a restart) changes nothing,
        so whoever was seen and learned since keeps their id. 0: always taken.
        """
        vector = (None if embedding is None or len(embedding) == 0
                  else validate_embedding(embedding, self._config.embedding_dim))
        if stamp_ns:
            taken = (stamp_ns, id_digest(person_id))
            if taken in self._forgets_taken:
                return [], []
            self._forgets_taken.append(taken)
            self._save_due = True
        forgotten, events = [], []
        for person in list(self._persons.values()):
            if person.enrolled:
                continue
            reference = person.embedding
            named = bool(person_id) and person.person_id == person_id
            if named or (vector is not None and reference is not None and float(
                    cosine_similarity(vector, reference[None])[0])
                    >= self._config.min_similarity):
                forgotten.append(person.person_id)
                events += self._drop(person)
        if forgotten:
            self._index_tracks()
            self._save_due = True
        return forgotten, events

    def _drop(self, person: _Person) -> list[PersonEventRecord]:
        """Remove a person: PERSON_OUT (FORGOTTEN) if in view; their tracks start afresh."""
        events = []
        if person.state is PersonState.PRESENT:
            events.append(self._leave(person, self._now, EventReason.FORGOTTEN))
        for motion_id, track in list(self._by_motion.items()):
            if track.person_id == person.person_id:
                self._by_motion[motion_id] = self._restart_track(track)
        # Faces still in flight for tracks split off them may be theirs: not kept either.
        self._succeeded_by = {old_id: entry for old_id, entry in self._succeeded_by.items()
                              if entry[1] != person.person_id}
        del self._persons[person.person_id]
        return events

    # ------------------------------------------------------------------------------------
    # Persistence

    def snapshot(self) -> TrackerState:
        """Return what a restarted tracker needs: remembered people and the id counters.

        Enrolled people are left out: the fleet publishes them again on start.
        """
        self._save_due = False
        return TrackerState(self._reserved_until, self._next_track_id, tuple(
            PersonRecord(p.person_id, p.first_seen, p.last_seen, p.appearance_start,
                         p.state is PersonState.PRESENT, p.box, tuple(p.samples))
            for p in self._persons.values() if not p.enrolled), tuple(self._forgets_taken))

    def take_attributions(self) -> list[tuple[object, str]]:
        """Return (tag, person id) of the faces counted for a person since the last call.

        A face of a pending track is counted once the track's identity is decided, and not at
        all if it lost the vote or its track changed look; a face contradicting its track's
        person counts for whoever the split track turns out to be.
        """
        attributions, self._attributions = self._attributions, []
        return attributions

    @property
    def save_due(self) -> bool:
        """True when the saved state is stale: ids reserved or a person forgotten; save now."""
        return self._save_due

    def restore(self, state: TrackerState) -> list[PersonEventRecord]:
        """Continue from a saved state: people are remembered (GONE) and ids go on.

        Returns the PERSON_OUT (SHUTDOWN) of people saved while present (the tracker stopped
        without ending their appearance), stamped at their last sighting. Call before the
        first update().
        """
        self._next_sequence = self._reserved_until = max(self._next_sequence,
                                                         state.next_sequence)
        self._next_track_id = max(self._next_track_id, state.next_track_id)
        self._forgets_taken.extend(state.forgets_taken)
        events = []
        for record in state.persons:
            person = _Person(record.person_id, 0, record.first_seen, record.appearance_start,
                             record.last_seen, record.box, 0.0, record.last_seen,
                             np.zeros(2, np.float32))
            for quality, vector in record.samples:
                person.add_sample(l2_normalize(vector), quality, self._config.max_samples)
            self._persons[person.person_id] = person
            if record.present:
                events.append(self._leave(person, record.last_seen, EventReason.SHUTDOWN))
            person.state, person.ended_by = PersonState.GONE, EventReason.SHUTDOWN
        return events

    def skip_sequence_to(self, sequence: int) -> None:
        """Never hand out person id numbers below sequence (e.g. found in the event log)."""
        if sequence > self._next_sequence:
            self._next_sequence = self._reserved_until = sequence
            self._save_due = True

    # ------------------------------------------------------------------------------------
    # Internals: tracks

    def _new_track(self, stamp: float, box: np.ndarray, confidence: float) -> _Track:
        track = _Track(self._next_track_id, stamp, stamp, box, confidence, box)
        self._next_track_id += 1
        self._tracks[track.track_id] = track
        return track

    def _restart_track(self, track: _Track) -> _Track:
        """Return a pending track with a new id in place of track (same box and motion)."""
        fresh = self._new_track(track.last_seen, track.box, track.confidence)
        fresh.velocity, fresh.walked, fresh.frames = track.velocity, track.walked, 1
        del self._tracks[track.track_id]
        return fresh

    def _continuation(self, track: _Track, box: np.ndarray, body: np.ndarray | None
                      ) -> str | None:
        """Return why the box ByteTrack gave a track is not the track's, or None if it is.

        'unlike': the box looks unlike the track (body appearance, _Track.looks_unlike):
        ByteTrack carried it across a camera cut, or onto the other person at a crossing (the
        re-linking that follows gives each person their own id back). 'stale': the track was
        unseen for longer than _buffer_s() (ByteTrack counts its buffer in frames, which are
        long when the frame rate just dropped). 'left': the track's person already left (the
        next person through a doorway takes the same path), unless the appearance ended only
        because the input stalled and the track is back in the first absence_timeout_s after
        the input resumed. The time of a stall does not count as unseen. 'rescaled': a
        pending track's box at a slow rate is someone else's by its height (_carried_off).
        """
        if track.looks_unlike(body):
            return 'unlike'
        unseen = self._now - track.last_seen
        if track.last_seen < self._resumed_at:
            unseen -= self._stall_length
        # Half a frame more: stamps jitter, and ByteTrack, counting whole frames, still keeps
        # a track unseen for just its buffer.
        if unseen > self._buffer_s() + 0.5 * self._frame_interval:
            return 'stale'
        if track.person_id is None:
            return 'rescaled' if self._carried_off(track, box) else None
        person = self._persons[track.person_id]
        if person.state is PersonState.GONE and not (
                person.ended_by is EventReason.INPUT_STALLED
                and self._now - self._resumed_at <= self._config.absence_timeout_s):
            return 'left'
        return None

    def _carried_off(self, track: _Track, box: np.ndarray) -> bool:
        """Return whether a pending track with faces was continued onto someone else's box.

        At a slow rate a box off the track's height trend (_Track.off_trend) is more likely
        the next person on its spot than its own (the doorway at 0.5/s: DiCaprio's one-box
        track, continued onto the next person through, 1.24 times his height, whose face
        decided the track and left his unused). Its faces stay with its own box, which
        vanished (_settle_by_time).
        """
        return (bool(track.faces) and self._frame_interval >= SLOW_INTERVAL_S
                and track.off_trend(self._now, box))

    def _index_tracks(self) -> None:
        tracks = {t.track_id: t for t in self._by_motion.values()}
        # Kept while their faces may still be pooled (_pool).
        self._ended = [t for t in [*self._ended, *self._tracks.values()]
                       if t.track_id not in tracks and t.person_id is None and t.faces
                       and self._now - t.last_seen
                       <= (POOL_MAX_GAP_FRAMES + 1) * self._frame_interval]
        self._tracks = tracks
        self._succeeded_by = {old_id: entry for old_id, entry in self._succeeded_by.items()
                              if tracks.get(entry[0].track_id) is entry[0]}

    def _pool(self, track: _Track, face: _Face) -> None:
        """Give a pending track's first face the faces of the walker's previous track.

        See POOL_MAX_GAP_FRAMES; the best matching such track gives its faces up, and the
        walk from its last box to the track's first becomes the track's velocity.
        """
        if track.faces or self._frame_interval < SLOW_INTERVAL_S:
            return
        gap = (POOL_MAX_GAP_FRAMES + 0.5) * self._frame_interval  # stamps jitter
        alike = [(similarity, t.track_id, t) for t in [*self._tracks.values(), *self._ended]
                 if t is not track and t.person_id is None and t.faces
                 and 0 < track.first_seen - t.last_seen <= gap
                 and (similarity := float(np.dot(t.faces[-1].vector, face.vector)))
                 >= self._config.min_similarity]
        if alike:
            donor = max(alike, key=lambda entry: entry[:2])[2]
            track.faces, donor.faces = donor.faces, []
            # One walker: their walk from the donor's last box is the track's first.
            step = _walk(donor.box, track.first_box, track.first_seen - donor.last_seen,
                         self._frame_size)
            if step is not None and not track.walked:
                track.velocity, track.walked = step, True

    def _fold_late(self, stamp: float, boxes: np.ndarray, conf: np.ndarray
                   ) -> list[TrackedPerson]:
        """Count a late frame's boxes as sightings of the tracks they overlap."""
        tracks = list(self._tracks.values())
        if not tracks or not len(boxes):
            return []
        track_boxes = np.stack([t.box for t in tracks])
        seen = []
        for box, score in zip(boxes, conf):
            overlaps = box_iou(box, track_boxes)
            best = int(np.argmax(overlaps))
            if overlaps[best] < LATE_MATCH_IOU:
                continue
            track = tracks[best]
            if track.person_id is not None and not track.doubtful:  # in doubt: no sighting
                person = self._persons[track.person_id]
                if person.state is PersonState.PRESENT and stamp > person.last_seen:
                    person.last_seen = stamp
            seen.append(TrackedPerson(track.track_id, track.shown_id, box, float(score),
                                      track.shown_similarity))
        return seen

    def _buffer_s(self) -> float:
        """How long a lost track is kept [s]: track_buffer_s, and evidence_frames frames."""
        return max(self._config.track_buffer_s,
                   self._config.evidence_frames * self._frame_interval)

    def _buffer_frames(self) -> int:
        return max(1, round(self._buffer_s() / self._frame_interval))

    def _advance_clock(self, stamp: float) -> None:
        """Move time to stamp, keeping ByteTrack's frame-counted buffer at _buffer_s()."""
        interval = stamp - self._now
        if 0 < interval < math.inf:
            self._intervals.append(interval)
            # The median: an outage (a stall, a paused camera) is not the frame rate, however
            # long, and a slow detector's interval is, however long (a fixed bound of
            # track_buffer_s took 2.1 s a frame for outages: every track went stale each frame).
            self._frame_interval = statistics.median_low(self._intervals)
            self._motion.set_buffer_frames(self._buffer_frames())
        self._now = stamp

    def _relink(self, pending: list[_Track], stamp: float) -> None:
        """Bind pending tracks that start where a present, unseen person was heading.

        The person's last box is moved on by its velocity to the track's first sighting; the
        distance from there to the track's first box, in the person's heights, must be at most
        relink_distance, the two heights within RELINK_MAX_HEIGHT_RATIO of each other, their
        body appearances (when known) alike (APPEARANCE_RELINK_MIN_SIMILARITY), and this frame
        not the one that shows the person absent (past that, where they went is a guess).

        A person whose track's box turned out to show someone else is adrift: where they went
        is unknown (a camera cut: the next shot's people may dress alike; a swap in a crowd),
        so only a new track that looks very much like them (APPEARANCE_ADRIFT_RELINK_SIMILARITY)
        or a face finds them again. Only one-to-one matches count: in a group it is a
        guess which new track is whose, and a wrong guess would hand one person's id to
        another, so those tracks wait for a face. But of several who may continue one track,
        one who stood where it begins takes it (_stood_claims).
        """
        missing = self._missing(stamp)
        pairs = [(track.track_id, person.person_id) for track in pending for person in missing
                 if self._continues(person, track.first_seen, track.first_box, track.body)
                 and not self._faces_deny(track, person)]
        for track_id, person_id in _one_to_one(self._stood_claims(pairs)):
            track, person = self._tracks[track_id], self._persons[person_id]
            track.person_id = person_id
            # Less alike than the person's track usually was, or behind where they walked:
            # maybe the next person through the same door; or a guess among people or boxes
            # of no known walk; or their own track, in doubt, is in view, and may show them
            # (the crossing at 0.5 Hz: Dorsey beside Musk). A face must confirm it (see
            # _Track.doubtful).
            track.doubtful = (self._less_alike(person, track.body)
                              or _behind(person, track.first_box)
                              or self._guess_of_no_walk(person, track, missing, pending, stamp)
                              or self._missed(person, stamp)
                              or self._in_doubt_in_view(person_id, stamp))
            track.doubt_since = stamp
            if not track.doubtful:
                track.took_over = copy.copy(person)
                self._see(person, track)

    def _stood_claims(self, pairs: list[tuple[int, str]]) -> list[tuple[int, str]]:
        """Drop the claims on a track of people who did not stand where exactly one other did.

        pairs: (track id, person id) of the people who may continue each track. One who stood
        still (under WALKING_MIN_SPEED) with a last box that overlaps the track's first box
        (FOLLOW_STILL_IOU_LOOKS) is there; the others only walked there by a guess of their
        pace (sizes_720p with detections at random, 4.3 s apart: Biden, 16 px from his last
        box, was claimed by Obama too, whose walk led there; Biden's track waited for a face
        that was too small, got a second id, and his first was reported gone in view). Not a
        walker: at a crossing the other one steps into their last box.
        """
        stood = {(track_id, person_id) for track_id, person_id in pairs
                 if _still(person := self._persons[person_id])
                 and _stood(person, self._tracks[track_id].first_box, FOLLOW_STILL_IOU_LOOKS)}
        standers = Counter(track_id for track_id, _ in stood)
        return [pair for pair in pairs if standers[pair[0]] != 1 or pair in stood]

    def _in_doubt_in_view(self, person_id: str, stamp: float) -> bool:
        """Return whether a track of the person that is in doubt shows at stamp: may be them."""
        return any(track.person_id == person_id and track.doubtful and not track.denied
                   and track.last_seen == stamp for track in self._tracks.values())

    def _guess_of_no_walk(self, person: _Person, track: _Track, missing: list[_Person],
                          pending: list[_Track], stamp: float) -> bool:
        """Return whether re-linking a track to a person is a guess: someone of no walk.

        At a slow rate (SLOW_INTERVAL_S) someone missing whose walk is unknown (seen on one
        box only) may be anywhere within their reach (_in_reach). So the track may show
        another such person who can reach it (the crossing at 0.5/s: Johansson's box,
        re-linked to Aniston walking past her), or, if the person's own walk is unknown,
        they may be on another pending track within their reach whose box in this frame is
        its first or its second (ByteTrack's guess: _guessed). group_tight at 0.5/s: three
        walking in file, 220 px in 2 s, DiCaprio, seen on one box, was re-linked to the
        nearest new box, Damon's, half a height from his last, while his own was 1.3 heights
        away; group at 0.33/s: ByteTrack carried DiCaprio's one-box track onto Clooney, who
        was re-linked to DiCaprio's new box.
        """
        if self._frame_interval < SLOW_INTERVAL_S:
            return False
        return any(
            other is not person and not np.any(other.velocity)  # never measured
            and self._in_reach(other, stamp, track.first_box, track.body) for other in missing
        ) or (not np.any(person.velocity) and any(
            other is not track and other.frames <= 2
            and self._in_reach(person, stamp, other.box, other.body) for other in pending))

    def _missed(self, person: _Person, stamp: float) -> bool:
        """Return whether a person has been missing from whole processed frames for a while.

        Unseen for over HANDOVER_GAP_S and a frame (_unseen), they may have walked
        anywhere within reach since, out of view and back, or someone else came in where they
        left or where their walk pointed: a box there is a guess (the crossing at 0.5/s: Musk
        coming in at the edge Aniston had walked out of 4 s before, her walk measured on no
        track; the doorway: Johansson coming in 6 s after Perry walked out, where his walk
        pointed). At any rate: a detector at 1-3/s under load skips seconds now and then (the
        doorway at 1/s, frames kept at random: Jolie was last seen 3 s before Aniston came in
        where she had stood, and Aniston was shown Jolie's id until her face came). Only for
        people with a face (_face_can_decide): for others the doubt could never end.
        """
        return (self._unseen(person.last_seen, stamp, HANDOVER_GAP_S)
                and self._face_can_decide(person.person_id))

    def _unseen(self, last_seen: float, stamp: float, least_s: float) -> bool:
        """Return whether what was last seen at last_seen is unseen at stamp for over least_s [s].

        And for over 1.5 frame intervals: missing from a whole processed frame, so at a slow
        rate not every frame is a miss.
        """
        return stamp - last_seen > max(least_s, 1.5 * self._frame_interval)

    def _follow_unclaimed(self, stamp: float, boxes: np.ndarray, conf: np.ndarray,
                          bodies: list[np.ndarray | None], claimed: set[int],
                          in_doubt: dict[int, str | None], faint: bool = False) -> None:
        """Count boxes no track took as sightings of missing people they continue.

        ByteTrack confirms a new track only once two of its boxes overlap; between frames
        far apart (a slow detector) a walker moves more than a box width, so a person who
        starts walking is lost and their boxes never become a track. Nor does a lost track
        take boxes scoring under track_high_thresh: someone small or turned, seen again after
        a passer-by hid them, stays lost. A box that no track took, scores above
        track_low_thresh (as a box that may extend a track), and continues a missing person
        as re-linking requires (_continues, one to one) and looks as much like them as usual,
        shows them at stamp: evidence of presence, not a track (no box is published for it);
        one in no track that looks less like them only holds them, as a track in doubt does
        (_expire), and so does one that continues them where no rule below lets it show
        them: it may be them, so it is no evidence that they left (sizes_720p at 1/s: Biden
        stood, then walked off behind Mayer; seen 1.1 s later 0.4 heights on, too late and
        off a course measured standing, he was reported gone while in view).
        Within FOLLOW_MAX_GAP_S of their last sighting, or later where they stood (_stood)
        or on their course (FOLLOW_ON_COURSE): where someone stood still,
        or walked on as they walked, a box after a long occlusion is no guess. Where they
        stood, not even in the frame that would show them absent (sizes_720p at 3/s: Musk,
        hidden by Clooney walking past for 2.2 s, was reported gone in the frame that showed
        him again).
        A box whose track is in doubt or contradicted (in_doubt: box index -> the track's
        person id) counts as unclaimed, on course only, for anyone but that person: ByteTrack
        gave a walker's box to the track of someone they hid, and the walker is still in view
        (the crossing replay at 5/s: Dorsey passing Musk, reported gone).
        faint: the boxes scored track_low_thresh or less, which the detector may send (down
        to its confidence) but no track takes: such a box counts only where the missing person
        stood (_stood). Someone standing while a passer-by walks close past them
        can score under it for seconds (sizes_360p: Jolie, 0.20-0.37 for 2.7 s as Damon walks
        by), and a detector at 1 Hz or slower may take only those frames.
        relink_distance 0 turns this off too.
        """
        unclaimed = [i for i in range(len(boxes))
                     if i not in claimed and (faint or conf[i] > self._config.track_low_thresh)
                     and not _group_box(i, boxes)]
        missing = self._missing(stamp) if unclaimed else []
        anywhere = {person.person_id for person in missing}  # the others only where they stood
        due = self._missing(stamp, evident=True) if unclaimed else []
        near = [(i, person) for i in unclaimed for person in missing + due
                if person.person_id != in_doubt.get(i)
                and (self._where_stood(person, boxes[i], faint)
                     or (person.person_id in anywhere and not faint))
                and self._continues(person, stamp, boxes[i], bodies[i])]
        pairs = near if faint else [
            (i, person) for i, person in near
            if self._follows(person, stamp, boxes[i], doubted=i in in_doubt)]
        # A box cut by the image's left or right edge shows a part of them, whose looks may
        # be unlike the whole's: no evidence either way (the crossing at 2.5/s: Dorsey,
        # walking out behind someone, was reported gone in view).
        seen = _one_to_one([(i, person.person_id) for i, person in pairs
                            if _partial(boxes[i], self._frame_size)
                            or not self._less_alike(person, bodies[i])])
        for i, person_id in seen:
            person = self._persons[person_id]
            person.velocity = person.walk_to(stamp, boxes[i], self._frame_size)
            person.previous_box = person.box
            person.last_seen, person.box, person.confidence = stamp, boxes[i], float(conf[i])
        # Not a box in doubt as well: that is likelier its own track's person (the doorway at
        # 1/s: Aniston, who had left, held by the box of Clooney, who stood where she had),
        # unless that person shows elsewhere in this frame (sizes_720p at 3/s: the track of a
        # walker who had hidden Musk took Musk's box as the walker went on; Musk, less like
        # his usual self in it, was reported gone, and RETURNED by his face at once).
        # The crossing at 1.25/s: Johansson, her last box half behind Aniston's, seen whole
        # again on her course, was reported gone a frame before her face came.
        taken, found = {i for i, _ in seen}, {person_id for _, person_id in seen}
        for i, person_id in _one_to_one([
                (i, person.person_id) for i, person in near
                if i not in taken and person.person_id not in found
                and (i not in in_doubt or self._seen_elsewhere(in_doubt[i], stamp))]):
            self._persons[person_id].doubted_at = stamp

    def _seen_elsewhere(self, person_id: str | None, stamp: float) -> bool:
        """Return whether the person a box in doubt was given to shows at stamp elsewhere.

        Seen, or on another track in view too: one person has one box, so at least one of
        them shows someone else (sizes_720p, frames at random: a passer-by's track, carried
        onto Musk's box as the passer-by walked on as a new track, both in doubt under the
        passer-by's id; Musk, unseen, was reported gone and RETURNED by his face a frame later).
        """
        person = self._persons.get(person_id) if person_id is not None else None
        return person is not None and (person.last_seen == stamp or sum(
            track.person_id == person_id and track.last_seen == stamp
            for track in self._tracks.values()) > 1)

    def _follows(self, person: _Person, stamp: float, box: np.ndarray, doubted: bool) -> bool:
        """Return whether box is where the missing person may be (see _follow_unclaimed).

        A box in doubt only where their walk took them: on their last box it is more likely
        its own track's person, standing where they were hidden. Nor, soon after, a box
        behind a walker (_behind): the next person through the door they walked out of.
        Where their walk took them is on their way on (_off_path) for someone without a face,
        whom nothing else could find again; for someone with one, a box short of where their
        walk pointed may be the next person through the door they came in by (the doorway at
        0.5/s: DiCaprio shown Obama's id for a frame), and their face will say.
        """
        gap = stamp - person.last_seen
        # Up to the absence timeout, when an unseen person used to be reported gone: a box
        # that held them since (_follow_unclaimed) is no sighting, and widens nothing.
        drift = min(gap, self._config.absence_timeout_s) / FOLLOW_MAX_GAP_S
        off = (self._off_course(person, stamp, box) if self._face_can_decide(person.person_id)
               else self._off_path(person, stamp, box))
        on_course = off <= FOLLOW_ON_COURSE * max(1.0, drift)
        return on_course or not doubted and (
            gap <= FOLLOW_MAX_GAP_S and not _behind(person, box)
            or self._where_stood(person, box))

    def _where_stood(self, person: _Person, box: np.ndarray, faint: bool = False) -> bool:
        """Return whether box is where the person stood (module-level _stood).

        Looser (FOLLOW_STILL_IOU_LOOKS) for someone a face can confirm (_face_can_decide): a
        box then shows them only if it looks as much like them as usual (_less_alike). Not for
        a faint box, often two people merged, which may look like either: in the crossing at
        3/s, such a box of a walker passing Musk, who stood, was taken for the walker where
        they last stood; the walker's last box then stretched over Musk, and Musk's next track
        was taken for a part of the walker (_join_parts) and shown under the walker's id.
        """
        return _stood(person, box, FOLLOW_STILL_IOU_LOOKS if not faint and self._face_can_decide(
            person.person_id) else FOLLOW_STILL_IOU)

    def _guessed(self, track: _Track, stamp: float, index: int, boxes: np.ndarray,
                 bodies: list[np.ndarray | None], still: set[str | None]) -> bool:
        """Return whether ByteTrack's box for a named track at a slow rate is a guess.

        At a slow rate (SLOW_INTERVAL_S) a walker moves a body width or more between frames,
        and ByteTrack's motion model, which knows no walk of a track one box old, continues a
        track onto whoever now stands nearest: its second box is a guess (the crossing at
        0.5/s: Johansson's track, founded at its first box, was continued onto Aniston; the
        doorway at 0.5/s: the next person through shown under the one before's id, whom one
        frame showed there). So is a box off the track's height trend (_Track.off_trend: the
        next person on a spot, of another height), and one that continues another missing
        person (still: the people tracks of this frame show) nearer to where they were heading
        than to where the track's person was (boxes, bodies; index: the track's).
        """
        if self._frame_interval < SLOW_INTERVAL_S:
            return False
        box, body = boxes[index], bodies[index]
        if track.frames == 1 or track.off_trend(stamp, box):
            return True
        own = self._persons[track.person_id]
        off_own = self._off_course(own, stamp, box)
        return any(self._continues(other, stamp, box, body)
                   and self._off_course(other, stamp, box) < off_own
                   for other in self._missing(stamp)
                   if other is not own and other.person_id not in still)

    def _in_reach(self, person: _Person, stamp: float, box: np.ndarray,
                  body: np.ndarray | None) -> bool:
        """Return whether a box at stamp may show a person as far as they could have walked.

        WALK_MAX_SPEED over the time since their last box, at least relink_distance; alike in
        height and looks, as _continues asks.
        """
        return (self._reaches(person, stamp, box, WALK_MAX_SPEED)
                and _looks_like(person, body, unknown=True))

    def _reaches(self, last: _Person | _Track, stamp: float, box: np.ndarray,
                 speed: float) -> bool:
        """Return whether box at stamp is within speed [heights/s] of where last was heading.

        At least relink_distance away, over the time since last's latest box, and alike in
        height (RELINK_MAX_HEIGHT_RATIO).
        """
        reach = max(self._config.relink_distance, speed * (stamp - last.last_seen))
        return (self._off_course(last, stamp, box) <= reach
                and _alike_in_height(box, last.box))

    def _missing(self, stamp: float, evident: bool = False) -> list[_Person]:
        """Return the present people unseen at stamp whose absence is not yet evident.

        evident: those whose absence this frame makes evident instead.
        """
        if self._config.relink_distance <= 0:
            return []
        return [p for p in self._persons.values()
                if p.state is PersonState.PRESENT and p.last_seen < stamp
                and self._absent(p, stamp, p.missed_frames + 1) == evident]

    def _walking_on(self, first_seen: float, box: np.ndarray, body: np.ndarray | None,
                    stamp: float, missing: list[_Person]) -> tuple[list[str], list[str]]:
        """Return the ids of those in missing whom a pending track seen at stamp may show.

        As (held, waiting): held, within WALKING_ON_MAX_GAP_S of their last sighting, count
        as maybe seen; waiting, within it only of the first processed frame that missed them
        (a stalled detector's unprocessed frames are no evidence that they walked off:
        sizes_720p, frames at random: Obama, 4.3 s without a processed frame, reported gone
        in view), keep their PERSON_OUT waiting, their absence evident (held present, a
        newcomer's track was re-linked to them: a merged id in the crossing).

        The track: first seen (or in doubt: _expire) at first_seen, its box and appearance
        (body) at stamp; or a box in no track, first seen at stamp (at a rate ByteTrack
        confirms tracks at their second box, a walker whose boxes no longer overlap is in no
        track at all: sizes_720p, frames at random at 1.2/s, Biden stood, then walked off,
        boxed 1.9, 1.4 and 0.3 s apart, each too far on to overlap the last, and was reported
        gone in view).
        Begun after they were last seen, at most WALKING_ON_MAX_GAP_S after they were last
        seen (see above) or maybe seen (their latest box of a track in doubt, or box that
        held them: _follow_unclaimed; sizes_720p, frames at random at 0.8/s: Dorsey, his
        track in doubt 2.2 s after his last sighting, came out from behind two people 3.4 s
        later and was reported gone in view), and within CONTINUE_MAX_SPEED of where they
        were heading (a wrong "may be" only holds them a while; sizes_720p, frames at random:
        Obama walking off, 1.05 heights a second from where he stood): it may be them, too
        far on to re-link (_relink), so it is no evidence that they left. Besides:
        - someone without a face (_face_can_decide), whom looks alone must keep: the track
          looks as much like them as usual (APPEARANCE_REFIND_MAX_DROP) (sizes_720p at 1/s:
          Biden stood, then walked off behind Mayer, whose box hid him for 3.3 s; seen again
          2.6 heights on as a new track, he was reported gone in view);
        - someone with a face: the track is young enough for its face to be on its way
          (identity_wait_s), and does not look unlike them (_looks_like), or either box is
          cut by the image's edge: that face will say (group_tight, frames at random: Perry,
          hidden behind Damon for 2.8 s, came out as a new track of his upper body, unlike
          his whole box; named at the edge, he came out whole, unlike his part; reported
          gone in those frames, he was RETURNED by their faces). Not longer: the crossing's
          look-alikes score as much to one another as some of them to themselves, and such
          tracks held a person with a face for 15 s while the newcomer they showed was never
          announced.
        """
        # A box cut by the image's left or right edge shows a part of them, whose looks are
        # no evidence either way (sizes_720p, frames at random: Dorsey walking out, his box
        # 0.63 like him, was reported gone in view). Their own looks from a part are no
        # evidence either where a face will say; without one, any box in reach would hold
        # them, and a newcomer then re-linked to them (the crossing at 0.5/s: Musk).
        partial = _partial(box, self._frame_size)

        def may_be(person: _Person) -> bool | None:
            if not self._face_can_decide(person.person_id):
                return partial or _as_alike_as_usual(person, body)
            return (stamp - first_seen <= self._config.identity_wait_s
                    and (partial or _partial(person.box, self._frame_size)
                         or _looks_like(person, body, unknown=True)
                         or _top_of(box, person.box)))

        held, waiting = [], []
        for person in missing:
            maybe_seen = max(person.doubted_at, person.in_doubt_at)
            if (0 < first_seen - person.last_seen
                    and first_seen - max(person.unseen_since, maybe_seen) <= WALKING_ON_MAX_GAP_S
                    and self._reaches(person, stamp, box, CONTINUE_MAX_SPEED)
                    and may_be(person)):
                (held if first_seen - max(person.last_seen, maybe_seen) <= WALKING_ON_MAX_GAP_S
                 else waiting).append(person.person_id)
        return held, waiting

    def _stood_on(self, track: _Track, stamp: float, missing: list[_Person]) -> list[str]:
        """Return the ids of those in missing whose PERSON_OUT waits for a face of the track.

        The track is seen at stamp, in doubt since at most identity_wait_s (a face of it may
        be on its way), on where someone with a face (_face_can_decide) stood still (_stood,
        FOLLOW_STILL_IOU_LOOKS, _still): that face will say whether it shows them (sizes_720p,
        frames at random: Clooney walked past Musk, hiding him for 2 s; ByteTrack carried
        Clooney's track onto Musk's box in the frame that made his absence evident, and he
        was reported gone there and RETURNED by its face). Their absence stays evident
        meanwhile: held present as by a track in doubt, they could be re-linked, and at the
        doorway the next person on the spot took the previous one's id.
        """
        if track.last_seen != stamp or stamp - track.doubt_since > self._config.identity_wait_s:
            return []
        return [person.person_id for person in missing
                if person.person_id != track.person_id and _still(person)
                and _stood(person, track.box, FOLLOW_STILL_IOU_LOOKS)
                and self._face_can_decide(person.person_id)]

    def _continues(self, person: _Person, stamp: float, box: np.ndarray,
                   body: np.ndarray | None) -> bool:
        """Return whether a box first seen at stamp starts where the missing person went.

        See _relink for the rules; body: the box's appearance, or None if unknown.
        """
        if stamp <= person.last_seen:  # both seen at once: two people
            return False
        return (self._off_course(person, stamp, box) <= self._config.relink_distance
                and _alike_in_height(box, person.box)
                and _looks_like(person, body, unknown=True))

    @staticmethod
    def _off_course(person: _Person | _Track, stamp: float, box: np.ndarray) -> float:
        """Return how far box at stamp is from where the person was heading [their heights]."""
        heading = _centre(_heading_box(person, stamp))
        return float(np.linalg.norm(_centre(box) - heading)) / _height(person.box)

    @staticmethod
    def _off_path(person: _Person, stamp: float, box: np.ndarray) -> float:
        """Return how far box at stamp is from the person's way on [their heights].

        Their way runs from their last box to where their walk would have taken them by stamp
        (_off_course): a walker may slow down or stop on it (sizes_720p, frames at random:
        Biden, walking at 0.3 heights a second, slowed and stopped; seen again 3.9 s later
        0.7 heights short of where his walk pointed, and by the next frame too far from it
        to re-link, he was reported gone in view).
        """
        start = _centre(person.box)
        way, offset = _centre(_heading_box(person, stamp)) - start, _centre(box) - start
        length = float(np.dot(way, way))
        along = 0.0 if length == 0.0 else float(np.clip(np.dot(offset, way) / length, 0.0, 1.0))
        return float(np.linalg.norm(offset - along * way)) / _height(person.box)

    def _less_alike(self, person: _Person, body: np.ndarray | None) -> bool:
        """Return whether a box looks less like the person than their track usually did.

        Only for people with a face (_face_can_decide), who can be confirmed by it.
        """
        return (_as_alike_as_usual(person, body) is False
                and self._face_can_decide(person.person_id))

    def _faces_deny(self, track: _Track, person: _Person) -> bool:
        """Return whether a good face of the pending track contradicts the person.

        Motion and looks never give a track someone its face says it is not (the doorway
        clip: the next person through, split off the previous one's track by their face,
        was re-linked to them by motion).
        """
        return self._reference(person) is not None and any(
            self._similarity(person, face.vector) < self._config.contradiction_similarity
            for face in track.faces)

    def _face_can_decide(self, person_id: str) -> bool:
        """Return whether a face could confirm a doubtful track of the person: they have one.

        Without a reference face (people too small or turned away) doubt could never end,
        and every doubtful track would become someone new: motion and looks decide then.
        """
        return self._reference(self._persons[person_id]) is not None

    def _join_parts(self, pending: list[_Track], before: dict[str, np.ndarray],
                    stamp: float) -> None:
        """Give pending tracks that are a part of one present person that person's id.

        Only a person it may be a part of can own it (_may_be_part_of: born beside them, not
        walking across them). A part: the track's box and the person's box of this frame or of
        the frame before (before: person id -> box, of those seen in the frame before) overlap
        by PART_MIN_OVERLAP of the smaller box, rising above it by at most PART_MAX_RISE, and
        the track looks like the person (_looks_like: at a camera cut, the box of someone in
        the next shot lies inside the adrift person's box of the frame before, and in a dim
        room dark clothes look alike). The box before counts only when the person is not seen
        in this frame, their box of this frame shrank (PART_MAX_SHRINK: part of them is hidden
        now), or the track lies beside that box (PART_SPLIT_MAX_OVERLAP: the rest of them
        hidden), not across it: someone walking in beside a person, half in front of them, is
        inside where they stood a frame ago (group_tight at 8-9/s: DiCaprio shown under Perry's
        id until his face came). Or the person's box of this frame is a shrunk part of their
        widest box (of the last PART_MEMORY_S, see there) and, with the track's, makes it up
        (_splits: a post between two halves of one person; halves do not look like the whole).
        A track that could be a part of two people waits for a face. A good face unlike the
        person still splits the track.
        """
        for track in pending:
            owners = set()
            for person in self._persons.values():
                if person.state is not PersonState.PRESENT:
                    continue
                now = person.box if person.last_seen == stamp else None
                earlier = before.get(person.person_id)
                boxes = [b for b in (earlier, now) if b is not None]
                if track.frames == 1 and any(_adjacent(track.box, b) for b in boxes):
                    track.born_beside.add(person.person_id)
                if not _may_be_part_of(track, person):
                    continue
                if (now is not None and earlier is not None
                        and _overlap(track.box, now) > PART_SPLIT_MAX_OVERLAP
                        and _area(now) > PART_MAX_SHRINK * _area(earlier)):
                    boxes = [now]  # across their whole box of this frame: the one before is past
                inside = (_looks_like(person, track.body, unknown=False)
                          and any(_overlap(track.box, b) >= PART_MIN_OVERLAP
                                  and _spans(track.box, b)
                                  and track.box[1] >= b[1] - PART_MAX_RISE * _height(b)
                                  and _area(track.box) <= PART_MAX_GROWTH * _area(b)
                                  for b in boxes))
                if (inside or (now is not None and person.widest is not None
                               and _splits(person.widest, now, track.box))) and not (
                        self._faces_deny(track, person)):
                    owners.add(person.person_id)
            if len(owners) == 1:
                track.person_id = owners.pop()
                self._see(self._persons[track.person_id], track)

    def _note_ambiguous(self, stamp: float) -> None:
        """Keep which tracks of the frame at stamp overlap others, and their boxes, for late faces.

        A group's box that holds a track's box (_group_members) is no other face in its crop:
        its members are; a missing member counts where they stood or were heading. (Mayer in
        the crossing replays at 5-7/s: a box over her and Musk, who stood beside her, set
        all her faces aside while it lasted.)
        """
        seen = [t for t in self._tracks.values() if t.last_seen == stamp]
        others = {t.track_id: self._others_in(t, seen) for t in seen}
        self._ambiguous_in[stamp] = {track_id: boxes for track_id, boxes in others.items()
                                     if boxes}
        if self._ambiguous_in[stamp]:
            self._faces_in[stamp] = _FrameFaces()
        horizon = stamp - self._buffer_s()
        for old in [s for s in self._ambiguous_in if s < horizon]:
            del self._ambiguous_in[old]
            self._faces_in.pop(old, None)

    def _others_at(self, track: _Track, stamp: float) -> list[np.ndarray]:
        """Return the boxes of others that overlapped the track's box in the frame at stamp.

        A frame no longer kept (or never processed) is judged by the latest boxes.
        """
        frame = self._ambiguous_in.get(stamp)
        if frame is not None:
            return frame.get(track.track_id, [])
        return self._others_in(track, [t for t in self._tracks.values()
                                       if t.last_seen == self._now])

    def _others_in(self, track: _Track, seen: list[_Track]) -> list[np.ndarray]:
        """Return the boxes of other seen tracks, or persons, that overlap the track's box.

        A group's box that holds the track's box stands for its members that no track shows
        (_group_members): their boxes that overlap the track's count in its place. So does the
        latest box of someone who vanished into the track's box (_engulfed), while it holds
        that box: they may stand behind its person, and the face in the crop may be theirs.
        """
        boxes = [box for pid in track.engulfed if pid in self._persons
                 and inside_fraction(box := self._persons[pid].box, track.box) >= GROUP_INSIDE]
        for other in seen:
            if other is track or box_iou(track.box, other.box[None])[0] < AMBIGUOUS_BOX_IOU:
                continue
            members = (self._group_members(other)
                       if inside_fraction(track.box, other.box) >= GROUP_INSIDE else None)
            boxes += [other.box] if members is None else [
                box for pid, box in members
                if pid is not None and box_iou(track.box, box[None])[0] >= AMBIGUOUS_BOX_IOU]
        return boxes

    # ------------------------------------------------------------------------------------
    # Internals: identity

    def _visible_tracks(self, besides: _Track | None = None) -> list[_Track]:
        """Return the tracks (besides one) that show their person: not in doubt, no face against.

        A track whose latest good face contradicted its person (a passer-by who took the
        person's box) is no evidence that the person is in view.
        """
        return [t for t in self._tracks.values()
                if t is not besides and t.person_id is not None and t.last_seen == self._now
                and not t.doubtful and not t.contradictions]

    def _visible_persons(self, besides: _Track | None = None) -> set[str]:
        return {t.person_id for t in self._visible_tracks(besides)}

    def _gallery(self, track: _Track) -> Gallery:
        """Return the people a pending track's face may be: not in view on another track."""
        return Gallery(self._people(self._visible_persons(track)))

    def _people(self, left_out: set[str]) -> dict[str, np.ndarray]:
        """Return the reference faces of the people known, by id, but those in left_out.

        Enrolled people are matched by their enrolled embedding; a remembered person whose
        face matches an enrolled one is that enrolled person seen before enrolment, and is left
        out so that the two do not cancel each other's margin.
        """
        people = {name: vector for name, vector in self._known.items() if name not in left_out}
        enrolled = Gallery(self._known)
        for person in self._persons.values():
            if (person.embedding is None or person.enrolled or person.person_id in left_out
                    or person.person_id in people):
                continue
            sims = enrolled.similarities(person.embedding)
            if sims.size and float(np.max(sims)) >= self._config.min_similarity:
                continue
            people[person.person_id] = person.embedding
        return people

    def _reference(self, person: _Person) -> np.ndarray | None:
        """Return the person's reference face: the enrolled one if any, else the running one."""
        return self._known.get(person.person_id, person.embedding)

    def _similarity(self, person: _Person, vector: np.ndarray) -> float:
        references = [r for r in (self._known.get(person.person_id), person.embedding)
                      if r is not None]
        if not references:
            return 0.0
        return float(np.max(cosine_similarity(vector, np.stack(references))))

    def _settle_by_faces(self, track: _Track, stamp: float) -> list[PersonEventRecord]:
        """Decide a pending track's identity once its faces agree (core.identity.decide).

        The faces are judged against the gallery of now: who else is in view changes while a
        track waits (a person's track found to show someone else leaves the view).
        """
        if not track.faces:  # nothing to judge: most pending tracks, every frame
            return []
        gallery = self._gallery(track)
        for face in track.faces:
            face.vote = judge_face(face.vector, face.quality, gallery, self._rules,
                                   face.alone)
        self._drop_others_new_faces(track)
        vote = decide([f.vote for f in track.faces], self._rules)
        if vote is None:
            return []
        if vote.kind is VoteKind.NEW:
            twin = self._in_view_twin(track)
            if twin is not None:  # a second box of a present person
                self._doubt_beside(track, twin.person_id, stamp)
                return self._bind(track, twin, stamp)
            if self._awaits_other_track(track, stamp):
                return []
            return self._make_new_person(track, stamp, EventReason.FACE)
        if vote.person_id in self._visible_persons(track):
            return []  # the person is in view on another track meanwhile: wait
        return self._bind(track, vote, stamp)

    def _doubt_beside(self, track: _Track, person_id: str, stamp: float) -> None:
        """Put in doubt the person's other tracks that show someone else beside the track.

        Their faces on the track make it a second box of the person in view beside it; a box
        of their height that neither holds it nor lies in it (PART_MIN_OVERLAP) is no part
        of them but someone else's, which ByteTrack or a re-link gave their id (group_tight
        at 0.8-2/s: Damon, walking in behind DiCaprio, was shown DiCaprio's id for seconds,
        while DiCaprio's faces named a new track beside him).
        """
        for other in self._visible_tracks(track):
            if (other.person_id == person_id and _alike_in_height(track.box, other.box)
                    and max(inside_fraction(track.box, other.box),
                            inside_fraction(other.box, track.box)) < PART_MIN_OVERLAP):
                other.doubtful, other.doubt_since = True, stamp

    def _drop_others_new_faces(self, track: _Track) -> None:
        """Drop a pending track's faces of no one known that do not match its latest such face.

        Two faces of no one known agree on someone new only if they match each other: else
        the box changed hands between them, and the earlier ones are another's (at 3/s,
        three men walking in file gave a pending track DiCaprio's face, then Damon's, 0.92
        to it: one person was founded on both, whose blended face then matched each of them).
        """
        new = [face for face in track.faces if face.vote.kind is VoteKind.NEW]
        if len(new) > 1:
            latest = new[-1].vector
            track.faces = [face for face in track.faces if face.vote.kind is not VoteKind.NEW
                           or float(np.dot(face.vector, latest)) >= self._config.min_similarity]

    def _in_view_match(self, track: _Track, faces: list[_Face], beside: bool
                       ) -> tuple[FaceVote | None, list[FaceVote]]:
        """Judge faces of a track against the persons in view on other tracks.

        Return the MATCH their votes decide (None if they decide none) and the votes.
        beside: only those whose box touches the track's (PART_MAX_GAP).
        """
        people = {t.person_id: self._reference(self._persons[t.person_id])
                  for t in self._visible_tracks(track)
                  if not beside or _adjacent(track.box, t.box)}
        gallery = Gallery({pid: vector for pid, vector in people.items() if vector is not None})
        votes = [judge_face(f.vector, f.quality, gallery, self._rules, f.alone)
                 for f in faces]
        vote = decide(votes, self._rules)
        return (vote if vote is not None and vote.kind is VoteKind.MATCH else None), votes

    def _in_view_twin(self, track: _Track) -> FaceVote | None:
        """Return a MATCH if a pending track's faces are those of a person in view beside it.

        The gallery leaves out people in view on another track, so their face on a second
        track votes NEW. Judged against those whose box touches the track's, it shows the
        track is a second box of one of them (a part, a duplicate), not someone new; the
        faces' votes are replaced. The same face farther away is someone else (a twin).
        """
        vote, votes = self._in_view_match(track, track.faces, beside=True)
        if vote is not None:
            for face, twin_vote in zip(track.faces, votes):
                face.vote = twin_vote
        return vote

    def _group_of(self, track: _Track) -> list[str] | None:
        """Return the people no track shows in the track's box if it is a group's, else None.

        See _group_members: missing people, and people seen in a box no track took.
        """
        members = self._group_members(track)
        return None if members is None else [pid for pid, _ in members if pid is not None]

    def _group_members(self, track: _Track) -> list[tuple[str | None, np.ndarray]] | None:
        """Return whose boxes make up the track's box if it is a group's box, else None.

        Each member is (None, box) for a track of this frame, (person id, box) for a person
        no track shows: seen in a box no track took (_follow_unclaimed), or missing. A
        group's box is the box of two or more others of this frame: it holds GROUP_INSIDE of
        each of their boxes, and their union is it (IoU at least PART_UNION_MIN_IOU); a near
        person's box that holds two small ones of people farther away is much larger than
        their union. A missing person counts, where they stood or where their walk took them:
        the group's box may be all the detector gives of them while they stand close.
        """
        members: list[tuple[str | None, np.ndarray]] = [
            (None, t.box) for t in self._tracks.values()
            if t is not track and t.last_seen == self._now]
        shown = self._visible_persons()
        members += [(p.person_id, p.box) for p in self._persons.values()
                    if p.state is PersonState.PRESENT and p.last_seen == self._now
                    and p.person_id not in shown]
        members += [(person.person_id, person.box
                     if inside_fraction(person.box, track.box) >= GROUP_INSIDE
                     else _heading_box(person, self._now))
                    for person in self._missing(self._now)]
        held = [(person_id, box) for person_id, box in members
                if inside_fraction(box, track.box) >= GROUP_INSIDE]
        if len(held) < 2:
            return None
        boxes = np.array([box for _, box in held])
        union = np.concatenate([boxes.min(axis=0)[:2], boxes.max(axis=0)[2:]])
        if float(box_iou(track.box, union[None])[0]) < PART_UNION_MIN_IOU:
            return None
        return held

    def _awaits_other_track(self, track: _Track, stamp: float) -> bool:
        """Return whether a pending track's faces wait on a track elsewhere showing their person.

        The same face on two tracks apart: more often ByteTrack handed the person's track to
        a passer-by than two people look alike. A face on that other track will tell (and
        takes their person off it, _bind); until identity_max_wait_s it is not someone new.
        """
        return (stamp - track.first_seen < self._config.identity_max_wait_s
                and self._in_view_match(track, track.faces, beside=False)[0] is not None)

    def _settle_by_time(self, track: _Track, stamp: float, vanished: bool = False
                        ) -> list[PersonEventRecord]:
        """Settle a pending track by its faces, or make it a new person once it waited.

        A box that is the union of two other tracks' boxes is the detector's box of a group
        (two people standing close, _group_of): it is nobody new, however long it stays. Once
        it shows one of them, it starts anew there, and may continue a missing one (_relink).
        Nor, while faceless, is a track beside someone it may be a part of (_beside_its_person).

        vanished: the track, seen in the frame before, is missing from this one at a slow
        rate (it will hardly be seen again): two boxes are enough if it has a face that may
        decide, which shows it is a person (the crossing at 0.5/s: Mayer, in view for 5 s,
        seen in two frames, her faces near Johansson's, was never announced); one box if such
        a face found no one (NEW) and no track new in this frame may be the person walking on
        (_continuations). A walker crosses a view in one to three frames 2 s apart (the
        crossing at 0.5/s: Dorsey, his only face on his first box, his next box given to
        Musk's track, got no PERSON_IN and no face in 16 of 20 replays).
        """
        events = self._settle_by_faces(track, stamp)
        if events or track.person_id is not None:
            return events
        was_grouped, track.group = track.group is not None, self._group_of(track)
        if track.group is not None:
            return []
        if was_grouped:
            track.first_seen, track.first_box = stamp, track.box
            self._relink([track], stamp)
            return []
        votes = [f.vote for f in track.faces]
        if not votes and self._beside_its_person(track):
            return []
        leaning = (any(v.kind is VoteKind.MATCH for v in votes)
                   or (bool(votes) and self._awaits_other_track(track, stamp)))
        wait = self._config.identity_max_wait_s if leaning else self._config.identity_wait_s
        needed = IDENTITY_MIN_FRAMES
        if vanished and votes:
            needed = 2
            if track.frames == 1 and any(v.kind is VoteKind.NEW for v in votes):
                track.withheld_for = self._continuations(track, stamp)
                if not track.withheld_for:
                    needed = 1
        if stamp - track.first_seen < wait or track.frames < needed:
            return []
        deciding = any(v.kind is not VoteKind.AMBIGUOUS for v in votes)
        return self._make_new_person(track, stamp,
                                     EventReason.FACE if deciding else EventReason.NO_FACE,
                                     vanished)

    def _beside_its_person(self, track: _Track) -> bool:
        """Return whether a faceless pending track may be a part of a named person beside it.

        At a slow rate the detector may box one person in two beside a post for seconds, their
        face on one box (the alone clip at 0.5-2 detections/s: the other half, announced as
        someone new, was DiCaprio by its first face, in 26 of 200 draws). Such a half is born
        beside them and walks with them (_may_be_part_of); the latest box of a track of theirs
        (named or in doubt), seen in this frame or the one before, touches it (PART_MAX_GAP)
        and is as tall (RELINK_MAX_HEIGHT_RATIO); it need not look like them (the halves:
        0.44-0.53). Until a face tells, it is nobody new, however long: someone faceless who
        came in beside a present person is announced once they part. Only beside people
        whose face can decide (_face_can_decide): with no face to wait for, motion and looks
        decide.
        """
        for other in self._tracks.values():
            if other.person_id is None:
                continue
            person = self._persons[other.person_id]
            if (person.state is PersonState.PRESENT and other.last_seen >= self._before
                    and _may_be_part_of(track, person)
                    and _adjacent(track.box, other.box)
                    and _alike_in_height(track.box, other.box)
                    and self._face_can_decide(person.person_id)):
                return True
        return False

    def _continuations(self, track: _Track, stamp: float) -> set[int]:
        """Return the ids of the tracks new at stamp that may show a vanished track's person.

        At a slow rate ByteTrack loses a walker between frames, and they go on on a new track
        (sizes_360p at 0.8/s: Aniston, 1.4 of her heights on in 1.2 s): announcing the lost
        track too would give her two ids, one reported gone while she is in view. So a track
        begun at stamp (new, or started anew there) within CONTINUE_MAX_SPEED of the lost
        box (_reaches), and alike in looks when both are known, may be her; generous, as a
        wrong "may" only leaves the lost track unnamed until their faces tell.
        """
        found = set()
        for other in self._tracks.values():
            if other.first_seen != stamp or not self._reaches(track, stamp, other.first_box,
                                                              CONTINUE_MAX_SPEED):
                continue
            alike = appearance_similarity(other.body, track.body)
            if alike is None or alike >= APPEARANCE_RELINK_MIN_SIMILARITY:
                found.add(other.track_id)
        return found

    def _make_new_person(self, track: _Track, stamp: float, reason: EventReason,
                         vanished: bool = False) -> list[PersonEventRecord]:
        """Make a pending track someone new and announce them; return the PERSON_IN.

        Its faces that found no one (NEW) count. Those near someone known (AMBIGUOUS) show
        the person but may be the known one's, whose next face will tell (_first_face): they
        are reported, not counted. Unless the track vanished (_settle_by_time): no next face
        will come, and without them a box ByteTrack continued onto someone else would give
        that one's face to the new person (the crossing at 0.5/s: Mayer's track, lost, taken
        up by Dorsey 2 s later).
        """
        person = self._new_person(track)
        founding = [face for face in track.faces if face.vote.kind is VoteKind.NEW]
        unsure = [face for face in track.faces if face.vote.kind is VoteKind.AMBIGUOUS]
        if vanished and not founding:
            founding = unsure
        else:
            track.witnessed += unsure
        for face in founding:
            self._count(person, face)
        if founding:  # compared: the faces it was named by (EmbeddingScheduler)
            track.similarity = self._similarity(person, founding[-1].vector)
        track.faces.clear()
        self._attribute_witnessed(track, person)
        return [self._announce(EventKind.PERSON_IN, person, track, stamp, reason)]

    def _bind(self, track: _Track, vote: FaceVote, stamp: float) -> list[PersonEventRecord]:
        """Give a pending track the remembered or enrolled person its faces chose."""
        person_id = vote.person_id
        person = self._persons.get(person_id)
        first_sight = person is None
        if first_sight:  # an enrolled person seen here for the first time
            person = self._persons[person_id] = _Person(
                person_id, track.track_id, track.first_seen, track.first_seen, track.last_seen,
                track.box, track.confidence, -math.inf, track.velocity, enrolled=True)
        for face in track.faces:
            if face.vote.kind is VoteKind.MATCH and face.vote.person_id == person_id:
                self._count(person, face)
        track.faces.clear()
        self._attribute_witnessed(track, person)
        track.person_id, track.similarity = person_id, vote.similarity
        reason = EventReason.ENROLLED if person.enrolled else EventReason.FACE
        events = []
        if first_sight:
            self._see(person, track)
            events.append(self._announce(EventKind.PERSON_IN, person, track, stamp, reason))
        elif person.state is PersonState.PRESENT:  # brief occlusion: the appearance goes on
            self._see(person, track)
        else:
            person.appearance_start = track.first_seen
            self._see(person, track)
            events.append(self._announce(EventKind.PERSON_RETURNED, person, track, stamp,
                                         reason))
        # The person's old tracks stay bound to them: ByteTrack may still re-find one (it keeps
        # lost tracks for track_buffer_s), and it must come back as this person. But one whose
        # latest good face contradicted them shows someone else: their face is here. So, at a
        # slow rate, does one in doubt seen in the same frame as this track (group_tight at
        # 0.5/s: Damon's box, re-linked to DiCaprio in doubt, kept Damon's faces, 0.92 to
        # DiCaprio's, neither a match nor a contradiction, once DiCaprio's face named his
        # own), or a part of them: _split lets it wait as one. At the camera's rate it stays
        # in doubt: a box beside theirs for a frame or two is mostly a part of them.
        slow = self._frame_interval >= SLOW_INTERVAL_S
        for other in [t for t in self._tracks.values()
                      if t is not track and t.person_id == person_id and (
                          t.contradictions
                          or slow and t.doubtful and t.last_seen == track.last_seen)]:
            events += self._split(other, stamp)
        return events

    def _split(self, track: _Track, stamp: float) -> list[PersonEventRecord]:
        """Take a track off its person: a new pending track judged by the contradicting faces.

        A person last seen through a track re-linked to them is, again, where they were
        before it: the crossing replay at 7/s re-linked a passer-by's box to Musk, hidden
        behind her, and once her face took it off him his last box was still hers, so the
        box over both of them no longer held him (_group_of) and he was reported gone.
        The new track has a new id; faces still in flight for the old one are its (add_face).
        Beside the person, it may be a part of them as a track born beside them may (the alone
        clip at 0.8/s: the detector boxed DiCaprio in two beside a post, his track went on on
        the faceless half, in doubt, and his face named the other half).
        """
        person = self._persons.get(track.person_id or '')
        if (track.took_over is not None and person is not None
                and person.track_id == track.track_id):
            for name in _SIGHTING:
                setattr(person, name, getattr(track.took_over, name))
        fresh = self._restart_track(track)
        fresh.body, fresh.body_partial = track.body, track.body_partial
        motion_id = next(m for m, t in self._by_motion.items() if t is track)
        self._by_motion[motion_id] = fresh
        fresh.faces += track.contradictions
        if track.person_id is not None:  # it may yet be a part of them (_beside_its_person)
            fresh.born_beside.add(track.person_id)
        self._succeed(track, fresh)
        return self._settle_by_faces(fresh, stamp)

    def _succeed(self, track: _Track, fresh: _Track) -> None:
        """Make fresh, split off track's person, the track that faces of track are for.

        Only faces of the frame of the split on: before it, the box was taken for the person
        (_Track.since). What the recent frames keep of track's box (boxes that overlapped it,
        faces set aside) is fresh's.
        """
        fresh.since = track.last_seen
        for old_id, (successor, former) in list(self._succeeded_by.items()):
            if successor is track:
                self._succeeded_by[old_id] = (fresh, former)
        self._succeeded_by[track.track_id] = (fresh, track.person_id)
        for others in self._ambiguous_in.values():
            if track.track_id in others:
                others[fresh.track_id] = others.pop(track.track_id)
        for frame in self._faces_in.values():
            if track.track_id in frame.boxes:
                frame.boxes[fresh.track_id] = frame.boxes.pop(track.track_id)
            frame.aside = [(fresh.track_id if track_id == track.track_id else track_id, *rest)
                           for track_id, *rest in frame.aside]

    def _first_face(self, track: _Track, person: _Person, face: _Face, stamp: float,
                    shared: bool) -> list[PersonEventRecord]:
        """Use a face of a person announced without one (NO_FACE, or one face short).

        A face that is not someone else's becomes theirs. Faces that match someone known and
        not in view decide as a pending track's would (core.identity.decide): the person was
        that one all along, come in facing away (the crossing replay, seed 8: Johansson kept
        a new id in view for seconds, her faces matching her own). A face that decides for
        someone in view beside the box makes it a second box of theirs, as a pending track's
        (_in_view_twin; the alone replay at 0.48/s: the detector split DiCaprio into two
        boxes side by side, and his own face made the half-box's new id his, which went on
        when his first box ended while he was reported gone). Unless the box is in doubt or
        shared with another person's (it may show them).
        """
        face.vote = judge_face(face.vector, face.quality, self._gallery(track), self._rules,
                               face.alone)
        if face.vote.kind is not VoteKind.MATCH:
            if track.doubtful:
                return []
            twin, _ = self._in_view_match(track, [face], beside=True)
            if twin is None:
                self._count(person, face)
                track.faces.clear()
                return []
            if shared or person.state is not PersonState.PRESENT:
                return []
            face.vote, track.faces[:] = twin, [face]  # counted for them by _bind
            return self._recognise(person, track, twin, stamp)
        if track.doubtful or shared or person.state is not PersonState.PRESENT:
            return []
        track.faces.append(face)
        del track.faces[:-self._config.max_samples]
        vote = decide([f.vote for f in track.faces], self._rules)
        if vote is None or vote.person_id in self._visible_persons(track):
            return []
        return self._recognise(person, track, vote, stamp)

    def _recognise(self, person: _Person, track: _Track, vote: FaceVote, stamp: float
                   ) -> list[PersonEventRecord]:
        """Give the tracks of a person without a face to the known person their faces chose.

        The new id's appearance ends (PERSON_OUT, RECOGNISED) and is forgotten: it has no
        face to remember. The known person's appearance takes over from its start, with a
        PERSON_RETURNED unless they were still in view (occluded, not yet reported gone).
        """
        events = [self._leave(person, stamp, EventReason.RECOGNISED)]
        for other in self._tracks.values():
            if other.person_id == person.person_id and other is not track:
                other.person_id = vote.person_id
        track.person_id, track.took_over = None, None
        events += self._bind(track, vote, stamp)
        known = self._persons[vote.person_id]
        known.appearance_start = min(known.appearance_start, person.appearance_start)
        del self._persons[person.person_id]
        return events

    @staticmethod
    def _rival(track: _Track, vote: FaceVote | None) -> FaceVote | None:
        """Return a named track's face's MATCH of someone else not in view, or None.

        vote: the face's judgement against the people out of view (_take_face). Such a face
        contradicts the track's person unless the track founded them. It splits the track
        alone if it matches the other by swap_margin more than the track's person, or by
        match_margin if the track is in doubt or unnamed (it
        may show someone else: the doorway replay at 5/s, Clooney's faces at 0.975 to him
        and 0.886 to Aniston, on her track carried onto him, never took it off her; at
        0.5/s, where one face is all a passer-by may give, Aniston's faces scored 0.95-0.97
        to her and 0.86-0.87 to Jolie, on whose track she stood). Two people whose faces
        score near contradiction_similarity against each other (Aniston and Johansson, 0.88)
        cannot contradict each other: the crossing clip at 7/s gave Aniston's id to
        Johansson stepping out from behind her (a part of Aniston, by the boxes), and her
        faces at 0.997 to her own id changed nothing.
        """
        return (vote if vote is not None and vote.kind is VoteKind.MATCH
                and vote.person_id != track.person_id else None)

    def _best_other(self, person_id: str, vector: np.ndarray) -> float:
        """Return how well a face matches the best known person but person_id; -1 if none."""
        others = self._people({person_id})
        if not others:
            return -1.0
        return float(np.max(cosine_similarity(vector, np.stack(list(others.values())))))

    def _like_another(self, person_id: str, vector: np.ndarray) -> bool:
        """Return whether a face matches someone else (min_similarity) better than person_id."""
        best = self._best_other(person_id, vector)
        person = self._persons.get(person_id)
        own = self._similarity(person, vector) if person is not None else -1.0
        return best >= self._config.min_similarity and best > own

    def _fix_swap(self, track: _Track, vector: np.ndarray) -> None:
        """Swap person ids with the visible track whose person this face matches much better.

        Tracks in doubt take part: when ByteTrack swaps two people at a crossing, the one
        found again looking less alike is in doubt. (A second box of the same person, whose
        face would match both, overlaps the first: its faces are ignored, _ambiguous.) A track
        in doubt is not a sighting of the person it is given. Only while the face's track is
        in view: a face that arrives after its track was lost tells nothing of the tracks in
        view now (the crossing replay at 5/s: Musk's face on Dorsey's lost track, swapped,
        took Musk's id off his own track).
        """
        if track.last_seen != self._now:
            return
        others = [t for t in self._tracks.values()
                  if t is not track and t.person_id is not None and t.last_seen == self._now
                  and self._reference(self._persons[t.person_id]) is not None]
        if not others:
            return
        sims = np.array([self._similarity(self._persons[t.person_id], vector) for t in others])
        best = int(np.argmax(sims))
        if (sims[best] >= self._config.min_similarity
                and sims[best] >= track.similarity + self._config.swap_margin):
            other = others[best]
            track.person_id, other.person_id = other.person_id, track.person_id
            track.similarity, other.similarity = float(sims[best]), 0.0
            track.contradictions.clear()
            other.contradictions.clear()
            for swapped in (track, other):
                if not swapped.doubtful:
                    self._see(self._persons[swapped.person_id], swapped)

    # ------------------------------------------------------------------------------------
    # Internals: persons and events

    def _count(self, person: _Person, face: _Face) -> None:
        """Add a face to the person's samples and report it (take_attributions)."""
        person.add_sample(face.vector, face.quality, self._config.max_samples)
        if face.tag is not None:
            self._attributions.append((face.tag, person.person_id))

    def _attribute_seen(self, track: _Track, face: _Face) -> None:
        """Report a face that does not count as seen on its named track, if it shows them.

        Not while the track shows no id (in doubt, contradicted, unnamed), nor if the face
        matches someone else (min_similarity) better than them: filed under the track's
        person, a search by their id would find that other (the doorway replay at 1/s:
        Clooney's face on Aniston's track carried onto him, 0.985 to him and 0.885 to her;
        Obama's poor face, 0.946 to him, on Perry's).
        """
        if (face.tag is not None and track.shown_id
                and not self._like_another(track.person_id, face.vector)):
            self._attributions.append((face.tag, track.person_id))

    def _attribute_witnessed(self, track: _Track, person: _Person) -> None:
        """Report the uncounted faces of a pending track (witnessed) as its person's.

        Not those that match someone else better (see _attribute_seen).
        """
        self._attributions += [
            (face.tag, person.person_id) for face in track.witnessed
            if face.tag is not None and not self._like_another(person.person_id, face.vector)]
        track.witnessed.clear()

    def _new_person(self, track: _Track) -> _Person:
        """Make the track a new person, to be announced by the caller."""
        person_id = self._take_id()
        person = self._persons[person_id] = _Person(
            person_id, track.track_id, track.first_seen, track.first_seen, track.last_seen,
            track.box, track.confidence, -math.inf, track.velocity, track.body,
            founded_on=track.track_id)
        track.person_id = person_id
        return person

    def _take_id(self) -> str:
        while True:
            if self._next_sequence >= self._reserved_until:
                self._reserved_until = self._next_sequence + ID_BLOCK
                self._save_due = True
            person_id = f'{self._id_prefix}-{self._next_sequence:06d}'
            self._next_sequence += 1
            if person_id not in self._known and person_id not in self._persons:
                return person_id

    def _see(self, person: _Person, track: _Track) -> None:
        """Take the person's latest sighting from the track, unless it has an older one."""
        if track.last_seen >= person.last_seen:
            # A track's first box has no velocity of its own yet: the walk to it of someone
            # still here has (a re-link; someone who had left walks anew). From their last
            # sighting, so before it is replaced.
            person.velocity = (person.walk_to(track.last_seen, track.box, self._frame_size)
                               if not track.walked and person.state is PersonState.PRESENT
                               else track.velocity)
            if track.last_seen > person.last_seen:
                person.previous_box = person.box
            person.last_seen, person.box, person.confidence = (track.last_seen, track.box,
                                                               track.confidence)
            if track.last_seen == self._now:
                # Seen in the latest frame, maybe by a face that came after it: not missed
                # there (the crossing replay at 0.33/s: Musk, named by his face on a new
                # track after his frame's update, counted it missed and was reported gone in
                # view at the next frames).
                person.missed_frames = 0
            person.track_id = track.track_id
            person.body, person.adrift = track.body, False
            person.body_stability = track.body_stability
            if (person.widest is None or track.last_seen - person.widest_at > PART_MEMORY_S
                    or _area(track.box) >= _area(person.widest)):
                person.widest, person.widest_at = track.box, track.last_seen
            elif (_area(track.box) <= PART_MAX_SHRINK * _area(person.widest)
                  and _overlap(track.box, person.widest) >= PART_MIN_OVERLAP):
                person.widest_at = track.last_seen  # still a shrunk part: see PART_MEMORY_S

    def _announce(self, kind: EventKind, person: _Person, track: _Track, stamp: float,
                  reason: EventReason) -> PersonEventRecord:
        """Mark the person PRESENT and return its PERSON_IN or PERSON_RETURNED."""
        person.state, person.missed_frames = PersonState.PRESENT, 0
        # A face a frame or two old must not stamp the event before the person's PERSON_OUT.
        person.last_event_stamp = max(stamp, person.last_event_stamp)
        return PersonEventRecord(kind, person.last_event_stamp, person.person_id,
                                 track.track_id, track.box, track.confidence, 0.0,
                                 person.embedding, reason)

    def _leave(self, person: _Person, stamp: float, reason: EventReason) -> PersonEventRecord:
        """Mark the person GONE and return its PERSON_OUT for the appearance that ended.

        The PERSON_OUT of someone FORGOTTEN carries no face: it is what was forgotten.
        """
        stamp = max(stamp, person.last_event_stamp)
        person.state, person.last_event_stamp, person.ended_by = PersonState.GONE, stamp, reason
        return PersonEventRecord(EventKind.PERSON_OUT, stamp, person.person_id, person.track_id,
                                 person.box, person.confidence,
                                 person.last_seen - person.appearance_start,
                                 None if reason is EventReason.FORGOTTEN else person.embedding,
                                 reason)

    def _absent(self, person: _Person, stamp: float, missed_frames: int) -> bool:
        """Return whether processed frames show the person absent: long enough, and often."""
        return (stamp - max(person.last_seen, person.held_at) >= self._config.absence_timeout_s
                and missed_frames >= self._config.evidence_frames)

    def _expire(self, stamp: float, untracked: list[tuple[np.ndarray, np.ndarray | None]]
                ) -> list[PersonEventRecord]:
        """Send PERSON_OUT for absent persons and forget old persons and dropped tracks.

        untracked: the box and appearance of each box of the frame at stamp in no track.
        """
        events = []
        # A track in doubt may show its person: no evidence of their absence (_Track.doubtful),
        # unless a good face on it contradicted them (then never was, in hindsight).
        held: dict[str, float] = {}
        waiting: set[str] = set()   # absent, but a face on its way may show them (_stood_on)
        missing = self._missing(stamp) + self._missing(stamp, evident=True)
        for person in missing:
            if person.unseen_since < person.last_seen:
                person.unseen_since = stamp
        # Boxes that may show someone walking on: first sighting, box, appearance.
        pending = [(stamp, box, body) for box, body in untracked]
        for track in self._tracks.values():
            if track.doubtful and not track.denied:
                held[track.person_id] = max(held.get(track.person_id, -math.inf),
                                            track.last_seen)
                waiting.update(self._stood_on(track, stamp, missing))
                if track.last_seen == stamp:
                    self._persons[track.person_id].in_doubt_at = stamp
                    # Its box may show someone else walking on, as a new track's may; their
                    # absence stays evident, as under _stood_on (group_tight, frames at
                    # random: Damon, missed twice, walked onto Perry's spot as Perry's track
                    # took his box; he was reported gone there and RETURNED by its face).
                    walking, _ = self._walking_on(
                        track.doubt_since, track.box, track.body, stamp,
                        [p for p in missing if p.person_id != track.person_id])
                    waiting.update(walking)
            # Nor is a group's box evidence that the people in it left (_group_of), nor a
            # new track or a box in none that may be someone walking on (_walking_on).
            elif track.person_id is None and track.last_seen == stamp:
                held.update(dict.fromkeys(track.group or [], stamp))
                pending.append((track.first_seen, track.box, track.body))
        for first_seen, box, body in pending:
            walking, unprocessed = self._walking_on(first_seen, box, body, stamp, missing)
            held.update(dict.fromkeys(walking, stamp))
            waiting.update(unprocessed)
        for person in list(self._persons.values()):
            unseen = stamp - person.last_seen
            if person.state is PersonState.PRESENT:
                person.held_at = max(held.get(person.person_id, -math.inf), person.doubted_at)
                if unseen <= 0:
                    person.missed_frames = 0
                elif person.held_at < stamp:
                    person.missed_frames += 1
                if (self._absent(person, stamp, person.missed_frames)
                        and person.person_id not in waiting):
                    events.append(self._leave(person, stamp, EventReason.LEFT_VIEW))
            elif abs(unseen) > self._config.reid_memory_s:
                del self._persons[person.person_id]
        live = self._motion.live_ids()
        self._by_motion = {m: t for m, t in self._by_motion.items()
                           if m in live and (t.person_id is None or t.person_id in self._persons)}
        self._index_tracks()
        return events
