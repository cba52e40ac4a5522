"""Start the node graph as processes, with or without `ros2 launch` (demo, tests, benchmarks).

GraphRunner runs the installed executables with the package's parameter file, for machines
that have rclpy but not the ROS 2 launch tools; LaunchRunner runs launch/facetrack.launch.py
with the real `ros2 launch` where it is installed. Neither imports the launch tools.
"""

from dataclasses import dataclass, field
import importlib.util
import json
import os
from pathlib import Path
import shutil
import signal
import subprocess
import time
from typing import IO, Mapping

from rclpy.executors import Executor
from rclpy.node import Node

from facetrack_ros.camera_node import END_OF_SOURCE


@dataclass
class NodeProcess:
    """One running node executable."""

    name: str
    process: subprocess.Popen
    log_path: Path
    log: IO = field(repr=False)


def exit_on_sigterm() -> None:
    """Make SIGTERM raise SystemExit, so that a script's finally blocks stop what it started.

    By default SIGTERM (kill, timeout, a CI runner giving up) ends Python at once, leaving
    the node processes of a GraphRunner, and any CPU hogs, running.
    """
    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, leave)


def executable(name: str) -> str:
    """Return the path of a facetrack_ros node executable from the sourced install."""
    for prefix in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        path = Path(prefix) / 'lib' / 'facetrack_ros' / name
        if path.is_file():
            return str(path)
    raise FileNotFoundError(f'no facetrack_ros executable {name!r}: source install/setup.bash')


def ros_arguments(params_file: str | None, overrides: Mapping[str, object],
                  namespace: str = '') -> list[str]:
    """Return `--ros-args` for a parameter file, overrides and a namespace."""
    args = ['--ros-args']
    if namespace:
        args += ['-r', f'__ns:=/{namespace.strip("/")}']
    if params_file:
        args += ['--params-file', params_file]
    for key, value in overrides.items():
        # -p values are parsed as YAML: quote text so that source:=0 stays a string.
        text = (json.dumps(list(value) if isinstance(value, tuple) else value)
                if isinstance(value, (str, bool, list, tuple)) else str(value))
        args += ['-p', f'{key}:={text}']
    return args


class GraphRunner:
    """Starts node processes, logs each to a file, and stops them all with SIGINT."""

    def __init__(self, log_dir: str | Path, params_file: str | None = None,
                 namespace: str = '') -> None:
        """Write each node's output to log_dir/<node>.log."""
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.params_file = params_file
        self.namespace = namespace
        self.nodes: list[NodeProcess] = []
        #: Exit codes of the nodes the last stop() ended, for tail().
        self.stopped: dict[str, int] = {}

    def start(self, name: str, **overrides: object) -> NodeProcess:
        """Start the node executable `name` with parameter overrides."""
        log_path = self.log_dir / f'{name}.log'
        log = open(log_path, 'w')
        command = [executable(name),
                   *ros_arguments(self.params_file, overrides, self.namespace)]
        env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'RCUTILS_COLORIZED_OUTPUT': '0'}
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        node = NodeProcess(name, process, log_path, log)
        self.nodes.append(node)
        return node

    def source_ended(self, name: str = 'camera') -> bool:
        """Return whether the camera node `name` reported the end of its file or folder."""
        return END_OF_SOURCE in (self.log_dir / f'{name}.log').read_text(errors='replace')

    def failed(self) -> list[str]:
        """Return the names of nodes that have exited already."""
        return [n.name for n in self.nodes if n.process.poll() is not None]

    def stop(self, timeout: float = 10.0) -> dict[str, int]:
        """Interrupt every node (as Ctrl-C would), wait, kill stragglers; return exit codes."""
        for node in self.nodes:
            if node.process.poll() is None:
                node.process.send_signal(signal.SIGINT)
        codes = {}
        for node in self.nodes:
            try:
                codes[node.name] = node.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                node.process.kill()
                codes[node.name] = node.process.wait()
            node.log.close()
        self.nodes, self.stopped = [], codes
        return codes

    def tail(self, lines: int = 20) -> str:
        """Return the last lines of every node's log and who has exited, for failure reports.

        A node killed by a signal (a crash) leaves no line in its log: its exit code says it,
        the last stop()'s too, unless the node was started again since.
        """
        parts = []
        for path in sorted(self.log_dir.glob('*.log')):
            text = path.read_text(errors='replace').splitlines()[-lines:]
            parts.append(f'--- {path.name}\n' + '\n'.join(text))
        exited = {**{name: code for name, code in self.stopped.items()
                     if name not in {node.name for node in self.nodes}},
                  **{node.name: node.process.returncode for node in self.nodes
                     if node.process.poll() is not None}}
        parts += [f'--- {name} exited with {code}' for name, code in exited.items()]
        return '\n'.join(parts)

    def __enter__(self) -> 'GraphRunner':
        """Use as a context manager that always stops the nodes."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop every node."""
        self.stop()


