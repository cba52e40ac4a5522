"""What each facetrack_ros node publishes, subscribes to, serves and calls: the one table.

The SROS2 keystore generator (facetrack_ros.keystore) grants each node exactly its entry here,
and test/test_graph_table.py starts every node over DDS and compares its real topics and
services with it: a node that gains, renames or drops a topic or service fails that test until
its entry in GRAPH is updated (and then the keystore grants the change).

Names are written as the node code writes them: relative (`image_raw`: in the robot's
namespace), private (`~/transition_event`: under the node's name) or absolute (`/diagnostics`,
shared by every robot). ROS-free: types are names, nothing here imports rclpy.
"""

from dataclasses import dataclass
import os
from typing import Mapping

#: The package name: first part of every enclave path.
PACKAGE = 'facetrack_ros'


@dataclass(frozen=True)
class Endpoint:
    """One topic or service of a node.

    `when` lists the parameter values under which the node creates it (empty: always); the
    keystore grants it either way, so changing such a parameter needs no new keystore. A
    `{placeholder}` in the name (and in `when`) is a value chosen at deployment, bound by
    bind(). A provisional endpoint belongs to code not written yet; the graph test requires
    it to lose the mark once the node has it.
    """

    name: str
    type: str | None
    when: tuple[tuple[str, object], ...] = ()
    provisional: bool = False

    def bind(self, values: Mapping[str, str]) -> 'Endpoint | None':
        """Return the endpoint with its placeholders filled, or None when one is unbound."""
        try:
            name = self.name.format_map(values)
            when = tuple((key, value.format_map(values) if isinstance(value, str) else value)
                         for key, value in self.when)
        except KeyError:
            return None
        return Endpoint(name, self.type, when, self.provisional)


@dataclass(frozen=True)
class NodeInterfaces:
    """A node's endpoints; provisional when the node itself is not written yet."""

    publishes: tuple[Endpoint, ...] = ()
    subscribes: tuple[Endpoint, ...] = ()
    serves: tuple[Endpoint, ...] = ()
    calls: tuple[Endpoint, ...] = ()
    lifecycle: bool = False
    provisional: bool = False


def _private_services(package: str, services: Mapping[str, str]) -> tuple[Endpoint, ...]:
    """Return {name: service type} as the node's own (~/name) services of package."""
    return tuple(Endpoint(f'~/{name}', f'{package}/srv/{kind}') for name, kind in services.items())


# Endpoints of every rclpy node (Kilted), created by rclpy itself ----------------------------
ROSOUT = Endpoint('/rosout', 'rcl_interfaces/msg/Log')
PARAMETER_EVENTS = Endpoint('/parameter_events', 'rcl_interfaces/msg/ParameterEvent')
PARAMETER_SERVICES = _private_services('rcl_interfaces', {
    'describe_parameters': 'DescribeParameters', 'get_parameter_types': 'GetParameterTypes',
    'get_parameters': 'GetParameters', 'list_parameters': 'ListParameters',
    'set_parameters': 'SetParameters', 'set_parameters_atomically': 'SetParametersAtomically'})
TYPE_DESCRIPTION_SERVICE = Endpoint(
    '~/get_type_description', 'type_description_interfaces/srv/GetTypeDescription')
# ... and by rclpy's LifecycleNode.
LIFECYCLE_SERVICES = _private_services('lifecycle_msgs', {
    'change_state': 'ChangeState', 'get_state': 'GetState',
    'get_available_states': 'GetAvailableStates',
    'get_available_transitions': 'GetAvailableTransitions',
    'get_transition_graph': 'GetAvailableTransitions'})
TRANSITION_EVENT = Endpoint('~/transition_event', 'lifecycle_msgs/msg/TransitionEvent')

# The package's own endpoints ---------------------------------------------------------------
IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
DETECTIONS = 'facetrack_ros/msg/PersonDetectionArray'

