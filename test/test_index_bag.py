"""index_bag: rosbag2 MCAP recordings indexed offline into a history that answers searches.

Two recordings of the same made-up scene (Obama in view 3 s, nobody 1 s, Biden 3 s, at 10
frames a second): one of raw images written with the package's own MCAP writer (the history's
SegmentWriter), one of JPEG CompressedImages written by the `rosbags` rosbag2 writer (a bag
folder with metadata.yaml, as `ros2 bag record -s mcap` makes). Each is indexed by the real
command (YOLOv8n, HOG + dlib), then searched as frame_history searches.
"""

import json
from pathlib import Path
import stat

import cv2
import numpy as np
import pytest
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_typestore, Stores
from sensor_msgs.msg import CompressedImage

from facetrack_ros import index_bag
from facetrack_ros.conversions import bgr_to_compressed, bgr_to_image, ns_to_time
from facetrack_ros.core.dequantize import cached_float_model
from facetrack_ros.core.face import DlibResNetEmbedder, FaceAnalyzer, FaceDetector
from facetrack_ros.core.history import (FrameHistory, HistorySearch, message_definition,
                                        QueryKind, SearchCode, SearchQuery, SegmentWriter,
                                        SerializedMessage)
from facetrack_ros.core.private_files import FileModes
from facetrack_ros.core.tracker_state import highest_sequence
from face_frames import letterbox

START_NS = 1_700_000_000 * 10**9
PERIOD_NS = 100_000_000   # 10 frames a second
#: (photo, frames): who is in view, in order; None is an empty frame.
SCENE = (('obama.jpg', 30), (None, 10), ('biden.jpg', 30))
TOPIC = '/r9/image_raw'


def _scene(faces_dir: Path) -> list[tuple[int, np.ndarray]]:
    """Return (stamp [ns], BGR frame) of SCENE."""
    frames = []
    for photo, count in SCENE:
        image = (letterbox(cv2.imread(str(faces_dir / photo))) if photo
                 else np.zeros((360, 640, 3), np.uint8))
        frames += [image] * count
    return [(START_NS + i * PERIOD_NS, frame) for i, frame in enumerate(frames)]


def _stamped(msg, stamp_ns: int):
    msg.header.stamp = ns_to_time(stamp_ns)
    msg.header.frame_id = 'cam9_optical_frame'
    return msg


@pytest.fixture(scope='module')
def model(shared_dir, tmp_path_factory) -> Path:
    """Return the shared YOLOv8n as a float .pt."""
    return cached_float_model(shared_dir / 'models' / 'yolov8n_int8.onnx',
                              tmp_path_factory.mktemp('models'))


@pytest.fixture(scope='module')
def faces_dir(shared_dir) -> Path:
    """Return the labelled photos."""
    return shared_dir / 'data' / 'faces'


@pytest.fixture(scope='module')
def own_mcap(faces_dir, tmp_path_factory) -> Path:
    """Return one .mcap of raw Images written by the package's own MCAP writer."""
    path = tmp_path_factory.mktemp('own') / 'scene.mcap'
    writer = SegmentWriter(path, 'r9')
    definition = message_definition('sensor_msgs/msg/Image')
    for stamp_ns, frame in _scene(faces_dir):
        writer.write(SerializedMessage(TOPIC, 'sensor_msgs/msg/Image', definition,
                                       serialize_message(_stamped(bgr_to_image(frame),
                                                                  stamp_ns)), stamp_ns))
    writer.close()
    return path


@pytest.fixture(scope='module')
def rosbags_bag(faces_dir, tmp_path_factory) -> tuple[Path, dict[int, bytes]]:
    """Return a rosbag2 folder of JPEG CompressedImages by the rosbags writer, and the JPEGs."""
    path = tmp_path_factory.mktemp('rosbags') / 'patrol_7'
    jpegs = {}
    typestore = get_typestore(Stores.ROS2_KILTED)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection(f'{TOPIC}/compressed',
                                           'sensor_msgs/msg/CompressedImage', typestore=typestore)
        for stamp_ns, frame in _scene(faces_dir):
            msg = _stamped(bgr_to_compressed(frame, quality=90), stamp_ns)
            jpegs[stamp_ns] = bytes(msg.data)
            writer.write(connection, stamp_ns, serialize_message(msg))
    return path, jpegs


def _search(history_dir: Path, photo: np.ndarray) -> list:
    """Search the history for the largest face of photo, as frame_history does; appearances."""
    with FrameHistory(history_dir, robot_id='offline', background=False) as history:
        outcome = HistorySearch(history, FaceAnalyzer(FaceDetector('hog'), DlibResNetEmbedder())
                                ).search(SearchQuery(kind=QueryKind.IMAGE, image=photo,
                                                     window_s=0.0))
    assert outcome.code in (SearchCode.OK, SearchCode.NO_MATCH), outcome.message
    return outcome.appearances


