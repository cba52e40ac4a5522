"""End to end: the node processes over real DDS on the shared videos with the real models.

The graph (camera, detector with the shared YOLOv8n rebuilt as a float .pt, face_embedding
with dlib, tracker, frame_history) runs as processes on each video in real time; the tests
read what it publishes, the event log it writes and the history it serves.
"""

from pathlib import Path

import cv2
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
import numpy as np
import pytest
import rclpy

from facetrack_ros.conversions import bgr_to_image, time_to_sec
from facetrack_ros.core.dequantize import cached_float_model
from facetrack_ros.core.embedding import cosine_similarity
from facetrack_ros.core.event_log import read_events
from facetrack_ros.core.face import DlibResNetEmbedder, FaceAnalyzer, FaceDetector
from facetrack_ros.core.tracking import EventKind, EventReason, TrackerConfig
from facetrack_ros.msg import PersonEvent
from facetrack_ros.srv import BacktrackSearch
from graph_fixture import run_graph, stop_graph, video_thumbnails
from rostest_utils import call_service

pytestmark = pytest.mark.e2e
IN_KINDS = (PersonEvent.PERSON_IN, PersonEvent.PERSON_RETURNED)

# hamilton_clip.mp4 (29.97 FPS), shots found by frame differences and checked frame by frame
# on contact sheets: S1 wide stage 0-19 (Lin-Manuel Miranda standing, Alex Lacamoire at the
# piano), S2 extreme close-up of Lacamoire in profile 20-81, S3 Miranda alone 82-210, S4 the
# audience 211-274. Clearly identifiable people by eye: 6 (Miranda, Lacamoire and four audience
# members in S4); a few more blurred partial figures in the background of S2 and S4.
HAMILTON_PEOPLE_BY_EYE = 6
#: The shots [frame index], two frames inside each cut; S1 shows Miranda and Lacamoire.
SHOTS = {'S2 Lacamoire': (22, 79), 'S3 Miranda': (84, 208), 'S4 audience': (213, 272)}
S3_MIRANDA = SHOTS['S3 Miranda']
# pedestrians_vtest.avi frames 0-199 (10 FPS), every 5th frame tracked person by person on
# contact sheets and checked against per-frame counts (3 at frame 0, 9 at most around 135):
# 9 distinct pedestrians, one of them 20-26 px tall on the far path.
PEDESTRIANS_BY_EYE = 9
# Without usable faces (they are 20-75 px tall) identity rests on ByteTrack, motion re-linking
# and the body cue; where ByteTrack swaps people in the crowd, the cue takes the ids off the
# swapped boxes and some people get new ids: 13 to 14 new ids over 4 runs here at 6.1-8.3
# detections a second with other work on the two cores, 3 to 12 in replays at 1 to 10
# (README, known limits). At the lowest rates walkers are seen in too few frames to be
# announced; the three people in view from the first frame for seconds always are.
PEDESTRIAN_MIN_IDS = 3
PEDESTRIAN_MAX_IDS = 2 * PEDESTRIANS_BY_EYE
#: Fragments of partly visible audience members in S4 get ids of their own: 6 to 7 new ids
#: over 4 runs at 6-13.6 detections a second, 2 to 7 in replays at 2 to 30 (README).
HAMILTON_MAX_IDS = HAMILTON_PEOPLE_BY_EYE + 3
#: Detections a second from which ids are kept across the Hamilton clip's cuts.
CUTS_MIN_RATE = 2.0
#: A track in view this long has its identity decided, at any detection rate [s].
DECIDED_AFTER = TrackerConfig().identity_max_wait_s

#: A lower search threshold, for likely rather than certain matches [cosine].
LIKELY_MATCH = 0.9
#: S3 is one shot (the camera pans and zooms, no cut): Miranda keeps one id through it. Before
#: contradiction_similarity his own faces (0.904-0.93 to his first one) split his track in 3
#: of 4 graph runs; since, one id in 5 of 5 graph runs (2 with both cores hogged) and in every
#: replay from 2 to 30 detections a second (scripts/replay_tracker.py).
MIRANDA_MAX_IDS = 1


@pytest.fixture(scope='module')
def ros_context_module():
    """Yield one rclpy context for this module's graph runs."""
    context = rclpy.context.Context()
    rclpy.init(context=context)
    yield context
    context.try_shutdown()


@pytest.fixture(scope='module')
def model(shared_dir, tmp_path_factory) -> Path:
    """Return the shared YOLOv8n rebuilt as a float .pt (dequantize_yolo).

    The int8 ONNX file detects 3-4 frames a second here (fewer when other work shares the two
    cores), too few to see the 2 s shots of the Hamilton clip reliably; the float rebuild of
    the same weights detects 10-15.
    """
    return cached_float_model(shared_dir / 'models' / 'yolov8n_int8.onnx',
                              tmp_path_factory.mktemp('models'))


