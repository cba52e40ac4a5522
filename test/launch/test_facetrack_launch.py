"""facetrack.launch.py under the real `ros2 launch`, inspected and driven with the ros2 CLI.

One launch serves the whole module, in file order: the graph on the shared Hamilton clip (not
looped) with every launch argument set to a value of its own, two `ros2 topic echo`s that the
camera waits for, then what a user does in a terminal (node, topic, service, param and
lifecycle verbs), Ctrl-C, and a look at the history it left.
"""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import re

from ament_index_python.packages import get_package_share_directory
import cv2
from launch import LaunchDescription
from launch.launch_description_sources.python_launch_file_utilities import (
    load_python_launch_file_as_module)
import launch_pytest
from launch_pytest.actions import ReadyToTest
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
import numpy as np
import pytest
import yaml

from facetrack_ros.camera_node import END_OF_SOURCE, PARAMETERS as CAMERA_PARAMETERS
from facetrack_ros.core.event_log import read_events
from facetrack_ros.core.tracker_state import load_state
from ros2_cli import (check_clean_exit, echo, echoed, interrupt, launch, lifecycle_state,
                      output_of, params, ros2, ros2_run, service_response, started_nodes,
                      topic_endpoints, wait_for, wait_for_nodes)

NS = '/lt'
GRAPH = ('camera', 'detector', 'face_embedding', 'tracker', 'frame_history', 'annotator', 'fleet')
EVENT_ECHO = 'lt_event_echo'
DETECTION_ECHO = 'lt_detection_echo'
#: From `ros2 launch` to the end of the clip (9.2 s, played at half speed): model loading
#: takes 8-17 s with both cores free, more when the machine is busy.
CLIP_DONE_S = 240.0
#: Ctrl-C to the exit of `ros2 launch` with every node (each gets 5 s before SIGTERM).
STOP_S = 20.0
IN_KINDS = ('PERSON_IN', 'PERSON_RETURNED')
KIND_NAMES = {1: 'PERSON_IN', 2: 'PERSON_OUT', 3: 'PERSON_RETURNED'}


@pytest.fixture(scope='module')
def work(tmp_path_factory) -> Path:
    """Return this module's folder (parameter file, log_dir)."""
    return tmp_path_factory.mktemp('facetrack_launch')


@pytest.fixture(scope='module')
def arguments(work, float_model, shared_dir) -> dict[str, str]:
    """Return a value of its own for every launch argument."""
    awaited = next(spec.default for spec in CAMERA_PARAMETERS if spec.name == 'wait_for_nodes')
    params_file = work / 'params.yaml'
    params_file.write_text(yaml.safe_dump({
        # The camera also waits for the test's echoes, so they hear everything from frame 0,
        # and plays at half speed: on a busy 2-core machine the detector then still sees a
        # few frames of each shot (this is a test of the launch, not of the frame rate).
        '/**/camera': {'ros__parameters': {
            'wait_for_nodes': [*awaited, f'/{EVENT_ECHO}', f'/{DETECTION_ECHO}'],
            'rate': 0.5}},
        '/**/tracker': {'ros__parameters': {'absence_timeout': 1.0}},
        '/**/frame_history': {'ros__parameters': {'thumbnail_width': 200}},
    }))
    return {'source': str(shared_dir / 'data' / 'video' / 'hamilton_clip.mp4'),
            'model': str(float_model), 'device': 'cpu', 'namespace': NS[1:],
            'robot_id': 'lt_robot', 'camera_id': 'lt_cam', 'log_dir': str(work / 'log'),
            'params_file': str(params_file), 'annotate': 'true', 'loop': 'false'}


@pytest.fixture(scope='module')
def graph(arguments):
    """Return the `ros2 launch facetrack_ros facetrack.launch.py ...` process action."""
    return launch('facetrack.launch.py', arguments)


@pytest.fixture(scope='module')
def echoes():
    """Return `ros2 topic echo`s of the events and of the detections' headers."""
    # Transient local: the camera waits for the echo to subscribe, not for the tracker's
    # publisher to match it, so the first event may be published before the match.
    return {'events': echo(f'{NS}/person_events', 'facetrack_ros/msg/PersonEvent', EVENT_ECHO,
                           '--no-arr', '--qos-durability', 'transient_local'),
            'detections': echo(f'{NS}/detections', 'facetrack_ros/msg/PersonDetectionArray',
                               DETECTION_ECHO, '--field', 'header')}


