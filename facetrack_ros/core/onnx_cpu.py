"""ONNX Runtime sessions on the CPU, on threads of their own that sleep while they wait."""

from pathlib import Path

import onnxruntime


def cpu_session(model: str | Path | bytes, threads: int) -> onnxruntime.InferenceSession:
    """Return an ONNX Runtime session of model (a file, or a serialized model) on the CPU.

    threads: its intra-op threads. ONNX Runtime's defaults, a thread a core spinning while it
    waits for the others, oversubscribe a small CPU as soon as two models run side by side
    (core.detection.OnnxPersonDetector); these threads sleep instead.
    """
    if threads < 1:
        raise ValueError(f'threads must be >= 1, got {threads}')
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    return onnxruntime.InferenceSession(model if isinstance(model, bytes) else str(model),
                                        options, providers=['CPUExecutionProvider'])
