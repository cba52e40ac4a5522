"""Start the facetrack_ros graph: camera, detector, face_embedding, tracker, frame_history, fleet.

  ros2 launch facetrack_ros facetrack.launch.py source:=/dev/video0 robot_id:=r1 namespace:=r1

Several robots can share one DDS domain: give each its own namespace and robot_id.
With keystore:=<folder> (made by `ros2 run facetrack_ros make_keystore`), every node runs in
its SROS2 enclave, encrypted and allowed only its own topics and services.
"""

from facetrack_ros.graph import enclave_path, security_environment
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare
from launch_ros.utilities import prefix_namespace

ARGUMENTS = {
    'source': ('0', 'Camera source: V4L2 index or /dev/videoN, video file, image folder, or '
                    'topic:<image topic>.'),
    'model': ('yolo11n.pt', 'Person model for the detector: .pt, .onnx or TensorRT .engine.'),
    'device': ('cpu', 'Inference device of the detector: cpu, cuda:0, ...'),
    'namespace': ('', 'Namespace of every node and topic (one per robot on a shared domain).'),
    'robot_id': ('robot', 'Robot name written into events and history.'),
    'camera_id': ('camera', 'Camera name written into events and history.'),
    'log_dir': ('~/.ros/facetrack', 'Folder of the event log (events/) and history (history/).'),
    'params_file': ('', 'Parameter YAML (default: the package\'s config/facetrack.yaml).'),
    'annotate': ('false', 'Also start the annotator (annotated image for rqt_image_view).'),
    'loop': ('false', 'Loop a video file or image folder source.'),
    'fleet': ('true', 'Start the fleet node: fleet_search and enroll_person, answering other '
                      'robots\' searches on the /fleet topics.'),
    'keystore': ('', 'SROS2 keystore folder made by make_keystore for this namespace (empty: '
                     'security off). Each node then runs in its enclave '
                     '/facetrack_ros[/<namespace>]/<node>, with ROS_SECURITY_ENABLE=true and '
                     'ROS_SECURITY_STRATEGY=Enforce.'),
}


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and the nodes."""
    arg = {name: LaunchConfiguration(name) for name in ARGUMENTS}
    # launch_ros parses substituted values as YAML: source:=0 would become an integer and
    # robot_id:=1 too, which string parameters refuse. Keep text parameters text.
    text = {name: ParameterValue(arg[name], value_type=str)
            for name in ('source', 'model', 'device', 'robot_id', 'camera_id')}
    default_params = PathJoinSubstitution(
        [FindPackageShare('facetrack_ros'), 'config', 'facetrack.yaml'])
    actions = [DeclareLaunchArgument(
        name, description=description,
        default_value=default_params if name == 'params_file' else default)
        for name, (default, description) in ARGUMENTS.items()]
    params = arg['params_file']
    # Ctrl-C: ros2 launch sends each node SIGINT, then SIGTERM after sigterm_timeout (5 s by
    # default). Nodes close their history and event logs on SIGINT, which on a busy machine
    # can take more than 5 s: 15 s here, unless sigterm_timeout:= is given.
    stop_timeout = LaunchConfiguration('sigterm_timeout', default='15')

    def node(executable: str, overrides: dict, **kwargs) -> OpaqueFunction:
        # Whether to secure the node, and its enclave (from the namespace it will have, under
        # any PushRosNamespace), are known once the arguments are.
        def create(context: LaunchContext) -> list[Node]:
            keystore = arg['keystore'].perform(context)
            security = {}
            if keystore:
                namespace = prefix_namespace(context.launch_configurations.get('ros_namespace'),
                                             arg['namespace'].perform(context))
                security = {'ros_arguments': ['--enclave', enclave_path(executable, namespace)],
                            'additional_env': security_environment(keystore)}
            return [Node(package='facetrack_ros', executable=executable, name=executable,
                         namespace=arg['namespace'], parameters=[params, overrides],
                         output='screen', emulate_tty=True, sigterm_timeout=stop_timeout,
                         **security, **kwargs)]
        return OpaqueFunction(function=create)

    def folder(name: str) -> ParameterValue:
        return ParameterValue(PathJoinSubstitution([arg['log_dir'], name]), value_type=str)

    actions += [
        node('camera', {'source': text['source'], 'loop': arg['loop'],
                        'frame_id': ParameterValue([arg['camera_id'], '_optical_frame'],
                                                   value_type=str)}),
        node('detector', {'model': text['model'], 'device': text['device']}),
        node('face_embedding', {}),
        node('tracker', {'robot_id': text['robot_id'], 'camera_id': text['camera_id'],
                         'event_log_dir': folder('events')}),
        # The tracker's event logs: frame_history forgets people there and prunes them.
        node('frame_history', {'robot_id': text['robot_id'], 'camera_id': text['camera_id'],
                               'history_dir': folder('history'),
                               'event_log_dir': folder('events')}),
        node('annotator', {}, condition=IfCondition(arg['annotate'])),
        node('fleet', {'robot_id': text['robot_id'], 'camera_id': text['camera_id'],
                       'people_file': folder('fleet/people.json')},
             condition=IfCondition(arg['fleet'])),
    ]
    return LaunchDescription(actions)
