"""The fleet over real DDS: robots r1-r3 on one machine, each a namespace with its own history.

Each robot runs its frame_history and fleet nodes as processes (the installed executables),
over a history folder built from real face embeddings of the labelled photos: r1 saw Lin,
r2 saw Obama (obama.jpg) and Alex, r3 saw Obama again (obama3.jpg). The tests ask by another
photo of Obama (obama2.jpg), send malformed, replayed, expired and flooding requests straight
onto /fleet/search_request, enrol a name that a robot started later receives, withdraw it,
and kill a robot in the middle of a search. They run in file order: the last one kills r3.
"""

import json
from pathlib import Path
import signal
import sys
import threading
import time
import uuid

import cv2
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import numpy as np
import pytest
import rclpy
from rclpy.client import Client
from rclpy.executors import SingleThreadedExecutor
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header

from facetrack_ros.conversions import bgr_to_image, ns_to_time, time_to_ns
from facetrack_ros.core.face import DlibResNetEmbedder, FaceAnalyzer, FaceDetector
from facetrack_ros.core.fleet import (DEFAULT_MAX_PEOPLE, DEFAULT_PEER_BURST, DEFAULT_TIMEOUT_S,
                                      ENROLL, FleetCode, MAX_ANSWER_BYTES, outbox_depth,
                                      WITHDRAW)
from facetrack_ros.core.history import (COMPRESSED_IMAGE_TYPE, FrameHistory, IndexEntry,
                                        message_definition, SerializedMessage)
from facetrack_ros.fleet_messages import people_qos, presence_qos, REQUEST_QOS, RESULT_QOS
from facetrack_ros.graph_runner import GraphRunner
from facetrack_ros.msg import (EmbeddingSync, FleetPresence, FleetSearchRequest,
                               FleetSearchResult, KnownPeople)
from facetrack_ros.parameters import FORGOTTEN_QOS, KNOWN_PEOPLE_QOS
from facetrack_ros.srv import BacktrackSearch, EnrollPerson, FleetSearch
from face_frames import letterbox
from rostest_utils import call_service, make_context, spin_until

