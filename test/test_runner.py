"""Node executables stop cleanly on the signals ros2 launch and Ctrl-C send (real processes)."""

import signal
import subprocess
import sys
import time

import pytest
from rclpy import create_node
from rclpy.executors import SingleThreadedExecutor

from facetrack_ros.graph_runner import GraphRunner

pytestmark = pytest.mark.ros


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_a_publishing_node_exits_zero_on_a_stop_signal(signum, ros_context, shared_dir,
                                                       repo_dir, tmp_path):
    """The camera, publishing a looped folder, exits 0 and quietly within the stop timeout."""
    runner = GraphRunner(tmp_path, str(repo_dir / 'config' / 'facetrack.yaml'))
    probe = create_node('runner_probe', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(probe)
    camera = runner.start('camera', source=str(shared_dir / 'data' / 'faces'), loop=True)
    try:
        deadline = time.monotonic() + 30
        while probe.count_publishers('image_raw') == 0 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            assert not runner.failed(), runner.tail()
        assert probe.count_publishers('image_raw') == 1, runner.tail()
        camera.process.send_signal(signum)
        code = camera.process.wait(timeout=10)
    finally:
        runner.stop()
        executor.shutdown()
        probe.destroy_node()
    log = camera.log_path.read_text()
    assert code == 0, log
    assert 'Traceback' not in log and 'never retrieved' not in log, log
    assert runner.tail().endswith('--- camera exited with 0'), 'the report names it, stopped'


HANGING_NODE = '''
import sys, time
from rclpy.node import Node
from facetrack_ros import runner

class HangingNode(Node):
    def destroy_node(self):
        time.sleep(60)   # closing that never ends, as a stuck DDS teardown would

def up():
    node = HangingNode('hanging_node')
    print('node up', flush=True)
    return node

runner.CLOSE_LIMIT_S = 1.0
runner.run_node(up)
'''


def test_a_node_stuck_closing_exits_with_its_stack(tmp_path):
    """A node whose closing hangs ends with exit code 1 and says where it hung, unkilled."""
    process = subprocess.Popen([sys.executable, '-c', HANGING_NODE], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert process.stdout.readline() == 'node up\n', process.stderr.read()
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=20)
    finally:
        process.kill()
    stderr = process.stderr.read()
    assert code == 1, stderr
    assert 'Timeout' in stderr and 'in destroy_node' in stderr, stderr


SLOW_CLOSING_NODE = '''
import time
from rclpy.node import Node
from facetrack_ros import runner

class SlowClosingNode(Node):
    def destroy_node(self):
        print('closing', flush=True)
        time.sleep(3)   # a state file saved on a busy disk
        print('closed', flush=True)
        super().destroy_node()

def up():
    node = SlowClosingNode('slow_closing_node')
    print('node up', flush=True)
    return node

runner.run_node(up)
'''


def test_signals_while_closing_do_not_interrupt_it(tmp_path):
    """Ctrl-C in a terminal reaches a node from the terminal and from ros2 launch.

    The repeated SIGINT, and ros2 launch's SIGTERM while the node closes, are ignored: the
    node closes to the end and exits 0.
    """
    process = subprocess.Popen([sys.executable, '-c', SLOW_CLOSING_NODE],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=tmp_path)
    try:
        assert process.stdout.readline() == 'node up\n', process.stderr.read()
        process.send_signal(signal.SIGINT)
        assert process.stdout.readline() == 'closing\n', process.stderr.read()
        process.send_signal(signal.SIGINT)
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)
    finally:
        process.kill()
    out, stderr = process.stdout.read(), process.stderr.read()
    assert code == 0 and out == 'closed\n', (code, out, stderr)
    assert 'Traceback' not in stderr, stderr


@pytest.mark.parametrize('name, folder, lock_file', [
    ('tracker', 'event_log_dir', 'tracker.lock'),
    ('frame_history', 'history_dir', 'history.lock')])
def test_a_second_node_on_the_same_files_exits_saying_who_holds_them(
        name, folder, lock_file, repo_dir, tmp_path):
    """Two graphs of one robot (two cameras) launched with the same folders.

    A second tracker on one state file would hand out the same person ids, a second history
    would delete the first one's segments: the second node exits 1 naming the first one's
    process, which goes on.
    """
    params = str(repo_dir / 'config' / 'facetrack.yaml')
    files = tmp_path / 'files'
    front = GraphRunner(tmp_path / 'front', params, namespace='front')
    rear = GraphRunner(tmp_path / 'rear', params, namespace='rear')
    try:
        first = front.start(name, **{folder: str(files)})
        holder = f'(pid {first.process.pid} '
        deadline = time.monotonic() + 60
        while not (files / lock_file).exists() or holder not in (files / lock_file).read_text():
            assert time.monotonic() < deadline and not front.failed(), front.tail()
            time.sleep(0.2)
        second = rear.start(name, **{folder: str(files)})
        code = second.process.wait(timeout=60)
        log = second.log_path.read_text()
        assert code == 1, log
        assert f'{lock_file} is held by' in log and holder in log, log
        assert first.process.poll() is None, front.tail()
    finally:
        codes = {**rear.stop(), **front.stop()}
    assert codes[name] == 0, front.tail()


def test_a_folder_that_cannot_be_made_ends_the_node_with_the_reason(repo_dir, tmp_path):
    """event_log_dir under a file: exit 1 with the path and the error, not a traceback.

    The runner's failure report says so too.
    """
    (tmp_path / 'a_file').write_text('')
    with GraphRunner(tmp_path / 'logs', str(repo_dir / 'config' / 'facetrack.yaml')) as runner:
        tracker = runner.start('tracker', event_log_dir=str(tmp_path / 'a_file' / 'events'))
        code = tracker.process.wait(timeout=60)
        assert runner.tail().endswith('--- tracker exited with 1')   # what failure reports say
    log = tracker.log_path.read_text()
    assert code == 1, log
    assert 'cannot start: [Errno 20] Not a directory' in log and 'a_file' in log, log
    assert 'Traceback' not in log, log


def test_an_empty_list_parameter_ends_the_node_saying_how_to_give_none(repo_dir, tmp_path):
    """wait_for_nodes: [] (the obvious way to wait for nobody) has no type in ROS 2.

    The camera exits 2 saying to give [''] instead, with no traceback.
    """
    with GraphRunner(tmp_path / 'logs', str(repo_dir / 'config' / 'facetrack.yaml')) as runner:
        camera = runner.start('camera', source=str(tmp_path), wait_for_nodes=[])
        code = camera.process.wait(timeout=60)
    log = camera.log_path.read_text()
    assert code == 2, log
    assert "cannot type an empty list; give [''] for none" in log and 'Traceback' not in log
