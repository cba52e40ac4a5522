"""dlib's face recognition ResNet, read from dlib's own model file and run by torch.

dlib-bin is built without BLAS: its own convolutions took 96 ms per face on this project's
CPU, against about 10 ms for the same network in torch on one thread. The weights and the
layout come from `dlib_face_recognition_resnet_model_v1.dat` (face_recognition_models), so
the descriptors are dlib's to float rounding; test_dlib_resnet compares them with
dlib.face_recognition_model_v1 on real photos, which also guards the file format read here.

The file is dlib's serialization of its `anet_type` (dnn_face_recognition_ex.cpp): a 7x7
stem, 14 residual blocks and a 128-d linear layer, read by core.dlib_model_file.
"""

from dataclasses import dataclass
from pathlib import Path
import re

import numpy as np
import torch
import torch.nn.functional as F

from facetrack_ros.core.dlib_model_file import (Conv, layer_records, ModelFileError,
                                                PIXEL_SCALE, read_conv, Reader)

__all__ = ['DlibResNet', 'ModelFileError']

#: The records of the layers the forward pass needs, as named in the file.
_RECORDS = ('input_rgb_image_sized', 'con_4', 'affine_', 'relu_', 'max_pool_2', 'avg_pool_2',
            'add_prev_', 'fc_2')


@dataclass(frozen=True)
class _Block:
    """relu(conv2(relu(conv1(x))) + shortcut), the shortcut average-pooled where it shrinks."""

    conv1: Conv
    conv2: Conv
    pool: tuple[tuple[int, int], tuple[int, int]] | None  # (size, stride) of the shortcut


def _pool(reader: Reader) -> tuple[tuple[int, int], tuple[int, int]]:
    """Read a pooling record's (rows, cols) and (stride_y, stride_x); no padding is read."""
    rows, cols, stride_y, stride_x, pad_y, pad_x = (reader.integer() for _ in range(6))
    if pad_y or pad_x:
        raise ModelFileError(f'pooling padded by {pad_y}x{pad_x}: not this network')
    return (rows, cols), (stride_y, stride_x)


class DlibResNet:
    """The 128-d face descriptor network of dlib_face_recognition_resnet_model_v1."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        """Read the network from dlib's model file.

        threads: torch's CPU threads, a setting of the whole process (None leaves it); one is
        enough for a 150 px chip and leaves the other cores to the detector.
        Raises ModelFileError when the file does not hold this network.
        """
        if threads is not None:
            if threads < 1:
                raise ValueError(f'threads must be >= 1, got {threads}')
            torch.set_num_threads(threads)
        try:
            self._read(Path(path).read_bytes())
        except (IndexError, ValueError) as error:
            raise ModelFileError(f'{path}: not dlib\'s face recognition ResNet: {error}') \
                from error

    def _read(self, data: bytes) -> None:
        records = layer_records(data, _RECORDS)
        names = ' '.join(name for name, _ in records)
        stem = 'input_rgb_image_sized con_4 affine_ relu_ max_pool_2 '
        block = r'con_4 affine_ relu_ con_4 affine_ (avg_pool_2 )?add_prev_ relu_ '
        if not re.fullmatch(f'{stem}({block})+avg_pool_2 fc_2', names):
            raise ModelFileError(f'unexpected layers: {names[:200]}')
        image = records[0][1]  # the mean red, green and blue pixel, then the chip's size
        self.mean = torch.tensor([image.real(), image.real(), image.real()]).view(1, 3, 1, 1)
        self.chip_size = image.integer()
        if image.integer() != self.chip_size:
            raise ModelFileError('the network reads chips that are not square')
        self.stem = read_conv(records[1][1], records[2][1])
        self.stem_pool = _pool(records[4][1])
        self.blocks = []
        at = 5
        while records[at][0] == 'con_4':
            down = records[at + 5][0] == 'avg_pool_2'
            self.blocks.append(_Block(read_conv(records[at][1], records[at + 1][1]),
                                      read_conv(records[at + 3][1], records[at + 4][1]),
                                      _pool(records[at + 5][1]) if down else None))
            at += 8 if down else 7
        reader = records[at + 1][1]
        outputs, inputs = reader.integer(), reader.integer()
        self.linear = torch.from_numpy(reader.tensor().reshape(inputs, outputs))
        self.dim = outputs

    def __call__(self, chips_rgb: np.ndarray) -> np.ndarray:
        """Return the (N, dim) float32 descriptors of N aligned face chips.

        chips_rgb: (N, chip_size, chip_size, 3) uint8 RGB, as dlib.get_face_chip cuts them.
        """
        if chips_rgb.ndim != 4 or chips_rgb.shape[1:] != (self.chip_size, self.chip_size, 3):
            raise ValueError(f'chips must be (N, {self.chip_size}, {self.chip_size}, 3), got '
                             f'{chips_rgb.shape}')
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(chips_rgb)).permute(0, 3, 1, 2).float()
            x = F.relu(self.stem((x - self.mean) / PIXEL_SCALE))
            x = F.max_pool2d(x, *self.stem_pool)
            for block in self.blocks:
                y = block.conv2(F.relu(block.conv1(x)))
                shortcut = x if block.pool is None else F.avg_pool2d(x, *block.pool)
                x = F.relu(_add_padded(y, shortcut))
            return (x.mean(dim=(2, 3)) @ self.linear).numpy()


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Return a + b as dlib's add_prev adds them: each zero-padded at its end to the larger.

    The network's last strided blocks give a 3x3 main path beside a 4x4 shortcut.
    """
    shape = [max(m, n) for m, n in zip(a.shape, b.shape)]

    def padded(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, shape[3] - t.shape[3], 0, shape[2] - t.shape[2],
                         0, shape[1] - t.shape[1]))

    return padded(a) + padded(b)
