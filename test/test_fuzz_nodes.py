"""Fuzz the other nodes' subscribed topics over DDS with the frame_history's harness.

Every topic a node subscribes to (facetrack_ros.graph.GRAPH, as the node declares it) gets 500
malformed messages: random (fuzz_harness.random_message: every field an edge or random
value) and crafted (NaN and inverted boxes, NaN qualities, stamps before 1970 and past a
second, images whose data does not hold their size). The node spins as its process would; the
test fails when one ends (a callback raised out of the executor). What each node made of the
inputs (its /diagnostics error and drop counts) is printed with -s.
"""

import math
from pathlib import Path

from builtin_interfaces.msg import Time
import numpy as np
import pytest
from rclpy import create_node
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from facetrack_ros.annotator_node import AnnotatorNode
from facetrack_ros.camera_node import CameraNode
from facetrack_ros.conversions import bgr_to_image, ns_to_time
from facetrack_ros.detector_node import DetectorNode
from facetrack_ros.face_embedding_node import FaceEmbeddingNode
from facetrack_ros.graph import GRAPH
from facetrack_ros.msg import PersonDetection, PersonDetectionArray
from facetrack_ros.parameters import image_qos_profile, RELIABLE_QOS
from facetrack_ros.tracker_node import TrackerNode
from fuzz_harness import _message_type, fuzz_topic, NodeUnderTest, random_message, spin_until

pytestmark = pytest.mark.ros
PER_TOPIC = 500
NAN = math.nan
RELAY = 'relay_in'


#: Stamps of the crafted detections, and of the good images sent last on image_raw, so that
#: nodes pairing the two (annotator, face_embedding) draw or embed the bad boxes [ns].
PAIRED = [1_700_000_000 * 10 ** 9 + number for number in range(8)]