pytestmark = pytest.mark.ros
S = 10 ** 9
#: The histories start an hour ago: recent enough for the nodes' retention.
T0 = (time.time_ns() // S - 3600) * S
#: robot -> [(photo, person id on that robot, first and last second after T0)]; r4's history
#: starts late.
VISITS = {
    'r1': [('lin-manuel-miranda.png', 'person-1', 10, 12)],
    'r2': [('obama.jpg', 'person-4', 0, 5), ('alex-lacamoire.png', 'person-5', 20, 24)],
    'r3': [('obama3.jpg', 'person-9', 60, 63)],
    'r4': [('obama3.jpg', 'person-2', 80, 82)],
}
LEASE_S = 3.0
#: Time for a presence to reach every reader once one has it, a loaded CPU included [s].
DELIVERY_S = 0.3
#: A new client waits this long after the service is ready before its first call [s]: time
#: for the server's reply writer to match its reply reader.
REPLY_MATCH_S = 1.0
R5_MAX_PEOPLE = 8   # a small roster: a small /fleet/people writer history to read back
Request, Response = FleetSearch.Request, FleetSearch.Response


def build_history(root: Path, robot: str, analyzer: FaceAnalyzer, faces_dir: Path) -> None:
    """Record each visit of robot: frames at 5 a second, each with its face indexed."""
    definition = message_definition(COMPRESSED_IMAGE_TYPE, [Path(sys.prefix) / 'share'])
    with FrameHistory(root) as history:
        for photo, person, start, end in VISITS[robot]:
            frame = letterbox(cv2.imread(str(faces_dir / photo)))
            face = analyzer.largest_face(frame)
            assert face is not None, photo
            jpeg = cv2.imencode('.jpg', frame)[1].tobytes()
            for k in range((end - start) * 5 + 1):
                stamp = T0 + start * S + k * S // 5
                message = CompressedImage(format='jpeg', data=jpeg)
                message.header.stamp = ns_to_time(stamp)
                message.header.frame_id = 'front_optical'
                history.store.add_frame('front', SerializedMessage(
                    f'/{robot}/image_raw/compressed', COMPRESSED_IMAGE_TYPE, definition,
                    bytes(serialize_message(message)), stamp), jpeg, 'front_optical')
                history.index.add(IndexEntry(
                    stamp, robot, 'front', person, tuple(float(v) for v in face.box),
                    face.quality, face.embedding, history.store.segment_for('front', stamp)))


class Fleet:
    """The robots' node processes and a probe node that calls them and listens to /fleet."""

    def __init__(self, work: Path, faces_dir: Path, analyzer: FaceAnalyzer) -> None:
        """Build the histories and start r1-r3; return once each is up and sees the others."""
        self.work, self.faces_dir = work, faces_dir
        self.context = make_context()
        self.probe = rclpy.create_node('fleet_probe', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.probe)
        self.results: list[FleetSearchResult] = []
        self.presence: dict[str, FleetPresence] = {}
        self.heard_at: dict[str, float] = {}   # robot -> when its last presence came [s]
        self.known: dict[str, KnownPeople] = {}
        self.hears: dict[str, set[str]] = {}   # robot -> the robots its fleet node hears
        self.status: dict[str, DiagnosticStatus] = {}   # namespace -> its fleet node's status
        self.probe.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics,
                                       10)
        self.probe.create_subscription(FleetSearchResult, '/fleet/search_result',
                                       self.results.append, RESULT_QOS)
        self.probe.create_subscription(FleetPresence, '/fleet/presence', self._on_presence,
                                       presence_qos(None))
        self.requests = self.probe.create_publisher(FleetSearchRequest, '/fleet/search_request',
                                                    REQUEST_QOS)
        self.runners: dict[str, GraphRunner] = {}
        self.clients: dict[tuple[str, str], Client] = {}   # (robot, service) -> client
        for robot in VISITS:
            build_history(work / robot / 'history', robot, analyzer, faces_dir)
        for robot in ('r1', 'r2', 'r3'):
            self.start(robot, history=True)
        self.wait_for()

    def start(self, robot: str, history: bool) -> None:
        """Start robot's fleet node (and its frame_history over its folder, if history)."""
        runner = GraphRunner(self.work / robot / 'logs', None, robot)
        self.runners[robot] = runner
        if history:
            self.start_history(robot)
        runner.start('fleet', robot_id=robot, camera_id='front', presence_lease=LEASE_S,
                     people_file=str(self.work / robot / 'people.json'))
        self.probe.create_subscription(
            KnownPeople, f'/{robot}/known_people',
            lambda msg: self.known.__setitem__(robot, msg), KNOWN_PEOPLE_QOS)

    def start_history(self, robot: str) -> None:
        """Start robot's frame_history over its folder."""
        self.runners[robot].start('frame_history', robot_id=robot, camera_id='front',
                                  history_dir=str(self.work / robot / 'history'))

    def seen_by(self, embedding) -> set[str]:
        """Return the robots whose history r1's fleet search by embedding finds."""
        response = self.call('r1', 'fleet_search', Request(
            query_type=Request.QUERY_EMBEDDING, embedding=embedding, window_width=0.0,
            timeout=20.0))
        assert response.result in (Response.RESULT_OK, Response.RESULT_NO_MATCH), (
            response.message)
        return {a.robot_id for a in response.appearances}

    def _on_presence(self, msg: FleetPresence) -> None:
        self.presence[msg.robot_id] = msg
        self.heard_at[msg.robot_id] = time.monotonic()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            robot, _, node = status.name.strip('/').partition('/')
            values = {value.key: value.value for value in status.values}
            if node == 'fleet' and 'live robots' in values:
                self.hears[robot] = set(values['live robots'].split(', ')) - {'none'}
                self.status[robot] = status

    def wait_for(self, timeout: float = 120.0) -> None:
        """Spin until every robot is up: heard (with its history) and hearing the others."""
        robots = set(self.runners)

        def up() -> bool:
            failed = [name for runner in self.runners.values() for name in runner.failed()]
            assert not failed, f'nodes exited: {failed}\n{self.tails()}'
            return all(robot in self.presence and (
                self.presence[robot].history_available
                or 'frame_history' not in {n.name for n in self.runners[robot].nodes})
                and self.hears.get(robot) == robots - {robot} for robot in robots)
        assert spin_until(self.executor, up, timeout), f'fleet not up\n{self.tails()}'

    def call(self, robot: str, service: str, request, timeout: float = 60.0):
        """Call a robot's fleet_search or enroll_person and return the response.

        One client per robot and service, kept: a new client's first reply is lost when the
        server sends it before matching the client's reply reader (CALL_ATTEMPT_S), so a new
        one waits REPLY_MATCH_S first. A search is sent again if unanswered; an enrolment,
        which changes what the robot knows, is not.
        """
        client = self.clients.get((robot, service))
        if client is None:
            kind = FleetSearch if service == 'fleet_search' else EnrollPerson
            client = self.probe.create_client(kind, f'/{robot}/{service}')
            assert spin_until(self.executor, client.service_is_ready, 60.0), self.tails()
            spin_until(self.executor, lambda: False, REPLY_MATCH_S)
            self.clients[robot, service] = client
        assert spin_until(self.executor, client.service_is_ready, 60.0), self.tails()
        response = call_service(self.executor, client, request, timeout,
                                repeat=service == 'fleet_search')
        assert response is not None, self.tails()
        return response

    def answers(self, request_id: str) -> list[FleetSearchResult]:
        """Return the answers seen on /fleet/search_result for a request id."""
        return [msg for msg in self.results if msg.request_id == request_id]

    def ask(self, embedding, origin: str = 'tester', deadline_s: float = 10.0,
            request_id: str | None = None, **fields) -> FleetSearchRequest:
        """Publish a request straight onto /fleet/search_request; return it."""
        now = time.time_ns()
        msg = FleetSearchRequest(request_id=request_id or uuid.uuid4().hex,
                                 origin_robot_id=origin, embedding=list(embedding),
                                 deadline=ns_to_time(now + int(deadline_s * S)),
                                 **{'window_width': 0.0, **fields})
        msg.header.stamp = ns_to_time(now)
        self.requests.publish(msg)
        return msg

    def tails(self) -> str:
        """Return the robots' log tails."""
        return '\n'.join(runner.tail() for runner in self.runners.values())

    def close(self) -> None:
        """Stop every process and the probe."""
        for runner in self.runners.values():
            runner.stop()
        self.executor.shutdown()
        self.probe.destroy_node()
        self.context.try_shutdown()