@launch_pytest.fixture(scope='module')
def launch_description(graph, echoes):
    """Start the echoes, then the graph."""
    return LaunchDescription([*echoes.values(), graph, ReadyToTest()])


def _events(echoes) -> list[dict]:
    return echoed(output_of(echoes['events']))


def _with_face(events: list[dict]) -> dict:
    """Return the first PERSON_IN or RETURNED whose person had a face embedded."""
    faced = [e for e in events if KIND_NAMES[e['kind']] in IN_KINDS
             and not e['embedding'].endswith('length: 0>')]   # --no-arr prints the length
    assert faced, f'no face was embedded during the clip: {events}'
    return faced[0]


def _recording_log(graph) -> str:
    """Return the last lines the tracker and frame_history printed, for a failure message."""
    lines = [line for line in output_of(graph).splitlines()
             if '.tracker]' in line or '.frame_history]' in line]
    return '\n'.join(lines[-40:])


def _secured(pid: int) -> bool:
    """Return whether a process was started in an SROS2 enclave or with security enabled."""
    process = Path('/proc') / str(pid)
    return (b'--enclave' in (process / 'cmdline').read_bytes()
            or b'ROS_SECURITY_ENABLE=true' in (process / 'environ').read_bytes())


def _stamp(header: dict) -> float:
    return header['stamp']['sec'] + 1e-9 * header['stamp']['nanosec']


def _log_stamp(output: str, pattern: str) -> float:
    """Return the rcutils time stamp [s] of the first log line matching pattern."""
    return float(re.search(r'\[(\d+\.\d+)\] \[[\w.]+\]: ' + pattern, output).group(1))


def _jpegs(response: str) -> list[np.ndarray]:
    """Decode the JPEG CompressedImages printed in a `ros2 service call` response."""
    return [cv2.imdecode(np.array([int(v) for v in data.split(',')], np.uint8),
                         cv2.IMREAD_COLOR)
            for data in re.findall(r"format='jpeg', data=\[([\d, ]+)\]", response)]


def _search(person: str) -> str:
    return service_response(ros2(
        'service', 'call', f'{NS}/backtrack_search', 'facetrack_ros/srv/BacktrackSearch',
        f'{{query_type: 0, person_id: {person}, window_width: 0.0, include_thumbnails: true}}'))


@pytest.mark.launch(fixture=launch_description)
def test_the_graph_lives_in_its_namespace(graph):
    """Every node, topic and service of the graph is under the namespace argument."""
    wait_for_nodes({f'{NS}/{name}' for name in GRAPH}, 120)
    topics = {f'{NS}/{name}' for name in ('image_raw', 'detections', 'tracks', 'faces',
                                          'identified_faces', 'person_events', 'annotated',
                                          'search_matches')}

    def all_topics() -> set[str]:
        found = set(ros2('topic', 'list').split())
        return found if topics <= found else set()
    listed = wait_for(all_topics, 60, f'topics {sorted(topics)}')
    # Outside the namespace: only what every ROS node shares, and the fleet's /fleet/ topics.
    shared = {'/diagnostics', '/rosout', '/parameter_events'}
    assert {t for t in listed if not t.startswith((f'{NS}/', '/fleet/'))} <= shared, listed
    services = {f'{NS}/backtrack_search', f'{NS}/get_frames', f'{NS}/detector/change_state',
                f'{NS}/face_embedding/change_state'}
    wait_for(lambda: services <= set(ros2('service', 'list').split()), 60,
             f'services {sorted(services)}')


