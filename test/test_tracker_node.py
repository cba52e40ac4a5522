"""tracker node over real DDS: detections, faces and known people in; tracks, events, log out.

Real nodes, real timers and real files; stamps follow the node's clock as a camera's would.
"""

from dataclasses import dataclass, field
import json
import stat
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import numpy as np
import pytest
from rclpy import create_node
from rclpy.exceptions import ParameterException
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Header

from facetrack_ros.conversions import sec_to_time
from facetrack_ros.core.embedding import l2_normalize
from facetrack_ros.core.event_log import read_events
from facetrack_ros.core.tracking import EventReason, ID_BLOCK
from facetrack_ros.face_embedding_node import FaceEmbeddingNode
from facetrack_ros.msg import (EmbeddingSync, KnownPeople, PersonDetection,
                               PersonDetectionArray, PersonEvent)
from facetrack_ros.parameters import (FORGOTTEN_QOS, InvalidParameterError, KNOWN_PEOPLE_QOS,
                                      RECORDED_QOS, RELIABLE_QOS)
from facetrack_ros.tracker_node import TrackerNode
from history_material import fill, mounted_tmpfs
from rostest_utils import spin_until

pytestmark = pytest.mark.ros
BOX = [100.0, 50.0, 180.0, 300.0]


def _face(seed: int) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).normal(size=128).astype(np.float32))


def _frame(stamp: float, boxes: list[list[float]]) -> PersonDetectionArray:
    msg = PersonDetectionArray(image_width=640, image_height=360)
    msg.header.stamp = sec_to_time(stamp)
    msg.header.frame_id = 'cam_optical'
    msg.detections = [PersonDetection(box=box, confidence=0.9) for box in boxes]
    return msg


@dataclass
class Rig:
    """A tracker node, a probe that talks to it, and what the probe received."""

    node: TrackerNode
    probe: object
    executor: SingleThreadedExecutor
    detections: object
    faces: object
    events: list[PersonEvent] = field(default_factory=list)
    tracks: list[PersonDetectionArray] = field(default_factory=list)
    identified: list[PersonDetectionArray] = field(default_factory=list)
    diagnostics: list[DiagnosticStatus] = field(default_factory=list)

    def until(self, condition, timeout: float = 10.0) -> bool:
        """Spin until condition() holds."""
        return spin_until(self.executor, condition, timeout)

    def show(self, stamp: float, boxes: list[list[float]]) -> PersonDetectionArray:
        """Publish one frame's detections; return the tracks the node made of it."""
        count = len(self.tracks)
        self.detections.publish(_frame(stamp, boxes))
        assert self.until(lambda: len(self.tracks) > count)
        return self.tracks[-1]

    def face(self, tracks: PersonDetectionArray, embedding: np.ndarray,
             quality: float = 0.95) -> None:
        """Publish a face for the first track of a tracks message; wait until identified."""
        count = len(self.identified)
        msg = PersonDetectionArray(header=tracks.header)
        msg.detections = [PersonDetection(track_id=tracks.detections[0].track_id, has_face=True,
                                          face_quality=quality, embedding=embedding.tolist())]
        self.faces.publish(msg)
        assert self.until(lambda: len(self.identified) > count)

    def visit(self, embedding: np.ndarray, frames: int = 5, box: list[float] = BOX) -> str:
        """Show one person for a few frames (stamped now) with one face; return their id."""
        for i in range(frames):
            tracks = self.show(time.time(), [box])
            if i == 1:
                self.face(tracks, embedding)
        return self.tracks[-1].detections[0].person_id

    def close(self) -> None:
        """Destroy the node (it ends appearances and saves its state) and the probe."""
        self.node.destroy_node()
        self.executor.spin_once(timeout_sec=0.2)
        self.probe.destroy_node()
        self.executor.shutdown()