@pytest.fixture(scope='module')
def hamilton(shared_dir, model, ros_context_module, tmp_path_factory):
    """Run the graph once on the Hamilton clip; keep it up for the history tests."""
    video = shared_dir / 'data' / 'video' / 'hamilton_clip.mp4'
    # YuNet finds the small stage faces HOG misses (scripts/bench_face_detectors.py): with HOG
    # only 2-6 faces of the clip reach the tracker, too few for the checks of Miranda below.
    run = run_graph(video, model, tmp_path_factory.mktemp('hamilton'), ros_context_module,
                    'hamilton', yunet=shared_dir / 'models' / 'yunet_s_640_640.onnx')
    run.frames = video_thumbnails(video)
    yield run
    stop_graph(run)


@pytest.fixture(scope='module')
def pedestrians(shared_dir, model, ros_context_module, tmp_path_factory):
    """Run the graph on frames 0-199 of the pedestrian video."""
    work = tmp_path_factory.mktemp('pedestrians')
    clip = work / 'first_200.avi'
    capture = cv2.VideoCapture(str(shared_dir / 'data' / 'video' / 'pedestrians_vtest.avi'))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*'MJPG'), 10, (480, 360))
    for _ in range(200):
        ok, frame = capture.read()
        assert ok
        writer.write(frame)
    writer.release()
    run = run_graph(clip, model, work, ros_context_module, 'pedestrians')
    stop_graph(run)
    return run


@pytest.fixture(scope='module')
def miranda_photo(shared_dir) -> np.ndarray:
    """Return the labelled photo of Lin-Manuel Miranda."""
    return cv2.imread(str(shared_dir / 'data' / 'faces' / 'lin-manuel-miranda.png'))


def _check_pairing(events: list[PersonEvent]) -> None:
    """Each person's events alternate IN (or RETURNED) and OUT, the first an IN, last an OUT."""
    by_person: dict[str, list[int]] = {}
    for event in events:
        by_person.setdefault(event.person_id, []).append(event.kind)
    for person, kinds in by_person.items():
        assert kinds[0] == PersonEvent.PERSON_IN, (person, kinds)
        assert all(k in IN_KINDS for k in kinds[0::2]), (person, kinds)
        assert all(k == PersonEvent.PERSON_OUT for k in kinds[1::2]), (person, kinds)
        assert kinds[-1] == PersonEvent.PERSON_OUT, (person, kinds)


def _new_persons(events: list[PersonEvent]) -> int:
    return sum(e.kind == PersonEvent.PERSON_IN for e in events)


def _undecided_tracks(run) -> list[tuple[int, float]]:
    """Return (track, clip time) of tracks shown without a person id though in view long enough.

    A track in view for DECIDED_AFTER (camera time) has had its PERSON_IN (or its face match)
    decided by the frame that reaches it, whatever the frame rate.
    """
    first_seen, undecided = {}, []
    for tracks in run.tracks:
        stamp = run.clip_time(tracks.header.stamp)
        for d in tracks.detections:
            first = first_seen.setdefault(d.track_id, stamp)
            if not d.person_id and stamp - first >= DECIDED_AFTER:
                undecided.append((d.track_id, round(stamp, 2)))
    return undecided


def test_hamilton_ids_are_stable_and_events_pair_up(hamilton):
    """Few ids, all closed with a reason; everyone in view long enough has one."""
    events = [(round(hamilton.clip_time(e.header.stamp), 2), EventKind(e.kind).name,
               EventReason(e.reason).name, e.person_id) for e in hamilton.events]
    assert 1 <= _new_persons(hamilton.events) <= HAMILTON_MAX_IDS, events
    assert not _undecided_tracks(hamilton)
    _check_pairing(hamilton.events)
    for event in hamilton.events:
        assert event.header.frame_id == 'stage_optical'
        assert (event.robot_id, event.camera_id) == ('test_robot', 'stage')
        assert event.person_id.startswith('test_robot-')
        if event.kind == PersonEvent.PERSON_OUT:
            assert 0.0 <= event.duration <= 10.0
            assert event.reason in (PersonEvent.REASON_LEFT_VIEW,
                                    PersonEvent.REASON_INPUT_STALLED), events
    # The clip ends with someone in view: the input stops, and so do the appearances.
    assert hamilton.events[-1].reason == PersonEvent.REASON_INPUT_STALLED, events


def _detection_rate(run) -> float:
    """Return how many frames a second the detector processed during the clip."""
    stamps = sorted({time_to_sec(t.header.stamp) for t in run.tracks})
    return (len(stamps) - 1) / max(stamps[-1] - stamps[0], 1e-9) if len(stamps) > 1 else 0.0


