"""fleet.launch.py: two robots in one `ros2 launch` on one machine, one DDS domain.

Robot r1 plays the Hamilton clip and r2 the labelled photos, both looped; each must run its
own graph in its own namespace, with its own ids and log folder, and no topic or service of
one may reach the other, except through their fleet nodes, which answer each other's searches.
"""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import time

from launch import LaunchDescription
import launch_pytest
from launch_pytest.actions import ReadyToTest
import pytest

from facetrack_ros.camera_node import END_OF_SOURCE
from ros2_cli import (check_clean_exit, interrupt, launch, node_interfaces, output_of, params,
                      ros2, service_response, started_nodes, topic_endpoints, wait_for,
                      wait_for_nodes)

ROBOTS = ('r1', 'r2')
PIPELINE = ('camera', 'detector', 'face_embedding', 'tracker', 'frame_history', 'fleet')
#: A topic or service each node has, to tell that `ros2 node info` has discovered it.
OWN = {'camera': 'image_raw', 'detector': 'detections', 'face_embedding': 'faces',
       'tracker': 'person_events', 'frame_history': 'backtrack_search',
       'fleet': 'fleet_search'}
#: Absolute names every ROS node shares, and the prefix of the fleet's own.
SHARED = {'/diagnostics', '/rosout', '/parameter_events'}
FLEET = '/fleet/'
#: Two detectors load on two cores: longer than one.
UP_S = 240.0
STOP_S = 30.0
#: How long the looped sources must keep playing; the clip lasts 9.2 s [s].
LOOP_CHECK_S = 12.0


@pytest.fixture(scope='module')
def arguments(tmp_path_factory, float_model, shared_dir) -> dict[str, str]:
    """Return the fleet's arguments: a source per robot, looped."""
    return {'robots': ','.join(ROBOTS),
            'source': f'{shared_dir / "data" / "video" / "hamilton_clip.mp4"},'
                      f'{shared_dir / "data" / "faces"}',
            'loop': 'true', 'model': str(float_model),
            'log_dir': str(tmp_path_factory.mktemp('fleet') / 'log')}


@pytest.fixture(scope='module')
def fleet(arguments):
    """Return the `ros2 launch facetrack_ros fleet.launch.py ...` process action."""
    return launch('fleet.launch.py', arguments)


@launch_pytest.fixture(scope='module')
def launch_description(fleet):
    """Start the fleet."""
    return LaunchDescription([fleet, ReadyToTest()])


def _each(function, items):
    """Return [function(item)] computed in parallel (daemonless calls wait for discovery)."""
    with ThreadPoolExecutor() as pool:
        return list(pool.map(function, items))


@pytest.mark.launch(fixture=launch_description)
def test_each_robot_runs_its_own_graph(fleet, arguments):
    """Per robot: its nodes in its namespace, its id, its source and its log folder."""
    wait_for_nodes({f'/{robot}/{name}' for robot in ROBOTS for name in PIPELINE}, UP_S)
    launched = sorted(name.rsplit('-', 1)[0] for name in started_nodes(output_of(fleet)))
    assert launched == sorted(PIPELINE * len(ROBOTS)), 'no annotator unless annotate:=true'
    log_dir = Path(arguments['log_dir'])
    sources = arguments['source'].split(',')
    for robot, source in zip(ROBOTS, sources):
        camera, tracker, history = _each(params, [f'/{robot}/{name}' for name in (
            'camera', 'tracker', 'frame_history')])
        assert (camera['source'], camera['loop']) == (source, True)
        assert tracker['robot_id'] == history['robot_id'] == robot
        assert tracker['event_log_dir'] == history['event_log_dir'] == str(
            log_dir / robot / 'events')
        assert history['history_dir'] == str(log_dir / robot / 'history')
    wait_for(lambda: all((log_dir / robot / 'history' / 'index.sqlite3').is_file()
                         for robot in ROBOTS), 60, 'a history per robot')