@pytest.fixture(scope='module')
def analyzer() -> FaceAnalyzer:
    """Return the real face model (dlib HOG detector and ResNet descriptor)."""
    return FaceAnalyzer(FaceDetector('hog'), DlibResNetEmbedder())


@pytest.fixture(scope='module')
def faces_dir(shared_dir: Path) -> Path:
    """Return the folder of the labelled photos."""
    return shared_dir / 'data' / 'faces'


@pytest.fixture(scope='module')
def fleet(tmp_path_factory, faces_dir: Path, analyzer: FaceAnalyzer) -> Fleet:
    """Start r1-r3 over their histories; stop them after the module's tests."""
    fleet = Fleet(tmp_path_factory.mktemp('fleet'), faces_dir, analyzer)
    yield fleet
    fleet.close()


@pytest.fixture(scope='module')
def obama(faces_dir: Path, analyzer: FaceAnalyzer) -> list[float]:
    """Return the face embedding of a photo of Obama that no robot recorded."""
    return analyzer.largest_face(cv2.imread(str(faces_dir / 'obama2.jpg'))).embedding.tolist()


def photo(faces_dir: Path, name: str):
    """Return a labelled photo as an Image message."""
    return bgr_to_image(cv2.imread(str(faces_dir / name)))


def spans(appearances) -> list[tuple[str, float, float]]:
    """Return (robot, first, last sighting [s after T0]) of each appearance, sorted."""
    return sorted((a.robot_id, round((time_to_ns(a.first_seen) - T0) / S, 1),
                   round((time_to_ns(a.last_seen) - T0) / S, 1)) for a in appearances)


