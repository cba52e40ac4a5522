"""The hang watchdog ends a test stuck in C and reruns it, so a deadlock never hangs the run."""

import os
from pathlib import Path
import subprocess
import sys
import time

STUCK_ONCE = '''
import ctypes
from pathlib import Path


def stuck_in_c(*_):
    # A self-deadlocked mutex: stuck in C, deaf to SIGALRM, as a DDS teardown deadlock is.
    mutex = ctypes.create_string_buffer(64)
    libc = ctypes.CDLL(None)
    libc.pthread_mutex_lock(mutex)
    libc.pthread_mutex_lock(mutex)


def first_run():
    first = Path(__file__).with_suffix('.ran')
    if first.exists():
        return False
    first.write_text('')
    return True


def test_stuck_in_c_once():
    if first_run():
        stuck_in_c()


def test_after_it():
    pass
'''

STUCK_IN_DESTROY_NODE = STUCK_ONCE.replace('''
def test_stuck_in_c_once():
    if first_run():
        stuck_in_c()
''', '''
def test_stuck_in_c_once():
    import rclpy
    from rclpy.node import Node
    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = Node('stuck', context=context)
    if first_run():
        # Its first step (every node has the parameter events publisher) deadlocks.
        node.destroy_publisher = stuck_in_c
    node.destroy_node()
    context.try_shutdown()
''')


def _run_stuck(tmp_path: Path, repo_dir: Path, source: str, test_timeout_s: int, **limits: str
               ) -> subprocess.CompletedProcess:
    """Run source as test_stuck.py with the project's pytest.ini and the watchdog's limits.

    test_timeout_s is pytest-timeout's limit, which a test stuck in C never sees.
    """
    (tmp_path / 'test_stuck.py').write_text(source)
    environment = dict(os.environ, **limits,
                       PYTHONPATH=os.pathsep.join([str(Path(__file__).parent),
                                                   os.environ.get('PYTHONPATH', '')]))
    environment.pop('FACETRACK_TEST_HANG_DIR', None)
    run = subprocess.run(
        [sys.executable, '-m', 'pytest', '-c', str(repo_dir / 'pytest.ini'),
         '--rootdir', str(tmp_path), '-p', 'hang_watchdog', '--timeout', str(test_timeout_s),
         'test_stuck.py'],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert '2 passed, 1 rerun' in run.stdout, run.stdout
    return run


def test_a_test_stuck_in_c_is_ended_with_its_stacks_and_rerun(tmp_path, repo_dir):
    """Run with the project's pytest.ini, the stuck test ends in seconds and passes its rerun."""
    run = _run_stuck(tmp_path, repo_dir, STUCK_ONCE, 1, FACETRACK_TEST_HANG_LIMIT_S='3')
    assert 'test_stuck.py::test_stuck_in_c_once ran over 3 s' in run.stdout, run.stdout
    assert 'in stuck_in_c' in run.stdout, run.stdout


def test_a_stuck_node_teardown_is_ended_within_the_teardown_limit(tmp_path, repo_dir):
    """A destroy_node stuck in C (rclpy) is ended past the teardown limit, not the test's."""
    started = time.monotonic()
    # Importing rclpy and making a node in a fresh worker took over 1 s on a busy CI machine.
    run = _run_stuck(tmp_path, repo_dir, STUCK_IN_DESTROY_NODE, 30,
                     FACETRACK_TEST_HANG_LIMIT_S='300', FACETRACK_TEST_TEARDOWN_LIMIT_S='3')
    assert time.monotonic() - started < 100, 'ended by the test limit, not the teardown limit'
    assert ("test_stuck.py::test_stuck_in_c_once stuck over 3 s in rclpy's destroy_node"
            in run.stdout), run.stdout
    assert 'in destroy_node' in run.stdout, run.stdout
