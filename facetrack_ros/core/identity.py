"""Identity decisions from faces that know their uncertainty, and the body cue that keeps tracks.

Each face of a track is judged against a gallery of people (remembered and enrolled ones):
a *vote* for the best match when it is similar enough and clearly better than the next-best
person (a margin), a vote for *someone new* when it is clearly unlike everyone, or *ambiguous*.
Faces of too low a quality (small, blurred, turned away: core.face.face_quality) do not vote.
A decision needs the latest `votes_needed` deciding votes to agree, or one very good face.

The body appearance (a colour descriptor the detector publishes with each box) may keep a
track or refuse to continue one; it never names a person.
"""

from dataclasses import dataclass
import enum

import numpy as np

from facetrack_ros.core.embedding import cosine_similarity

# The face-verification operating point (DEFAULT_MIN_SIMILARITY, and MIN_DECISION_QUALITY:
# poorer faces never decide) comes from core.embedding, calibrated by scripts/calibrate_faces.py;
# the constants below complete it.
#: A face at least this good [0..1] decides alone; poorer faces need a second, agreeing one. In
#: the calibration the highest impostor pair whose poorer face reached 0.8 scored 0.935, a
#: 0.01 margin below DEFAULT_MIN_SIMILARITY.
STRONG_FACE_QUALITY = 0.8
#: A face at least this good matches a known person alone. Among impostor pairs whose poorer
#: face reached 0.7 the highest scored 0.935, as from 0.8: no nearer DEFAULT_MIN_SIMILARITY.
#: It does not found a new person alone: between 0.7 and 0.8, 1 % of the pairs of one person
#: scored below a new person's bound (DEFAULT_MIN_SIMILARITY - MATCH_MARGIN), none from 0.8.
STRONG_MATCH_QUALITY = 0.7
#: A face that may decide and matches a person at least this well [cosine] matches them alone,
#: whatever its quality: in the calibration the highest impostor pair whose poorer face may
#: decide scored 0.937 (quality 0.6-0.7); 0.96 keeps more than twice MATCH_MARGIN from it.
#: Without it, such a face waited for a second one while its person was reported gone in
#: view (sizes_720p replays at 0.7-1.25/s: Zuckerberg's new track, whose turned face, quality
#: 0.69, matched him at 0.998).
STRONG_MATCH_SIMILARITY = 0.96
#: A face too poor to decide that matches its track's own person at least this well [cosine]
#: ends the track's doubt; it names no one. In the calibration no pair of two people whose
#: poorer face may not decide reached it (155,441 pairs, the highest 0.951: a MATCH_MARGIN
#: below), nor did pairs of one person across appearances, but 60 % of the pairs of one
#: appearance did: the faces of one track, what the rule is for.
POOR_CONFIRM_SIMILARITY = 0.98
#: A match must beat the next-best person by this much [cosine]; a face this close below the
#: threshold is ambiguous rather than a new person.
MATCH_MARGIN = 0.03
#: A good face contradicts its track's person (and may split the track) only below this cosine.
#: Between it and a match a face neither counts nor contradicts: the same person's faces on
#: one track fall there under stage light and motion (Lin-Manuel Miranda in one 4 s shot of
#: the Hamilton clip, YuNet faces: 0.904-0.93 against his first face, and the track was split
#: and renamed). In the calibration (scripts/calibrate_faces.py), of the pairs of video faces
#: that may decide, no pair of one appearance (13,601) scored below 0.88, and 91 % of the
#: impostor pairs (95 % when both faces are strong) did.
CONTRADICTION_MAX_SIMILARITY = 0.88

