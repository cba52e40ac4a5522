"""Camera-like frames made from the labelled face photos, for the history tests."""

import cv2
import numpy as np


def letterbox(image: np.ndarray, width: int = 640, height: int = 360) -> np.ndarray:
    """Fit image into a black width x height frame without distorting it, as a camera frame."""
    scale = min(width / image.shape[1], height / image.shape[0])
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:small.shape[0], :small.shape[1]] = small
    return frame
