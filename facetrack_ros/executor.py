"""Slow callbacks in worker threads while rclpy's SingleThreadedExecutor runs the rest.

rclpy's MultiThreadedExecutor (rclpy 9.1) hands every callback to a thread pool, and until a
pool thread starts a callback its task is yielded, and submitted, again at every pass of the
wait loop: at 30 frames a second the history node spent 29-40 % of a core in that loop
(py-spy: `Future.done`, the pool's `_worker`, `_wait_for_ready_callbacks`), the fleet node
three times the single-threaded executor's CPU on the same presence messages. Most
callbacks take well under a millisecond; only a few (a search, a face embedding, a fleet
search that waits for answers other callbacks deliver) must not hold the executor's thread.
`WorkerThreads.wrap` runs just those in threads of their own, through rclpy's public API for
coroutine callbacks, so every node keeps rclpy's standard SingleThreadedExecutor.
"""

from concurrent.futures import Future as ThreadFuture, ThreadPoolExecutor
from typing import Any, Awaitable, Callable

from rclpy.exceptions import InvalidHandle
from rclpy.node import Node
from rclpy.task import Future


class WorkerThreads:
    """A pool of threads for a node's slow callbacks.

    A wrapped callback is a coroutine function: the executor starts it as a task, the call
    runs in a pool thread, and the task ends when the call does; meanwhile the executor's
    thread runs the node's other callbacks. The callback group of a wrapped callback stays
    busy until its call ends: give each one a group of its own (a ReentrantCallbackGroup lets
    calls of one callback overlap, up to `threads` at once).
    """

    def __init__(self, node: Node, threads: int, name: str) -> None:
        """Start no thread yet; up to `threads` start as calls come (named name_N)."""
        self._node = node
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix=name)

    def wrap(self, callback: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        """Return a coroutine function that runs callback(*args) in a pool thread."""
        async def in_worker_thread(*args: Any) -> Any:
            return await self._submit(callback, *args)
        return in_worker_thread

    def _submit(self, callback: Callable[..., Any], *args: Any) -> Future:
        executor = self._node.executor
        result: Future = Future(executor=executor)

        def finish(call: ThreadFuture) -> None:
            if call.cancelled():  # shutdown() dropped it unstarted: its executor is gone
                return
            error = call.exception()
            if error is None:
                result.set_result(call.result())
            else:
                result.set_exception(error)
            # The waiting task is resumed when the executor next wakes: wake it now.
            if executor is not None:
                try:
                    executor.wake()
                except InvalidHandle:
                    pass   # the executor shut down meanwhile: nothing waits any more
        self._pool.submit(callback, *args).add_done_callback(finish)
        return result

    def shutdown(self) -> None:
        """Start no more calls; a call still running is left to end on its own."""
        self._pool.shutdown(wait=False, cancel_futures=True)
