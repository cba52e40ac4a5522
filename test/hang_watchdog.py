"""pytest plugin: a test stuck in C is ended with its stacks and rerun, never hangs the run.

A test stuck in C (a DDS teardown deadlock) never sees pytest-timeout's SIGALRM, so it would
hold the whole run until CI's own limit. faulthandler's watchdog thread needs no
interpreter: past ``HANG_LIMIT_S`` it writes the stuck process's stacks to the session's hang
folder and ends the process. Under xdist (pytest.ini runs one worker) that is one worker: xdist
replaces it and pytest-rerunfailures runs the test again, once; the summary prints the stacks.

rclpy's node and context teardown, where those deadlocks happen (a test stuck in rclpy's
``destroy_node``, in C, held a ``make test`` for the whole ``HANG_LIMIT_S``), runs under the
much shorter ``TEARDOWN_LIMIT_S`` (``bounded``), so such a hang costs a minute, not eleven.
"""

from contextlib import contextmanager
from dataclasses import dataclass
import faulthandler
import functools
import os
from pathlib import Path
import tempfile
import time
from typing import Callable, IO, Iterator

import pytest

HANG_DIR_VARIABLE = 'FACETRACK_TEST_HANG_DIR'
# Past pytest-timeout's own limit (pytest.ini), which ends every test that can still be ended.
HANG_LIMIT_S = float(os.environ.get('FACETRACK_TEST_HANG_LIMIT_S', 660.0))
# Tearing down a node or a context takes well under a second, even with both cores busy.
TEARDOWN_LIMIT_S = float(os.environ.get('FACETRACK_TEST_TEARDOWN_LIMIT_S', 60.0))
_made_hang_dir = []


@dataclass
class _Test:
    """The running test: its id, its stacks file and when HANG_LIMIT_S ends it."""

    nodeid: str
    stacks: IO[str]
    deadline: float  # time.monotonic() [s]
    bounded: bool = False

    def arm(self, seconds: float, header: str) -> None:
        """(Re)start the watchdog: past seconds, write header and the stacks, end the process."""
        self.stacks.seek(0)
        self.stacks.truncate()
        self.stacks.write(header)
        self.stacks.flush()
        faulthandler.dump_traceback_later(max(seconds, 0.1), exit=True, file=self.stacks)

    def arm_test_limit(self) -> None:
        """Watch for the rest of HANG_LIMIT_S."""
        self.arm(self.deadline - time.monotonic(),
                 f'{self.nodeid} ran over {HANG_LIMIT_S:.0f} s, stuck here:\n')


_running: list[_Test] = []


@contextmanager
def bounded(seconds: float = TEARDOWN_LIMIT_S, what: str = 'a teardown') -> Iterator[None]:
    """End the test's process if the block runs over seconds (or the test's own limit).

    Outside a test, or inside another bounded block, the block runs as it is.
    """
    test = _running[0] if _running else None
    if test is None or test.bounded:
        yield
        return
    test.bounded = True
    test.arm(min(seconds, test.deadline - time.monotonic()),
             f'{test.nodeid} stuck over {seconds:.0f} s in {what}, here:\n')
    try:
        yield
    finally:
        test.bounded = False
        test.arm_test_limit()


def _bounding(method: Callable, what: str) -> Callable:
    """Return method run within bounded()."""
    @functools.wraps(method)
    def run(*args, **kwargs):
        with bounded(what=what):
            return method(*args, **kwargs)
    return run


def pytest_configure(config: pytest.Config) -> None:
    """Give the session a hang folder; xdist workers inherit it from their controller."""
    if HANG_DIR_VARIABLE not in os.environ:
        os.environ[HANG_DIR_VARIABLE] = tempfile.mkdtemp(prefix='facetrack-test-hangs-')
        _made_hang_dir.append(Path(os.environ[HANG_DIR_VARIABLE]))
    try:
        from rclpy.context import Context
        from rclpy.node import Node
    except ImportError:  # a run without ROS: nothing to bound
        return
    Node.destroy_node = _bounding(Node.destroy_node, "rclpy's destroy_node")
    Context.try_shutdown = _bounding(Context.try_shutdown, "rclpy's Context.try_shutdown")
    Context.shutdown = _bounding(Context.shutdown, "rclpy's Context.shutdown")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Watch one test's setup, call and teardown; its stack file stays only if it hung."""
    path = Path(os.environ[HANG_DIR_VARIABLE]) / f'{os.getpid()}.txt'
    with path.open('w') as stacks:
        _running.append(_Test(item.nodeid, stacks, time.monotonic() + HANG_LIMIT_S))
        _running[0].arm_test_limit()
        try:
            yield
        finally:
            faulthandler.cancel_dump_traceback_later()
            _running.clear()
    path.unlink()


def pytest_terminal_summary(terminalreporter) -> None:
    """Print the stacks of every test the watchdog ended."""
    for path in sorted(Path(os.environ[HANG_DIR_VARIABLE]).glob('*.txt')):
        terminalreporter.write_sep('=', 'hung test')
        terminalreporter.write(path.read_text())


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's hang folder unless it holds stacks."""
    for folder in _made_hang_dir:
        if not any(folder.iterdir()):
            folder.rmdir()
