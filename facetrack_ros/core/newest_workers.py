"""A slow step run on the newest input by several threads at once, its results in input order.

The detector node's step: one YOLO inference a camera frame. On a CPU, torch's threads within
one inference wait on each other at every layer (YOLOv8n float at 640x360 on this project's
2-core VM: one thread 23 frames/s, two threads on one frame 21-26), while two frames each on
one thread, at once, detect 42 frames/s (35 beside other work taking 45 % of a core). So the
node runs up to `workers` frames at once, each worker with a model of its own (ultralytics'
models are not safe to share between threads), and keeps the newest frame waiting when all
are busy, as a keep-last subscription does. Results leave in the order their inputs came, so
the tracker sees frames in camera order: a later frame that finishes first waits for the
earlier one.
"""

from dataclasses import dataclass
import threading
from typing import Callable, Generic, Sequence, TypeVar

Input = TypeVar('Input')
Output = TypeVar('Output')


@dataclass
class WorkerCounts:
    """What the workers did with their inputs since they started."""

    submitted: int = 0
    replaced: int = 0  # inputs a newer one replaced before a worker took them
    taken: int = 0  # inputs a worker started on
    delivered: int = 0


class NewestInputWorkers(Generic[Input, Output]):
    """Run step functions on the newest input in threads; deliver in input order.

    Each step function runs in a thread of its own, one input at a time; an input waits while
    every thread is busy, and a newer input replaces it (only the newest waits). deliver(input,
    output) is called for every input a worker took, in the order the inputs were submitted,
    one call at a time, from a worker thread; output is the step's result or the exception it
    raised.
    """

    def __init__(self, steps: Sequence[Callable[[Input], Output]],
                 deliver: Callable[[Input, Output | Exception], None], name: str) -> None:
        """Start one thread per step function (named name_N)."""
        if not steps:
            raise ValueError('at least one step function is needed')
        self.counts = WorkerCounts()
        self._deliver = deliver
        self._lock = threading.Condition()
        self._waiting: tuple[Input] | None = None  # the input no worker has taken yet
        self._next_out = 0  # sequence number of the next result to deliver
        self._done: dict[int, tuple[Input, Output | Exception]] = {}
        self._closed = False
        self._delivering = threading.Lock()
        self._threads = [threading.Thread(target=self._work, args=(step,), daemon=True,
                                          name=f'{name}_{index}')
                         for index, step in enumerate(steps)]
        for thread in self._threads:
            thread.start()

    def submit(self, item: Input) -> None:
        """Give the workers an input; one still waiting is replaced by it."""
        with self._lock:
            if self._closed:
                return
            self.counts.submitted += 1
            if self._waiting is not None:
                self.counts.replaced += 1
            self._waiting = (item,)
            self._lock.notify()

    def close(self, timeout: float = 5.0) -> None:
        """Take no more inputs; wait up to timeout [s] for the running steps to deliver."""
        with self._lock:
            self._closed = True
            self._waiting = None
            self._lock.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    def _work(self, step: Callable[[Input], Output]) -> None:
        while True:
            with self._lock:
                while self._waiting is None and not self._closed:
                    self._lock.wait()
                if self._waiting is None:  # closed
                    return
                (item,), self._waiting = self._waiting, None
                number = self.counts.taken
                self.counts.taken += 1
            try:
                output: Output | Exception = step(item)
            except Exception as error:  # delivered, so that later results are not held back
                output = error
            self._finish(number, item, output)

    def _finish(self, number: int, item: Input, output: Output | Exception) -> None:
        """Deliver this result and every later one it held back, in input order."""
        with self._lock:
            self._done[number] = (item, output)
        # One deliverer at a time; whoever holds the next number's result delivers the run.
        with self._delivering:
            while True:
                with self._lock:
                    ready = self._done.pop(self._next_out, None)
                    if ready is None:
                        return
                    self._next_out += 1
                    self.counts.delivered += 1
                self._deliver(*ready)