def test_search_by_photo_finds_the_person_on_every_robot(fleet: Fleet, faces_dir: Path):
    """r1 asks by a new photo: r2's and r3's intervals come back, best first, live too."""
    response = fleet.call('r1', 'fleet_search', Request(
        query_type=Request.QUERY_IMAGE, image=photo(faces_dir, 'obama2.jpg'),
        window_width=0.0, include_thumbnails=True, timeout=30.0))
    assert response.result == Response.RESULT_OK, response.message
    assert sorted(response.answered) == ['r1', 'r2', 'r3'] and not response.not_answered
    assert dict(zip(response.answered, response.answered_results)) == {
        'r1': Response.RESULT_NO_MATCH, 'r2': Response.RESULT_OK, 'r3': Response.RESULT_OK}
    assert spans(response.appearances) == [('r2', 0.0, 5.0), ('r3', 60.0, 63.0)]
    assert {(a.robot_id, a.camera_id, a.person_id) for a in response.appearances} == {
        ('r2', 'front', 'person-4'), ('r3', 'front', 'person-9')}
    similarities = [a.best.similarity for a in response.appearances]
    assert similarities == sorted(similarities, reverse=True) and min(similarities) > 0.91
    for appearance in response.appearances:
        thumbnail = cv2.imdecode(np.frombuffer(bytes(appearance.thumbnail.data), np.uint8),
                                 cv2.IMREAD_COLOR)
        assert thumbnail.shape[1] == 160
    assert 0 < response.elapsed < 30.0
    # Every robot's answer was published as it came, each well under 64 KiB.
    assert spin_until(fleet.executor, lambda: len(fleet.answers(response.request_id)) == 3)
    for answer in fleet.answers(response.request_id):
        assert answer.origin_robot_id == 'r1'
        assert len(serialize_message(answer)) < MAX_ANSWER_BYTES

    stranger = fleet.call('r1', 'fleet_search', Request(
        query_type=Request.QUERY_IMAGE, image=photo(faces_dir, 'biden.jpg'),
        window_width=0.0, timeout=30.0))
    assert stranger.result == Response.RESULT_NO_MATCH, stranger.message
    assert not stranger.appearances and sorted(stranger.answered) == ['r1', 'r2', 'r3']


def test_malformed_replayed_expired_and_flooding_requests(fleet: Fleet, obama):
    """Malformed requests are refused, a replay answered once, expired ones ignored.

    An asker beyond a robot's rate is refused; the fleet still answers afterwards.
    """
    short = fleet.ask([0.1] * 5)
    no_window = fleet.ask(obama, window_width=float('nan'))
    replayed = fleet.ask(obama)
    for _ in range(2):
        fleet.requests.publish(replayed)
    expired = fleet.ask(obama, deadline_s=-10.0)
    robots = ('r1', 'r2', 'r3')

    def answered(msg) -> set[str]:
        return {answer.robot_id for answer in fleet.answers(msg.request_id)}

    assert spin_until(fleet.executor, lambda: all(
        answered(msg) == set(robots) for msg in (short, no_window, replayed)), 30.0), (
            [[(a.robot_id, a.result, a.message[:60]) for a in fleet.answers(msg.request_id)]
             for msg in (short, no_window, replayed)], fleet.tails())
    spin_until(fleet.executor, lambda: False, 2.0)   # late duplicates would show now
    for msg, field in ((short, 'embedding'), (no_window, 'window')):
        for answer in fleet.answers(msg.request_id):
            assert answer.result == FleetCode.INVALID_REQUEST and field in answer.message
    assert sorted(a.robot_id for a in fleet.answers(replayed.request_id)) == list(robots)
    assert {a.robot_id: a.result for a in fleet.answers(replayed.request_id)} == {
        'r1': FleetCode.NO_MATCH, 'r2': FleetCode.OK, 'r3': FleetCode.OK}
    assert not fleet.answers(expired.request_id)

    # A flood (within the depth of the request topic's reader queue, which drops the oldest).
    flood = [fleet.ask(obama, origin='spammer') for _ in range(15)]

    def codes(robot: str) -> list[int]:
        return [answer.result for msg in flood for answer in fleet.answers(msg.request_id)
                if answer.robot_id == robot]

    # Per robot: a burst of searches, then as many refusals (themselves rate limited).
    assert spin_until(fleet.executor, lambda: all(
        len(codes(robot)) >= 2 * DEFAULT_PEER_BURST for robot in robots), 30.0)
    spin_until(fleet.executor, lambda: False, 2.0)
    for robot in robots:
        got = codes(robot)
        searched = [code for code in got if code != FleetCode.RATE_LIMITED]
        assert len(searched) <= DEFAULT_PEER_BURST + 1, (robot, got)
        assert FleetCode.RATE_LIMITED in got and len(got) < len(flood), (robot, got)

    after = fleet.call('r1', 'fleet_search', Request(
        query_type=Request.QUERY_EMBEDDING, embedding=obama, window_width=0.0, timeout=20.0))
    assert after.result == Response.RESULT_OK and sorted(after.answered) == list(robots)


