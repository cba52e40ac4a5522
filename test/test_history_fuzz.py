"""Fuzz the frame_history node over DDS: 500 malformed messages per topic and requests per service.

The node runs as its process runs it (its process's executor, in a thread of its own);
a probe publishes and calls over real DDS. Each input is random (fuzz_harness.random_message:
every field an edge or random value) or crafted (the cases the issue found: NaN boxes, stamps
of 2038, nanoseconds past a second, huge windows, 1e38 embeddings, oversized images), with some
valid ones among them. Promised and checked: no crash; every reply within 2 s except deep
searches; /diagnostics (read over DDS) accounts for every input: stored, skipped (store_rate),
refused or failed, with no failure. The figures are printed with -s.
"""

import math
import time

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from rclpy import create_node
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from facetrack_ros.conversions import bgr_to_image, ns_to_time
from facetrack_ros.core.history import FrameHistory
from facetrack_ros.frame_history_node import FrameHistoryNode
from facetrack_ros.msg import PersonDetectionArray, PersonEvent
from facetrack_ros.parameters import RECORDED_QOS
from facetrack_ros.srv import BacktrackSearch, ForgetPerson, GetFrames
from fuzz_harness import (FuzzReport, fuzz_service, fuzz_topic, NodeUnderTest,
                          random_message, spin_until)
from history_material import event, faces, frame, jpeg, record, S, unit

pytestmark = pytest.mark.ros
PER_INPUT = 500
REPLY_LIMIT_S = 2.0
NAN, INF = math.nan, math.inf
NOW = 0  # set when each test starts: the node refuses stamps max_stamp_skew from its clock
RELIABLE_IMAGES = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture(autouse=True)
def _now() -> None:
    """Set NOW to the whole second of this test's start.

    Set at import, it would lie minutes in the past when a whole-suite run reaches this
    module: every good input would be refused as stamped too far from the node's clock.
    """
    global NOW
    NOW = time.time_ns() // S * S


def _stamped(message, stamp_ns: int):
    message.header.stamp = ns_to_time(stamp_ns)
    return message