def _in_shot(run, stamp, shot: tuple[int, int]) -> bool:
    """Return whether stamp certainly showed a frame of the shot (first and last frame index)."""
    first, last = run.frame_span(stamp, run.frames)
    return shot[0] <= first and last <= shot[1]


def _persons_in(run, shot: tuple[int, int]) -> set[str]:
    """Return the person ids tracked during a shot."""
    return {d.person_id for t in run.tracks if _in_shot(run, t.header.stamp, shot)
            for d in t.detections if d.person_id}


def _timeline(run, shot: tuple[int, int]) -> list[tuple[int, list[tuple[int, str]]]]:
    """Return (frame index, [(track, person)]) at each change of the tracks during a shot."""
    changes, last = [], None
    for tracks in run.tracks:
        now = sorted((d.track_id, d.person_id) for d in tracks.detections)
        if _in_shot(run, tracks.header.stamp, shot) and now != last:
            changes.append((run.frame_span(tracks.header.stamp, run.frames)[0], now))
            last = now
    return changes


def _s3_persons(run) -> set[str]:
    """Return the person ids tracked during S3, where only Miranda is in view."""
    return _persons_in(run, S3_MIRANDA)


def test_ids_never_pass_across_camera_cuts(hamilton):
    """Lacamoire (S2), Miranda (S3) and the audience (S4) never share a person id.

    Issue 9, 3: ByteTrack carries a box across a cut; the body cue and faces take it off.
    Replays of the clip (scripts/replay_tracker.py) kept the shots apart in every replay from
    2 detections a second up, and in 9 to 11 of 12 at 1 to 1.6: below 2 a second (other work
    on the two cores) the check is skipped, saying so.
    """
    rate = _detection_rate(hamilton)
    if rate < CUTS_MIN_RATE:
        pytest.skip(f'{rate:.1f} detections/s: too few to keep ids across cuts (README)')
    shots = {name: _persons_in(hamilton, shot) for name, shot in SHOTS.items()}
    names = list(shots)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            assert not shots[first] & shots[second], shots


def _not_miranda(run) -> set[str]:
    """Return the ids of the people of S2 (Lacamoire) and S4 (the audience)."""
    return _persons_in(run, SHOTS['S2 Lacamoire']) | _persons_in(run, SHOTS['S4 audience'])


def _faces_of(run, person: str) -> list[np.ndarray]:
    """Return every face embedding the tracker attributed to person."""
    return [np.asarray(d.embedding) for f in run.faces for d in f.detections
            if d.person_id == person]


def test_miranda_is_never_merged_and_matches_his_photo(hamilton, miranda_photo):
    """S3 (Miranda alone, 4 s, one shot) is Miranda only, and his photo finds him.

    One id in S3 (issue 9: one person in view keeps one id), and
    test_ids_never_pass_across_camera_cuts checks that it is no one else's. His photo is closer
    to his stored faces than to anyone else's. (Whether it reaches the calibrated threshold
    varies from run to run: 30 % of photo-to-video genuine pairs fall below it, README "Face
    decision calibration".)
    """
    in_s3 = _s3_persons(hamilton)
    assert 1 <= len(in_s3) <= MIRANDA_MAX_IDS, (in_s3, _timeline(hamilton, S3_MIRANDA))
    faces = [face for person in in_s3 for face in _faces_of(hamilton, person)]
    assert faces, 'Miranda\'s face was embedded'
    photo = FaceAnalyzer(FaceDetector('hog'), DlibResNetEmbedder()).largest_face(miranda_photo)
    best = cosine_similarity(photo.embedding, np.stack(faces)).max()
    # Not Miranda: the people of S2 (Lacamoire) and S4 (the audience). S1 shows him too.
    not_him = _not_miranda(hamilton) - in_s3
    others = [np.asarray(d.embedding) for f in hamilton.faces for d in f.detections
              if d.person_id in not_him]
    if others:
        assert best > cosine_similarity(photo.embedding, np.stack(others)).max()


def test_event_log_holds_every_event_once(hamilton):
    """The JSONL log has each published event exactly once, as valid JSON records."""
    logged = [(r['kind'], r['person_id'], round(r['stamp'], 6))
              for r in read_events(hamilton.log_dir)]
    published = [(EventKind(e.kind).name, e.person_id, round(time_to_sec(e.header.stamp), 6))
                 for e in hamilton.events]
    assert sorted(logged) == sorted(published)
    assert len(set(logged)) == len(logged)