def test_enrolled_name_reaches_a_robot_started_later(fleet: Fleet, faces_dir: Path, obama):
    """A name enrolled on r1 reaches r2 and r4 (started later); forgotten, it goes everywhere.

    r4 can ask the fleet by the name; r2's forgetting withdraws it on every robot, and the
    histories that hold the face forget it: r3's at once, r4's once it is started.
    """
    enrolled = fleet.call('r1', 'enroll_person', EnrollPerson.Request(
        name='barack', image=photo(faces_dir, 'obama2.jpg')))
    assert enrolled.result == EnrollPerson.Response.RESULT_OK, enrolled.message
    assert len(enrolled.embedding) == 128 and enrolled.known_people == 1

    def names(robot: str) -> set[str]:
        return {p.person_id for p in fleet.known[robot].people} if robot in fleet.known else set()

    assert spin_until(fleet.executor, lambda: names('r2') == {'barack'}, 20.0)
    fleet.start('r4', history=False)
    fleet.wait_for()
    assert spin_until(fleet.executor, lambda: names('r4') == {'barack'}, 20.0)
    entry = fleet.known['r4'].people[0]
    assert entry.action == EmbeddingSync.ACTION_ENROLL and entry.robot_id == 'r1'
    np.testing.assert_allclose(entry.embedding, enrolled.embedding, atol=1e-6)

    # An enrolled name is a person id on every robot: r4, with no history, asks by it, at
    # once (r4 waits until the others' request readers have matched its new writer).
    found = fleet.call('r4', 'fleet_search', Request(
        query_type=Request.QUERY_PERSON_ID, person_id='barack', window_width=0.0,
        timeout=20.0))
    assert found.result == Response.RESULT_OK, found.message
    assert {a.robot_id for a in found.appearances} == {'r2', 'r3'}, found.message
    assert sorted(found.answered) == ['r1', 'r2', 'r3']

    refusals = {
        EnrollPerson.Response.RESULT_INVALID_REQUEST: [
            EnrollPerson.Request(name='', embedding=enrolled.embedding),
            EnrollPerson.Request(name='x/y', embedding=enrolled.embedding),
            EnrollPerson.Request(name='two', person_id='person-5',
                                 embedding=enrolled.embedding),
            EnrollPerson.Request(name='none'),
            EnrollPerson.Request(name='short', embedding=[1.0, 2.0])],
        EnrollPerson.Response.RESULT_UNKNOWN_PERSON: [
            EnrollPerson.Request(name='nobody', person_id='person-404')],
        EnrollPerson.Response.RESULT_NO_FACE: [
            EnrollPerson.Request(name='blank', image=bgr_to_image(np.zeros((200, 200, 3),
                                                                           np.uint8)))],
    }
    for code, requests in refusals.items():
        for request in requests:
            response = fleet.call('r2', 'enroll_person', request)
            assert response.result == code, (request.name, response.message)
    promoted = fleet.call('r2', 'enroll_person', EnrollPerson.Request(
        name='alex', person_id='person-5'))
    assert promoted.result == EnrollPerson.Response.RESULT_OK, promoted.message
    everyone = ('r1', 'r2', 'r3', 'r4')
    assert spin_until(fleet.executor, lambda: all(
        names(robot) == {'alex', 'barack'} for robot in everyone), 20.0)

    # What frame_history's forget_person announces: r2 forgot barack.
    forgotten = fleet.probe.create_publisher(EmbeddingSync, '/r2/person_forgotten',
                                             FORGOTTEN_QOS)
    assert spin_until(fleet.executor, lambda: forgotten.get_subscription_count() > 0)
    forgotten.publish(EmbeddingSync(header=Header(stamp=ns_to_time(time.time_ns())),
                                    action=EmbeddingSync.ACTION_WITHDRAW, person_id='barack',
                                    embedding=enrolled.embedding))
    assert spin_until(fleet.executor, lambda: all(
        names(robot) == {'alex'} for robot in everyone), 20.0)
    deadline = time.monotonic() + 30.0
    while fleet.seen_by(obama) != {'r2'} and time.monotonic() < deadline:
        time.sleep(1.0)
    assert fleet.seen_by(obama) == {'r2'}, fleet.tails()   # r2's own history is its own
    assert spin_until(fleet.executor, lambda: 'not yet forgotten' in fleet.status['r4'].message,
                      5 * LEASE_S), fleet.status['r4'].message
    fleet.start_history('r4')   # it holds the face: its fleet node has it forgotten now
    fleet.wait_for()
    assert spin_until(fleet.executor, lambda: fleet.status['r4'].level == DiagnosticStatus.OK,
                      60.0), fleet.status['r4'].message + fleet.tails()
    assert fleet.seen_by(obama) == {'r2'}, fleet.tails()
    withdrawn = fleet.call('r4', 'enroll_person', EnrollPerson.Request(name='alex',
                                                                       withdraw=True))
    assert withdrawn.result == EnrollPerson.Response.RESULT_OK and withdrawn.known_people == 0
    assert spin_until(fleet.executor, lambda: all(
        not names(robot) for robot in everyone), 20.0)


