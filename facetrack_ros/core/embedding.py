"""Face-embedding arithmetic shared by the face, tracking and history code."""

from typing import Sequence

import numpy as np

#: Length of the dlib ResNet face descriptor, the default embedding backend.
DLIB_EMBEDDING_DIM = 128

#: Cosine similarity above which two L2-normalised dlib descriptors are taken as one person.
#: Calibrated on ../shared/data/faces (see test/core/test_face.py): same person >= 0.951,
#: different people <= 0.886. dlib's own rule, a Euclidean distance under 0.6 on its raw
#: descriptors (length ~1.4, not 1), is cosine 0.904..0.919 there, mean 0.910: inside the margin.
DEFAULT_MIN_SIMILARITY = 0.91


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