def test_pedestrian_ids_are_stable(pedestrians):
    """Nine pedestrians by eye: new ids within bounds, every IN closed by an OUT."""
    new = _new_persons(pedestrians.events)
    assert PEDESTRIAN_MIN_IDS <= new <= PEDESTRIAN_MAX_IDS, [
        (round(pedestrians.clip_time(e.header.stamp), 1), EventKind(e.kind).name, e.person_id)
        for e in pedestrians.events]
    assert not _undecided_tracks(pedestrians)
    _check_pairing(pedestrians.events)


def _search(run, request: BacktrackSearch.Request) -> BacktrackSearch.Response:
    client = run.node.create_client(BacktrackSearch, 'backtrack_search')
    assert client.wait_for_service(timeout_sec=10)
    response = call_service(run.executor, client, request)
    run.node.destroy_client(client)
    assert response is not None
    return response


def test_backtrack_finds_miranda_by_id_embedding_and_photo(hamilton, miranda_photo):
    """The history of the live graph answers all three kinds of query with his intervals."""
    Request = BacktrackSearch.Request
    in_s3 = _s3_persons(hamilton)
    # Asked at the calibrated default the search may find nothing: a studio photo against
    # small stage faces often scores below it (see test_miranda_keeps_one_id...). A user then
    # asks for likely matches: at 0.9 (about the median of genuine photo-video pairs with a
    # poor face, README "Face decision calibration") Miranda must come first.
    by_photo = _search(hamilton, Request(query_type=Request.QUERY_IMAGE,
                                         image=bgr_to_image(miranda_photo), window_width=0.0,
                                         min_similarity=LIKELY_MATCH))
    assert by_photo.result == BacktrackSearch.Response.RESULT_OK, by_photo.message
    best = by_photo.appearances[0]
    # Miranda's id: S3's, or S1's when his face carried it to the third shot.
    assert best.person_id not in _not_miranda(hamilton) - in_s3, best.person_id
    assert best.robot_id == 'test_robot'
    miranda = best.person_id
    first, last = (hamilton.frame_span(best.first_seen, hamilton.frames),
                   hamilton.frame_span(best.last_seen, hamilton.frames))
    # His sightings lie in S1 and S3 (to its last frame, 210), never in S2 or S4.
    assert first[0] <= last[1] and last[0] <= SHOTS['S3 Miranda'][1] + 2, (first, last)
    assert not _in_shot(hamilton, best.first_seen, SHOTS['S2 Lacamoire']), (first, last)

    by_id = _search(hamilton, Request(query_type=Request.QUERY_PERSON_ID, person_id=miranda,
                                      window_width=0.0))
    assert by_id.result == BacktrackSearch.Response.RESULT_OK
    assert by_id.appearances[0].person_id == miranda

    embedding = _faces_of(hamilton, miranda)[0].tolist()
    by_embedding = _search(hamilton, Request(query_type=Request.QUERY_EMBEDDING,
                                             embedding=embedding, window_width=0.0))
    assert by_embedding.appearances[0].person_id == miranda


def test_history_is_rosbag2_mcap_with_the_published_events(hamilton):
    """Once the nodes stop, the segments open with the mcap reader and decode (ros2 profile).

    It stops the module's Hamilton graph (segments are finished on shutdown), so it stays the
    last test of this file.
    """
    codes = stop_graph(hamilton)
    assert all(code == 0 for code in codes.values()), f'{codes}\n{hamilton.runner.tail()}'
    segments = sorted((hamilton.history_dir / 'segments').glob('*.mcap'))
    assert segments
    events, frames = [], 0
    for path in segments:
        with open(path, 'rb') as stream:
            reader = make_reader(stream, decoder_factories=[DecoderFactory()])
            assert reader.get_header().profile == 'ros2'
            for schema, channel, message, decoded in reader.iter_decoded_messages():
                assert schema.encoding == 'ros2msg' and channel.message_encoding == 'cdr'
                if schema.name == 'facetrack_ros/msg/PersonEvent':
                    events.append((decoded.kind, decoded.person_id, decoded.header.stamp.sec,
                                   decoded.header.stamp.nanosec, tuple(decoded.box)))
                elif schema.name == 'sensor_msgs/msg/CompressedImage':
                    frames += 1
                    assert decoded.header.frame_id == 'stage_optical'
                    assert message.log_time == (decoded.header.stamp.sec * 10**9
                                                + decoded.header.stamp.nanosec)
    published = [(e.kind, e.person_id, e.header.stamp.sec, e.header.stamp.nanosec,
                  tuple(e.box)) for e in hamilton.events]
    assert sorted(events) == sorted(published)
    # 9.2 s of video stored at most at the default 10 frames per second; when other work loads
    # the two cores, sensor-data QoS drops frames (54 seen).
    assert 45 <= frames <= 95
