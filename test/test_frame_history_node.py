"""frame_history node over real DDS: record frames and faces, search them, survive a restart.

The search itself (queries, refusals, thumbnails, deep mode) is tested in the core
(test/core/test_history_search.py); these tests check what the node adds: messages in and out,
DDS, callback groups and the lifecycle.
"""

import threading
import time

import cv2
import numpy as np
import pytest
from rclpy import create_node
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from facetrack_ros.conversions import bgr_to_image, jpeg_to_bgr, ns_to_time, time_to_sec
from facetrack_ros.core.event_log import EventLog, read_events
from facetrack_ros.core.face import DlibResNetEmbedder, FaceAnalyzer, FaceDetector
from facetrack_ros.core.history import QueryKind, SearchCode
from facetrack_ros.frame_history_node import FrameHistoryNode
from facetrack_ros.msg import EmbeddingSync, PersonDetection, PersonDetectionArray
from facetrack_ros.parameters import FORGOTTEN_QOS, image_qos_profile, RECORDED_QOS
from facetrack_ros.srv import BacktrackSearch, ForgetPerson, GetFrames
from face_frames import letterbox
from rostest_utils import call_service, spin_until

pytestmark = pytest.mark.ros
#: Capture stamps near the node clock (max_stamp_skew refuses others) [ns]: set when each
#: test starts (a whole-suite run reaches this file many minutes after importing it).
T0 = 0
Request, Response = BacktrackSearch.Request, BacktrackSearch.Response


