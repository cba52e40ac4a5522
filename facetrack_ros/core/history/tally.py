"""What the history node did with each input and request, and its recent trouble.

Every message and request ends up in exactly one count: `<what> stored` (or `answered`),
`<what> refused` (invalid: the reason went back or to the log), `<what> skipped` (frames over
store_rate) or `<what> failed` (an internal error). /diagnostics shows the counts, so each
refusal is accounted for, and conditions() turns the latest refusal into a warning and the
latest failure into an error that clear NOTICE_S after the last one: the state shown is the
state now, not the worst moment since start.
"""

from collections import Counter
import threading
import time

from facetrack_ros.core.history.frame_history import Condition, ERROR, WARN

#: How long a refusal (warning) or failure (error) stays in the node's state [s].
NOTICE_S = 10.0


class Tally:
    """Counts by '<input or service> <outcome>' plus the latest refusal and failure."""

    def __init__(self, notice_s: float = NOTICE_S) -> None:
        """Start with nothing counted; refusals and failures show for notice_s [s]."""
        self.notice_s = notice_s
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._refusal: tuple[float, str] | None = None
        self._failure: tuple[float, str] | None = None

    def count(self, what: str, outcome: str, number: int = 1) -> None:
        """Count number inputs or requests of what with outcome (stored, answered, skipped)."""
        with self._lock:
            self.counts[f'{what} {outcome}'] += number

    def refused(self, what: str, reason: str, number: int = 1) -> None:
        """Count number refusals of what (invalid input or request) for reason."""
        with self._lock:
            self.counts[f'{what} refused'] += number
            self._refusal = (time.monotonic(), f'refused {what}: {reason}')

    def failed(self, what: str, reason: str) -> None:
        """Count a failure of what (an internal error) for reason."""
        with self._lock:
            self.counts[f'{what} failed'] += 1
            self._failure = (time.monotonic(), f'{what} failed: {reason}')

    def conditions(self) -> list[Condition]:
        """Return the refusal and failure of the last notice_s seconds, if any."""
        now = time.monotonic()
        found = []
        with self._lock:
            if self._failure is not None and now - self._failure[0] < self.notice_s:
                found.append(Condition(ERROR, self._failure[1]))
            if self._refusal is not None and now - self._refusal[0] < self.notice_s:
                found.append(Condition(WARN, self._refusal[1]))
        return found

    def values(self) -> dict[str, str]:
        """Return the counts as /diagnostics values, by name."""
        with self._lock:
            return {name: str(number) for name, number in sorted(self.counts.items())}
