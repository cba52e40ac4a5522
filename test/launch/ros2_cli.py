"""Drive `ros2 launch` and the ros2 command line from tests, as a user does in a terminal.

Every command is the real `ros2` executable in a subprocess with a bounded run time. Graph
verbs run with --no-daemon (no daemon outlives a test); a daemonless call sees only what it
discovers within its --spin-time, so calls that find nothing yet are retried until a deadline.
"""

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
import os
from pathlib import Path
import re
import shutil
import signal
import subprocess
import time
from typing import TypeVar

from launch.actions import ExecuteProcess
import yaml

ROS2 = shutil.which('ros2') or 'ros2'
#: Seconds a daemonless graph verb listens for the graph before it answers: a listing must
#: have discovered everything (here 3-5 s on a busy machine), a call only its target node.
LISTING_SPIN_TIME_S = 3.0
CALL_SPIN_TIME_S = 2.0
#: Verbs that query the ROS graph and accept --no-daemon and --spin-time.
GRAPH_VERBS = {'node', 'topic', 'service', 'param', 'lifecycle'}
#: Verbs that take neither (they create their own node and wait for their peer).
NO_DAEMON_FLAGS = {('service', 'call')}
#: Longest one command may wait for its answer before it is asked again [s]: a new client's
#: response is lost when the server answers before matching the client's reader, and
#: `ros2 service call`, `param set` and `lifecycle set` then wait for ever (whole-suite runs:
#: /r1/fleet_search answered in 0.05 s, the call still waiting 90 s on; a `param set` of a
#: read-only parameter silent for 60 s while two others beside it answered in 5 s).
ATTEMPT_S = 30.0
#: Answers meaning that the call has not discovered its target yet: worth asking again.
NOT_DISCOVERED = ('Node not found', 'Unable to find node', 'Unknown topic',
                  'Could not determine the type')
#: What rmw prints for an endpoint whose node is not discovered yet.
UNKNOWN_NODE = '_NODE_NAME_UNKNOWN_'
#: Longest the launcher's last lines may reach its cached output after its exit is seen [s].
OUTPUT_DRAIN_S = 5.0
#: Environment of every command: plain log lines, unbuffered output, a Python stack on a crash.
ENV = {'RCUTILS_COLORIZED_OUTPUT': '0', 'PYTHONUNBUFFERED': '1', 'PYTHONFAULTHANDLER': '1'}

T = TypeVar('T')


def ros2(*args: str, timeout: float = 60.0, stderr: bool = True) -> str:
    """Run `ros2 <args>` and return stdout and stderr together (stdout alone if not stderr).

    A caller that parses the answer takes stdout alone: Fast DDS logs to stderr, e.g. when
    two ros2 commands contend for a shared-memory port (a whole-suite run: "Failed
    init_port fastdds_port7012: open_and_lock_file failed" in a `ros2 param dump`).

    Retried while the answer says the target is not discovered yet, or the command died of a
    signal or failed silently (a CI run saw `ros2 lifecycle get` end in 1.2 s with no output
    at all), or gave no answer in ATTEMPT_S, until timeout [s]; an AssertionError with the
    last output when it never answers.
    """
    command = [ROS2, *args]
    if args[0] in GRAPH_VERBS and tuple(args[:2]) not in NO_DAEMON_FLAGS:
        listing = args[1] in ('list', 'info')
        spin_time = LISTING_SPIN_TIME_S if listing else CALL_SPIN_TIME_S
        command += ['--no-daemon', '--spin-time', str(spin_time)]
    start = time.monotonic()
    deadline = start + timeout
    while True:
        left = deadline - time.monotonic()
        bound = min(left, ATTEMPT_S)
        try:
            done = subprocess.run(command, capture_output=True, text=True,
                                  env={**os.environ, **ENV}, timeout=max(bound, 1.0))
        except subprocess.TimeoutExpired as error:
            if bound >= left:
                raise AssertionError(f'{" ".join(command)} ran past {timeout:.0f} s: '
                                     f'{error.output}') from None
            print(f'  no response in {bound:.0f} s, asking again: {error.output}')
            continue
        output = done.stdout + done.stderr
        print(f'$ ros2 {" ".join(args)}  [{time.monotonic() - start:.1f} s]')
        # Killed by a signal, or failed without a word: no answer, ask again.
        if done.returncode < 0 or (done.returncode and not output.strip()):
            print(f'  exit code {done.returncode}, no answer: {output}')
        elif not any(text in output for text in NOT_DISCOVERED):
            return output if stderr else done.stdout
        if time.monotonic() > deadline:
            raise AssertionError(f'{" ".join(command)}: {output}')
        time.sleep(0.5)


