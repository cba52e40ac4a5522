"""Fuzz any ROS node over real DDS: malformed messages on its topics, requests to its services.

Generic over (node, topic or service, type): random_message() fills any rclpy message type by
introspection with edge values (NaN, infinities, extremes of each integer type, empty and long
strings and sequences, stamps before 1970, nanoseconds past a second), nested messages
included. NodeUnderTest spins a node in a thread of its own, as its process would, and keeps
the exception that would have ended that process. fuzz_topic() and fuzz_service() send the
inputs, the first paced by a caller-given condition, the second one request at a time, timing
each reply.
"""

from dataclasses import dataclass, field
import importlib
import math
import re
import threading
import time
from typing import Callable, Iterable

import numpy as np
from rclpy.executors import Executor, SingleThreadedExecutor
from rclpy.node import Node

FLOATS = (math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, -1.0, 0.5, 3.4e38, -3.4e38, 1e-45,
          1e9, -1e9, 65535.0)
INT_RANGES = {'int8': (-2 ** 7, 2 ** 7 - 1), 'uint8': (0, 2 ** 8 - 1), 'octet': (0, 255),
              'int16': (-2 ** 15, 2 ** 15 - 1), 'uint16': (0, 2 ** 16 - 1),
              'int32': (-2 ** 31, 2 ** 31 - 1), 'uint32': (0, 2 ** 32 - 1),
              'int64': (-2 ** 63, 2 ** 63 - 1), 'uint64': (0, 2 ** 64 - 1), 'char': (0, 255)}
_SEQUENCE = re.compile(r'sequence<(?P<inner>[^,>]+)(?:, *(?P<bound>\d+))?>')
_ARRAY = re.compile(r'(?P<inner>.+)\[(?P<size>\d+)\]')
_STRING = re.compile(r'(w?string)(?:<=(\d+))?')
#: Longest random sequence and string, so that one message stays well below DDS limits.
MAX_SEQUENCE = 3000
MAX_TEXT = 4000


def _message_type(name: str) -> type:
    package, _, kind = name.rpartition('/')
    return getattr(importlib.import_module(f'{package}.msg'), kind)


def random_text(rng: np.random.Generator) -> str:
    """Return an empty, short, long, odd or path-like string."""
    choice = rng.integers(0, 7)
    if choice == 0:
        return ''
    if choice == 1:
        return 'x' * int(rng.integers(200, MAX_TEXT))
    if choice == 2:
        return '../../etc/passwd'
    if choice == 3:
        return ''.join(chr(int(c)) for c in rng.integers(0x20, 0x2FFF, int(rng.integers(1, 40))))
    if choice == 4:
        return 'bgr8'
    return ''.join(rng.choice(list('abcxyz_-0123456789/ '), int(rng.integers(1, 20))))


def random_scalar(kind: str, rng: np.random.Generator):
    """Return an edge or random value of a primitive ROS type."""
    if kind in ('float', 'double'):
        return float(rng.choice(FLOATS)) if rng.random() < 0.6 else float(rng.normal(0, 1e4))
    if kind == 'boolean':
        return bool(rng.integers(0, 2))
    if kind in INT_RANGES:
        low, high = INT_RANGES[kind]
        edges = [low, high, 0, 1, low + 1, high - 1]
        if rng.random() < 0.6:
            return int(edges[int(rng.integers(0, len(edges)))])
        return int(rng.integers(low, high, endpoint=True, dtype=np.int64)
                   if high < 2 ** 63 else rng.integers(0, 2 ** 62))
    if _STRING.fullmatch(kind):
        return random_text(rng)
    raise ValueError(f'no random value for {kind}')


def random_value(kind: str, rng: np.random.Generator, depth: int):
    """Return a random value for a field of ROS type kind (sequences, arrays, messages)."""
    sequence = _SEQUENCE.fullmatch(kind)
    array = _ARRAY.fullmatch(kind)
    if sequence or array:
        inner = (sequence or array).group('inner').strip()
        if array:
            length = int(array.group('size'))
        else:
            bound = sequence.group('bound')
            high = int(bound) if bound else MAX_SEQUENCE
            length = int(rng.choice([0, 1, 3, 4, 128, int(rng.integers(0, high + 1))]))
            length = min(length, high)
            if '/' in inner:
                length = min(length, 8 if depth < 2 else 1)
        if inner in ('uint8', 'octet'):
            return bytes(rng.integers(0, 256, length, dtype=np.uint8))
        return [random_value(inner, rng, depth + 1) for _ in range(length)]
    if '/' in kind:
        return random_message(_message_type(kind), rng, depth + 1)
    return random_scalar(kind, rng)