@pytest.mark.launch(fixture=launch_description)
def test_the_clip_is_processed_from_its_first_frame(graph, echoes, arguments):
    """Without loop, the camera holds the clip until the pipeline is up: frame 0 is detected.

    The clip's frame 0 shows Miranda: the tracker's state file says when it first saw
    someone. (Not the detections echo: the camera waits for it to subscribe, but the
    detector's publisher may match it later, so the echo can miss the first detections; it
    did once, 0.67 s of them, while the tracker had seen frame 0.) Every event reaches
    `ros2 topic echo` and the JSONL log, with the launch's ids.
    """
    wait_for(lambda: END_OF_SOURCE in output_of(graph), CLIP_DONE_S, 'the end of the clip')
    output = output_of(graph)
    assert 'pipeline ready after' in output, output
    published = _log_stamp(output, 'publishing video file')
    state = load_state(Path(arguments['log_dir']) / 'events' / 'tracker_state.json')
    assert state is not None and state.persons, 'the tracker saved no one'
    first = min(person.first_seen for person in state.persons)
    # Frames come 33 ms apart; a clip started before the detector was ready would show its
    # first sighting seconds after this line, or never (the issue this guards).
    assert 0.0 <= first - published < 0.25, (published, first)
    detections = echoed(output_of(echoes['detections']))

    def all_out() -> list[dict]:
        events = _events(echoes)
        kinds = [KIND_NAMES[e['kind']] for e in events]
        return events if kinds and sum(k in IN_KINDS for k in kinds) == kinds.count(
            'PERSON_OUT') else []
    events = wait_for(all_out, 60, 'a PERSON_OUT for every person in view')
    print(f'{len(detections)} detections, first {first - published:.3f} s after the camera '
          f'started; events {[(KIND_NAMES[e["kind"]], e["person_id"]) for e in events]}')
    assert any(KIND_NAMES[e['kind']] == 'PERSON_IN' for e in events)
    for event in events:
        assert (event['robot_id'], event['camera_id']) == ('lt_robot', 'lt_cam'), event
        assert event['header']['frame_id'] == 'lt_cam_optical_frame', event
    logged = sorted((r['kind'], r['person_id'], round(r['stamp'], 6))
                    for r in read_events(Path(arguments['log_dir']) / 'events'))
    assert logged == sorted((KIND_NAMES[e['kind']], e['person_id'], round(_stamp(e['header']), 6))
                            for e in events)


@pytest.mark.launch(fixture=launch_description)
def test_every_launch_argument_reaches_the_graph(graph, arguments):
    """Each argument of facetrack.launch.py shows in the nodes' parameters and behaviour."""
    declared = load_python_launch_file_as_module(str(
        Path(get_package_share_directory('facetrack_ros')) / 'launch' / 'facetrack.launch.py'))
    with ThreadPoolExecutor() as pool:   # each daemonless call waits for discovery
        camera, detector, tracker, history = pool.map(lambda name: params(f'{NS}/{name}'), (
            'camera', 'detector', 'tracker', 'frame_history'))
    expected = {f'{NS}/{name}' for name in GRAPH}
    nodes = wait_for_nodes(expected, 60)
    output = output_of(graph)
    launched = {name.rsplit('-', 1)[0] for name in started_nodes(output)}
    log_dir = Path(arguments['log_dir'])
    model_line = f'yolo model {arguments["model"]} on {arguments["device"]}'
    # name: (what the graph shows, what the argument asks for)
    seen = {
        'source': (camera['source'], arguments['source']),
        'loop': ((camera['loop'], END_OF_SOURCE in output), (False, True)),
        'namespace': ({n for n in nodes if n.startswith(f'{NS}/')}, expected),
        'robot_id': ({tracker['robot_id'], history['robot_id']}, {arguments['robot_id']}),
        'camera_id': ((tracker['camera_id'], history['camera_id'], camera['frame_id']),
                      ('lt_cam', 'lt_cam', 'lt_cam_optical_frame')),
        'model': ((detector['model'], model_line in output), (arguments['model'], True)),
        'device': (detector['device'], arguments['device']),
        'log_dir': ((tracker['event_log_dir'], history['event_log_dir'],
                     history['history_dir'], (log_dir / 'history' / 'index.sqlite3').is_file()),
                    (str(log_dir / 'events'), str(log_dir / 'events'), str(log_dir / 'history'),
                     True)),
        'params_file': ((tracker['absence_timeout'], history['thumbnail_width'],
                         camera['wait_for_nodes'][-1]), (1.0, 200, f'/{DETECTION_ECHO}')),
        'annotate': ('annotator' in launched, True),
        'fleet': ('fleet' in launched, True),
        # Left at its default (ros2 launch takes no empty value): security off, no node in an
        # enclave. test_launch_security.py covers keystore:=<folder>.
        'keystore': (any(_secured(pid) for pid in started_nodes(output).values()), False),
    }
    assert set(seen) == set(declared.ARGUMENTS), 'a launch argument has no check here'
    wrong = {name: pair for name, pair in seen.items() if pair[0] != pair[1]}
    assert not wrong, wrong