def test_a_search_is_sent_once_a_robot_just_heard_can_hear_it(fleet: Fleet, obama):
    """r9 is heard on the presence topic, and its request reader comes 0.5 s after r1 is asked.

    Discovery matches each pair of endpoints on its own, and a request is kept for no late
    reader: r1 sends its search once a reader per live robot has matched, so r9 gets it.
    (r9 is the probe; it never answers, and is listed as not answered.)
    """
    announce = fleet.probe.create_publisher(FleetPresence, '/fleet/presence',
                                            presence_qos(2 * LEASE_S))
    ghost = FleetPresence(robot_id='r9', state=FleetPresence.STATE_ONLINE, cameras=['front'],
                          lease=2 * LEASE_S)
    ghost.header.stamp = ns_to_time(time.time_ns())
    announce.publish(ghost)
    assert spin_until(fleet.executor, lambda: 'r9' in fleet.hears.get('r1', set()), 2 * LEASE_S)
    heard: list[FleetSearchRequest] = []
    late: list = []

    def subscribe() -> None:
        late.append(fleet.probe.create_subscription(
            FleetSearchRequest, '/fleet/search_request', heard.append, REQUEST_QOS))
        timer.cancel()

    timer = fleet.probe.create_timer(0.5, subscribe)
    try:
        response = fleet.call('r1', 'fleet_search', Request(
            query_type=Request.QUERY_EMBEDDING, embedding=obama, window_width=0.0,
            timeout=4.0))
    finally:
        fleet.probe.destroy_timer(timer)
        fleet.probe.destroy_publisher(announce)
        for subscription in late:
            fleet.probe.destroy_subscription(subscription)
    assert late, 'the reader came after the search: the test tests nothing'
    assert [m.origin_robot_id for m in heard if m.request_id == response.request_id] == ['r1']
    assert 'r9' in response.not_answered, response.message
    assert spin_until(fleet.executor, lambda: 'r9' not in fleet.hears['r1'], 4 * LEASE_S)