DIAGNOSTICS = Endpoint('/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray')
IMAGE_RAW = Endpoint('image_raw', IMAGE)
#: The camera's copy of each frame at the detector's size (its `detect_size`; 0 turns it off),
#: raw and as JPEG.
IMAGE_DETECT = Endpoint('image_detect', IMAGE)
IMAGE_DETECT_COMPRESSED = IMAGE_DETECT.name + '/compressed'
#: Size of the full-resolution frames: the pixels every box is given in.
CAMERA_INFO = Endpoint('camera_info', 'sensor_msgs/msg/CameraInfo')
IMAGE_RAW_COMPRESSED = 'image_raw/compressed'
PERSON_EVENTS = Endpoint('person_events', 'facetrack_ros/msg/PersonEvent')
IDENTIFIED_FACES = Endpoint('identified_faces', DETECTIONS)
TRACKS = Endpoint('tracks', DETECTIONS)
#: A person forgotten on request (frame_history's forget_person): robot-local, for the tracker
#: and the fleet node, which withdraws them on every robot.
PERSON_FORGOTTEN = Endpoint('person_forgotten', 'facetrack_ros/msg/EmbeddingSync')


def image_input(topic: str, *when: tuple[str, object]) -> tuple[Endpoint, Endpoint]:
    """Return the subscriptions of a node whose image_transport (raw, compressed) picks topic.

    when: further (parameter, value) conditions of both.
    """
    return (Endpoint(topic, IMAGE, when=(('image_transport', 'raw'), *when)),
            Endpoint(f'{topic}/compressed', COMPRESSED_IMAGE,
                     when=(('image_transport', 'compressed'), *when)))


#: The topic a camera relays with `source: topic:<topic>`: a placeholder, named when the
#: keystore is made (bind({RELAY: topic})).
RELAY = 'relay'
RELAY_TOPIC = '{' + RELAY + '}'

# Fleet: the /fleet/* topics are absolute, shared by the fleet nodes of every robot (and only
# by them); the rest is in the robot's namespace.
FLEET_TOPICS = (
    Endpoint('/fleet/search_request', 'facetrack_ros/msg/FleetSearchRequest'),
    Endpoint('/fleet/search_result', 'facetrack_ros/msg/FleetSearchResult'),
    Endpoint('/fleet/presence', 'facetrack_ros/msg/FleetPresence'),
    Endpoint('/fleet/people', 'facetrack_ros/msg/EmbeddingSync'),
)
#: The fleet's enrolled people, for the robot's tracker.
KNOWN_PEOPLE = Endpoint('known_people', 'facetrack_ros/msg/KnownPeople')
FLEET = NodeInterfaces(
    publishes=(*FLEET_TOPICS, KNOWN_PEOPLE, DIAGNOSTICS),
    subscribes=(*FLEET_TOPICS, PERSON_FORGOTTEN),
    serves=(Endpoint('fleet_search', 'facetrack_ros/srv/FleetSearch'),
            Endpoint('enroll_person', 'facetrack_ros/srv/EnrollPerson')),
    calls=(Endpoint('backtrack_search', 'facetrack_ros/srv/BacktrackSearch'),
           Endpoint('forget_person', 'facetrack_ros/srv/ForgetPerson'),
           # Its history's max_age, checked against withdrawn_face_age (own_history.py).
           Endpoint('frame_history/get_parameters', 'rcl_interfaces/srv/GetParameters')))

