"""Process entry point shared by every node executable."""

import faulthandler
import os
import signal
import sys
import time
from types import FrameType
from typing import Callable, NoReturn

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from facetrack_ros.core.owner_lock import InUseError
from facetrack_ros.parameters import InvalidParameterError

STOP_POLL_S = 0.2  # how often the spin loop looks for a stop signal [s]
#: A SIGINT this soon after the first is the same Ctrl-C, forwarded by ros2 launch [s].
DUPLICATE_SIGINT_S = 2.0
#: The longest a node may take to close after its spin loop ended [s]: the executor's 5 s for
#: running callbacks, then destroy_node and rclpy's shutdown. ros2 launch escalates to SIGTERM
#: and SIGKILL meanwhile, but a process stuck inside C code never runs a Python handler.
CLOSE_LIMIT_S = 12.0


def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> NoReturn:
    """Create a node, spin it until SIGINT, SIGTERM or shutdown; end the process (exit_now).

    A lifecycle node whose `autostart` parameter is true is configured and activated here, so
    `ros2 run` works without a lifecycle manager; a launch file can set autostart false and
    drive the transitions itself. Every node spins on rclpy's SingleThreadedExecutor: the few
    callbacks that may take long run in the node's worker threads (executor.WorkerThreads).
    rclpy's MultiThreadedExecutor cost CPU and the GIL: the detector node took 4 frames a
    second under it and 17.6 under the single-threaded one (float YOLOv8n, a 30 fps camera, 2
    cores), the history node 29-40 % of a core at 30 frames a second.
    """
    # rclpy's own handlers trigger the executor's guard conditions from a C++ thread while this
    # thread tears the executor down: a segfault at exit, 4 times in 120 SIGINTs here. A
    # Python handler that only raises a flag has nothing to race.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = _StopSignal()
    node = None
    executor = None
    code = 0
    try:
        node = factory()
        if isinstance(node, LifecycleNode) and node.get_parameter('autostart').value:
            code = autostart(node)
        if code == 0:
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            while not stop.requested and rclpy.ok():
                executor.spin_once(timeout_sec=STOP_POLL_S)
    except (InvalidParameterError, ParameterException) as error:
        rclpy.logging.get_logger('facetrack_ros').fatal(f'invalid parameter: {error}')
        code = 2
    except InUseError as error:
        rclpy.logging.get_logger('facetrack_ros').fatal(
            f'{error}: another node of this kind uses the same files; give each its own '
            'robot_id and folders (log_dir)')
        code = 1
    except OSError as error:   # a folder or file a parameter names
        rclpy.logging.get_logger('facetrack_ros').fatal(f'cannot start: {error}')
        code = 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # No signal interrupts the closing (a state file half saved): ros2 launch's SIGKILL
        # and a C watchdog thread bound it. If closing hangs, the watchdog prints every
        # thread's Python stack (where it hung) to stderr and ends the process with code 1.
        stop.closing = True
        faulthandler.dump_traceback_later(CLOSE_LIMIT_S, exit=True)
        if executor is not None:
            # Let running callbacks finish before the node closes what they use.
            executor.shutdown(timeout_sec=5.0)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    exit_now(code)


def exit_now(code: int) -> NoReturn:
    """End the process with code, skipping the interpreter's teardown.

    The node has closed what it holds (destroy_node) and rclpy has flushed its logs. Python's
    teardown of torch and ultralytics took 1-3 s here, and 5-15 s for several nodes stopping
    at once on two busy cores: past ros2 launch's grace before SIGTERM. atexit handlers do not
    run, so nodes close their files in destroy_node.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class _StopSignal:
    """Records SIGINT (Ctrl-C, ros2 launch) and SIGTERM; a later one interrupts at once.

    The first signal lets the spin loop end and the node close cleanly. A later one, as when
    ros2 launch escalates to SIGTERM while a model is still loading, raises KeyboardInterrupt,
    except a SIGINT within DUPLICATE_SIGINT_S of the first: Ctrl-C in a terminal reaches a
    node twice, from the terminal and from ros2 launch. Once closing, signals are ignored.
    """

    def __init__(self) -> None:
        self.requested = False
        self.closing = False
        self._first_s = 0.0
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        now_s = time.monotonic()
        if not self.requested:
            self.requested, self._first_s = True, now_s
        elif not self.closing and (signum != signal.SIGINT
                                   or now_s - self._first_s > DUPLICATE_SIGINT_S):
            raise KeyboardInterrupt


def autostart(node: LifecycleNode) -> int:
    """Configure and activate a lifecycle node; return 0, or 1 when a transition failed."""
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        node.get_logger().fatal('configure failed; see the errors above')
        return 1
    if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
        node.get_logger().fatal('activate failed; see the errors above')
        return 1
    return 0
