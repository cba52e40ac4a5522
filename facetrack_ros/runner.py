"""Process entry point shared by every node executable."""

from typing import Callable

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node

from facetrack_ros.parameters import InvalidParameterError


def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """Create a node, spin it until Ctrl-C or shutdown, and return a process exit code.

    A lifecycle node whose `autostart` parameter is true is configured and activated here, so
    `ros2 run` works without a lifecycle manager; a launch file can set autostart false and
    drive the transitions itself.
    """
    rclpy.init(args=args)
    node = None
    executor = None
    code = 0
    try:
        node = factory()
        if isinstance(node, LifecycleNode) and node.get_parameter('autostart').value:
            code = autostart(node)
        if code == 0:
            # Two threads: callbacks a node puts in a callback group of their own (searches,
            # image caching) run beside its slow ones (inference, face embedding).
            executor = MultiThreadedExecutor(num_threads=2)
            executor.add_node(node)
            executor.spin()
    except (InvalidParameterError, ParameterException) as error:
        rclpy.logging.get_logger('facetrack_ros').fatal(f'invalid parameter: {error}')
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if executor is not None:
            # Let running callbacks finish before the node closes what they use.
            executor.shutdown(timeout_sec=5.0)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


def autostart(node: LifecycleNode) -> int:
    """Configure and activate a lifecycle node; return 0, or 1 when a transition failed."""
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        node.get_logger().fatal('configure failed; see the errors above')
        return 1
    if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
        node.get_logger().fatal('activate failed; see the errors above')
        return 1
    return 0