@pytest.mark.launch(fixture=launch_description)
def test_backtrack_search_and_get_frames_answer(graph, echoes):
    """`ros2 service call` finds a person of the events and gets their stored frames."""
    event = _with_face(_events(echoes))
    person = event['person_id']
    found = _search(person)
    assert 'result=0' in found.split('appearances=')[0], (found[:2000], _recording_log(graph))
    assert f"robot_id='lt_robot', camera_id='lt_cam', person_id='{person}'" in found
    thumbnails = _jpegs(found)
    assert thumbnails and thumbnails[0].shape[1] == 200   # thumbnail_width of params_file
    start = _stamp(event['header'])
    frames = service_response(ros2(
        'service', 'call', f'{NS}/get_frames', 'facetrack_ros/srv/GetFrames',
        f'{{start: {{sec: {int(start)}}}, end: {{sec: {int(start) + 4}}}, limit: 3}}'))
    assert 'result=0' in frames.split('frames=')[0], frames[:2000]
    images = _jpegs(frames)
    assert len(images) == 3 and all(image.shape == (360, 640, 3) for image in images)
    assert frames.count("frame_id='lt_cam_optical_frame'") == 3


@pytest.mark.launch(fixture=launch_description)
def test_parameters_change_at_run_time_and_invalid_values_are_refused(graph, echoes, arguments):
    """`ros2 param set` changes a live parameter; out of range, not a choice, read-only: no."""
    history = f'{NS}/frame_history'
    assert 'Set parameter successful' in ros2('param', 'set', history, 'thumbnail_width', '96')
    person = _with_face(_events(echoes))['person_id']
    thumbnails = _jpegs(_search(person))
    assert thumbnails, _recording_log(graph)
    assert thumbnails[0].shape[1] == 96
    refusals = {  # node, parameter, value: the reason given
        (history, 'thumbnail_width', '5'): 'out of range',
        (f'{NS}/detector', 'fallback_face_detector', 'sift'):
            "fallback_face_detector='sift' is not one of hog, cnn",
        (f'{NS}/camera', 'source', '/dev/video9'): 'read-only parameter',
    }
    with ThreadPoolExecutor() as pool:
        answers = pool.map(lambda key: ros2('param', 'set', *key), refusals)
        for answer, reason in zip(answers, refusals.values()):
            assert 'Setting parameter failed' in answer and reason in answer, answer
        kept = pool.map(params, (history, f'{NS}/detector', f'{NS}/camera'))
        assert [p[name] for p, (_, name, _) in zip(kept, refusals)] == [
            96, 'hog', arguments['source']]


#: The state each lifecycle transition the tests make leads to.
TRANSITION_GOALS = {'configure': 'inactive', 'activate': 'active', 'deactivate': 'inactive',
                    'cleanup': 'unconfigured'}


def _transition(transition: str, *nodes: str) -> None:
    """Make the same lifecycle transition of several nodes at once, with `ros2 lifecycle set`.

    A `lifecycle set` whose answer was lost is asked again, and then finds its transition
    no longer available: the node's state says whether the first ask made it.
    """
    with ThreadPoolExecutor() as pool:
        answers = pool.map(lambda node: ros2('lifecycle', 'set', node, transition,
                                             timeout=120), nodes)
        for node, answer in zip(nodes, answers):
            made = 'Transitioning successful' in answer or (
                'Unknown transition requested' in answer
                and lifecycle_state(node) == TRANSITION_GOALS[transition])
            assert made, f'{node} {transition}: {answer}'


def _states(*nodes: str) -> list[str]:
    with ThreadPoolExecutor() as pool:
        return list(pool.map(lifecycle_state, nodes))


def _image_readers(*, including: set[str]) -> set[str]:
    """Return the nodes reading any image topic once a listing shows `including`.

    A daemonless listing can miss what it has not discovered yet; one that shows the readers
    expected also shows that an absent one has really gone.
    """
    def readers() -> set[str]:
        found = set().union(*((topic_endpoints(f'{NS}/{topic}') or {}).get('subscribers', set())
                              for topic in ('image_raw', 'image_detect/compressed',
                                            'image_raw/compressed')))
        return found if including <= found else set()
    return wait_for(readers, 60, f'image readers {sorted(including)}')