def _check_history(history_dir: Path, faces_dir: Path, prefix: str) -> None:
    """Obama's own other photo finds him in his 3 s only; a stranger finds no one."""
    assert stat.S_IMODE(history_dir.stat().st_mode) == 0o700
    found = _search(history_dir, cv2.imread(str(faces_dir / 'obama2.jpg')))
    assert found, 'Obama was indexed and found by another photo of him'
    best = found[0]
    assert best.person_id.startswith(f'{prefix}-') and best.camera_id == 'cam9'
    obama_end = START_NS + (SCENE[0][1] - 1) * PERIOD_NS
    assert START_NS <= best.first_seen_ns <= best.last_seen_ns <= obama_end, best
    assert all(a.person_id == best.person_id for a in found), found
    assert not _search(history_dir, cv2.imread(str(faces_dir / 'alex-lacamoire.png')))


def test_own_mcap_of_raw_images_is_indexed_and_searchable(own_mcap, model, faces_dir,
                                                          tmp_path, capsys):
    """A single .mcap file of sensor_msgs/Image: every frame processed, faces findable."""
    out = tmp_path / 'history'
    code = index_bag.main([str(own_mcap), '--history-dir', str(out), '--model', str(model),
                           '--camera-id', 'cam9'])
    printed = capsys.readouterr().out
    assert code == 0, printed
    frames = sum(count for _, count in SCENE)
    assert f'{TOPIC}: {frames} frames' in printed, printed
    _check_history(out, faces_dir, 'scene')


def test_rosbags_bag_of_jpegs_keeps_them_unchanged(rosbags_bag, model, faces_dir, tmp_path,
                                                   capsys):
    """A rosbag2 folder by rosbags: JPEGs stored as recorded (never re-encoded), searchable."""
    bag, jpegs = rosbags_bag
    out = tmp_path / 'history'
    code = index_bag.main([str(bag), '--history-dir', str(out), '--model', str(model),
                           '--camera-id', 'cam9', '--robot-id', 'r9'])
    assert code == 0, capsys.readouterr()
    with FrameHistory(out, robot_id='r9') as history:
        stored = history.store.frames_in_range(START_NS, START_NS + 10**10, limit=100,
                                               camera_id='cam9')
    assert len(stored) >= 7, 'store_rate (10 Hz) keeps a frame a second at least'
    assert all(frame.data == jpegs[frame.stamp_ns] for frame in stored)
    _check_history(out, faces_dir, 'r9')


def test_bad_recordings_are_refused_with_the_reason(own_mcap, tmp_path, capsys):
    """Not MCAP, no such topic, an empty folder: exit code 2 and what to do; nothing written."""
    (tmp_path / 'old.db3').write_bytes(b'SQLite format 3\0')
    (tmp_path / 'empty').mkdir()
    cases = {
        (str(tmp_path / 'old.db3'),): 'not an MCAP file',
        (str(tmp_path / 'empty'),): 'holds no .mcap file',
        (str(own_mcap), '--topic', '/nothing'): f"its image topics: ['{TOPIC}']",
        (str(tmp_path / 'missing'),): 'does not exist',
    }
    for arguments, reason in cases.items():
        out = tmp_path / 'history'
        assert index_bag.main([*arguments, '--history-dir', str(out)]) == 2
        assert reason in capsys.readouterr().err
        assert not out.exists()


def test_a_history_folder_in_use_is_refused_before_the_models_load(own_mcap, tmp_path, capsys):
    """A frame_history serving the folder holds it: index_bag exits 2 naming the holder.

    The model it is given is missing and required: loaded first, it would be refused for that.
    """
    out = tmp_path / 'history'
    params = tmp_path / 'params.yaml'
    params.write_text('/**/detector:\n  ros__parameters:\n    require_model: true\n')
    with FrameHistory(out, robot_id='r1'):
        assert index_bag.main([str(own_mcap), '--history-dir', str(out), '--params-file',
                               str(params), '--model', str(tmp_path / 'never_loaded.pt')]) == 2
    err = capsys.readouterr().err
    assert 'history.lock is held by the history of r1' in err and 'never_loaded' not in err


@pytest.mark.parametrize('kind, text', [
    (index_bag.IdSequences, '[1]'), (index_bag.IdSequences, 'not json'),
    (index_bag.IndexedRecordings, '{"a": 1}'), (index_bag.IndexedRecordings, '[{"camera": 1}]')])
def test_its_own_files_damaged_are_refused_saying_what_to_do(kind, text, tmp_path):
    """index_bag's id and recording files that do not parse end the run (BagError).

    None is overwritten; an absent one is an empty start.
    """
    path = tmp_path / 'record.json'
    modes = FileModes.shared_with_group(False)
    kind(path, modes)   # absent: nothing handed out or indexed yet
    path.write_text(text)
    with pytest.raises(index_bag.BagError, match=f'{path} is damaged .*; remove it'):
        kind(path, modes)
    assert path.read_text() == text