def wait_for(condition: Callable[[], T], timeout: float, what: str,
             period: float = 0.5) -> T:
    """Return condition()'s first truthy value within timeout [s]; AssertionError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'{what}: not within {timeout:.0f} s')
        time.sleep(period)


def node_names() -> set[str]:
    """Return the nodes `ros2 node list` shows."""
    return set(ros2('node', 'list', stderr=False).split())


def wait_for_nodes(expected: set[str], timeout: float) -> set[str]:
    """Return the first `ros2 node list` that shows every node of expected.

    A daemonless listing shows what it discovered within its spin time: on a busy machine,
    not always everything.
    """
    def listing() -> set[str]:
        found = node_names()
        return found if expected <= found else set()
    return wait_for(listing, timeout, f'nodes {sorted(expected)}')


def params(node: str) -> dict:
    """Return the parameters of node as `ros2 param dump` prints them."""
    dumped = yaml.safe_load(ros2('param', 'dump', node, stderr=False))
    return dumped[node]['ros__parameters']


def lifecycle_state(node: str) -> str:
    """Return a lifecycle node's state label, e.g. 'active'."""
    return ros2('lifecycle', 'get', node, stderr=False).split()[0]


def topic_endpoints(topic: str) -> dict[str, set[str]] | None:
    """Return {'publishers', 'subscribers'}: the nodes at each end of topic (`topic info -v`).

    None while the listing shows an endpoint whose node it has not discovered yet.
    """
    found = {'publishers': set(), 'subscribers': set()}
    kind = None
    for block in ros2('topic', 'info', '-v', topic, stderr=False).split('\n\n'):
        if 'Endpoint type: PUBLISHER' in block:
            kind = 'publishers'
        elif 'Endpoint type: SUBSCRIPTION' in block:
            kind = 'subscribers'
        else:
            continue
        name = re.search(r'Node name: (\S+)', block).group(1)
        namespace = re.search(r'Node namespace: (\S+)', block).group(1)
        if UNKNOWN_NODE in (name, namespace):
            return None
        found[kind].add(f'{namespace.rstrip("/")}/{name}')
    return found


def node_interfaces(node: str) -> dict[str, set[str]]:
    """Return the sections of `ros2 node info` (Subscribers, Publishers, Service Servers, ...)."""
    sections: dict[str, set[str]] = {}
    current = None
    for line in ros2('node', 'info', node, stderr=False).splitlines():
        if line.strip().endswith(':') and not line.startswith('    '):
            current = line.strip()[:-1]
            sections[current] = set()
        elif current and line.startswith('    ') and ':' in line:
            sections[current].add(line.split(':')[0].strip())
    return sections


def service_response(output: str) -> str:
    """Return the response part of `ros2 service call` output (a Python repr)."""
    assert 'response:' in output, output
    return output.split('response:', 1)[1]


def echoed(text: str) -> list[dict]:
    """Return the messages of `ros2 topic echo` output (YAML documents between ---)."""
    complete = text.rsplit('---\n', 1)[0]   # the last message may still be printing
    return [message for message in yaml.safe_load_all(complete) if isinstance(message, dict)]


def launch(launch_file: str, arguments: Mapping[str, object]) -> ExecuteProcess:
    """Return `ros2 launch facetrack_ros <launch_file> name:=value ...` as a launch action.

    Its output is cached for the tests (and printed, for failure reports).
    """
    return ExecuteProcess(
        cmd=[ROS2, 'launch', 'facetrack_ros', launch_file,
             *(f'{name}:={value}' for name, value in arguments.items())],
        name='ros2_launch', output='screen', cached_output=True,
        additional_env=ENV,
        # ros2 launch itself gives each node 5 s after SIGINT before escalating.
        sigterm_timeout='30', sigkill_timeout='10')


def echo(topic: str, message_type: str, node_name: str, *options: str) -> ExecuteProcess:
    """Return a named `ros2 topic echo` of a reliable topic as a launch action."""
    return ExecuteProcess(
        cmd=[ROS2, 'topic', 'echo', '--no-daemon', '--node-name', node_name, topic,
             message_type, '--qos-reliability', 'reliable', '--qos-depth', '100', *options],
        name=node_name, output='log', cached_output=True, additional_env=ENV)


