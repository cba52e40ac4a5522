"""The body colour descriptor the detector publishes with each person box."""

import cv2
import numpy as np
import pytest

from facetrack_ros.core.detection import APPEARANCE_BINS, APPEARANCE_PARTS, body_appearance
from facetrack_ros.core.identity import APPEARANCE_MIN_SIMILARITY, appearance_similarity


def _scene(shirt: tuple[int, int, int], trousers: tuple[int, int, int],
           seed: int = 0) -> np.ndarray:
    """Return a 480x640 BGR image with one person (x 200-300, y 100-400) on a noisy wall."""
    rng = np.random.default_rng(seed)
    image = rng.integers(90, 130, (480, 640, 3), dtype=np.uint8)
    cv2.rectangle(image, (230, 100), (270, 150), (140, 170, 210), -1)  # head
    cv2.rectangle(image, (210, 150), (290, 260), shirt, -1)
    cv2.rectangle(image, (215, 260), (285, 400), trousers, -1)
    noise = rng.integers(-12, 12, image.shape)
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8)


BOX = np.array([200, 100, 300, 400], np.float32)
RED, BLUE, GREEN, BLACK = (40, 40, 200), (160, 60, 30), (50, 170, 60), (25, 25, 25)


def test_descriptor_is_unit_length_and_the_mean_of_its_parts_bhattacharyya() -> None:
    """Length: bins x parts; unit norm; the dot product is the parts' mean coefficient."""
    a = body_appearance(_scene(RED, BLUE), BOX)
    b = body_appearance(_scene(RED, BLACK, seed=1), BOX)
    assert a.shape == (int(np.prod(APPEARANCE_BINS)) * len(APPEARANCE_PARTS),)
    assert a.dtype == np.float32 and np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    half = a.size // 2
    parts = [float(np.dot(a[:half], b[:half])) * 2, float(np.dot(a[half:], b[half:])) * 2]
    assert float(np.dot(a, b)) == pytest.approx(np.mean(parts), abs=1e-5)
    assert parts[0] > 0.8 > parts[1], 'same shirt, other trousers'


def test_same_clothes_match_and_other_clothes_do_not() -> None:
    """Same person, shifted box and other noise: similar; other clothes: below the floor."""
    same = appearance_similarity(body_appearance(_scene(RED, BLUE), BOX),
                                 body_appearance(_scene(RED, BLUE, seed=3), BOX + [6, 4, 6, 4]))
    other = appearance_similarity(body_appearance(_scene(RED, BLUE), BOX),
                                  body_appearance(_scene(GREEN, BLACK), BOX))
    assert same > 0.9 and other < APPEARANCE_MIN_SIMILARITY


def test_boxes_without_pixels_have_no_descriptor() -> None:
    """A box outside the image or with no height gives None, not an error."""
    image = _scene(RED, BLUE)
    assert body_appearance(image, np.array([700, 10, 800, 300], np.float32)) is None
    assert body_appearance(image, np.array([100, 200, 150, 200], np.float32)) is None
    partly = body_appearance(image, np.array([-50, 100, 60, 400], np.float32))
    assert partly is not None and np.isfinite(partly).all()
    assert appearance_similarity(None, partly) is None