@pytest.mark.launch(fixture=launch_description)
def test_robots_do_not_cross_talk(fleet):
    """Every topic and service of a robot's node is in its namespace, /fleet/ or a ROS one."""
    def interfaces(node: str) -> set[str]:
        """Return what `ros2 node info` lists once it shows the node's own main topic."""
        namespace, name = node.rsplit('/', 1)

        def listed() -> set[str]:
            names = set().union(*node_interfaces(node).values())
            return names if f'{namespace}/{OWN[name]}' in names else set()
        return wait_for(listed, 60, f'{node} in ros2 node info')

    nodes = [f'/{robot}/{name}' for robot in ROBOTS for name in PIPELINE]
    for node, names in zip(nodes, _each(interfaces, nodes)):
        namespace = node.rsplit('/', 1)[0]
        foreign = {name for name in names if not name.startswith((f'{namespace}/', FLEET))}
        foreign -= SHARED
        assert not foreign, f'{node} reaches outside {namespace}: {sorted(foreign)}'

    def image_topic(robot: str) -> dict[str, set[str]]:
        # The detector reads the reduced stream, face_embedding and frame_history the full one.
        listed = [topic_endpoints(f'/{robot}/{topic}')
                  for topic in ('image_detect/compressed', 'image_raw/compressed')]
        if not all(listed):
            return {}
        found = {kind: set().union(*(ends[kind] for ends in listed))
                 for kind in ('publishers', 'subscribers')}
        readers = {f'/{robot}/{name}' for name in ('detector', 'face_embedding', 'frame_history')}
        seen = readers <= found['subscribers'] and found['publishers']
        return found if seen else {}
    for robot in ROBOTS:
        ends = wait_for(lambda: image_topic(robot), 60, f'/{robot} image endpoints')
        assert ends['publishers'] == {f'/{robot}/camera'}, ends
        assert all(node.startswith(f'/{robot}/') for node in ends['subscribers']), ends


@pytest.mark.launch(fixture=launch_description)
def test_robots_answer_each_others_fleet_search(fleet):
    """`ros2 service call /r1/fleet_search`: both robots answer, each with a result code."""
    wait_for_nodes({f'/{robot}/fleet' for robot in ROBOTS}, UP_S)
    # A face no robot has seen (a unit vector): every robot searches and finds no one.
    embedding = ', '.join(['0.0883883'] * 128)
    request = (f'{{query_type: 1, embedding: [{embedding}], window_width: 0.0, '
               f'timeout: 20.0}}')

    def both_answer() -> str:
        answer = service_response(ros2('service', 'call', '/r1/fleet_search',
                                       'facetrack_ros/srv/FleetSearch', request, timeout=90))
        return answer if "answered=['r1', 'r2']" in answer.replace(
            "['r2', 'r1']", "['r1', 'r2']") else ''
    answer = wait_for(both_answer, 180, 'an answer from both robots')
    print(answer[:600])
    assert 'not_answered=[]' in answer, answer
    assert 'appearances=[]' in answer, answer


@pytest.mark.launch(fixture=launch_description)
def test_looped_recordings_keep_playing(fleet):
    """loop:=true: well past the 9.2 s clip (and the 0.9 s of photos), no camera runs out."""
    def both_publishing() -> bool:
        output = output_of(fleet)
        return all(f'[{robot}.camera]: publishing ' in output for robot in ROBOTS)
    wait_for(both_publishing, UP_S, 'both cameras publishing')
    time.sleep(LOOP_CHECK_S)
    output = output_of(fleet)
    assert END_OF_SOURCE not in output
    assert all(f'[{robot}.camera]: pipeline ready after' in output for robot in ROBOTS)


@pytest.mark.launch(fixture=launch_description)
def test_ctrl_c_stops_every_robot(fleet):
    """SIGINT to `ros2 launch`: both robots' nodes finish cleanly, it exits 0."""
    nodes = started_nodes(output_of(fleet))
    code, seconds = interrupt(fleet, STOP_S)
    print(f'ros2 launch stopped {len(nodes)} nodes in {seconds:.2f} s')
    assert code == 0, output_of(fleet)[-3000:]
    check_clean_exit(fleet, nodes)