def _diagnostic(node: str) -> str:
    """Return the message of node's next status on /diagnostics."""
    answer = ros2('topic', 'echo', '/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray',
                  '--once', '--timeout', '20', '--field', 'status',
                  '--filter', f"m[0].name == '{node}'")   # m: the field
    found = re.search(rf"name='{node}', message='([^']*)'", answer)
    assert found, answer
    return found.group(1)


@pytest.mark.launch(fixture=launch_description)
def test_lifecycle_transitions_free_and_load_the_models(graph, arguments):
    """`ros2 lifecycle set` on the model holders: cleanup frees the models, configure loads them.

    Inactive and unconfigured nodes take no images; the detector says what it holds on
    /diagnostics and in its log.
    """
    detector, faces = f'{NS}/detector', f'{NS}/face_embedding'
    others = {f'{NS}/frame_history', f'{NS}/annotator'}
    model_line = f'yolo model {arguments["model"]} on cpu (ultralytics)'
    assert _states(detector, faces) == ['active', 'active']
    # The start's load line may reach the launcher's output after the node is active.
    loaded = wait_for(lambda: output_of(graph).count(model_line), 10, 'the first load line')
    _transition('deactivate', detector, faces)
    assert not {detector, faces} & _image_readers(including=others)
    _transition('cleanup', detector, faces)
    assert _states(detector, faces) == ['unconfigured', 'unconfigured']
    assert _diagnostic(detector) == 'unconfigured: no model loaded'
    _transition('configure', detector, faces)
    assert _diagnostic(detector) == model_line
    wait_for(lambda: output_of(graph).count(model_line) == loaded + 1, 10, 'the load log line')
    _transition('activate', detector, faces)
    assert _states(detector, faces) == ['active', 'active']
    _image_readers(including={detector, faces} | others)


@pytest.mark.launch(fixture=launch_description)
def test_ctrl_c_stops_every_process_cleanly(graph):
    """SIGINT to `ros2 launch`: it exits 0 within STOP_S, every node finished cleanly."""
    nodes = started_nodes(output_of(graph))
    assert sorted(name.rsplit('-', 1)[0] for name in nodes) == sorted(GRAPH)
    code, seconds = interrupt(graph, STOP_S)
    print(f'ros2 launch stopped {len(nodes)} nodes in {seconds:.2f} s')
    assert code == 0, output_of(graph)[-3000:]
    check_clean_exit(graph, nodes)


@pytest.mark.launch(fixture=launch_description, shutdown=True)
def test_history_is_readable_after_ctrl_c(graph, arguments, echoes):
    """The MCAP segments hold the published events; a new frame_history serves the index."""
    history = Path(arguments['log_dir']) / 'history'
    events = _events(echoes)
    stored, frames = [], 0
    for path in sorted((history / 'segments').glob('*.mcap')):
        with path.open('rb') as stream:
            reader = make_reader(stream, decoder_factories=[DecoderFactory()])
            for schema, _, _, message in reader.iter_decoded_messages():
                if schema.name == 'facetrack_ros/msg/PersonEvent':
                    stored.append((message.kind, message.person_id))
                elif schema.name == 'sensor_msgs/msg/CompressedImage':
                    frames += 1
    assert sorted(stored) == sorted((e['kind'], e['person_id']) for e in events), \
        _recording_log(graph)
    assert frames >= 30, 'stored frames of the clip (18 s at 10 Hz store_rate, a busy CPU)'
    # The index answers a search from a frame_history started over the folder.
    with ros2_run('facetrack_ros', 'frame_history', '-r', '__ns:=/lt_reopened',
                  '-p', f'history_dir:={history}') as reopened:
        found = service_response(ros2(
            'service', 'call', '/lt_reopened/backtrack_search',
            'facetrack_ros/srv/BacktrackSearch',
            f'{{query_type: 0, person_id: {_with_face(events)["person_id"]}, '
            'window_width: 0.0}',
            timeout=120))
    assert reopened['code'] == 0, reopened['output']
    assert 'result=0' in found.split('appearances=')[0], found[:2000]