#: Every node of the package, by node name (= executable name).
GRAPH: dict[str, NodeInterfaces] = {
    'camera': NodeInterfaces(
        publishes=(IMAGE_RAW, IMAGE_DETECT, CAMERA_INFO,
                   Endpoint(IMAGE_RAW_COMPRESSED, COMPRESSED_IMAGE,
                            when=(('publish_compressed', True),)),
                   Endpoint(IMAGE_DETECT_COMPRESSED, COMPRESSED_IMAGE,
                            when=(('publish_compressed', True),)),
                   DIAGNOSTICS),
        subscribes=(Endpoint(RELAY_TOPIC, IMAGE, when=(('source', 'topic:' + RELAY_TOPIC),)),)),
    'detector': NodeInterfaces(
        publishes=(Endpoint('detections', DETECTIONS), DIAGNOSTICS),
        subscribes=(*image_input(IMAGE_DETECT.name), CAMERA_INFO),
        lifecycle=True),
    'face_embedding': NodeInterfaces(
        publishes=(Endpoint('faces', DETECTIONS), DIAGNOSTICS),
        subscribes=(*image_input(IMAGE_RAW.name), TRACKS),
        lifecycle=True),
    'tracker': NodeInterfaces(
        publishes=(TRACKS, IDENTIFIED_FACES, PERSON_EVENTS, DIAGNOSTICS),
        subscribes=(Endpoint('detections', DETECTIONS), Endpoint('faces', DETECTIONS),
                    KNOWN_PEOPLE, PERSON_FORGOTTEN)),
    'frame_history': NodeInterfaces(
        publishes=(Endpoint('search_matches', IMAGE), PERSON_FORGOTTEN, DIAGNOSTICS),
        subscribes=(*image_input(IMAGE_RAW.name, ('store_frames', True)), IDENTIFIED_FACES,
                    PERSON_EVENTS),
        serves=(Endpoint('backtrack_search', 'facetrack_ros/srv/BacktrackSearch'),
                Endpoint('get_frames', 'facetrack_ros/srv/GetFrames'),
                Endpoint('forget_person', 'facetrack_ros/srv/ForgetPerson')),
        lifecycle=True),
    'annotator': NodeInterfaces(
        publishes=(Endpoint('annotated', IMAGE), DIAGNOSTICS),
        subscribes=(*image_input(IMAGE_RAW.name), TRACKS, IDENTIFIED_FACES)),
    'fleet': FLEET,
}


def with_builtins(interfaces: NodeInterfaces) -> NodeInterfaces:
    """Return a table entry plus what rclpy creates for every (lifecycle) node."""
    lifecycle = interfaces.lifecycle
    return NodeInterfaces(
        publishes=(*interfaces.publishes, ROSOUT, PARAMETER_EVENTS,
                   *((TRANSITION_EVENT,) if lifecycle else ())),
        subscribes=interfaces.subscribes,
        serves=(*interfaces.serves, *PARAMETER_SERVICES, TYPE_DESCRIPTION_SERVICE,
                *(LIFECYCLE_SERVICES if lifecycle else ())),
        calls=interfaces.calls, lifecycle=lifecycle, provisional=interfaces.provisional)


def normalize_namespace(namespace: str) -> str:
    """Return a namespace as `/` or `/a/b`; raise ValueError when it is not a valid one.

    `r1`, `/r1` and `/r1/` are one namespace; `` and `/` are the root.
    """
    stripped = namespace.strip('/')
    for token in stripped.split('/') if stripped else ():
        if not is_name_token(token):
            raise ValueError(f'invalid namespace {namespace!r}: each part must start with a '
                             'letter or _ and hold only letters, digits and _')
    return '/' + stripped


def resolve(name: str, node: str, namespace: str) -> str:
    """Return the fully qualified name of a topic or service of node in namespace."""
    prefix = normalize_namespace(namespace).rstrip('/')
    if name.startswith('/'):
        return name
    if name.startswith('~/'):
        return f'{prefix}/{node}/{name[2:]}'
    return f'{prefix}/{name}'


def is_name_token(token: str) -> bool:
    """Return whether token is a valid ROS name part: letters, digits, _; no leading digit."""
    return token.isascii() and token.replace('_', 'a').isalnum() and not token[0].isdigit()


def enclave_path(node: str, namespace: str = '') -> str:
    """Return a node's enclave: /facetrack_ros/<node>, or /facetrack_ros/<namespace>/<node>."""
    if not is_name_token(node):
        raise ValueError(f'invalid node name {node!r}')
    return f'/{PACKAGE}{normalize_namespace(namespace).rstrip("/")}/{node}'


def security_environment(keystore: str | os.PathLike) -> dict[str, str]:
    """Return the environment that makes rcl enforce security with keystore's enclaves."""
    return {'ROS_SECURITY_KEYSTORE': os.path.abspath(os.path.expanduser(keystore)),
            'ROS_SECURITY_ENABLE': 'true', 'ROS_SECURITY_STRATEGY': 'Enforce'}
