"""The transitions the pipeline's lifecycle nodes share after configure and activate."""

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn


class InputLifecycleNode(LifecycleNode):
    """A lifecycle node that takes inputs while active and holds what configure loaded.

    Subclasses define _stop_inputs() (destroy what activate created, and what it cached) and
    _release() (free what configure loaded; it never raises, and may find nothing loaded).
    """

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop taking inputs; what configure loaded stays."""
        self._stop_inputs()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free what configure loaded."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free everything on the way out."""
        self._stop_inputs()
        self._release()
        return TransitionCallbackReturn.SUCCESS
