"""NewestInputWorkers: several inputs at once, the newest waiting, results in input order."""

import threading
import time

import pytest

from facetrack_ros.core.newest_workers import NewestInputWorkers


class _Recorder:
    """Collects deliveries and lets a test wait for them."""

    def __init__(self) -> None:
        self.delivered: list[tuple[object, object]] = []
        self._event = threading.Condition()

    def __call__(self, item: object, output: object) -> None:
        with self._event:
            self.delivered.append((item, output))
            self._event.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        with self._event:
            assert self._event.wait_for(lambda: len(self.delivered) >= count, timeout), \
                self.delivered


def _wait_taken(workers: NewestInputWorkers, count: int, timeout: float = 10.0) -> None:
    """Wait until workers have started on count inputs (a sleep may be too short under load)."""
    deadline = time.monotonic() + timeout
    while workers.counts.taken < count:
        assert time.monotonic() < deadline, workers.counts
        time.sleep(0.005)


def test_a_later_input_that_finishes_first_waits_for_the_earlier_one() -> None:
    """Two workers: input 0 takes 0.3 s, input 1 0.01 s; 1 is delivered after 0."""
    recorder = _Recorder()
    started = threading.Barrier(2)

    def step(item: float) -> float:
        started.wait(timeout=5)  # both inputs are running at once
        time.sleep(item)
        return item * 10

    workers = NewestInputWorkers([step, step], recorder, 'test')
    try:
        workers.submit(0.3)
        _wait_taken(workers, 1)  # a worker takes it before the next comes
        workers.submit(0.01)
        recorder.wait_for(2)
        assert recorder.delivered == [(0.3, 3.0), (0.01, 0.1)]
        assert workers.counts.replaced == 0 and workers.counts.delivered == 2
    finally:
        workers.close()


def test_only_the_newest_input_waits_while_every_worker_is_busy() -> None:
    """One busy worker, three more inputs: the last replaces the two before it."""
    recorder = _Recorder()
    release = threading.Event()

    def step(item: int) -> int:
        if item == 0:
            release.wait(timeout=5)
        return item

    workers = NewestInputWorkers([step], recorder, 'test')
    try:
        workers.submit(0)
        _wait_taken(workers, 1)
        for item in (1, 2, 3):
            workers.submit(item)
        release.set()
        recorder.wait_for(2)
        time.sleep(0.1)
        assert [item for item, _ in recorder.delivered] == [0, 3]
        assert workers.counts.submitted == 4 and workers.counts.replaced == 2
    finally:
        workers.close()


def test_a_failing_step_is_delivered_as_its_exception_and_holds_nothing_back() -> None:
    """The exception takes its place in the order; the workers go on."""
    recorder = _Recorder()

    def step(item: int) -> int:
        if item == 1:
            raise ValueError('bad input')
        return item

    workers = NewestInputWorkers([step, step], recorder, 'test')
    try:
        for item in range(4):
            workers.submit(item)
            recorder.wait_for(item + 1)
        assert [item for item, _ in recorder.delivered] == [0, 1, 2, 3]
        assert isinstance(recorder.delivered[1][1], ValueError)
        assert [output for _, output in recorder.delivered[2:]] == [2, 3]
    finally:
        workers.close()


def test_every_worker_runs_inputs_and_close_stops_them() -> None:
    """Steps run in threads named after the workers; after close() inputs are ignored."""
    recorder = _Recorder()
    running = threading.Barrier(2)
    threads = set()

    def step(item: int) -> int:
        threads.add(threading.current_thread().name)
        if item < 2:
            running.wait(timeout=5)  # the first two inputs run at once, on both workers
        return item

    workers = NewestInputWorkers([step, step], recorder, 'detector')
    workers.submit(0)
    _wait_taken(workers, 1)
    workers.submit(1)
    recorder.wait_for(2)
    assert threads == {'detector_0', 'detector_1'}
    workers.close()
    assert not any(thread.name.startswith('detector_') for thread in threading.enumerate())
    workers.submit(5)
    time.sleep(0.05)
    assert len(recorder.delivered) == 2 and workers.counts.submitted == 2


def test_workers_need_a_step() -> None:
    """No step function: a clear error."""
    with pytest.raises(ValueError, match='step'):
        NewestInputWorkers([], lambda item, output: None, 'test')