def _rig(context, tmp_path, **overrides) -> Rig:
    parameters = {'robot_id': 'r1', 'camera_id': 'front', 'event_log_dir': str(tmp_path),
                  'absence_timeout': 1.0, **overrides}
    node = TrackerNode(context=context, parameter_overrides=[
        Parameter(k, value=v) for k, v in parameters.items()])
    probe = create_node('tracker_probe', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(probe)
    rig = Rig(node, probe, executor,
              probe.create_publisher(PersonDetectionArray, 'detections', RELIABLE_QOS),
              probe.create_publisher(PersonDetectionArray, 'faces', RELIABLE_QOS))
    # As frame_history subscribes: what a replaced publisher (a forget) sends before the
    # probe has matched it still arrives.
    probe.create_subscription(PersonEvent, 'person_events', rig.events.append, RECORDED_QOS)
    probe.create_subscription(PersonDetectionArray, 'tracks', rig.tracks.append, RELIABLE_QOS)
    probe.create_subscription(PersonDetectionArray, 'identified_faces', rig.identified.append,
                              RECORDED_QOS)
    probe.create_subscription(
        DiagnosticArray, '/diagnostics',
        lambda m: rig.diagnostics.extend(s for s in m.status if s.hardware_id == 'tracker'), 10)
    assert rig.until(lambda: rig.detections.get_subscription_count() > 0
                     and rig.faces.get_subscription_count() > 0
                     and probe.count_publishers('person_events') > 0)
    return rig


def test_walker_in_face_then_out_and_logged(ros_context, tmp_path):
    """One walker: PERSON_IN, face identified, PERSON_OUT; all in the log once; bad face ok."""
    rig = _rig(ros_context, tmp_path)
    start = time.time() - 5.0
    embedding = _face(3)
    for i in range(30):
        tracks = rig.show(start + i / 10, [[100 + 4 * i, 50, 180 + 4 * i, 300]])
        if i == 3:
            face = PersonDetectionArray(header=tracks.header)
            face.detections = [
                PersonDetection(track_id=tracks.detections[0].track_id, has_face=True,
                                face_quality=0.9, embedding=embedding.tolist()),
                PersonDetection(track_id=tracks.detections[0].track_id, has_face=True,
                                embedding=[1.0, 2.0])]
            rig.faces.publish(face)
            assert rig.until(lambda: bool(rig.identified))
    # The walker leaves: frames without them show the absence.
    for i in range(30, 50):
        rig.show(start + i / 10, [])
    assert rig.until(lambda: len(rig.events) >= 2)

    events = rig.events
    assert rig.tracks[0].header.frame_id == 'cam_optical'
    assert [(e.kind, e.reason) for e in events] == [
        (PersonEvent.PERSON_IN, PersonEvent.REASON_FACE),
        (PersonEvent.PERSON_OUT, PersonEvent.REASON_LEFT_VIEW)]
    person = events[0].person_id
    assert person == 'r1-000001' and all(e.person_id == person for e in events)
    assert {d.person_id for t in rig.tracks[5:30] for d in t.detections} == {person}
    assert rig.identified[0].detections[0].person_id == person
    assert len(rig.identified[0].detections) == 1, 'the 2-value embedding is refused, not fatal'
    assert events[1].duration == pytest.approx(2.9, abs=0.15)
    assert (events[1].robot_id, events[1].camera_id) == ('r1', 'front')
    assert len(events[1].embedding) == 128
    # A monitor started afterwards (transient local) still gets both events.
    late = []
    rig.probe.create_subscription(PersonEvent, 'person_events', late.append, RECORDED_QOS)
    assert rig.until(lambda: len(late) >= 2)
    assert [(e.kind, e.person_id) for e in late] == [(e.kind, e.person_id) for e in events]
    rig.close()
    logged = read_events(tmp_path)
    assert [(r['kind'], r['reason'], r['person_id']) for r in logged] == [
        ('PERSON_IN', 'FACE', person), ('PERSON_OUT', 'LEFT_VIEW', person)]


def test_faces_go_out_identified_once_they_count_for_a_person(ros_context, tmp_path):
    """An ordinary face of a new track waits for the second; then both go out identified."""
    rig = _rig(ros_context, tmp_path)
    start = time.time()
    first = rig.show(start, [BOX])
    msg = PersonDetectionArray(header=first.header)
    msg.detections = [PersonDetection(track_id=first.detections[0].track_id, has_face=True,
                                      face_quality=0.6, embedding=_face(11).tolist())]
    rig.faces.publish(msg)
    second = rig.show(start + 0.1, [BOX])
    assert not rig.identified, 'one ordinary face decides nothing'
    msg = PersonDetectionArray(header=second.header)
    msg.detections = [PersonDetection(track_id=second.detections[0].track_id, has_face=True,
                                      face_quality=0.6, embedding=_face(11).tolist())]
    rig.faces.publish(msg)
    assert rig.until(lambda: len(rig.identified) == 2)
    assert [m.header.stamp for m in rig.identified] == [first.header.stamp, second.header.stamp]
    assert {m.detections[0].person_id for m in rig.identified} == {'r1-000001'}
    assert [(e.kind, e.reason) for e in rig.events] == [
        (PersonEvent.PERSON_IN, PersonEvent.REASON_FACE)]
    rig.close()


@pytest.mark.parametrize('face_box, counts', [
    ([105.0, 60.0, 135.0, 90.0], True),   # in A's part of the box: A's
    ([0.0, 0.0, 0.0, 0.0], False),        # where, not sent: maybe B's
])
def test_a_face_outside_the_box_that_overlaps_its_own_counts(ros_context, tmp_path,
                                                             face_box, counts):
    """The node passes face_box to the tracker: beside B (IoU 0.33), A's face counts there."""
    rig = _rig(ros_context, tmp_path)
    start = time.time()
    a_box, b_box = [100.0, 50.0, 180.0, 300.0], [140.0, 50.0, 220.0, 300.0]
    for i in range(3):
        tracks = rig.show(start + i / 10, [a_box, b_box])
    a = next(d for d in tracks.detections if d.box[0] == 100.0)
    msg = PersonDetectionArray(header=tracks.header)
    msg.detections = [PersonDetection(track_id=a.track_id, has_face=True, face_box=face_box,
                                      face_quality=0.95, embedding=_face(21).tolist())]
    rig.faces.publish(msg)
    assert rig.until(lambda: bool(rig.identified), timeout=3.0) == counts
    assert [e.reason for e in rig.events] == ([PersonEvent.REASON_FACE] if counts else [])
    rig.close()


def test_far_stamps_are_refused_and_never_reset_anyone(ros_context, tmp_path):
    """A detections message stamped in 2038, or an hour ago: refused, WARN, nobody is OUT."""
    rig = _rig(ros_context, tmp_path)
    person = rig.visit(_face(4))
    assert [e.kind for e in rig.events] == [PersonEvent.PERSON_IN]
    for stamp in (2_147_483_000.0, time.time() - 3600):
        rig.detections.publish(_frame(stamp, []))
    assert rig.until(lambda: rig.node.diagnostics.dropped == 2)
    assert rig.until(lambda: any(s.level == DiagnosticStatus.WARN and 'refused' in s.message
                                 for s in rig.diagnostics), timeout=3.0)
    tracks = rig.show(time.time(), [BOX])  # the next frame is tracked as before
    assert tracks.detections[0].person_id == person
    assert [e.kind for e in rig.events] == [PersonEvent.PERSON_IN]
    assert rig.node.tracker.active_count == 1
    rig.close()
    assert not list(tmp_path.glob('events-2038-*.jsonl'))


def test_slow_detections_never_end_an_appearance(ros_context, tmp_path):
    """A detector at 1 frame per 1.5 s (slower than absence_timeout): no PERSON_OUT.

    Issue 9, 1: the node used to advance tracker time by the wall clock between frames.
    """
    rig = _rig(ros_context, tmp_path, absence_timeout=0.5)
    person = rig.visit(_face(5), frames=3)
    for _ in range(4):
        deadline = time.monotonic() + 1.5
        rig.until(lambda: time.monotonic() > deadline, timeout=2.0)
        tracks = rig.show(time.time(), [BOX])
    assert tracks.detections[0].person_id == person
    assert [e.kind for e in rig.events] == [PersonEvent.PERSON_IN]
    rig.close()


def test_stalled_input_ends_appearances_and_resume_brings_people_back(ros_context, tmp_path):
    """No detections for input_timeout: OUT (INPUT_STALLED); again: RETURNED, same id.

    /diagnostics says WARN 'input stalled' meanwhile, and OK once detections come again.
    """
    rig = _rig(ros_context, tmp_path, input_timeout=1.0)
    person = rig.visit(_face(6))
    assert rig.until(lambda: len(rig.events) == 2, timeout=5.0)
    out = rig.events[1]
    assert (out.kind, out.reason, out.person_id) == (
        PersonEvent.PERSON_OUT, PersonEvent.REASON_INPUT_STALLED, person)
    assert rig.until(lambda: any(s.level == DiagnosticStatus.WARN
                                 and s.message.startswith('input stalled')
                                 for s in rig.diagnostics), timeout=3.0)
    rig.diagnostics.clear()
    for _ in range(3):
        rig.show(time.time(), [BOX])
    assert rig.until(lambda: len(rig.events) >= 3)
    back = rig.events[2:]
    assert [(e.kind, e.reason, e.person_id) for e in back] == [
        (PersonEvent.PERSON_RETURNED, PersonEvent.REASON_INPUT_RESUMED, person)]
    # Frames go on coming while the 1 Hz status is awaited: three alone leave it OK for only
    # input_timeout, which a late tick on a busy machine may miss.
    deadline = time.monotonic() + 5.0
    while not (rig.diagnostics and rig.diagnostics[-1].level == DiagnosticStatus.OK):
        assert time.monotonic() < deadline, rig.diagnostics[-1:]
        rig.show(time.time(), [BOX])
        rig.until(lambda: False, timeout=0.1)
    rig.close()


def test_a_replay_loop_under_sim_time_restarts_tracking(ros_context, tmp_path):
    """A replay loop (use_sim_time, /clock): OUT (TIME_JUMP), tracking goes on, faces kept.

    As with `ros2 bag play --clock --loop`: the clock goes back with the stamps.
    """
    rig = _rig(ros_context, tmp_path, use_sim_time=True)
    clock = rig.probe.create_publisher(Clock, '/clock', 10)

    def at(seconds: float) -> None:
        clock.publish(Clock(clock=sec_to_time(seconds)))
        assert rig.until(lambda: rig.node.get_clock().now().nanoseconds == int(seconds * 1e9))

    at(1000.0)
    tracks = None
    for i in range(5):
        at(1000.0 + i / 10)
        tracks = rig.show(1000.0 + i / 10, [BOX])
        if i == 1:
            rig.face(tracks, _face(10))
    person = rig.show(1000.5, [BOX]).detections[0].person_id
    rig.detections.publish(_frame(1300.0, []))  # far ahead of the sim clock: refused
    assert rig.until(lambda: rig.node.diagnostics.dropped == 1)
    at(1000.0 - 60)  # the recording loops
    back = rig.show(1000.0 - 60, [BOX])
    assert rig.until(lambda: len(rig.events) == 2)
    assert [(e.kind, e.reason, e.person_id) for e in rig.events] == [
        (PersonEvent.PERSON_IN, PersonEvent.REASON_FACE, person),
        (PersonEvent.PERSON_OUT, PersonEvent.REASON_TIME_JUMP, person)]
    assert back.detections[0].person_id == '', 'a new track after the restart'
    rig.face(back, _face(10))
    assert rig.until(lambda: len(rig.events) == 3)
    assert (rig.events[2].kind, rig.events[2].person_id) == (PersonEvent.PERSON_RETURNED, person)
    rig.close()


def test_ids_never_repeat_across_restarts_and_people_seen_before_return(ros_context, tmp_path):
    """Five restarts with a real state file: ids never repeat, a regular is RETURNED.

    Every newcomer gets an id never used before; the state file is private.
    """
    ids, regular = [], None
    for restart in range(5):
        # Frames are stamped with the wall clock: the regular, out of the newcomer's frames,
        # stays in the scene for the whole visit however slowly the machine runs it.
        rig = _rig(ros_context, tmp_path, absence_timeout=60.0)
        first = rig.visit(_face(7))
        rig.visit(_face(100 + restart), frames=3, box=[300.0, 50.0, 380.0, 300.0])
        kinds = {(e.kind, e.person_id) for e in rig.events}
        ids += [e.person_id for e in rig.events if e.kind == PersonEvent.PERSON_IN]
        if restart == 0:
            regular = first
        else:
            assert first == regular and (PersonEvent.PERSON_RETURNED, regular) in kinds
        rig.close()
    assert len(ids) == len(set(ids)) == 6, ids
    state = tmp_path / 'tracker_state.json'
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    logged = read_events(tmp_path)
    shutdowns = [r for r in logged if r['reason'] == 'SHUTDOWN']
    assert len(shutdowns) == 5 * 2, 'each stop ended the appearances in the log'


def test_a_full_disk_costs_no_event_and_is_shown_until_written_again(ros_context, tmp_path,
                                                                     mounts_allowed):
    """The disk under the event log and state fills up, then is freed.

    ID_BLOCK newcomers later the tracker must save a new reservation of ids: that fails, yet
    every PERSON_IN still goes out on person_events (before, the failure cost that frame's
    events and faces). /diagnostics says, as an ERROR, what was not written until it is
    written again.
    """
    def box(k: int) -> list[float]:   # side by side, never overlapping
        return [10.0 + 35 * k, 50.0, 40.0 + 35 * k, 300.0]

    with mounted_tmpfs(tmp_path / 'disk', 256 * 1024) as disk:
        rig = _rig(ros_context, disk / 'events')

        def came_in() -> list[str]:
            return [e.person_id for e in rig.events if e.kind == PersonEvent.PERSON_IN]

        def last_status(text: str) -> bool:
            return bool(rig.diagnostics) and text in rig.diagnostics[-1].message

        try:
            rig.visit(_face(0), frames=3, box=box(0))
            filler = fill(disk)
            for k in range(1, ID_BLOCK + 1):
                rig.visit(_face(k), frames=3, box=box(k))
            assert rig.until(lambda: len(came_in()) == ID_BLOCK + 1), came_in()
            assert len(set(came_in())) == ID_BLOCK + 1
            assert rig.until(lambda: last_status('tracker state not saved'), 5.0), (
                rig.diagnostics[-1].message)
            assert rig.diagnostics[-1].level == DiagnosticStatus.ERROR
            filler.unlink()
            assert rig.until(lambda: rig.diagnostics[-1].level != DiagnosticStatus.ERROR, 15.0)
            assert 'not saved' not in rig.diagnostics[-1].message   # OK, or input stalled
        finally:
            rig.close()
        state = json.loads((disk / 'events' / 'tracker_state.json').read_text())
    assert state['next_sequence'] > ID_BLOCK + 1, 'the new reservation was saved once freed'


def test_fleet_known_people_name_the_people_they_match(ros_context, tmp_path):
    """The fleet's known_people (transient local, sent before start) names alice.

    A list without her forgets her.
    """
    fleet = create_node('fleet_probe', context=ros_context)
    publisher = fleet.create_publisher(KnownPeople, 'known_people', KNOWN_PEOPLE_QOS)

    def people(*names: str) -> KnownPeople:
        msg = KnownPeople()
        msg.people = [EmbeddingSync(action=EmbeddingSync.ACTION_ENROLL, robot_id='r2',
                                    person_id=name, embedding=_face(seed).tolist(),
                                    embedding_model='dlib_resnet_v1')
                      for name, seed in (('alice', 8), ('bob', 9)) if name in names]
        msg.people.append(EmbeddingSync(action=EmbeddingSync.ACTION_ENROLL, person_id='bad',
                                        embedding=[1.0]))
        return msg

    publisher.publish(people('alice', 'bob'))
    rig = _rig(ros_context, tmp_path)
    rig.executor.add_node(fleet)
    assert rig.until(lambda: rig.node.diagnostics.values.get('enrolled people') == '2')
    assert rig.visit(_face(8)) == 'alice'
    assert [(e.kind, e.reason) for e in rig.events] == [
        (PersonEvent.PERSON_IN, PersonEvent.REASON_ENROLLED)]
    publisher.publish(people('bob'))
    assert rig.until(lambda: len(rig.events) == 2)
    assert (rig.events[1].kind, rig.events[1].reason, rig.events[1].person_id) == (
        PersonEvent.PERSON_OUT, PersonEvent.REASON_FORGOTTEN, 'alice')
    assert rig.show(time.time(), [BOX]).detections[0].person_id == ''
    rig.executor.remove_node(fleet)
    fleet.destroy_node()
    rig.close()


def test_person_forgotten_makes_the_tracker_forget_even_after_a_restart(ros_context, tmp_path):
    """person_forgotten (frame_history's forget_person): the person's faces leave the tracker.

    In view: PERSON_OUT (FORGOTTEN) and a new id when seen again. Remembered in the state
    file and withdrawn while the tracker was down: forgotten on start (transient local),
    the state file rewritten without their face. A forget taken before the restart, heard
    again then, is not taken again: the id she got since stays.
    """
    history = create_node('history_probe', context=ros_context)
    forgotten = history.create_publisher(EmbeddingSync, 'person_forgotten', FORGOTTEN_QOS)
    rig = _rig(ros_context, tmp_path)
    rig.executor.add_node(history)
    alice = rig.visit(_face(11))
    bob = rig.visit(_face(12), box=[300.0, 50.0, 380.0, 300.0])
    forgotten.publish(EmbeddingSync(header=Header(stamp=sec_to_time(1000.0)),
                                    action=EmbeddingSync.ACTION_WITHDRAW, robot_id='r1',
                                    person_id=alice, embedding=_face(11).tolist()))
    assert rig.until(lambda: any(e.reason == PersonEvent.REASON_FORGOTTEN for e in rig.events))
    out = [e for e in rig.events if e.reason == PersonEvent.REASON_FORGOTTEN]
    assert [(e.kind, e.person_id) for e in out] == [(PersonEvent.PERSON_OUT, alice)]
    assert len(out[0].embedding) == 0, 'the PERSON_OUT must not carry the forgotten face'
    # What DDS keeps for late joiners holds nothing of her face any more.
    late_faces, late_events = [], []
    rig.probe.create_subscription(PersonDetectionArray, 'identified_faces', late_faces.append,
                                  RECORDED_QOS)
    rig.probe.create_subscription(PersonEvent, 'person_events', late_events.append,
                                  RECORDED_QOS)
    assert rig.until(lambda: late_events)
    rig.until(lambda: False, 0.5)
    assert [(e.kind, e.person_id, len(e.embedding)) for e in late_events] == [
        (PersonEvent.PERSON_OUT, alice, 0)]
    assert not late_faces
    state = (tmp_path / 'tracker_state.json').read_text()
    assert alice not in state and bob in state
    alice_again = rig.visit(_face(11))
    assert alice_again not in (alice, bob), 'her face was not re-learned'
    rig.executor.remove_node(history)
    rig.close()
    # Bob is remembered in the state file; his withdrawal is sent while the tracker is down.
    assert bob in (tmp_path / 'tracker_state.json').read_text()
    forgotten.publish(EmbeddingSync(header=Header(stamp=sec_to_time(2000.0)),
                                    action=EmbeddingSync.ACTION_WITHDRAW, robot_id='r1',
                                    person_id='', embedding=_face(12).tolist()))
    rig = _rig(ros_context, tmp_path)
    rig.executor.add_node(history)
    assert rig.until(lambda: bob not in (tmp_path / 'tracker_state.json').read_text())
    assert alice_again in (tmp_path / 'tracker_state.json').read_text()
    assert rig.visit(_face(12)) != bob
    assert rig.visit(_face(11)) == alice_again
    assert not any(e.person_id == bob for e in rig.events)
    rig.executor.remove_node(history)
    history.destroy_node()
    rig.close()


def test_reason_constants_match_the_core():
    """The REASON_* constants of PersonEvent are core.tracking.EventReason's values."""
    for reason in EventReason:
        assert getattr(PersonEvent, f'REASON_{reason.name}') == reason.value
    assert sum(name.startswith('REASON_') for name in dir(PersonEvent)) == len(EventReason)


def test_invalid_parameters_are_refused_with_a_reason(ros_context):
    """Out of range or inconsistent at start: refused; at run time: refused with the reason."""
    with pytest.raises(ParameterException, match='min_similarity'):
        TrackerNode(context=ros_context,
                    parameter_overrides=[Parameter('min_similarity', value=2.0)])
    with pytest.raises(InvalidParameterError, match='track_low_thresh'):
        TrackerNode(context=ros_context,
                    parameter_overrides=[Parameter('track_low_thresh', value=0.9)])
    node = FaceEmbeddingNode(context=ros_context)
    refused = node.set_parameters([Parameter('upper_fraction', value=5.0)])[0]
    assert not refused.successful and 'upper_fraction' in refused.reason
    assert node.set_parameters([Parameter('upper_fraction', value=0.6)])[0].successful
    assert node.params.upper_fraction == 0.6
    read_only = node.set_parameters([Parameter('face_detector', value='cnn')])[0]
    assert not read_only.successful and 'read-only' in read_only.reason
    node.destroy_node()