#: Body appearance similarity [0..1] (Bhattacharyya coefficient of the colour histograms of
#: core.detection.body_appearance) under which two boxes are taken to show different people: a
#: lost track is then not continued by a box that looks like that. On the shared street video
#: (people 20-75 px tall, YOLOv8n boxes) 2 % of a ByteTrack track's boxes 1 s apart score
#: below 0.525 and 76 % of pairs of different people seen at once do: a cue that refuses
#: most wrong continuations and few right ones, not an identity.
APPEARANCE_MIN_SIMILARITY = 0.5
#: A box whose appearance similarity to its track falls this far below the track's usual one
#: shows someone else: a camera cut between two people in dark clothes on a dark stage drops a
#: track from 0.98 to 0.5-0.65, which the absolute floor above lets through. On the shared
#: videos drops this large came only at the cuts and, on the street, at 2-3 % of the
#: comparisons at 2-3 detections/s, where the box matched another person's track better.
APPEARANCE_MAX_DROP = 0.3
#: A new track continues a person who was lost by motion only if it looks at least this much
#: like them: the link spans a gap, often seconds at a low frame rate, and on a dark stage two
#: people in dark clothes score up to 0.62 (Hamilton clip, a close-up of one against the other;
#: the same person 0.57 and more there, and 0.59 and more 2 s apart on the street video).
APPEARANCE_RELINK_MIN_SIMILARITY = 0.65
#: A person whose track's box turned out to show someone else (a cut, a swap in a crowd) is
#: continued by motion only by a new track that looks at least this much like them. With it
#: the street video's 9 people got 12 ids at 10 detections a second instead of 14 (the people
#: of a swap found again), and the Hamilton clip's cuts stayed apart at 2 per second and more
#: (scripts/replay_tracker.py).
APPEARANCE_ADRIFT_RELINK_SIMILARITY = 0.8
#: A named track's second box must be at least this like its first: with no usual similarity
#: yet, a drop cannot show a camera cut between them (at one frame a second, cuts often fall
#: there). On the street video 5 % of a track's boxes 1 s apart score below it.
APPEARANCE_FIRST_MIN_SIMILARITY = 0.65
#: A track whose identity is still pending forgets the faces it gathered when its box looks
#: less like it than this: they may be someone else's (at one frame a second, a camera cut can
#: fall between a track's first two frames, before it has a usual similarity). On the street
#: video 5 % of a track's boxes 1 s apart score below it; such a track only waits for a face
#: again.
APPEARANCE_PENDING_MIN_SIMILARITY = 0.65
#: A track ByteTrack finds again after missing it in a processed frame must look about as
#: much like it as usual: a drop of more than this makes the track doubtful, and its person is
#: not taken to be seen until a face confirms it (or a contradicting face splits the track).
#: On the composed doorway clip at 2.5 detections/s, the next person through the door was
#: found on the lost track of the one before with drops of 0.09 to 0.66; the person of the
#: composed alone clip, found again after a post hid them, dropped by 0.06 at most.
APPEARANCE_REFIND_MAX_DROP = 0.05
#: Two named tracks whose new boxes look more like each other's latest box than like their
#: own, by this much over the two, were swapped by ByteTrack, which matches boxes by overlap
#: alone: both are in doubt until a face tells (the composed swap clip at 0.5 detections/s:
#: Johansson and Aniston trading places in 2 s, alike 0.71 and 0.80 as matched, 0.89 and 0.91
#: crossed). The replays count the same within one switch from 0 to 0.2.
APPEARANCE_SWAP_MIN_GAIN = 0.1
#: A track's box after this long unseen [s], at any frame rate, may be someone who stepped
#: into the spot its person left (a doorway at 0.5 detections/s: one frame shows one, the
#: next the other) ...
HANDOVER_GAP_S = 1.0
#: ... and shows no person id below this body similarity to the track, until a face confirms
#: it (the person still counts as seen: a false alarm must not report them gone). IoU-continued
#: boxes of the composed clips and the Hamilton clip (each box's person by the clips' truth),
#: 1 to 2 s apart: the same person scored below it in 0-3.6 % of pairs on the doorway,
#: crossing and sizes_720p clips (Hamilton's zooms: 8.5 % at 1 s), the next person through
#: the doorway in 85-88 % (median 0.55-0.57); the crossing's look-alikes in 0-12 %.
APPEARANCE_HANDOVER_MIN_SIMILARITY = 0.75
#: Weight of the newest box in a track's running body appearance, and of the newest
#: similarity in its usual similarity.
APPEARANCE_SMOOTHING = 0.2
APPEARANCE_STABILITY_SMOOTHING = 0.3


class VoteKind(enum.Enum):
    """What one face says about a track's identity."""

    MATCH = 1      # this is person_id
    NEW = 2        # nobody in the gallery
    AMBIGUOUS = 3  # too close to call: similar to several people, or near the threshold


@dataclass(frozen=True)
class FaceVote:
    """One face's verdict: kind, the matched person (MATCH only), similarity and quality."""

    kind: VoteKind
    person_id: str | None
    similarity: float
    quality: float
    # Its box overlapped no other person's box in its frame: it may match by similarity alone
    # (strong_match_similarity). A very alike face in a box shared at a crossing may be the
    # other person's (sizes_720p replay at 9/s: one such face gave Mayer's id to Biden).
    alone: bool = True


