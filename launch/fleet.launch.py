"""Start several robots' graphs on one machine, each in a namespace of its own.

  ros2 launch facetrack_ros fleet.launch.py robots:=r1,r2 source:=front.mp4,/dev/video0

For a fleet simulated on one computer, or several cameras of one site. Each robot runs
facetrack.launch.py with its name as namespace and robot_id, its own source, and log_dir/<name>
for its events and history; every other argument of facetrack.launch.py is declared here too,
with the same defaults, and applies to every robot. Robots on one DDS domain share only
absolute topics (/diagnostics, /rosout, and fleet topics under /fleet).
"""

from pathlib import Path
import re

from launch import LaunchContext, LaunchDescription
from launch.actions import (DeclareLaunchArgument, GroupAction, IncludeLaunchDescription,
                            OpaqueFunction)
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.launch_description_sources.python_launch_file_utilities import (
    load_python_launch_file_as_module)
from launch.substitutions import LaunchConfiguration

ROBOT = Path(__file__).with_name('facetrack.launch.py')
#: Arguments of facetrack.launch.py that this file sets per robot.
PER_ROBOT = ('namespace', 'robot_id', 'source', 'log_dir')
ARGUMENTS = {
    'robots': ('robot1,robot2',
               'Comma-separated robot names; each is the namespace and robot_id of one robot '
               '(letters, digits and _, starting with a letter).'),
    'source': ('0', 'Camera source of every robot, or one per robot, comma-separated in the '
                    'order of robots (see facetrack.launch.py).'),
    'log_dir': ('~/.ros/facetrack', 'Each robot writes its events and history under '
                                    'log_dir/<robot>.'),
}
ROBOT_NAME = re.compile(r'[A-Za-z][A-Za-z0-9_]*')


def robot_sources(robots: str, sources: str) -> list[tuple[str, str]]:
    """Return [(robot, source)] for the robots and sources arguments; ValueError if invalid."""
    names = [name.strip() for name in robots.split(',') if name.strip()]
    if not names:
        raise ValueError('robots:= names no robot')
    bad = [name for name in names if not ROBOT_NAME.fullmatch(name)]
    if bad:
        raise ValueError(f'robots:= has invalid names {bad}: use letters, digits and _, '
                         'starting with a letter')
    if len(set(names)) != len(names):
        raise ValueError(f'robots:= names a robot twice: {names}')
    each = [source.strip() for source in sources.split(',')]
    if len(each) == 1:
        each *= len(names)
    if len(each) != len(names):
        raise ValueError(f'source:= has {len(each)} sources for {len(names)} robots; give one '
                         'for all or one per robot')
    return list(zip(names, each))


def _robots(context: LaunchContext) -> list[GroupAction]:
    """Include facetrack.launch.py once per robot, each in a scope of its own."""
    log_dir = Path(LaunchConfiguration('log_dir').perform(context)).expanduser()
    pairs = robot_sources(LaunchConfiguration('robots').perform(context),
                          LaunchConfiguration('source').perform(context))
    return [GroupAction([IncludeLaunchDescription(
                PythonLaunchDescriptionSource(str(ROBOT)),
                launch_arguments={'namespace': name, 'robot_id': name, 'source': source,
                                  'log_dir': str(log_dir / name)}.items())])
            for name, source in pairs]


def generate_launch_description() -> LaunchDescription:
    """Declare this file's arguments and the shared ones of facetrack.launch.py."""
    robot = load_python_launch_file_as_module(str(ROBOT)).generate_launch_description()
    # The shared arguments are facetrack.launch.py's own declarations (same defaults and
    # descriptions); the included files see their values through the launch context.
    shared = [entity for entity in robot.entities if isinstance(entity, DeclareLaunchArgument)
              and entity.name not in PER_ROBOT]
    ours = [DeclareLaunchArgument(name, default_value=default, description=description)
            for name, (default, description) in ARGUMENTS.items()]
    return LaunchDescription([*ours, *shared, OpaqueFunction(function=_robots)])
