"""pytest plugin: a test stuck in C is ended with its stacks and rerun, never hangs the run.

A test stuck in C (a DDS teardown deadlock) never sees pytest-timeout's SIGALRM, so it would
hold the whole run until CI's own limit. faulthandler's watchdog thread needs no
interpreter: past ``HANG_LIMIT_S`` it writes the stuck process's stacks to the session's hang
folder and ends the process. Under xdist (pytest.ini runs one worker) that is one worker: xdist
replaces it and pytest-rerunfailures runs the test again, once; the summary prints the stacks.
"""

import faulthandler
import os
from pathlib import Path
import tempfile

import pytest

HANG_DIR_VARIABLE = 'FACETRACK_TEST_HANG_DIR'
# Past pytest-timeout's own limit (pytest.ini), which ends every test that can still be ended.
HANG_LIMIT_S = float(os.environ.get('FACETRACK_TEST_HANG_LIMIT_S', 660.0))
_made_hang_dir = []


def pytest_configure(config: pytest.Config) -> None:
    """Give the session a hang folder; xdist workers inherit it from their controller."""
    if HANG_DIR_VARIABLE not in os.environ:
        os.environ[HANG_DIR_VARIABLE] = tempfile.mkdtemp(prefix='facetrack-test-hangs-')
        _made_hang_dir.append(Path(os.environ[HANG_DIR_VARIABLE]))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Watch one test's setup, call and teardown; its stack file stays only if it hung."""
    path = Path(os.environ[HANG_DIR_VARIABLE]) / f'{os.getpid()}.txt'
    with path.open('w') as stacks:
        stacks.write(f'{item.nodeid} ran over {HANG_LIMIT_S:.0f} s, stuck here:\n')
        stacks.flush()
        faulthandler.dump_traceback_later(HANG_LIMIT_S, exit=True, file=stacks)
        try:
            yield
        finally:
            faulthandler.cancel_dump_traceback_later()
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
