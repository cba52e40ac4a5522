"""NodeDiagnostics: a node's own findings come and go; a failed callback's ERROR stays."""

from diagnostic_msgs.msg import DiagnosticStatus
import pytest
from rclpy import create_node

from facetrack_ros.diagnostics import NodeDiagnostics

pytestmark = pytest.mark.ros


def test_own_problems_clear_when_gone_and_a_failed_callback_stays_shown(ros_context):
    """show(): problems are an ERROR while they last; a guarded callback's ERROR outlives them."""
    node = create_node('diagnostics_probe', context=ros_context)
    try:
        diagnostics = NodeDiagnostics(node)

        def state() -> tuple[bytes, str]:
            return diagnostics.level, diagnostics.message

        diagnostics.show([], 'tracking')
        assert state() == (DiagnosticStatus.OK, 'tracking')
        diagnostics.show(['disk full', 'twin'], 'tracking')
        assert state() == (DiagnosticStatus.ERROR, 'disk full; twin')
        diagnostics.show([], 'tracking', 'input stalled')
        assert state() == (DiagnosticStatus.WARN, 'input stalled')
        diagnostics.show([], 'tracking')
        assert state() == (DiagnosticStatus.OK, 'tracking')

        def on_message() -> None:
            raise RuntimeError('boom')

        diagnostics.guarded(on_message)()   # counted and logged, not raised
        assert diagnostics.errors == 1
        failed = (DiagnosticStatus.ERROR, 'on_message: boom')
        assert state() == failed
        diagnostics.show(['disk full'], 'tracking')
        assert state() == failed, 'the callback\'s ERROR is not hidden by a finding'
        diagnostics.show([], 'tracking')
        assert state() == failed, 'nor cleared with one'
    finally:
        node.destroy_node()