@dataclass(frozen=True)
class IdentityRules:
    """The thresholds of face decisions.

    min_similarity: cosine from which a face matches a person [-1..1].
    margin: how much the best person must beat the next-best [cosine].
    min_quality: faces below this quality do not vote [0..1].
    strong_quality: a face this good decides alone [0..1].
    strong_match_quality: a face this good decides a match alone [0..1].
    strong_match_similarity: a face that matches this well decides a match alone [cosine].
    poor_confirm_similarity: a face too poor to vote that matches its track's person this
        well ends the track's doubt [cosine].
    votes_needed: agreeing votes a decision needs otherwise.
    """

    min_similarity: float
    margin: float
    min_quality: float
    strong_quality: float
    strong_match_quality: float
    strong_match_similarity: float = STRONG_MATCH_SIMILARITY
    poor_confirm_similarity: float = POOR_CONFIRM_SIMILARITY
    votes_needed: int = 2


class Gallery:
    """People a face can be matched to: ids and their unit embeddings, one per id."""

    def __init__(self, people: dict[str, np.ndarray]) -> None:
        """Take {person id: unit embedding}."""
        self.ids = list(people)
        self._matrix = np.stack(list(people.values())) if people else None

    def similarities(self, vector: np.ndarray) -> np.ndarray:
        """Return the cosine similarity of a unit vector to each person, in ids order."""
        if self._matrix is None:
            return np.zeros(0, np.float32)
        return cosine_similarity(vector, self._matrix)


def judge_face(vector: np.ndarray, quality: float, gallery: Gallery,
               rules: IdentityRules, alone: bool = True) -> FaceVote | None:
    """Return a face's vote against gallery, or None for a face too poor to vote.

    alone: the face's box overlapped no other person's (FaceVote.alone).
    """
    if quality < rules.min_quality:
        return None
    sims = gallery.similarities(vector)
    if sims.size == 0:
        return FaceVote(VoteKind.NEW, None, 0.0, quality, alone)
    order = np.argsort(sims)[::-1]
    best = float(sims[order[0]])
    second = float(sims[order[1]]) if sims.size > 1 else -1.0
    if best >= rules.min_similarity and best - second >= rules.margin:
        return FaceVote(VoteKind.MATCH, gallery.ids[order[0]], best, quality, alone)
    if best < rules.min_similarity - rules.margin:
        return FaceVote(VoteKind.NEW, None, best, quality, alone)
    return FaceVote(VoteKind.AMBIGUOUS, None, best, quality, alone)


def decide(votes: list[FaceVote], rules: IdentityRules) -> FaceVote | None:
    """Return the vote that settles a track's identity, or None while undecided.

    Settled by the latest deciding (MATCH or NEW) vote when it comes from a strong face (for a
    MATCH, strong_match_quality, or a face alone in its box matching by
    strong_match_similarity) or the votes_needed latest deciding votes agree with it. A MATCH
    is never settled while another vote names a different person: the track may have shown
    two people.
    """
    deciding = [v for v in votes if v.kind is not VoteKind.AMBIGUOUS]
    if not deciding:
        return None
    latest = deciding[-1]
    if latest.kind is VoteKind.MATCH and any(
            v.kind is VoteKind.MATCH and v.person_id != latest.person_id for v in deciding):
        return None
    recent = deciding[-rules.votes_needed:]
    agree = len(recent) == rules.votes_needed and all(
        (v.kind, v.person_id) == (latest.kind, latest.person_id) for v in recent)
    if latest.kind is VoteKind.MATCH:
        strong = (latest.quality >= rules.strong_match_quality
                  or latest.alone and latest.similarity >= rules.strong_match_similarity)
    else:
        strong = latest.quality >= rules.strong_quality
    return latest if agree or strong else None


def appearance_similarity(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """Return the similarity [0..1] of two body appearances, or None if either is missing."""
    if a is None or b is None or a.shape != b.shape:
        return None
    return float(np.clip(np.dot(a, b), 0.0, 1.0))


def blend_appearance(running: np.ndarray | None, new: np.ndarray | None) -> np.ndarray | None:
    """Return a track's running appearance after a box with appearance new (unit vectors)."""
    if new is None:
        return running
    if running is None or running.shape != new.shape:
        return new
    mixed = running + APPEARANCE_SMOOTHING * (new - running)
    norm = float(np.linalg.norm(mixed))
    return mixed / norm if norm > 0 else new
