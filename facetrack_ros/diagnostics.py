"""Per-node /diagnostics: processing rate, latency, dropped inputs and model state."""

from collections import deque
import functools
import time
from typing import Callable, Sequence

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node


class NodeDiagnostics:
    """Collects a node's processing statistics and publishes them once per period."""

    def __init__(self, node: Node, period: float = 1.0, window: int = 100) -> None:
        """Publish on /diagnostics every period [s], averaging over the last window frames."""
        self._node = node
        self._latencies: deque[float] = deque(maxlen=window)
        self._stamps: deque[float] = deque(maxlen=window)
        self.dropped = 0
        self.errors = 0
        self.level = DiagnosticStatus.OK
        self.message = 'starting'
        self.values: dict[str, str] = {}
        self._problems = ''   # the ERROR show() set last
        self._publisher = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._timer = node.create_timer(period, self.publish)

    def processed(self, latency: float) -> None:
        """Record one processed input and its latency from capture [s]."""
        self._latencies.append(latency)
        self._stamps.append(time.monotonic())

    def set_state(self, level: bytes, message: str) -> None:
        """Set the overall level (DiagnosticStatus.OK/WARN/ERROR) and its reason."""
        self.level, self.message = level, message

    def show(self, problems: Sequence[str], ok: str, warning: str = '') -> None:
        """Set the state from the node's own findings: problems (ERROR), warning, else ok.

        An ERROR that a failed callback set (guarded) stays shown; the problems set here
        clear as soon as they are gone.
        """
        ours = self.message == self._problems
        if problems:
            if self.level != DiagnosticStatus.ERROR or ours:
                self._problems = '; '.join(problems)
                self.set_state(DiagnosticStatus.ERROR, self._problems)
        elif warning:
            self.set_state(DiagnosticStatus.WARN, warning)
        elif self.level != DiagnosticStatus.ERROR or ours:
            self.set_state(DiagnosticStatus.OK, ok)

    def guarded(self, callback: Callable) -> Callable:
        """Wrap a subscription or timer callback so that a failure is counted and logged.

        Bad input (a malformed message, a failing model call, a full disk) must not end the
        node: the executor would re-raise the exception and stop spinning.
        """
        @functools.wraps(callback)
        def run(*args):
            try:
                return callback(*args)
            except Exception as error:  # the node must keep running
                self.errors += 1
                self.set_state(DiagnosticStatus.ERROR, f'{callback.__name__}: {error}')
                self._node.get_logger().error(
                    f'{callback.__name__} failed: {error!r}', throttle_duration_sec=5.0)
        return run

    def rate(self) -> float:
        """Return the recent processing rate [Hz]."""
        if len(self._stamps) < 2 or self._stamps[-1] == self._stamps[0]:
            return 0.0
        return (len(self._stamps) - 1) / (self._stamps[-1] - self._stamps[0])

    def publish(self) -> None:
        """Publish the current status."""
        latency_ms = 1000.0 * sum(self._latencies) / len(self._latencies) if self._latencies else 0
        values = {
            'rate [Hz]': f'{self.rate():.2f}',
            'mean latency [ms]': f'{latency_ms:.1f}',
            'dropped inputs': str(self.dropped),
            'errors': str(self.errors),
            **self.values,
        }
        status = DiagnosticStatus(
            level=self.level, name=f'{self._node.get_fully_qualified_name()}',
            message=self.message, hardware_id=self._node.get_name(),
            values=[KeyValue(key=k, value=v) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self._node.get_clock().now().to_msg()
        self._publisher.publish(array)

    def destroy(self) -> None:
        """Stop publishing."""
        self._node.destroy_timer(self._timer)
        self._node.destroy_publisher(self._publisher)