def test_robot_killed_mid_search_is_not_waited_for(fleet: Fleet, obama):
    """r3 freezes before a search and is killed during it: it is listed as not answered.

    The answer comes back once r3's lease has run out, long before the timeout. r3 is frozen
    shortly after a presence of its own, so the lease runs out a known time after it was heard.
    """
    # The first presence read may have waited in the probe's queue while nothing spun (r1 got
    # it a second before: its lease ran out 1.0 s early in one loaded run); the next one
    # comes while the probe spins, so heard is when it arrived.
    for _ in range(2):
        previous = fleet.heard_at['r3']
        assert spin_until(fleet.executor, lambda: fleet.heard_at['r3'] > previous, 2 * LEASE_S)
    heard = fleet.heard_at['r3']
    # r3 sends to one reader after another: a stop right after the probe's copy could keep
    # r1's. A presence sent while r3 sleeps here only makes r1's wait longer.
    time.sleep(DELIVERY_S)
    processes = [node.process for node in fleet.runners['r3'].nodes]
    for process in processes:
        process.send_signal(signal.SIGSTOP)
    killer = threading.Timer(0.5, lambda: [process.kill() for process in processes])
    killer.start()
    asked = time.monotonic()
    response = fleet.call('r1', 'fleet_search', Request(
        query_type=Request.QUERY_EMBEDDING, embedding=obama, window_width=0.0, timeout=20.0))
    took = time.monotonic() - asked
    killer.join()
    assert response.result == Response.RESULT_OK, response.message
    assert response.not_answered == ['r3'] and 'r3' not in response.answered
    assert {'r1', 'r2', 'r4'} <= set(response.answered)
    assert {a.robot_id for a in response.appearances} == {'r2'}
    # r1 heard r3's last presence when the probe did or later, give or take delivery.
    assert LEASE_S - (asked - heard) - 0.5 < took < 12.0, (took, asked - heard)


def test_a_robot_given_another_ones_id_is_reported_by_both(fleet: Fleet):
    """r2's configuration copied onto a new robot: robot_id r2, a namespace of its own.

    Their person ids and answers would collide: both fleet nodes say so on /diagnostics
    within a lease, the others stay OK, and r2 is OK again once the copy is gone.
    """
    twin = GraphRunner(fleet.work / 'twin', None, 'r2_copy')
    twin.start('fleet', robot_id='r2', camera_id='front', presence_lease=LEASE_S,
               people_file=str(fleet.work / 'twin' / 'people.json'))

    def level(namespace: str) -> bytes | None:
        status = fleet.status.get(namespace)
        return None if status is None else status.level

    try:
        assert spin_until(fleet.executor, lambda: all(
            level(ns) == DiagnosticStatus.ERROR for ns in ('r2', 'r2_copy')), 5 * LEASE_S), (
            fleet.tails() + twin.tail())
        assert 'another robot announces robot_id r2' in fleet.status['r2'].message
        assert level('r1') == DiagnosticStatus.OK, fleet.status['r1'].message
    finally:
        codes = twin.stop()
    assert codes == {'fleet': 0}, twin.tail()
    assert spin_until(fleet.executor, lambda: level('r2') == DiagnosticStatus.OK, 3 * LEASE_S)


def late_joiner_gets(fleet: Fleet, gids: set[bytes], count: int) -> list[EmbeddingSync]:
    """Return the /fleet/people samples a new reader gets from the writers gids.

    Waits for count of them, 10 s at most.
    """
    kept: list[EmbeddingSync] = []

    def take(msg: EmbeddingSync, info: dict) -> None:
        if bytes(info['publisher_gid']['data']) in gids:
            kept.append(msg)

    # Deep enough for every robot's writer history at once: transient local sends them all.
    late = fleet.probe.create_subscription(EmbeddingSync, '/fleet/people', take,
                                           people_qos(8 * outbox_depth(DEFAULT_MAX_PEOPLE)))
    try:
        spin_until(fleet.executor, lambda: len(kept) >= count, 10.0)
    finally:
        fleet.probe.destroy_subscription(late)
    return kept