def _write_jpegs(path: Path, frames: list[tuple[int, bytes]], chunk_max_bytes: int) -> None:
    """Write CompressedImages (stamp [ns], JPEG bytes) to one .mcap file."""
    writer = SegmentWriter(path, 'r9', chunk_max_bytes=chunk_max_bytes)
    definition = message_definition('sensor_msgs/msg/CompressedImage')
    for stamp_ns, data in frames:
        msg = _stamped(CompressedImage(format='jpeg', data=data), stamp_ns)
        writer.write(SerializedMessage(f'{TOPIC}/compressed', 'sensor_msgs/msg/CompressedImage',
                                       definition, serialize_message(msg), stamp_ns))
    writer.close()


def test_damaged_recordings_lose_only_what_is_damaged(model, tmp_path, capsys):
    """A split bag of 12 files is read in its files' order, an unreadable frame is skipped.

    A file cut short (its recorder lost power) is indexed up to the cut. Before, the split
    bag's files came in name order (_10 before _2, time going back), the bad frame ended the
    run with a traceback, and the cut file raised from the MCAP reader.
    """
    jpeg = bytes(bgr_to_compressed(np.zeros((48, 64, 3), np.uint8)).data)
    split = tmp_path / 'split'
    split.mkdir()
    for index in range(12):
        _write_jpegs(split / f'split_{index}.mcap',
                     [(START_NS + index * 10**9, b'not a jpeg' if index == 5 else jpeg)],
                     1024 * 1024)
    assert index_bag.main([str(split), '--history-dir', str(tmp_path / 'h1'),
                           '--model', str(model)]) == 0
    out, err = capsys.readouterr()
    assert '11 frames (11.0 s of recording)' in out and '1 unreadable frames skipped' in out
    assert f'frame at {START_NS / 1e9 + 5:.3f} s skipped' in err, err
    cut = tmp_path / 'cut.mcap'
    _write_jpegs(cut, [(START_NS + i * PERIOD_NS, jpeg) for i in range(40)], 4096)
    cut.write_bytes(cut.read_bytes()[:cut.stat().st_size * 2 // 3])
    assert index_bag.main([str(cut), '--history-dir', str(tmp_path / 'h2'),
                           '--model', str(model)]) == 0
    out, err = capsys.readouterr()
    assert 'is cut short after' in err and 'indexed up to there' in err, err
    assert int(out.split(' frames (')[0].rsplit(' ', 1)[1]) >= 15, out


def test_two_recordings_of_one_robot_never_share_a_person_id(own_mcap, rosbags_bag, model,
                                                             tmp_path, capsys):
    """Indexed into one history under one robot id, a second recording's people get new ids.

    Before, every run numbered from -000001 again: Obama of one day and Biden of the next
    were one person, and forgetting one deleted the other's faces. A recording that overlaps
    one indexed before of the camera (the same scene written by another tool, as its
    compressed topic; a part of it) is refused: it would be stored twice, as other people.
    """
    out = tmp_path / 'history'

    def index(recording: Path, *options: str) -> int:
        return index_bag.main([str(recording), '--history-dir', str(out), '--model', str(model),
                               '--robot-id', 'r9', *options])

    def ids() -> set[str]:
        with FrameHistory(out, robot_id='r9', background=False) as history:
            return set(history.person_ids())
    assert index(own_mcap) == 0, capsys.readouterr()
    first = ids()
    next_day = tmp_path / 'next_day.mcap'
    _write_jpegs(next_day, [(stamp + 86400 * 10**9, data)
                            for stamp, data in sorted(rosbags_bag[1].items())], 1 << 20)
    assert index(next_day) == 0, capsys.readouterr()
    both = ids()
    assert first and first < both and len(both) == 2 * len(first), (first, both)
    # People announced without a face are in no index: the folder keeps the numbers given.
    given = out / index_bag.ID_SEQUENCES_FILE
    assert json.loads(given.read_text())['r9'] >= highest_sequence(both, 'r9')
    assert stat.S_IMODE(given.stat().st_mode) == 0o600
    files_before = sorted(out.rglob('*'))
    capsys.readouterr()
    part = tmp_path / 'part.mcap'
    _write_jpegs(part, [(stamp + 86400 * 10**9, data)
                        for stamp, data in sorted(rosbags_bag[1].items())[10:20]], 1 << 20)
    for again, indexed_before in ((rosbags_bag[0], own_mcap), (part, next_day)):
        assert index(again) == 2
        assert f'overlaps {indexed_before} (' in capsys.readouterr().err
    assert sorted(out.rglob('*')) == files_before
    recordings = out / index_bag.RECORDINGS_FILE
    assert stat.S_IMODE(recordings.stat().st_mode) == 0o600
    assert [r['topic'] for r in json.loads(recordings.read_text())] == [
        TOPIC, f'{TOPIC}/compressed']
    assert index(part, '--again') == 0, capsys.readouterr()   # its data gone, say