def output_of(process: ExecuteProcess) -> str:
    """Return everything a launched process has printed so far."""
    return process.get_stdout() + process.get_stderr()


def started_nodes(launch_output: str) -> dict[str, int]:
    """Return {process name: pid} of every process `ros2 launch` reported started."""
    return {name: int(pid) for name, pid in re.findall(
        r'\[INFO\] \[([\w-]+)\]: process started with pid \[(\d+)\]', launch_output)}


def interrupt(process: ExecuteProcess, timeout: float) -> tuple[int, float]:
    """Send SIGINT (Ctrl-C) to a launched process; return its exit code and seconds to exit.

    If it is not gone within timeout [s], the node processes it started that still run are
    named in the AssertionError (with their Python stacks where py-spy is installed) and
    killed, so that they cannot disturb the tests that follow.
    """
    os.kill(process.process_details['pid'], signal.SIGINT)
    start = time.monotonic()
    try:
        wait_for(lambda: process.return_code is not None, timeout,
                 f'{process.name} to exit after SIGINT', period=0.05)
    except AssertionError as error:
        stuck = {name: pid for name, pid in started_nodes(output_of(process)).items()
                 if Path(f'/proc/{pid}').exists()}
        launcher = process.process_details['pid']
        signals = {pid: signal_state(pid) for pid in (launcher, *stuck.values())}
        stacks = [subprocess.run(['py-spy', 'dump', '--pid', str(pid)], capture_output=True,
                                 text=True, timeout=30).stdout
                  for pid in stuck.values() if shutil.which('py-spy')]
        for pid in stuck.values():
            os.kill(pid, signal.SIGKILL)
        raise AssertionError(f'{error}; still running: {stuck}; signal masks: {signals}\n'
                             + '\n'.join(stacks) + output_of(process)[-3000:]) from error
    return process.return_code, time.monotonic() - start


def signal_state(pid: int) -> dict[str, str]:
    """Return the blocked, pending and ignored signal masks of pid's threads (/proc status).

    A process that never reacts to SIGINT has it blocked, pending, or was never sent it.
    """
    state: dict[str, set[str]] = {}
    for status in Path(f'/proc/{pid}/task').glob('*/status'):
        try:
            lines = status.read_text().splitlines()
        except OSError:   # the thread ended meanwhile
            continue
        for line in lines:
            key = line.split(':')[0]
            if key in ('SigBlk', 'SigPnd', 'ShdPnd', 'SigIgn'):
                state.setdefault(key, set()).add(line.split()[1])
    return {key: ','.join(sorted(values)) for key, values in state.items()}


def check_clean_exit(process: ExecuteProcess, nodes: Mapping[str, int]) -> None:
    """Assert that every node process finished cleanly (exit code 0) and is gone.

    asyncio reports a child's exit before it has read all of the child's pipe, so the
    launcher's last lines may reach its cached output up to OUTPUT_DRAIN_S later.
    """
    lines = {name: f'[INFO] [{name}]: process has finished cleanly [pid {pid}]'
             for name, pid in nodes.items()}
    try:
        wait_for(lambda: all(line in output_of(process) for line in lines.values()),
                 OUTPUT_DRAIN_S, 'every node finished cleanly', period=0.1)
    except AssertionError:
        output = output_of(process)
        unclean = [name for name, line in lines.items() if line not in output]
        raise AssertionError(f'{unclean} did not exit cleanly:\n{output[-3000:]}') from None
    for name, pid in nodes.items():
        assert not Path(f'/proc/{pid}').exists(), f'{name} (pid {pid}) is still running'


@contextmanager
def ros2_run(package: str, executable: str, *ros_args: str,
             stop_timeout: float = 15.0) -> Iterator[dict]:
    """Run `ros2 run package executable --ros-args ...` as a terminal does, in a group of its own.

    Yields a dict that gets 'code', the exit code, once the block ends: Ctrl-C (SIGINT to the
    process group, as a terminal sends it), then SIGKILL after stop_timeout [s].
    """
    process = subprocess.Popen([ROS2, 'run', package, executable, '--ros-args', *ros_args],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, **ENV}, start_new_session=True)
    result: dict = {}
    try:
        yield result
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            result['output'] = process.communicate(timeout=stop_timeout)[0]
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            result['output'] = process.communicate()[0]
        result['code'] = process.returncode
