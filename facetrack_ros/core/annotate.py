"""Draw tracked persons, faces and match scores onto a frame for rqt_image_view."""

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np


@dataclass(frozen=True)
class Overlay:
    """One person to draw: boxes [px] and labels."""

    box: np.ndarray                    # person x1, y1, x2, y2 [px]
    label: str                         # e.g. "person_3 #12"
    face_box: np.ndarray | None = None  # x1, y1, x2, y2 [px]
    score: float | None = None         # match similarity shown beside the label


def color_for(key: str) -> tuple[int, int, int]:
    """Return a stable, well saturated BGR colour for an id."""
    hue = (sum(key.encode()) * 37) % 180
    hsv = np.uint8([[[hue, 200, 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def draw_overlays(image: np.ndarray, overlays: Sequence[Overlay], header: str = '') -> np.ndarray:
    """Return a copy of image with boxes, ids, face boxes, scores and a header line."""
    canvas = image.copy()
    for overlay in overlays:
        color = color_for(overlay.label.split(' ')[0])
        x1, y1, x2, y2 = (int(round(v)) for v in overlay.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, 2)
        if overlay.face_box is not None:
            fx1, fy1, fx2, fy2 = (int(round(v)) for v in overlay.face_box)
            cv2.rectangle(canvas, (fx1, fy1), (fx2, fy2), color, 1)
        text = overlay.label + (f' {overlay.score:.2f}' if overlay.score else '')
        _label(canvas, text, (x1, max(y1 - 4, 12)), color)
    if header:
        _label(canvas, header, (6, 18), (255, 255, 255))
    return canvas


def _label(canvas: np.ndarray, text: str, origin: tuple[int, int],
           color: tuple[int, int, int]) -> None:
    # A dark backing box keeps labels readable on any background.
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    x, y = origin
    cv2.rectangle(canvas, (x - 2, y - h - 3), (x + w + 2, y + base), (0, 0, 0), -1)
    cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
