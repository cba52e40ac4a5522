"""Calibration data for the face decision: faces of known identity, their pairs, FAR and FRR.

Faces come from three places, each embedded by the real face path (FaceAnalyzer):
- photos: the largest face of every labelled photo (and both faces of two_people.jpg);
- composed clips: the person detector's boxes on the clips' frames, matched to the truth,
  then FaceAnalyzer.face_in_person as the face node runs it; a face counts only if it lies
  on the matched person's true face (a neighbour's face found in a widened box is dropped);
- the shared Hamilton clip: person boxes of the shots whose people are known by eye.

Pairs of faces of one person are genuine, of two people impostor pairs. Genuine pairs from
the same origin (one photo, or one appearance of one person in a video) are near-copies; the
tables keep them apart from genuine pairs across origins, which is what re-identification
after an absence has to match.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from facetrack_ros.core.face import FaceAnalyzer, FaceSearch
from facetrack_ros.evaluation.clips import ClipTruth, video_frames
from facetrack_ros.evaluation.identity import match_boxes
from facetrack_ros.evaluation.photos import MULTI_FACE_PHOTOS, photo_path, PHOTO_IDENTITIES
from facetrack_ros.evaluation.shared_clips import HAMILTON_SHOTS


@dataclass(frozen=True)
class FaceSample:
    """One embedded face of known identity.

    source: 'photo', a composed clip's name or 'hamilton'. origin: what near-copies share (the
    photo key, or clip and appearance). height: face box height [px].
    """

    source: str
    identity: str
    origin: str
    quality: float
    height: float
    embedding: np.ndarray


#: Photos are shrunk to this longest side [px] first: their faces stay over 100 px high, and
#: HOG on a 14-megapixel photo takes tens of seconds.
PHOTO_SIDE_PX = 1024


def read_photo(shared_dir: Path, key: str) -> np.ndarray:
    """Return a labelled photo, shrunk to PHOTO_SIDE_PX at most."""
    image = cv2.imread(str(photo_path(shared_dir, key)))
    if image is None:
        raise ValueError(f'cannot read photo {key}')
    scale = PHOTO_SIDE_PX / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image


def photo_faces(shared_dir: Path, analyzer: FaceAnalyzer) -> list[FaceSample]:
    """Return the face of every labelled photo (both faces of the two-face photos)."""
    samples = []
    for key, identity in PHOTO_IDENTITIES.items():
        image = read_photo(shared_dir, key)
        face = analyzer.largest_face(image)
        if face is not None:
            samples.append(FaceSample('photo', identity, key, face.quality,
                                      float(face.box[3] - face.box[1]), face.embedding))
    for key, identities in MULTI_FACE_PHOTOS.items():
        image = read_photo(shared_dir, key)
        faces = sorted(analyzer.analyze(image), key=lambda f: f.box[0])
        if len(faces) == len(identities):
            for index, (face, identity) in enumerate(zip(faces, identities)):
                samples.append(FaceSample('photo', identity, f'{key}#{index}', face.quality,
                                          float(face.box[3] - face.box[1]), face.embedding))
    return samples


def _inside(point: np.ndarray, box: Sequence[float]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def clip_faces(video: Path, truth: ClipTruth, detector, analyzer: FaceAnalyzer, step: int,
               actor_photos: Sequence[str]) -> tuple[list[FaceSample], int]:
    """Return the faces the face path finds in person boxes of a composed clip.

    Also returns how many faces were dropped for lying on someone else's face. detector: a
    PersonDetector. Each box is searched thoroughly (the analyzer's thorough detector where
    its detector finds none), as the face node searches a person without a face in time.
    actor_photos: the photo of each actor of the scene (a face's origin is its photo). Every
    step-th frame is used.
    """
    samples, dropped = [], 0
    for index, image in video_frames(video, step):
        persons = truth.frames[index]
        boxes = [d.box for d in detector.detect(image)]
        matched = match_boxes([p.box for p in persons], [b.tolist() for b in boxes], 0.5)
        for box_index, person_index in matched.items():
            person = persons[person_index]
            face = analyzer.face_in_person(image, boxes[box_index], FaceSearch.THOROUGH)
            if face is None:
                continue
            centre = (face.box[:2] + face.box[2:]) / 2
            if not _inside(centre, person.face_box):
                dropped += 1
                continue
            samples.append(FaceSample(truth.name, person.identity,
                                      actor_photos[person.actor], face.quality,
                                      float(face.box[3] - face.box[1]), face.embedding))
    return samples, dropped


def hamilton_faces(video: Path, detector, analyzer: FaceAnalyzer, step: int
                   ) -> list[FaceSample]:
    """Return the faces found in the Hamilton clip's shots whose people are known by eye.

    Every person box of a one-person shot is that person's; in the two-person shot, the box
    overlapping their by-eye box.
    """
    samples = []
    for index, image in video_frames(video, step):
        shot = next((s for s in HAMILTON_SHOTS if s.first <= index <= s.last
                     and (s.boxes or len(s.people) == 1)), None)
        if shot is not None:
            boxes = [d.box for d in detector.detect(image)]
            if shot.boxes:
                names = list(shot.boxes)
                matched = match_boxes([shot.boxes[n] for n in names],
                                      [b.tolist() for b in boxes], 0.4)
                found = [(boxes[b], names[t]) for b, t in matched.items()]
            else:
                largest = sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))[-1:]
                found = [(b, shot.people[0]) for b in largest]
            for box, name in found:
                face = analyzer.face_in_person(image, box, FaceSearch.THOROUGH)
                if face is not None:
                    samples.append(FaceSample('hamilton', name, f'hamilton:{shot.first}',
                                              face.quality, float(face.box[3] - face.box[1]),
                                              face.embedding))
    return samples


@dataclass(frozen=True)
class Pairs:
    """Every pair of a set of faces: similarity, labels and the poorer face of each pair."""

    similarity: np.ndarray   # (P,) cosine
    genuine: np.ndarray      # (P,) bool: one person
    same_origin: np.ndarray  # (P,) bool: near-copies
    quality: np.ndarray      # (P,) the lower quality of the two faces
    height: np.ndarray       # (P,) the smaller face height [px]
    kind: np.ndarray         # (P,) str: 'photo-photo', 'photo-video' or 'video-video'
    first: np.ndarray        # (P,) int index of the first face
    second: np.ndarray       # (P,) int index of the second face


def all_pairs(samples: Sequence[FaceSample]) -> Pairs:
    """Return every unordered pair of samples."""
    embeddings = np.stack([s.embedding for s in samples])
    first, second = np.triu_indices(len(samples), k=1)
    similarity = np.einsum('ij,ij->i', embeddings[first], embeddings[second])
    identity = np.array([s.identity for s in samples])
    origin = np.array([s.origin for s in samples])
    quality = np.array([s.quality for s in samples])
    height = np.array([s.height for s in samples])
    video = np.array([s.source != 'photo' for s in samples])
    kind = np.where(video[first] & video[second], 'video-video',
                    np.where(video[first] | video[second], 'photo-video', 'photo-photo'))
    return Pairs(similarity, identity[first] == identity[second],
                 origin[first] == origin[second], np.minimum(quality[first], quality[second]),
                 np.minimum(height[first], height[second]), kind, first, second)


@dataclass(frozen=True)
class Rates:
    """FAR and FRR at one threshold on a set of pairs (counts kept for the tables)."""

    threshold: float
    impostors: int
    false_accepts: int
    genuines: int
    false_rejects: int

    @property
    def far(self) -> float:
        """False accept rate."""
        return self.false_accepts / max(self.impostors, 1)

    @property
    def frr(self) -> float:
        """False reject rate."""
        return self.false_rejects / max(self.genuines, 1)


def rates(similarity: np.ndarray, genuine: np.ndarray, thresholds: Iterable[float]
          ) -> list[Rates]:
    """Return FAR/FRR of accepting pairs at similarity >= each threshold."""
    impostor_scores = similarity[~genuine]
    genuine_scores = similarity[genuine]
    return [Rates(float(t), len(impostor_scores), int(np.sum(impostor_scores >= t)),
                  len(genuine_scores), int(np.sum(genuine_scores < t))) for t in thresholds]