def test_a_withdrawn_face_leaves_file_and_writer_after_its_age(fleet: Fleet):
    """A robot keeps a forgotten face for withdrawn_face_age only (4 s for r5).

    Then its roster file has the name only, and so has what its /fleet/people writer keeps
    for late joiners (with the face before). Restarted, r5 hears its
    history's announcement again (transient local): it is no news, the face stays gone.
    r5's history keeps faces a day (max_age): its fleet node warns that 4 s is too short.
    """
    runner = GraphRunner(fleet.work / 'r5', None, 'r5')
    fleet.runners['r5'] = runner
    fleet.start_history('r5')
    people_file = fleet.work / 'r5' / 'people.json'
    parameters = dict(robot_id='r5', camera_id='front', presence_lease=LEASE_S,
                      people_file=str(people_file), withdrawn_face_age=4.0,
                      max_people=R5_MAX_PEOPLE)
    runner.start('fleet', **parameters)

    def ghost() -> tuple[int, int] | None:
        """Return (face values, stamp) of the ghost's record in r5's roster file, if any."""
        if not people_file.exists():
            return None
        saved = {r['person_id']: r for r in json.loads(people_file.read_text())['people']}
        record = saved.get('ghost')
        return None if record is None else (len(record['embedding']), record['stamp_ns'])

    def writers() -> set[bytes]:
        return {bytes(info.endpoint_gid) for info in
                fleet.probe.get_publishers_info_by_topic('/fleet/people')
                if info.node_namespace == '/r5'}

    try:
        forgotten = fleet.probe.create_publisher(EmbeddingSync, '/r5/person_forgotten',
                                                 FORGOTTEN_QOS)
        assert spin_until(fleet.executor, lambda: forgotten.get_subscription_count() > 0
                          and writers(), 30.0), runner.tail()
        face = np.random.default_rng(5).normal(size=128)
        forgot_at = time.time_ns()
        forgotten.publish(EmbeddingSync(header=Header(stamp=ns_to_time(forgot_at)),
                                        action=EmbeddingSync.ACTION_WITHDRAW,
                                        person_id='ghost',
                                        embedding=(face / np.linalg.norm(face)).tolist()))
        assert spin_until(fleet.executor, lambda: ghost() == (128, forgot_at), 10.0), (
            runner.tail())
        assert spin_until(fleet.executor, lambda: ghost() == (0, forgot_at),
                          4.0 + 3 * LEASE_S), runner.tail()
        assert spin_until(fleet.executor, lambda: 'withdrawn faces past withdrawn_face_age '
                          'dropped' in runner.tail(), 10.0), runner.tail()
        kept = late_joiner_gets(fleet, writers(), outbox_depth(R5_MAX_PEOPLE))
        assert 'ghost' in {msg.person_id for msg in kept}
        assert not [msg for msg in kept if msg.person_id == 'ghost' and len(msg.embedding)]
        assert len(kept) == outbox_depth(R5_MAX_PEOPLE)   # all the writer keeps
        assert spin_until(fleet.executor, lambda: 'r5' in fleet.status and (
            'withdrawn_face_age (4 s) is below this robot\'s frame_history max_age (86400 s)'
            in fleet.status['r5'].message), 60.0), runner.tail()
        assert fleet.status['r5'].level == DiagnosticStatus.WARN
        assert 'withdrawn_face_age' not in fleet.status['r1'].message, 'the default: max_age'
        assert runner.stop() == {'fleet': 0, 'frame_history': 0}, runner.tail()
        runner.start('fleet', **parameters)
        assert spin_until(fleet.executor, lambda: forgotten.get_subscription_count() > 0
                          and writers(), 30.0), runner.tail()
        spin_until(fleet.executor, lambda: False, 3.0)   # the announcement, heard again
        assert ghost() == (0, forgot_at), runner.tail()
    finally:
        codes = runner.stop()
        del fleet.runners['r5']
    assert codes == {'fleet': 0}, runner.tail()


def test_constants_are_the_cores():
    """Result codes and actions of the messages are the core's, name by name."""
    for code in FleetCode:
        assert getattr(Response, f'RESULT_{code.name}') == code
    assert len([n for n in dir(Response) if n.startswith('RESULT_')]) == len(FleetCode)
    for kind, count in ((FleetSearchResult, 9), (EnrollPerson.Response, 5)):
        names = [name for name in dir(kind) if name.startswith('RESULT_')]
        assert len(names) == count and all(
            getattr(kind, name) == FleetCode[name[len('RESULT_'):]] for name in names)
    assert (EmbeddingSync.ACTION_ENROLL, EmbeddingSync.ACTION_WITHDRAW) == (ENROLL, WITHDRAW)
    # FleetSearch asks what BacktrackSearch asks, field by field, plus its timeout.
    fields = FleetSearch.Request.get_fields_and_field_types()
    assert BacktrackSearch.Request.get_fields_and_field_types().items() <= fields.items()
    assert set(fields) - set(BacktrackSearch.Request.get_fields_and_field_types()) == {
        'timeout'}
    for name in dir(BacktrackSearch.Request):
        if name.startswith('QUERY_'):
            assert getattr(Request, name) == getattr(BacktrackSearch.Request, name)
    assert Request().window_width == BacktrackSearch.Request().window_width
    assert Request().timeout == DEFAULT_TIMEOUT_S
