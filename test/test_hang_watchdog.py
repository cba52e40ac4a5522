"""The hang watchdog ends a test stuck in C and reruns it, so a deadlock never hangs the run."""

import os
from pathlib import Path
import subprocess
import sys

STUCK_ONCE = '''
import ctypes
from pathlib import Path


def test_stuck_in_c_once(tmp_path_factory):
    first = Path(__file__).with_suffix('.ran')
    if not first.exists():
        first.write_text('')
        # A self-deadlocked mutex: stuck in C, deaf to SIGALRM, as a DDS teardown deadlock is.
        mutex = ctypes.create_string_buffer(64)
        libc = ctypes.CDLL(None)
        libc.pthread_mutex_lock(mutex)
        libc.pthread_mutex_lock(mutex)


def test_after_it():
    pass
'''


def test_a_test_stuck_in_c_is_ended_with_its_stacks_and_rerun(tmp_path, repo_dir):
    """Run with the project's pytest.ini, the stuck test ends in seconds and passes its rerun."""
    (tmp_path / 'test_stuck.py').write_text(STUCK_ONCE)
    environment = dict(os.environ, FACETRACK_TEST_HANG_LIMIT_S='3',
                       PYTHONPATH=os.pathsep.join([str(Path(__file__).parent),
                                                   os.environ.get('PYTHONPATH', '')]))
    environment.pop('FACETRACK_TEST_HANG_DIR', None)
    run = subprocess.run(
        [sys.executable, '-m', 'pytest', '-c', str(repo_dir / 'pytest.ini'),
         '--rootdir', str(tmp_path), '-p', 'hang_watchdog', '--timeout', '1', 'test_stuck.py'],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert '2 passed, 1 rerun' in run.stdout, run.stdout
    assert 'test_stuck.py::test_stuck_in_c_once ran over 3 s' in run.stdout, run.stdout
    assert 'in test_stuck_in_c_once' in run.stdout, run.stdout
