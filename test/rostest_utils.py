"""Helpers for tests that run real rclpy nodes in-process over DDS."""

import time
from typing import Callable

import rclpy
from rclpy.executors import Executor


def spin_until(executor: Executor, condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Spin executor until condition() holds or timeout [s] passes; return condition()."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    return condition()


def make_context() -> rclpy.context.Context:
    """Return a fresh, initialised rclpy context (one per test keeps tests independent)."""
    context = rclpy.context.Context()
    rclpy.init(context=context)
    return context
