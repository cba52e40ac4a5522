"""Face-embedding arithmetic shared by the face, tracking and history code."""

from typing import Sequence

import numpy as np

#: Length of the dlib ResNet face descriptor, the default embedding backend.
DLIB_EMBEDDING_DIM = 128

# The identity decision on dlib ResNet descriptors, calibrated by scripts/calibrate_faces.py
# (README "Face decision calibration") on 886 faces embedded by the face path (HOG + dlib): the
# 71 faces of the labelled photos (../shared/data/face_pairs with master.csv, and
# ../shared/data/faces), 768 faces found in person boxes of the composed clips (20-150 px,
# turned by warps, tilted, over clutter) and 47 of the Hamilton clip: 356,701 pairs of two
# people, 16,325 pairs of one person across photos or appearances. Two people scored up to
# 0.951 when a face was poor (small, blurred, turned: quality 0.4-0.6), up to 0.937 when both
# faces had a quality of at least 0.6 (0.933 on the photos alone); dlib's own rule (Euclidean
# distance 0.6, cosine ~0.91) accepts 19 % of the impostor pairs of a real crowd video.

#: Faces of lower quality [0..1] (core/face.py face_quality) may not decide who someone is:
#: neither match a known person nor contradict one. About a face of 45 px or more, sharp and
#: near-frontal; 76 % of the video faces above reach it.
MIN_DECISION_QUALITY = 0.6
#: Cosine similarity from which a face of at least MIN_DECISION_QUALITY is taken to be a known
#: person: 0.008 above the highest impostor pair at that quality (0.937). One face against one
#: face, that rejects 16.6 % of the same-person pairs across photos or appearances (5 % on the
#: photos); a person's running embedding averages many faces and scores higher.
DEFAULT_MIN_SIMILARITY = 0.945


def min_similarity_for(quality: float) -> float:
    """Return the cosine similarity a face of this quality needs to be taken for a person.

    +inf below MIN_DECISION_QUALITY (the face may not decide), else DEFAULT_MIN_SIMILARITY.
    """
    return DEFAULT_MIN_SIMILARITY if quality >= MIN_DECISION_QUALITY else float('inf')


class EmbeddingError(ValueError):
    """An embedding that cannot be used: wrong length, non-finite values or zero norm."""


def validate_embedding(values: Sequence[float] | np.ndarray, dim: int) -> np.ndarray:
    """Return values as an L2-normalised float32 vector, or raise EmbeddingError saying why."""
    vector = np.asarray(values, dtype=np.float32).reshape(-1)
    if vector.size != dim:
        raise EmbeddingError(f'embedding has {vector.size} values, expected {dim}')
    if not np.all(np.isfinite(vector)):
        raise EmbeddingError('embedding has NaN or infinite values')
    return l2_normalize(vector)


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Scale vectors (the last axis) to unit length; raise EmbeddingError on a zero vector."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    if np.any(norms == 0):
        raise EmbeddingError('embedding has zero length')
    return vectors / norms


def cosine_similarity(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Similarity of one unit query vector (D,) to each row of a unit gallery (N, D)."""
    return np.asarray(gallery, dtype=np.float32) @ np.asarray(query, dtype=np.float32)
