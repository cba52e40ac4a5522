"""Launch-level tests: the real `ros2 launch` and ros2 CLI over the installed package.

They need the ROS 2 launch and command-line tools (scripts/setup.sh installs them from
../shared/ros2-tools). Without them the launch test files are not collected and
test_launch_tools.py fails with the reason: the tests are never skipped.
"""

import importlib.util
import os
from pathlib import Path
import shutil
import signal
import sys

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

# A suite started in the background by a shell without job control (`nohup make test &`)
# inherits SIGINT ignored, and so would every `ros2 launch` it starts: deaf to the tests'
# Ctrl-C. A handled signal is reset to its default in the processes this one starts.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

#: What the launch tests use: modules (launch_ros imports composition_interfaces) and `ros2`.
TOOL_MODULES = ('launch', 'launch_ros', 'launch_pytest', 'ros2cli', 'ros2launch',
                'ros2lifecycle', 'ros2param', 'composition_interfaces')


def missing_tools() -> list[str]:
    """Return the launch test tools that cannot be found."""
    missing = [name for name in TOOL_MODULES if importlib.util.find_spec(name) is None]
    return missing + ([] if shutil.which('ros2') else ['the ros2 command'])


if missing_tools():
    collect_ignore_glob = ['test_*_launch.py']
else:
    from launch_pytest.fixture import (get_event_loop_fixture, get_launch_context_fixture,
                                       get_launch_service_fixture)
    # One launch per test module. launch_pytest.fixture(scope='module') would add these to
    # the module itself, but finds it with inspect.getmodule(), which returns another module
    # object when the file was imported twice (launch_testing's collection hook imports
    # every test file once more).
    event_loop = get_event_loop_fixture(scope='module')
    launch_service = get_launch_service_fixture(scope='module')
    launch_context = get_launch_context_fixture(scope='module')


@pytest.fixture(scope='session')
def launch_tools_missing() -> list[str]:
    """Return the launch test tools that cannot be found (empty when all are there)."""
    return missing_tools()


@pytest.fixture(scope='session', autouse=True)
def ros_log_dir(tmp_path_factory) -> Path:
    """Keep the logs of `ros2 launch`, its nodes and the launch service out of ~/.ros."""
    path = tmp_path_factory.mktemp('ros_log')
    os.environ['ROS_LOG_DIR'] = str(path)
    return path


@pytest.fixture(scope='session')
def float_model(shared_dir, tmp_path_factory) -> Path:
    """Return the shared YOLOv8n int8 ONNX rebuilt as a float .pt (fast on a CPU)."""
    from facetrack_ros.core.dequantize import cached_float_model
    return cached_float_model(shared_dir / 'models' / 'yolov8n_int8.onnx',
                              tmp_path_factory.mktemp('models'))