def ros2_launch_available() -> bool:
    """Return whether `ros2 launch` can run here (the ros2 command with launch and launch_ros)."""
    return shutil.which('ros2') is not None and all(
        importlib.util.find_spec(name) is not None for name in ('ros2launch', 'launch_ros'))


class LaunchRunner:
    """Runs `ros2 launch facetrack_ros <launch file> name:=value ...`, its output in a log file.

    The same queries as GraphRunner (source_ended, failed, tail) and the same stop: SIGINT,
    as Ctrl-C in a terminal, after which ros2 launch stops every node.
    """

    def __init__(self, arguments: Mapping[str, object], log_path: str | Path,
                 launch_file: str = 'facetrack.launch.py') -> None:
        """Start ros2 launch now; its output (and its nodes') goes to the file log_path."""
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.command = ['ros2', 'launch', 'facetrack_ros', launch_file,
                        *(f'{name}:={_launch_text(value)}' for name, value in arguments.items())]
        self._log = open(self.log_path, 'w')
        env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'RCUTILS_COLORIZED_OUTPUT': '0'}
        self.process = subprocess.Popen(self.command, stdout=self._log,
                                        stderr=subprocess.STDOUT, env=env)

    def _text(self) -> str:
        return self.log_path.read_text(errors='replace')

    def source_ended(self) -> bool:
        """Return whether the camera reported the end of its file or folder."""
        return END_OF_SOURCE in self._text()

    def failed(self) -> list[str]:
        """Return 'ros2 launch' if it has exited, and the nodes it reported dead."""
        dead = [line.split('[')[2].split(']')[0] for line in self._text().splitlines()
                if ']: process has died [' in line]
        return (['ros2 launch'] if self.process.poll() is not None else []) + dead

    def stop(self, timeout: float = 30.0) -> dict[str, int]:
        """Interrupt ros2 launch (Ctrl-C), wait for it and its nodes; return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._log.close()
        return {'ros2 launch': code}

    def tail(self, lines: int = 40) -> str:
        """Return the last lines of the launch output, for failure reports."""
        return '\n'.join(self._text().splitlines()[-lines:])

    def __enter__(self) -> 'LaunchRunner':
        """Use as a context manager that always stops the launch."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the launch."""
        self.stop()


def _launch_text(value: object) -> str:
    """Return a launch argument value as ros2 launch reads it (booleans lower-case)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def wait_for_graph(runner: GraphRunner, probe: Node, executor: Executor,
                   publishers: tuple[str, ...], image_readers: int,
                   timeout: float = 90.0) -> None:
    """Spin until the graph is connected and its models are loaded.

    That is: every topic in publishers has a publisher, and image_raw has image_readers
    subscribers (lifecycle nodes subscribe once active, with their models loaded), so that no
    message published afterwards goes unheard. Raises RuntimeError with the nodes' log tails
    when a node died or the graph is not up in time.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.2)
        if runner.failed():
            raise RuntimeError(f'nodes exited: {runner.failed()}\n{runner.tail()}')
        if (all(probe.count_publishers(topic) > 0 for topic in publishers)
                and probe.count_subscribers('image_raw') >= image_readers):
            return
    raise RuntimeError(f'graph not up after {timeout} s\n{runner.tail()}')