def random_message(message_type: type, rng: np.random.Generator, depth: int = 0):
    """Return an instance of message_type with every field random (edge values favoured).

    A value the type refuses on assignment (rclpy checks ranges) is replaced by the default.
    """
    message = message_type()
    for name, kind in message_type.get_fields_and_field_types().items():
        try:
            setattr(message, name, random_value(kind, rng, depth))
        except (AssertionError, TypeError, ValueError, OverflowError):
            pass   # left at its default
    return message


class NodeUnderTest:
    """A node spinning in a thread of its own; `error` keeps what would have ended it."""

    def __init__(self, node: Node, context) -> None:
        """Start spinning node on the executor its process uses (runner.run_node)."""
        self.node = node
        self.error: BaseException | None = None
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except BaseException as error:  # noqa: B902 - what would have ended the process
            self.error = error

    @property
    def alive(self) -> bool:
        """Return whether the node still spins (no callback raised out of the executor)."""
        return self._thread.is_alive() and self.error is None

    def stop(self) -> None:
        """Stop spinning (the node is left for the caller to destroy)."""
        self.executor.shutdown()
        self._thread.join(timeout=10)


@dataclass
class FuzzReport:
    """What one fuzz run sent and saw."""

    sent: int = 0
    crashed: str = ''                       # what ended the node, if it ended
    replies: list[float] = field(default_factory=list)   # seconds per reply (services)
    codes: dict[int, int] = field(default_factory=dict)  # result code -> count (services)
    slow: list[str] = field(default_factory=list)        # requests answered after the limit
    unanswered: int = 0


def spin_until(executor: Executor, condition: Callable[[], bool], timeout: float) -> bool:
    """Spin executor until condition() holds or timeout [s] passes; return condition()."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.01)
    return condition()


def fuzz_topic(executor: Executor, publisher, target: NodeUnderTest, messages: Iterable,
               settled: Callable[[int], bool] | None = None, timeout: float = 10.0,
               pause: float = 0.002) -> FuzzReport:
    """Publish messages one by one to target's topic; stop early if target dies.

    settled(sent) says when the node has taken the first `sent` messages (pacing, so a
    KEEP_LAST queue drops none); without it each message is followed by pause [s].
    """
    report = FuzzReport()
    for message in messages:
        publisher.publish(message)
        report.sent += 1
        if settled is not None:
            spin_until(executor, lambda: settled(report.sent) or not target.alive, timeout)
        else:
            spin_until(executor, lambda: False, pause)
        if not target.alive:
            report.crashed = repr(target.error)
            break
    return report


def fuzz_service(executor: Executor, client, target: NodeUnderTest, requests: Iterable,
                 limit_s: float, exempt: Callable[[object], bool] = lambda request: False,
                 timeout: float = 60.0) -> FuzzReport:
    """Call client's service with each request, one at a time, timing each reply.

    A reply later than limit_s [s] is listed in slow unless exempt(request) (deep searches).
    """
    report = FuzzReport()
    for request in requests:
        began = time.monotonic()
        future = client.call_async(request)
        report.sent += 1
        spin_until(executor, lambda: future.done() or not target.alive, timeout)
        took = time.monotonic() - began
        if not target.alive:
            report.crashed = repr(target.error)
            break
        if not future.done() or future.result() is None:
            report.unanswered += 1
            continue
        report.replies.append(took)
        code = int(future.result().result)
        report.codes[code] = report.codes.get(code, 0) + 1
        if took > limit_s and not exempt(request):
            report.slow.append(f'{took:.2f} s: {_describe(request)}')
    return report


def _describe(request) -> str:
    fields = {}
    for name in type(request).get_fields_and_field_types():
        value = getattr(request, name)
        if hasattr(value, 'get_fields_and_field_types') or isinstance(
                value, (bytes, list, np.ndarray)) or (hasattr(value, '__len__')
                                                      and len(value) > 40):
            continue
        fields[name] = value
    return repr(fields)[:300]
