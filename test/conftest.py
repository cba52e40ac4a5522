"""Shared pytest fixtures: where the read-only test material lives."""

import os
from pathlib import Path
import sys

import pytest

REPO = Path(__file__).resolve().parents[1]
# Test helper modules (rostest_utils) import by name; the checkout root stays off sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Isolate this run's DDS traffic before any rclpy context exists: localhost-only discovery on a
# domain of its own, so parallel runs (and robots on the LAN) never cross-talk with the tests.
os.environ.setdefault('ROS_DOMAIN_ID', str(1 + os.getpid() % 100))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('YOLO_OFFLINE', '1')

# Ends a test stuck in C and has it rerun (see hang_watchdog.py).
pytest_plugins = ['hang_watchdog']


@pytest.fixture(scope='session')
def shared_dir() -> Path:
    """Return the folder of test data and models beside the checkout (FACETRACK_SHARED wins)."""
    path = Path(os.environ.get('FACETRACK_SHARED', REPO.parent / 'shared'))
    if not (path / 'data' / 'faces').is_dir():
        pytest.fail(f'test material not found at {path}; set FACETRACK_SHARED')
    return path


@pytest.fixture(scope='session')
def repo_dir() -> Path:
    """Return the checkout's root folder."""
    return REPO


@pytest.fixture
def ros_context():
    """Yield a fresh rclpy context for one test and shut it down afterwards."""
    from rostest_utils import make_context
    context = make_context()
    yield context
    context.try_shutdown()


@pytest.fixture
def mounts_allowed() -> None:
    """Skip, saying why, where this process cannot mount file systems (history fault tests)."""
    from history_material import mount_problem
    problem = mount_problem()
    if problem:
        pytest.skip(problem)
