"""WorkerThreads: slow callbacks beside rclpy's SingleThreadedExecutor (real rclpy, real DDS)."""

import threading
import time

import pytest
from rclpy import create_node
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import String

from facetrack_ros.executor import WorkerThreads
from facetrack_ros.srv import ForgetPerson

pytestmark = pytest.mark.ros


class Waiter:
    """A node whose service waits until its subscription has taken `wanted` messages."""

    def __init__(self, context, wanted: int) -> None:
        """Create the node: its service runs in a worker thread, its subscription inline."""
        self.node = create_node('worker_threads_waiter', context=context)
        self.workers = WorkerThreads(self.node, 1, 'waiter')
        self.wanted = wanted
        self.taken: list[str] = []
        self.enough = threading.Event()
        if wanted == 0:
            self.enough.set()
        self.service_thread = ''
        self.node.create_subscription(String, 'chatter', self.on_message, 10)
        self.node.create_service(ForgetPerson, 'wait_for_chatter', self.workers.wrap(self.on_wait),
                                 callback_group=MutuallyExclusiveCallbackGroup())

    def on_message(self, msg: String) -> None:
        """Take a message in the executor's thread."""
        self.taken.append(msg.data)
        if len(self.taken) >= self.wanted:
            self.enough.set()

    def on_wait(self, request: ForgetPerson.Request, response: ForgetPerson.Response
                ) -> ForgetPerson.Response:
        """Answer RESULT_OK once enough messages were taken (RESULT_ERROR after 20 s)."""
        self.service_thread = threading.current_thread().name
        enough = self.enough.wait(timeout=20.0)
        response.result = ForgetPerson.Response.RESULT_OK if enough else \
            ForgetPerson.Response.RESULT_ERROR
        response.message = ','.join(self.taken)
        return response


def test_a_wrapped_service_waits_while_the_executor_thread_runs_other_callbacks(ros_context):
    """The service blocks until messages only the executor's one thread takes have arrived."""
    waiter = Waiter(ros_context, wanted=5)
    probe = create_node('worker_threads_probe', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(waiter.node)
    executor.add_node(probe)
    publisher = probe.create_publisher(String, 'chatter', 10)
    client = probe.create_client(ForgetPerson, 'wait_for_chatter')
    try:
        assert client.wait_for_service(timeout_sec=10.0)
        deadline = time.monotonic() + 10.0
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        future = client.call_async(ForgetPerson.Request())
        for number in range(5):
            executor.spin_once(timeout_sec=0.1)
            publisher.publish(String(data=str(number)))
        executor.spin_until_future_complete(future, timeout_sec=20.0)
        assert future.done()
        response = future.result()
        assert response.result == ForgetPerson.Response.RESULT_OK, \
            'the subscription did not run while the service waited'
        assert response.message == '0,1,2,3,4'
        assert waiter.service_thread.startswith('waiter')
    finally:
        executor.shutdown()
        waiter.workers.shutdown()
        probe.destroy_node()
        waiter.node.destroy_node()


def test_the_answer_goes_out_when_the_call_ends_not_at_the_next_wake(ros_context):
    """The pool thread wakes the executor: nothing else happens, yet the answer is prompt."""
    waiter = Waiter(ros_context, wanted=0)   # answers at once
    probe = create_node('worker_threads_probe', context=ros_context)
    node_executor = SingleThreadedExecutor(context=ros_context)
    node_executor.add_node(waiter.node)
    probe_executor = SingleThreadedExecutor(context=ros_context)
    probe_executor.add_node(probe)
    client = probe.create_client(ForgetPerson, 'wait_for_chatter')
    stop = threading.Event()

    def spin_node() -> None:
        # Without the wake, the waiting task would be resumed only when this wait ends.
        while not stop.is_set():
            node_executor.spin_once(timeout_sec=10.0)
    spinner = threading.Thread(target=spin_node, daemon=True)
    spinner.start()
    try:
        assert client.wait_for_service(timeout_sec=10.0)
        replies = []
        for _ in range(3):
            began = time.monotonic()
            future = client.call_async(ForgetPerson.Request())
            probe_executor.spin_until_future_complete(future, timeout_sec=30.0)
            assert future.done()
            assert future.result().result == ForgetPerson.Response.RESULT_OK
            replies.append(time.monotonic() - began)
        assert max(replies) < 5.0, f'answers waited for the executor timeout: {replies}'
    finally:
        stop.set()
        node_executor.wake()
        spinner.join(timeout=15.0)
        node_executor.shutdown()
        probe_executor.shutdown()
        waiter.workers.shutdown()
        probe.destroy_node()
        waiter.node.destroy_node()