def _crafted(kind: type, rng: np.random.Generator) -> tuple[list, list]:
    """Return the known-bad messages of a type to send first, and good ones to send last."""
    if kind is Image:
        out = []
        for width, height, step, encoding, size in [
                (64, 48, 192, 'yuv422', 9216), (64, 48, 10, 'bgr8', 9216),
                (64, 48, 192, 'bgr8', 100), (0, 48, 0, 'bgr8', 0), (64, 48, 64, 'mono8', 3072),
                (2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1, 'rgb8', 16), (1, 1, 4, 'bgra8', 4)]:
            out.append(Image(width=width, height=height, step=step, encoding=encoding,
                             data=bytes(size)))
        early = bgr_to_image(np.zeros((8, 8, 3), np.uint8))
        early.header.stamp = Time(sec=-100)
        good = []
        for stamp in PAIRED:
            image = bgr_to_image(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
            image.header.stamp = ns_to_time(stamp)
            good.append(image)
        return out + [early], good
    if kind is PersonDetectionArray:
        out = []
        for stamp, fields in zip(PAIRED, (
                {'box': [NAN, 0.0, 10.0, 10.0]}, {'box': [50.0, 40.0, 10.0, 5.0]},
                {'confidence': NAN}, {'has_face': True, 'face_quality': NAN,
                                      'embedding': [0.1] * 128, 'track_id': 1},
                {'has_face': True, 'embedding': [NAN] * 128, 'track_id': 2,
                 'face_box': [NAN] * 4},
                {'has_face': True, 'embedding': [1.0] * 3, 'track_id': 3},
                {'track_id': -2 ** 31, 'box': [1e38, 1e38, 3e38, 3e38]},
                {'box': [-1e9, -1e9, 1e9, 1e9], 'face_box': [5.0, 5.0, 1.0, 1.0]})):
            message = PersonDetectionArray(image_width=64, image_height=48,
                                           detections=[PersonDetection(**fields)])
            message.header.stamp = ns_to_time(stamp)
            out.append(message)
        odd = PersonDetectionArray()
        odd.header.stamp = Time(sec=5, nanosec=3_999_999_999)
        return out + [odd], []
    return [], []


def _start(node, context) -> NodeUnderTest:
    if isinstance(node, LifecycleNode):
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    return NodeUnderTest(node, context)


NODES = ('camera', 'annotator', 'tracker', 'face_embedding', 'detector')
#: Reliable and transient local: a writer every reliable reader accepts, also the transient
#: local ones (known_people, person_forgotten).
ANY_READER_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _topics(name: str, node) -> list[tuple[str, type]]:
    """Return the topics node name subscribes to per the graph table, with their types.

    Only the endpoints whose `when` the node's parameters meet (its image_transport).
    """
    topics = []
    for endpoint in GRAPH[name].subscribes:
        if endpoint.provisional or endpoint.type is None:
            continue
        bound = endpoint.bind({'relay': RELAY})
        if not all(node.get_parameter(key).value == value for key, value in bound.when):
            continue
        topics.append((bound.name, _message_type(bound.type.replace('/msg/', '/'))))
    return topics


@pytest.mark.parametrize('name', NODES)
def test_malformed_messages_on_every_topic_of(name: str, ros_context, tmp_path: Path,
                                              shared_dir: Path) -> None:
    """500 malformed messages on each subscribed topic: the node keeps running."""
    node = _construct(name, ros_context, tmp_path, shared_dir)
    target = _start(node, ros_context)
    probe = create_node('fuzz_nodes_probe', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(probe)
    findings = []
    heard = []   # subscribe to what the node publishes: some work only while heard
    for endpoint in GRAPH[name].publishes:
        if not endpoint.provisional and endpoint.type and not endpoint.name.startswith('/'):
            kind = _message_type(endpoint.type.replace('/msg/', '/'))
            probe.create_subscription(kind, endpoint.name, heard.append,
                                      image_qos_profile('sensor_data') if kind is Image
                                      else RELIABLE_QOS)   # best effort hears every writer
    try:
        for topic, kind in _topics(name, node):
            qos = image_qos_profile('reliable') if kind is Image else ANY_READER_QOS
            publisher = probe.create_publisher(kind, topic, qos)
            assert spin_until(executor, lambda: publisher.get_subscription_count() > 0, 20)
            rng = np.random.default_rng(len(topic))
            first, last = _crafted(kind, rng)
            messages = first + [random_message(kind, rng)
                                for _ in range(PER_TOPIC - len(first) - len(last))] + last
            report = fuzz_topic(executor, publisher, target, messages, pause=0.005)
            spin_until(executor, lambda: not target.alive, 2.0)   # let the queue drain
            findings.append(f'{topic}: {report.sent} sent, crashed: '
                            f'{report.crashed or (repr(target.error) if target.error else "no")}')
            if not target.alive:
                break
        diagnostics = node.diagnostics
        print(f'\n{name}: ' + '; '.join(findings) + f'; /diagnostics errors '
              f'{diagnostics.errors}, dropped {diagnostics.dropped}, state '
              f'{diagnostics.message!r}; {len(heard)} messages published')
        assert target.alive, findings
    finally:
        target.stop()
        node.destroy_node()
        probe.destroy_node()


def _construct(name: str, context, tmp_path: Path, shared_dir: Path):
    """Create node name in context with the parameters it needs to run here."""
    overrides = {
        'camera': {'source': f'topic:{RELAY}'},
        'annotator': {'image_qos': 'reliable'},
        'tracker': {'event_log_dir': str(tmp_path / 'events')},
        'face_embedding': {'image_qos': 'reliable'},
        'detector': {'model': str(shared_dir / 'models' / 'yolov8n_int8.onnx'),
                     'image_qos': 'reliable'},
    }[name]
    kind = {'camera': CameraNode, 'annotator': AnnotatorNode, 'tracker': TrackerNode,
            'face_embedding': FaceEmbeddingNode, 'detector': DetectorNode}[name]
    return kind(context=context, parameter_overrides=[
        Parameter(key, value=value) for key, value in overrides.items()])