@pytest.fixture(autouse=True)
def _stamps_near_now() -> None:
    """Set T0 two minutes before now, a whole second."""
    global T0
    T0 = (time.time_ns() // 10**9 - 120) * 10**9


@pytest.fixture(scope='module')
def photos(shared_dir):
    """Return {person: (image 640x360, face)} from the labelled photos."""
    analyzer = FaceAnalyzer(FaceDetector('hog'), DlibResNetEmbedder())
    out = {}
    for person in ('lin-manuel-miranda', 'alex-lacamoire'):
        image = cv2.imread(str(shared_dir / 'data' / 'faces' / f'{person}.png'))
        image = letterbox(image)
        out[person] = (image, analyzer.largest_face(image))
        assert out[person][1] is not None
    return out


class Harness:
    """A FrameHistoryNode plus a probe that feeds it and calls its services.

    threaded: the node spins in a thread of its own, as a process would; otherwise node and
    probe share one single-threaded executor.
    """

    def __init__(self, context, history_dir, threaded: bool = False, **parameters):
        """Start the node over history_dir (and parameters) and wait for its services."""
        overrides = {'history_dir': str(history_dir), 'robot_id': 'r1', 'camera_id': 'hall',
                     'image_qos': 'reliable', 'store_rate': 30.0, **parameters}
        self.node = FrameHistoryNode(context=context, parameter_overrides=[
            Parameter(key, value=value) for key, value in overrides.items()])
        self.probe = create_node('history_probe', context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.probe)
        self.node_executor, self.thread = None, None
        if threaded:
            self.node_executor = SingleThreadedExecutor(context=context)
            self.node_executor.add_node(self.node)
            self.thread = threading.Thread(target=self.node_executor.spin)
            self.thread.start()
        else:
            self.executor.add_node(self.node)
        assert self.node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert self.node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        self.images = self.probe.create_publisher(Image, 'image_raw',
                                                  image_qos_profile('reliable'))
        self.faces = self.probe.create_publisher(PersonDetectionArray, 'identified_faces',
                                                 RECORDED_QOS)
        self.search = self.probe.create_client(BacktrackSearch, 'backtrack_search')
        self.frames = self.probe.create_client(GetFrames, 'get_frames')
        assert spin_until(self.executor, lambda: self.search.service_is_ready()
                          and (self.images.get_subscription_count() > 0
                               or not overrides.get('store_frames', True))
                          and self.faces.get_subscription_count() > 0)

    def feed(self, stamp_ns: int, image: np.ndarray, person: str, face) -> None:
        """Publish one frame and the identified face seen in it."""
        frame = bgr_to_image(image)
        frame.header.stamp, frame.header.frame_id = ns_to_time(stamp_ns), 'hall_optical'
        self.images.publish(frame)
        faces = PersonDetectionArray(header=frame.header)
        faces.detections = [PersonDetection(
            person_id=person, has_face=True, face_box=face.box.tolist(),
            face_quality=face.quality, embedding=face.embedding.tolist())]
        self.faces.publish(faces)
        assert spin_until(self.executor, lambda: self.node.intake.last_stored_ns == stamp_ns)

    def call(self, client, request, repeat: bool = True):
        """Call a service and return its response (repeat: see call_service)."""
        response = call_service(self.executor, client, request, repeat=repeat)
        assert response is not None
        return response

    def close(self):
        """Destroy both nodes (the history's segments are finished)."""
        self.executor.shutdown()
        if self.node_executor is not None:
            self.node_executor.shutdown()
            self.thread.join()
        self.node.trigger_deactivate()
        self.node.trigger_cleanup()
        self.node.destroy_node()
        self.probe.destroy_node()


def _record(h: Harness, photos) -> None:
    """Lin seen at 0-5 s and 60-63 s, Alex at 20-24 s (5 frames a second)."""
    plan = [('lin-manuel-miranda', 0, 5), ('alex-lacamoire', 20, 24),
            ('lin-manuel-miranda', 60, 63)]
    for person, start, end in plan:
        image, face = photos[person]
        for k in range((end - start) * 5 + 1):
            h.feed(T0 + start * 10**9 + k * 200_000_000, image, person, face)
    # One entry per person per second: 6 + 5 + 4 buckets.
    assert spin_until(h.executor, lambda: h.node.history.index.entry_count() == 15)
    h.node.history.store.flush()
    h.node.history.index.flush()


def test_search_modes_results_and_restart(ros_context, tmp_path, photos, shared_dir):
    """Search by id, embedding and photo; refusals have codes; a restart keeps everything."""
    h = Harness(ros_context, tmp_path / 'history')
    _record(h, photos)
    window = dict(center_stamp=ns_to_time(T0 + 30 * 10**9), window_width=200.0)

    by_id = h.call(h.search, Request(query_type=Request.QUERY_PERSON_ID,
                                     person_id='lin-manuel-miranda', include_thumbnails=True,
                                     **window))
    assert by_id.result == Response.RESULT_OK, by_id.message
    spans = sorted((time_to_sec(a.first_seen) - T0 / 1e9, time_to_sec(a.last_seen) - T0 / 1e9)
                   for a in by_id.appearances)
    assert spans == [pytest.approx((0.0, 5.0), abs=0.25), pytest.approx((60.0, 63.0), abs=0.25)]
    assert {a.person_id for a in by_id.appearances} == {'lin-manuel-miranda'}
    best = by_id.appearances[0]
    assert best.best.similarity > 0.99 and best.best.camera_id == 'hall'
    thumbnail = jpeg_to_bgr(bytes(best.thumbnail.data))
    assert thumbnail.shape[1] == 320 and best.thumbnail.header.frame_id == 'hall_optical'
    assert by_id.entries_searched == 15 and by_id.elapsed > 0

    alex = photos['alex-lacamoire'][1].embedding
    by_embedding = h.call(h.search, Request(query_type=Request.QUERY_EMBEDDING,
                                            embedding=alex.tolist(), **window))
    assert by_embedding.result == Response.RESULT_OK
    assert [a.person_id for a in by_embedding.appearances] == ['alex-lacamoire']

    # Recording and searches by id or embedding leave the face ResNet unloaded.
    assert not h.node.searcher.analyzer.embedder.loaded
    photo = cv2.imread(str(shared_dir / 'data' / 'faces' / 'lin-manuel-miranda.png'))
    by_photo = h.call(h.search, Request(query_type=Request.QUERY_IMAGE,
                                        image=bgr_to_image(photo), **window))
    assert by_photo.result == Response.RESULT_OK
    assert h.node.searcher.analyzer.embedder.loaded
    assert {a.person_id for a in by_photo.appearances} == {'lin-manuel-miranda'}

    biden = cv2.imread(str(shared_dir / 'data' / 'faces' / 'biden.jpg'))
    never_seen = h.call(h.search, Request(query_type=Request.QUERY_IMAGE,
                                          image=bgr_to_image(biden), **window))
    assert never_seen.result == Response.RESULT_NO_MATCH and not never_seen.appearances
    assert 'no appearance' in never_seen.message

    # Refusals keep the core's code; the node adds those of its own translation.
    refusals = {
        Response.RESULT_UNKNOWN_PERSON: Request(person_id='nobody', **window),
        Response.RESULT_INVALID_REQUEST: Request(query_type=Request.QUERY_IMAGE,
                                                 image=Image(encoding='yuv422', width=2,
                                                             height=2), **window),
        Response.RESULT_NO_HISTORY: Request(query_type=Request.QUERY_EMBEDDING,
                                            embedding=alex.tolist(),
                                            center_stamp=ns_to_time(T0 + 10**12),
                                            window_width=10.0),
    }
    for code, request in refusals.items():
        response = h.call(h.search, request)
        assert response.result == code, response.message
        assert response.message and not response.appearances
    bad_type = h.call(h.search, Request(query_type=9))
    assert bad_type.result == Response.RESULT_INVALID_REQUEST and 'query_type' in bad_type.message

    nearest = h.call(h.frames, GetFrames.Request(start=ns_to_time(T0 + 21 * 10**9)))
    assert nearest.result == GetFrames.Response.RESULT_OK and len(nearest.frames) == 1
    assert nearest.frames[0].header.stamp == ns_to_time(T0 + 21 * 10**9)
    span = h.call(h.frames, GetFrames.Request(start=ns_to_time(T0), end=ns_to_time(T0 + 5 * 10**9),
                                              limit=4))
    assert len(span.frames) == 4
    h.close()

    # Restart over the same folder: everything recorded is searchable again.
    again = Harness(ros_context, tmp_path / 'history')
    after = again.call(again.search, Request(query_type=Request.QUERY_PERSON_ID,
                                             person_id='lin-manuel-miranda', **window))
    assert after.result == Response.RESULT_OK
    assert len(after.appearances) == 2 and after.entries_searched == by_id.entries_searched
    again.close()


def test_codes_and_kinds_are_the_services_constants():
    """The core's enums and the .srv constants are one list, name by name."""
    for code in SearchCode:
        assert getattr(Response, f'RESULT_{code.name}') == code
    assert len([name for name in dir(Response) if name.startswith('RESULT_')]) == len(SearchCode)
    for kind in QueryKind:
        assert getattr(Request, f'QUERY_{kind.name}') == kind


def test_deep_search_blocks_neither_frame_lookups_nor_recording(ros_context, tmp_path, photos):
    """While a deep search runs, GetFrames from a second client answers and frames are stored.

    The node spins as main() spins it; the two clients are two nodes over DDS. Frames only (the
    tracker was off), so the search is a deep one of several seconds.
    """
    h = Harness(ros_context, tmp_path / 'history', threaded=True)
    image, face = photos['lin-manuel-miranda']
    for k in range(20):
        frame = bgr_to_image(image)
        frame.header.stamp = ns_to_time(T0 + k * 200_000_000)
        h.images.publish(frame)
        stamp_ns = T0 + k * 200_000_000
        assert spin_until(h.executor, lambda: h.node.intake.last_stored_ns == stamp_ns)
    window = dict(center_stamp=ns_to_time(T0 + 2 * 10**9), window_width=10.0)
    shallow = h.call(h.search, Request(query_type=Request.QUERY_EMBEDDING,
                                       embedding=face.embedding.tolist(), **window))
    assert shallow.result == Response.RESULT_NO_HISTORY and shallow.frames_searched == 0

    # What the deep search needs first, loaded before it is timed: the face models (loading
    # holds the interpreter for half a second), and the lookup client's reply path (a new
    # client's first reply may be lost: call_service sends it again).
    by_photo = h.call(h.search, Request(query_type=Request.QUERY_IMAGE,
                                        image=bgr_to_image(image), **window))
    assert h.node.searcher.analyzer.embedder.loaded, by_photo.message
    other = create_node('history_other_client', context=ros_context)
    h.executor.add_node(other)
    frames = other.create_client(GetFrames, 'get_frames')
    assert spin_until(h.executor, frames.service_is_ready)
    assert h.call(frames, GetFrames.Request(start=ns_to_time(T0))).result == (
        GetFrames.Response.RESULT_OK)
    deep = h.search.call_async(Request(query_type=Request.QUERY_EMBEDDING,
                                       embedding=face.embedding.tolist(), deep=True,
                                       deep_budget=5.0, **window))
    spin_until(h.executor, lambda: False, timeout=0.5)   # the deep search is under way
    asked = time.monotonic()
    lookup = frames.call_async(GetFrames.Request(start=ns_to_time(T0 + 10**9)))
    assert spin_until(h.executor, lookup.done, timeout=30)
    answered = time.monotonic()
    assert not deep.done(), 'the lookup waited for the deep search'
    assert lookup.result().result == GetFrames.Response.RESULT_OK
    assert answered - asked < 1.0
    later = bgr_to_image(image)   # recording goes on meanwhile
    later.header.stamp = ns_to_time(T0 + 30 * 10**9)
    h.images.publish(later)
    assert spin_until(h.executor, lambda: h.node.intake.last_stored_ns == T0 + 30 * 10**9)
    assert not deep.done(), 'the deep search ended too soon to show recording beside it'
    assert spin_until(h.executor, deep.done, timeout=60)
    result = deep.result()
    assert result.result == Response.RESULT_OK, result.message
    assert 'deep' in result.message and 1 <= result.frames_searched <= 20
    assert result.appearances[0].best.similarity > 0.99
    assert result.appearances[0].robot_id == 'r1'
    other.destroy_node()
    h.close()


def test_forget_person_by_photo(ros_context, tmp_path, photos, shared_dir):
    """forget_person by photo: Lin is gone from every search, announced on person_forgotten.

    The announcement is transient local: a tracker (or fleet node) started later hears it.
    """
    with EventLog(tmp_path / 'events') as log:
        for person in ('lin-manuel-miranda', 'alex-lacamoire'):
            log.append({'kind': 'PERSON_IN', 'stamp': T0 / 1e9, 'person_id': person})
    h = Harness(ros_context, tmp_path / 'history', event_log_dir=str(tmp_path / 'events'))
    _record(h, photos)
    forget = h.probe.create_client(ForgetPerson, 'forget_person')
    photo = cv2.imread(str(shared_dir / 'data' / 'faces' / 'lin-manuel-miranda.png'))
    done = h.call(forget, ForgetPerson.Request(
        query_type=ForgetPerson.Request.QUERY_IMAGE, image=bgr_to_image(photo)), repeat=False)
    assert done.result == ForgetPerson.Response.RESULT_OK, done.message
    assert list(done.person_ids) == ['lin-manuel-miranda'] and done.remaining == 0
    assert done.index_entries_removed == 10 and done.faces_removed == 42
    assert done.frames_blurred >= 42 and done.event_log_records_removed == 1
    assert [r['person_id'] for r in read_events(tmp_path / 'events')] == ['alex-lacamoire']
    heard = []
    h.probe.create_subscription(EmbeddingSync, 'person_forgotten', heard.append,
                                FORGOTTEN_QOS)
    assert spin_until(h.executor, lambda: heard)
    (withdrawal,) = heard
    assert (withdrawal.action, withdrawal.person_id, withdrawal.robot_id) == (
        EmbeddingSync.ACTION_WITHDRAW, 'lin-manuel-miranda', 'r1')
    assert len(withdrawal.embedding) == 128 and withdrawal.embedding_model == 'dlib_resnet_v1'
    window = dict(center_stamp=ns_to_time(T0 + 30 * 10**9), window_width=200.0)
    gone = h.call(h.search, Request(person_id='lin-manuel-miranda', **window))
    assert gone.result == Response.RESULT_UNKNOWN_PERSON
    by_photo = h.call(h.search, Request(query_type=Request.QUERY_IMAGE,
                                        image=bgr_to_image(photo), **window))
    assert 'lin-manuel-miranda' not in {a.person_id for a in by_photo.appearances}
    assert h.call(h.search, Request(person_id='alex-lacamoire', **window)).appearances
    again = h.call(forget, ForgetPerson.Request(person_id='lin-manuel-miranda'), repeat=False)
    assert again.result == ForgetPerson.Response.RESULT_NOT_FOUND, again.message
    assert h.node.tally.counts['forget_person answered'] == 2
    h.close()


def test_embeddings_only_mode_stores_no_frame(ros_context, tmp_path, photos):
    """store_frames false: faces are recorded and searchable, no frame is kept anywhere."""
    h = Harness(ros_context, tmp_path / 'history', store_frames=False)
    assert h.images.get_subscription_count() == 0
    image, face = photos['lin-manuel-miranda']
    for k in range(6):
        faces = PersonDetectionArray()
        faces.header.stamp = ns_to_time(T0 + k * 10**9)
        faces.detections = [PersonDetection(
            person_id='lin', has_face=True, face_box=face.box.tolist(),
            face_quality=face.quality, embedding=face.embedding.tolist())]
        h.faces.publish(faces)
    assert spin_until(h.executor, lambda: h.node.history.index.entry_count() == 6)
    found = h.call(h.search, Request(person_id='lin', include_thumbnails=True, window_width=0.0))
    assert found.result == Response.RESULT_OK and not found.appearances[0].thumbnail.data
    frames = h.call(h.frames, GetFrames.Request(start=ns_to_time(T0)))
    assert frames.result == GetFrames.Response.RESULT_NOT_FOUND and 'not stored' in frames.message
    h.node.history.store.finish_open()
    assert all(info.frames == 0 for info in h.node.history.store.segments())
    assert len(h.node.history.store.ring) == 0
    h.close()
