"""Helpers for tests that run real rclpy nodes in-process over DDS."""

import time
from typing import Callable

import rclpy
from rclpy.client import Client
from rclpy.executors import Executor

#: Longest a service call waits for its response before the request is sent again [s]. A new
#: client's response is lost when the server answers before it has matched the client's
#: response reader (service_is_ready() only says that a request can reach the server): a
#: whole-suite run saw frame_history's search unanswered for 30 s, as `ros2 service call` and
#: `ros2 param set` were in the launch tests (ros2_cli.ATTEMPT_S).
CALL_ATTEMPT_S = 10.0


def spin_until(executor: Executor, condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Spin executor until condition() holds or timeout [s] passes; return condition()."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    return condition()


def call_service(executor: Executor, client: Client, request, timeout: float = 30.0,
                 repeat: bool = True):
    """Return the response to a request, or None after timeout [s].

    repeat: the request may be sent twice (a search, not a forget): it is sent again every
    CALL_ATTEMPT_S without a response (see there), and the first response to any of the
    requests sent is returned, so a slow answer is not lost either.
    """
    deadline = time.monotonic() + timeout
    futures = []
    while True:
        futures.append(client.call_async(request))
        attempt = CALL_ATTEMPT_S if repeat else timeout
        answered = spin_until(executor, lambda: any(f.done() for f in futures),
                              min(attempt, deadline - time.monotonic()))
        if answered or time.monotonic() >= deadline:
            break
    for future in futures:
        if not future.done():
            client.remove_pending_request(future)
    return next((f.result() for f in futures if f.done()), None)


def make_context() -> rclpy.context.Context:
    """Return a fresh, initialised rclpy context (one per test keeps tests independent)."""
    context = rclpy.context.Context()
    rclpy.init(context=context)
    return context
