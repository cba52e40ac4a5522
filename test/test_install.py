"""The colcon install is what users get: executables, generated interfaces, launch and config."""

import os
from pathlib import Path
import re

import facetrack_ros
from facetrack_ros.msg import PersonDetectionArray, PersonEvent
from facetrack_ros.srv import BacktrackSearch, GetFrames


def _install_prefix() -> Path:
    prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep)
                if (Path(p) / 'share' / 'facetrack_ros' / 'package.xml').is_file()]
    assert prefixes, 'facetrack_ros is not on AMENT_PREFIX_PATH: source install/setup.bash'
    return Path(prefixes[0])


def test_package_is_imported_from_the_install():
    """The Python package in use is the installed one, with its generated modules."""
    prefix = _install_prefix()
    assert Path(facetrack_ros.__file__).resolve().is_relative_to(prefix.resolve())
    assert PersonEvent.PERSON_IN == 1 and PersonEvent.PERSON_OUT == 2
    assert PersonDetectionArray().header.frame_id == ''
    assert BacktrackSearch.Request().max_results == 10
    assert GetFrames.Request().tolerance == 0.5


def test_one_executable_per_node_module_and_tool(repo_dir):
    """Every *_node.py and every listed tool has an executable under lib/facetrack_ros."""
    modules = {p.stem[:-len('_node')] for p in (repo_dir / 'facetrack_ros').glob('*_node.py')}
    cmake = (repo_dir / 'CMakeLists.txt').read_text()
    listed = set(re.search(r'set\(NODES ([^)]*)\)', cmake).group(1).split())
    assert listed == modules
    tools = set(re.search(r'set\(TOOLS ([^)]*)\)', cmake).group(1).split())
    entries = {name: f'{name}_node' for name in modules} | {name: name for name in tools}
    lib = _install_prefix() / 'lib' / 'facetrack_ros'
    for name, module in entries.items():
        executable = lib / name
        assert executable.is_file() and os.access(executable, os.X_OK), executable
        assert f'facetrack_ros.{module} import main' in executable.read_text()


def test_launch_and_config_are_installed():
    """ros2 launch finds the launch file and its default parameter file."""
    share = _install_prefix() / 'share' / 'facetrack_ros'
    assert (share / 'launch' / 'facetrack.launch.py').is_file()
    assert (share / 'config' / 'facetrack.yaml').is_file()
