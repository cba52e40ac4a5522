"""launch/facetrack.launch.py with keystore:= runs every node in its SROS2 enclave.

Checked two ways: the launch description is evaluated with the real `launch` API (the command
line and environment each node would get, with and without a keystore), and the real
`ros2 launch` starts the nodes on a generated keystore, where rcl reports the enclave folder
each node found before Fast DDS is asked to secure it.
"""

import importlib.util
import os
from pathlib import Path
import signal
import subprocess

from launch import LaunchContext
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LocalSubstitution
from launch.utilities import perform_substitutions
import pytest

from facetrack_ros.graph import GRAPH
from facetrack_ros.graph import enclave_path
from facetrack_ros.keystore import create_keystore

LAUNCHED = [node for node, interfaces in GRAPH.items() if not interfaces.provisional]


def _launch_file() -> Path:
    for prefix in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        path = Path(prefix) / 'share' / 'facetrack_ros' / 'launch' / 'facetrack.launch.py'
        if path.is_file():
            return path
    pytest.fail('facetrack.launch.py is not installed: source install/setup.bash')


def _launched(ros_namespace: str | None = None,
              **arguments: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Return {node: (command line, environment added)} of the nodes launching would start.

    The command line lacks the node name and namespace arguments that launch_ros adds as it
    starts the process.
    """
    spec = importlib.util.spec_from_file_location('facetrack_launch', _launch_file())
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    context = LaunchContext()
    context.launch_configurations.update(arguments)
    if ros_namespace is not None:
        context.launch_configurations['ros_namespace'] = ros_namespace   # PushRosNamespace
    nodes = {}
    for entity in module.generate_launch_description().entities:
        if isinstance(entity, DeclareLaunchArgument):
            entity.execute(context)
        elif isinstance(entity, OpaqueFunction):
            for node in entity.execute(context):
                if node.condition is None or node.condition.evaluate(context):
                    command = [perform_substitutions(context, part) for part in node.cmd
                               if not any(isinstance(s, LocalSubstitution) for s in part)]
                    environment = {perform_substitutions(context, key):
                                   perform_substitutions(context, value)
                                   for key, value in node.additional_env or ()}
                    nodes[Path(command[0]).name] = (command, environment)
    return nodes


def _enclave_argument(command: list[str]) -> str | None:
    assert command.count('--enclave') <= 1
    return command[command.index('--enclave') + 1] if '--enclave' in command else None


def test_without_keystore_nodes_get_no_security():
    """Without a keystore (the default) the launch adds no enclave and no security variable."""
    nodes = _launched(annotate='true')
    assert sorted(nodes) == sorted(LAUNCHED)
    for name, (command, environment) in nodes.items():
        assert _enclave_argument(command) is None, name
        assert not environment, name


@pytest.mark.parametrize('namespace', ['', 'r1'])
def test_keystore_gives_each_node_its_enclave(namespace, tmp_path, monkeypatch):
    """With a keystore, each node gets its --enclave and the environment enforcing security."""
    monkeypatch.chdir(tmp_path)
    nodes = _launched(annotate='true', keystore='ks', namespace=namespace)
    assert sorted(nodes) == sorted(LAUNCHED)
    for name, (command, environment) in nodes.items():
        assert _enclave_argument(command) == enclave_path(name, namespace)
        assert environment == {'ROS_SECURITY_KEYSTORE': str(tmp_path / 'ks'),
                               'ROS_SECURITY_ENABLE': 'true',
                               'ROS_SECURITY_STRATEGY': 'Enforce'}


def test_enclave_follows_a_pushed_namespace():
    """Included under PushRosNamespace('site'), r1's nodes are in /site/r1: so is the enclave."""
    command, _ = _launched(ros_namespace='site', keystore='/ks', namespace='r1')['tracker']
    assert _enclave_argument(command) == '/facetrack_ros/site/r1/tracker'
    command, _ = _launched(ros_namespace='site', keystore='/ks', namespace='/r1')['tracker']
    assert _enclave_argument(command) == '/facetrack_ros/r1/tracker'


@pytest.mark.ros
def test_ros2_launch_finds_each_enclave(tmp_path):
    """The real `ros2 launch` with keystore:=: rcl finds every node's enclave folder."""
    keystore = tmp_path / 'ks'
    create_keystore(keystore, ['r1'], domain_id=int(os.environ.get('ROS_DOMAIN_ID', 0)))
    process = subprocess.Popen(
        ['ros2', 'launch', 'facetrack_ros', 'facetrack.launch.py', f'keystore:={keystore}',
         'namespace:=r1', 'annotate:=true', f'source:={tmp_path / "none.mp4"}',
         f'log_dir:={tmp_path / "logs"}', f'model:={tmp_path / "none.pt"}'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        # A Fast DDS with DDS Security would run the secured graph: stop it.
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    for node in LAUNCHED:
        folder = keystore / 'enclaves' / 'facetrack_ros' / 'r1' / node
        assert f'Found security directory: {folder}' in output, f'{node}:\n{output[-3000:]}'
    if "doesn't have the security libraries" not in output:
        pytest.fail('this Fast DDS has DDS Security: update the README (Access control) and '
                    'test the secured graph end to end')