def _crafted_messages(topic: str, rng: np.random.Generator) -> list:
    """Return the domain's known-bad inputs of one topic, and a few good ones."""
    people = {'alice': unit(rng)}
    good_faces = faces(NOW, people)
    if topic == 'identified_faces':
        out = [good_faces]
        for field, value in [('box', [NAN, 0, 1, 1]), ('face_box', [5, 5, 1, 1]),
                             ('face_quality', NAN), ('embedding', [1e38] * 128),
                             ('embedding', [NAN] * 128), ('embedding', [0.0] * 128),
                             ('embedding', [1.0] * 5), ('person_id', 'p' * 3000),
                             ('confidence', INF), ('match_similarity', -7.0)]:
            message = faces(NOW, people)
            setattr(message.detections[0], field, value)
            out.append(message)
        out.append(_stamped(faces(NOW, people), 2_145_916_800 * S))   # 2038
        late = faces(NOW, people)
        late.header.stamp = Time(sec=-5, nanosec=0)
        odd = faces(NOW, people)
        odd.header.stamp = Time(sec=NOW // S, nanosec=3_000_000_000)
        return out + [late, odd, faces(NOW, {f'p{i}': unit(rng) for i in range(300)})]
    if topic == 'person_events':
        out = [event(NOW, 'alice')]
        for field, value in [('kind', 0), ('kind', 200), ('person_id', ''), ('box', [INF] * 4),
                             ('duration', NAN), ('duration', -3.0), ('confidence', 5.0),
                             ('embedding', [NAN] * 128), ('camera_id', 'c' * 5000)]:
            message = event(NOW, 'alice')
            setattr(message, field, value)
            out.append(message)
        return out + [event(2_145_916_800 * S, 'alice'), event(NOW - 10 ** 6 * S, 'alice')]
    if topic == 'image_raw':
        good = _stamped(bgr_to_image(np.zeros((48, 64, 3), np.uint8)), NOW)
        out = [good]
        for width, height, step, encoding, size in [
                (64, 48, 192, 'yuv422', 9216), (64, 48, 10, 'bgr8', 9216),
                (64, 48, 192, 'bgr8', 100), (0, 48, 0, 'bgr8', 0),
                (100000, 1, 300000, 'bgr8', 300000), (64, 48, 64, 'mono8', 3072),
                (2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1, 'rgb8', 16)]:
            out.append(_stamped(Image(width=width, height=height, step=step, encoding=encoding,
                                      data=bytes(size)), NOW + len(out) * S // 10))
        return out + [_stamped(bgr_to_image(np.zeros((8, 8, 3), np.uint8)), 2_145_916_800 * S)]
    out = [frame(NOW, jpeg())]
    for data in (b'', b'\xff\xd8\xff' + bytes(10), b'GIF89a', bytes(5000)):
        out.append(frame(NOW + len(out) * S // 10, data))
    return out + [frame(2_145_916_800 * S, jpeg()), CompressedImage(format='x' * 999)]


def _deepen(message, rng: np.random.Generator):
    """Make half of the random inputs plausible where the first checks look (stamps, kinds).

    Random stamps and query kinds are refused at once; these reach the checks behind them.
    """
    if rng.random() < 0.5:
        return message
    if hasattr(message, 'header'):
        message.header.stamp = ns_to_time(NOW + int(rng.integers(-50, 50)) * S // 10)
    for detection in getattr(message, 'detections', []):
        if rng.random() < 0.5:
            detection.embedding = rng.normal(size=128).astype(np.float32).tolist()
            detection.box = [10.0, 10.0, 50.0, 90.0]
    if hasattr(message, 'query_type'):
        message.query_type = int(rng.integers(0, 3))
        message.person_id = str(rng.choice(['alice', 'bob', message.person_id]))
        if rng.random() < 0.5:
            message.embedding = rng.normal(size=128).astype(np.float32).tolist()
        if hasattr(message, 'deep'):
            message.deep, message.deep_budget = bool(rng.random() < 0.1), 0.5
            message.window_width = float(rng.choice([0.0, 10.0, 3600.0, message.window_width]))
            message.center_stamp = Time()
        else:   # forget: a threshold at which a random face forgets nobody
            message.min_similarity = float(rng.choice([0.95, message.min_similarity]))
    if hasattr(message, 'tolerance'):
        message.start = ns_to_time(NOW - int(rng.integers(0, 30)) * S)
        message.end = Time() if rng.random() < 0.5 else ns_to_time(NOW)
        message.camera_id = str(rng.choice(['', 'hall', message.camera_id]))
    return message


class Fixture:
    """A frame_history node over a recorded history, a probe, and /diagnostics as heard."""

    def __init__(self, context, folder, transport: str) -> None:
        """Record 6 s of Alice and Bob, then start the node on it."""
        rng = np.random.default_rng(21)
        self.alice, self.bob = unit(rng), unit(rng)
        with FrameHistory(folder / 'history', robot_id='r1', background=False) as history:
            self.stamps = record(history, NOW - 20 * S, 6,
                                 {'alice': self.alice, 'bob': self.bob})
        self.node = FrameHistoryNode(context=context, parameter_overrides=[
            Parameter('history_dir', value=str(folder / 'history')),
            Parameter('event_log_dir', value=str(folder / 'events')),
            Parameter('robot_id', value='r1'), Parameter('camera_id', value='hall'),
            Parameter('image_qos', value='reliable'), Parameter('store_rate', value=120.0),
            Parameter('image_transport', value=transport)])
        assert self.node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert self.node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        self.target = NodeUnderTest(self.node, context)
        self.probe = create_node('fuzz_probe', context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.probe)
        self.diagnostics: dict[str, str] = {}
        self.probe.create_subscription(DiagnosticArray, '/diagnostics', self._heard, 10)

    def _heard(self, array: DiagnosticArray) -> None:
        for status in array.status:
            if status.hardware_id == 'frame_history':
                self.diagnostics = {kv.key: kv.value for kv in status.values}
                self.level = status.level

    def outcomes(self, what: str) -> int:
        """Return the inputs or requests of what the node has accounted for (its tally)."""
        return sum(number for name, number in self.node.tally.counts.items()
                   if name.rsplit(' ', 1)[0] == what)

    def heard(self, what: str) -> dict[str, int]:
        """Return what /diagnostics (as received over DDS) says of what: outcome -> count."""
        return {name.rsplit(' ', 1)[1]: int(value) for name, value in self.diagnostics.items()
                if name.rsplit(' ', 1)[0] == what}

    def wait_heard(self, what: str, total: int) -> dict[str, int]:
        """Spin until /diagnostics accounts for total inputs of what; return its counts."""
        spin_until(self.executor, lambda: sum(self.heard(what).values()) == total, 10.0)
        return self.heard(what)

    def close(self) -> None:
        """Stop and destroy the node and the probe."""
        self.target.stop()
        self.node.trigger_deactivate()
        self.node.trigger_cleanup()
        self.node.destroy_node()
        self.probe.destroy_node()


def _fuzz_topic(fixture: Fixture, topic: str, kind: type, qos) -> FuzzReport:
    rng = np.random.default_rng(hash(topic) % 2 ** 32)
    publisher = fixture.probe.create_publisher(kind, topic, qos)
    assert spin_until(fixture.executor, lambda: publisher.get_subscription_count() > 0, 10)
    crafted = _crafted_messages(topic, rng)
    messages = crafted + [_deepen(random_message(kind, rng), rng)
                          for _ in range(PER_INPUT - len(crafted))]
    report = fuzz_topic(fixture.executor, publisher, fixture.target, messages,
                        settled=lambda sent: fixture.outcomes(topic) >= sent)
    heard = fixture.wait_heard(topic, report.sent)
    print(f'\n{topic}: {report.sent} messages, crashed: {report.crashed or "no"}, '
          f'accounted on /diagnostics: {heard}')
    assert not report.crashed and fixture.target.alive
    assert sum(heard.values()) == report.sent == PER_INPUT
    assert heard.get('failed', 0) == 0 and heard.get('refused', 0) >= len(crafted) - 3
    assert heard.get('stored', 0) >= 1, heard  # the good ones among the crafted
    return report


@pytest.mark.parametrize('transport', ['raw', 'compressed'])
def test_malformed_messages_on_every_topic(ros_context, tmp_path, transport: str) -> None:
    """500 malformed messages per subscribed topic: no crash, every one accounted for."""
    fixture = Fixture(ros_context, tmp_path, transport)
    try:
        topics = [('image_raw', Image, RELIABLE_IMAGES) if transport == 'raw' else
                  ('image_raw/compressed', CompressedImage, RELIABLE_IMAGES)]
        if transport == 'raw':   # the other two topics need fuzzing once
            topics += [('identified_faces', PersonDetectionArray, RECORDED_QOS),
                       ('person_events', PersonEvent, RECORDED_QOS)]
        for topic, kind, qos in topics:
            _fuzz_topic(fixture, topic, kind, qos)
        # Still recording and searching: a good face is stored and found.
        found = fixture.node.history.index.search(fixture.alice)
        assert found.appearances and found.appearances[0].person_id == 'alice'
        assert not list((tmp_path / 'history' / 'segments').glob('*_2038*'))
    finally:
        fixture.close()


def _search_requests(fixture: Fixture, rng: np.random.Generator) -> list:
    Request = BacktrackSearch.Request
    image = bgr_to_image(cv2_face_free(rng, 120, 160))
    crafted = [
        Request(person_id='alice', include_thumbnails=True, window_width=0.0),
        Request(query_type=1, embedding=fixture.bob.tolist(), window_width=0.0),
        Request(query_type=2, image=image, window_width=0.0),
        Request(person_id='alice', window_width=1e12), Request(person_id='alice',
                                                               window_width=NAN),
        Request(person_id='alice', deep=True, deep_budget=NAN),
        Request(person_id='alice', center_stamp=Time(sec=-5)),
        Request(person_id='alice', center_stamp=Time(sec=5, nanosec=4_000_000_000)),
        Request(person_id='alice', min_similarity=NAN), Request(query_type=9),
        Request(query_type=1, embedding=[1e38] * 128), Request(query_type=1,
                                                               embedding=[NAN] * 128),
        Request(query_type=2, image=Image(encoding='bgr8', width=4, height=4, step=12)),
        Request(query_type=2, image=Image(encoding='bgr8', width=20000, height=2, step=60000,
                                          data=bytes(120000))),
        Request(query_type=2, image=bgr_to_image(cv2_face_free(rng, 2000, 3000))),
        Request(query_type=1, embedding=fixture.alice.tolist(), deep=True, deep_budget=1.0,
                center_stamp=ns_to_time(NOW - 10 ** 5 * S), window_width=10.0),
        Request(person_id='x' * 5000), Request(max_results=2 ** 32 - 1, person_id='alice'),
    ]
    return crafted + [_deepen(random_message(Request, rng), rng)
                      for _ in range(PER_INPUT - len(crafted))]


def cv2_face_free(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Return a BGR image of noise: no face in it."""
    return rng.integers(0, 255, (height, width, 3), dtype=np.uint8)


def _frames_requests(fixture: Fixture, rng: np.random.Generator) -> list:
    Request = GetFrames.Request
    first, last = fixture.stamps[0], fixture.stamps[-1]
    crafted = [
        Request(start=ns_to_time(first + S)), Request(start=ns_to_time(first),
                                                      end=ns_to_time(last), limit=1000),
        Request(tolerance=1e300), Request(tolerance=NAN), Request(tolerance=-1.0),
        Request(start=ns_to_time(10 ** 18), end=ns_to_time(10 ** 17)),
        Request(start=Time(sec=-1)), Request(start=Time(sec=1, nanosec=2 ** 32 - 1)),
        Request(start=ns_to_time(first), end=ns_to_time(last), camera_id='../x' * 900),
        Request(start=ns_to_time(first), end=Time(sec=2 ** 31 - 1), limit=2 ** 32 - 1),
    ]
    return crafted + [_deepen(random_message(Request, rng), rng)
                      for _ in range(PER_INPUT - len(crafted))]


def _forget_requests(fixture: Fixture, rng: np.random.Generator) -> list:
    Request = ForgetPerson.Request
    crafted = [
        Request(person_id='nobody'), Request(person_id=''), Request(person_id='y' * 5000),
        Request(query_type=1, embedding=[NAN] * 128), Request(query_type=1, embedding=[1.0]),
        Request(query_type=2, image=Image(encoding='bgr8', width=4, height=4, step=12)),
        Request(query_type=2, image=bgr_to_image(cv2_face_free(rng, 60, 80))),
        Request(query_type=7), Request(person_id='bob', min_similarity=NAN),
        Request(query_type=1, embedding=fixture.alice.tolist(), min_similarity=5.0),
        Request(person_id='bob'),   # a real forget, in the middle of the fuzz
    ]
    return crafted + [_deepen(random_message(Request, rng), rng)
                      for _ in range(PER_INPUT - len(crafted))]


def test_malformed_requests_to_every_service(ros_context, tmp_path) -> None:
    """500 random and crafted requests per service: no crash, every reply within 2 s.

    Deep searches are exempt from the 2 s. Each reply is counted on /diagnostics; every
    refusal is INVALID_REQUEST, and no request ends in an internal error.
    """
    fixture = Fixture(ros_context, tmp_path, 'raw')
    try:
        rng = np.random.default_rng(31)
        for name, kind, requests in [
                ('backtrack_search', BacktrackSearch, _search_requests(fixture, rng)),
                ('get_frames', GetFrames, _frames_requests(fixture, rng)),
                ('forget_person', ForgetPerson, _forget_requests(fixture, rng))]:
            client = fixture.probe.create_client(kind, name)
            assert spin_until(fixture.executor, client.service_is_ready, 10)
            report = fuzz_service(fixture.executor, client, fixture.target, requests,
                                  REPLY_LIMIT_S, exempt=lambda r: getattr(r, 'deep', False))
            heard = fixture.wait_heard(name, report.sent)
            replies = np.array(report.replies)
            print(f'\n{name}: {report.sent} requests, crashed: {report.crashed or "no"}, '
                  f'codes {dict(sorted(report.codes.items()))}, reply median '
                  f'{1000 * np.median(replies):.0f} ms, p99 '
                  f'{1000 * np.percentile(replies, 99):.0f} ms, max {replies.max():.2f} s; '
                  f'/diagnostics: {heard}')
            assert not report.crashed and fixture.target.alive and not report.unanswered
            assert not report.slow, report.slow
            invalid = kind.Response.RESULT_INVALID_REQUEST
            error = kind.Response.RESULT_ERROR
            assert report.codes.get(error, 0) == 0, report.codes
            assert heard.get('refused', 0) == report.codes.get(invalid, 0) > 50
            assert sum(heard.values()) == report.sent == PER_INPUT
    finally:
        fixture.close()
