"""The launch-level tests run wherever `make test` runs: their tools must be installed."""


def test_ros2_launch_tools_are_installed(launch_tools_missing):
    """launch, launch_ros, launch_pytest and the ros2 CLI are in the environment."""
    assert not launch_tools_missing, (
        f'ROS 2 launch test tools missing: {", ".join(launch_tools_missing)}. '
        'scripts/setup.sh installs them from ../shared/ros2-tools (or FACETRACK_ROS2_TOOLS); '
        'the launch-level tests need them and are never skipped.')
