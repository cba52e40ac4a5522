"""The camera node holds a recording until the pipeline reads it; live sources start at once.

A real camera process over DDS; the readers are real rclpy nodes of this test.
"""

from pathlib import Path
import signal

import cv2
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from rclpy import create_node
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from facetrack_ros.camera_node import END_OF_SOURCE, LATEST_FRAME_KEY, LATEST_FRAME_STAMP_KEY
from facetrack_ros.conversions import bgr_to_image, image_to_bgr
from facetrack_ros.graph_runner import GraphRunner
from facetrack_ros.parameters import image_qos_profile
from motion_jpeg import write_grey_motion_jpeg
from rostest_utils import spin_until

pytestmark = pytest.mark.ros
#: The camera's image QoS (best effort), read deeper than its depth 1: a reader that keeps only
#: the latest frame loses one whenever this test process stalls for a frame time.
QOS = image_qos_profile('sensor_data')
QOS.depth = 20
#: Grey levels of the test folder's images, in name order: each frame says which one it is.
LEVELS = (30, 90, 150, 210)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Write an image folder whose frames are told apart by their grey level."""
    path = tmp_path / 'frames'
    path.mkdir()
    for i, level in enumerate(LEVELS):
        assert cv2.imwrite(str(path / f'{i:03d}.png'), np.full((24, 32, 3), level, np.uint8))
    return path


@pytest.fixture
def graph(ros_context, repo_dir, tmp_path):
    """Yield (runner, executor, context); stop every process and node afterwards."""
    runner = GraphRunner(tmp_path / 'logs', str(repo_dir / 'config' / 'facetrack.yaml'))
    executor = SingleThreadedExecutor(context=ros_context)
    yield runner, executor, ros_context
    codes = runner.stop()
    for node in executor.get_nodes():
        node.destroy_node()
    executor.shutdown()
    assert all(code == 0 for code in codes.values()), codes


def _reader(name: str, executor, context) -> list[int]:
    """Create node `name` reading image_raw; return the grey levels it will receive."""
    node = create_node(name, context=context)
    executor.add_node(node)
    levels: list[int] = []
    node.create_subscription(Image, 'image_raw',
                             lambda m: levels.append(int(image_to_bgr(m)[0, 0, 0])), QOS)
    return levels


def test_a_folder_waits_for_its_nodes_and_starts_at_the_first_frame(graph, folder):
    """Nothing is published before every awaited node subscribes; frame 0 then comes first."""
    runner, executor, context = graph
    watcher = _reader('watcher', executor, context)
    camera = runner.start('camera', source=str(folder), fps=20.0,
                          wait_for_nodes=['late_reader', '/elsewhere/late_listener'],
                          wait_timeout=60.0)
    assert spin_until(executor, lambda: 'waiting up to 60 s for /late_reader, '
                      '/elsewhere/late_listener' in camera.log_path.read_text(),
                      timeout=30), runner.tail()
    late = _reader('late_reader', executor, context)
    assert not spin_until(executor, lambda: bool(watcher or late), timeout=1.5), 'held back'
    # A node that reads another topic (as the tracker reads detections) counts once it
    # subscribes; a node in another namespace is named absolutely.
    listener = create_node('late_listener', namespace='elsewhere', context=context)
    executor.add_node(listener)
    listener.create_subscription(Image, 'other_topic', lambda m: None, QOS)
    assert spin_until(executor, lambda: END_OF_SOURCE in camera.log_path.read_text(),
                      timeout=30), runner.tail()
    spin_until(executor, lambda: len(late) == len(LEVELS), timeout=2.0)
    # Frame 0 first, then the others in order (sensor-data QoS may drop one under load).
    assert late and late[0] == LEVELS[0] and late == [v for v in LEVELS if v in late], late
    log = camera.log_path.read_text()
    assert 'pipeline ready after' in log and 'wait_timeout' not in log, log


def test_a_number_of_unnamed_subscribers_is_awaited_too(graph, folder):
    """wait_for_subscribers counts image_raw readers whatever their names."""
    runner, executor, context = graph
    watcher = _reader('watcher', executor, context)
    camera = runner.start('camera', source=str(folder), fps=20.0, wait_for_nodes=['watcher'],
                          wait_for_subscribers=2, wait_timeout=60.0)
    probe = executor.get_nodes()[0]
    assert spin_until(executor, lambda: '2 image_raw subscribers' in camera.log_path.read_text()
                      and probe.count_publishers('image_raw') == 1, timeout=30), runner.tail()
    # The watcher alone is a named reader, but one of two.
    assert not spin_until(executor, lambda: bool(watcher), timeout=2.0), 'held back'
    other = _reader('viewer_1234', executor, context)
    assert spin_until(executor, lambda: other and watcher, timeout=30), runner.tail()
    assert watcher[0] == other[0] == LEVELS[0], 'both readers get the first frame'


def test_the_wait_is_bounded(graph, folder):
    """A node that never comes delays the recording by wait_timeout, with a warning."""
    runner, executor, context = graph
    watcher = _reader('watcher', executor, context)
    camera = runner.start('camera', source=str(folder), fps=20.0, loop=True,
                          wait_for_nodes=['absent_node'], wait_timeout=2.0)
    assert spin_until(executor, lambda: len(watcher) > 0, timeout=30), runner.tail()
    log = camera.log_path.read_text().splitlines()
    waiting = next(line for line in log if 'waiting up to 2 s for /absent_node' in line)
    warning = next(line for line in log if 'still not up' in line)
    assert '/absent_node still not up after 2 s (wait_timeout); playing without them' in warning
    # rcutils stamps [s] in the log lines: the warning comes after the full wait.
    assert _log_stamp(warning) - _log_stamp(waiting) >= 2.0


def test_diagnostics_name_the_latest_frame_and_its_stamp(graph, folder):
    """/diagnostics pairs the latest frame's position in the source with its header stamp.

    A reader that lost frames (best effort) numbers those it got from these pairs; looping
    does not restart the count.
    """
    runner, executor, context = graph
    node = create_node('watcher', context=context)
    executor.add_node(node)
    stamps: dict[int, int] = {}  # header stamp [us] -> grey level
    node.create_subscription(Image, 'image_raw', lambda m: stamps.update({
        (m.header.stamp.sec * 10**9 + m.header.stamp.nanosec) // 1000:
        int(image_to_bgr(m)[0, 0, 0])}), QOS)
    reports: dict[int, int] = {}  # frame position -> stamp [us]

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name == '/camera' and LATEST_FRAME_KEY in values:
                reports[int(values[LATEST_FRAME_KEY])] = round(
                    float(values[LATEST_FRAME_STAMP_KEY]) * 1e6)
    node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 10)
    runner.start('camera', source=str(folder), fps=4.0, loop=True, wait_for_nodes=['watcher'])
    assert spin_until(executor, lambda: len(reports) >= 3 and max(reports) >= len(LEVELS),
                      timeout=30), runner.tail()
    checked = 0
    for position, stamp in reports.items():
        received = stamps.get(stamp, stamps.get(stamp - 1, stamps.get(stamp + 1)))
        if received is not None:
            assert received == LEVELS[position % len(LEVELS)], (position, received)
            checked += 1
    assert checked >= 2, (reports, stamps)


def test_ctrl_c_during_the_wait_ends_the_camera_quietly(graph, folder):
    """Stopped while waiting, the camera exits 0 at once and reports no end of its source."""
    runner, executor, _ = graph
    camera = runner.start('camera', source=str(folder), wait_for_nodes=['absent_node'],
                          wait_timeout=600.0)
    assert spin_until(executor, lambda: 'waiting up to 600 s' in camera.log_path.read_text(),
                      timeout=30), runner.tail()
    camera.process.send_signal(signal.SIGINT)
    assert camera.process.wait(timeout=10) == 0
    log = camera.log_path.read_text()
    assert 'publishing' not in log and END_OF_SOURCE not in log, log


def _log_stamp(line: str) -> float:
    """Return the time stamp of an rcutils log line ("[INFO] [1796024176.725] [node]: ...")."""
    return float(line.split('] [')[1].split(']')[0])


def test_a_topic_relay_starts_at_once(graph):
    """A live source (here a relayed topic) does not wait for readers that are not there."""
    runner, executor, context = graph
    source = create_node('upstream', context=context)
    executor.add_node(source)
    publisher = source.create_publisher(Image, 'upstream_image', QOS)
    watcher = _reader('watcher', executor, context)
    camera = runner.start('camera', source='topic:upstream_image',
                          wait_for_nodes=['absent_node'], wait_timeout=600.0)

    def relayed() -> bool:
        publisher.publish(bgr_to_image(np.full((24, 32, 3), 77, np.uint8)))
        return bool(watcher)
    assert spin_until(executor, relayed, timeout=30), runner.tail()
    assert watcher[0] == 77
    assert 'waiting' not in camera.log_path.read_text()
    # An image the package cannot read goes out on no topic, with the reason logged. It carries
    # a stamp of its own: the good frames above may still be on their way out.
    unreadable_stamp = 99
    stamps: list[int] = []
    readers = [source.create_subscription(kind, topic,
                                          lambda m: stamps.append(m.header.stamp.sec), QOS)
               for topic, kind in (('camera_info', CameraInfo), ('image_raw', Image))]
    assert spin_until(executor, lambda: all(r.get_publisher_count() for r in readers),
                      timeout=10)
    for _ in range(10):
        unreadable = Image(encoding='yuv422_yuy2', width=32, height=24, step=64,
                           data=bytes(64 * 24))
        unreadable.header.stamp.sec = unreadable_stamp
        publisher.publish(unreadable)
        executor.spin_once(timeout_sec=0.05)
    assert spin_until(executor, lambda: 'relayed image skipped: unsupported encoding '
                      "'yuv422_yuy2'" in camera.log_path.read_text(), timeout=10)
    # A readable frame after them, on both topics, shows that the readers get what is sent.
    readable = bgr_to_image(np.full((24, 32, 3), 77, np.uint8))
    readable.header.stamp.sec = unreadable_stamp + 1
    assert spin_until(executor, lambda: publisher.publish(readable) or stamps.count(
        unreadable_stamp + 1) >= 2, timeout=10), stamps
    assert unreadable_stamp not in stamps, stamps


def test_the_detector_stream_is_the_frame_reduced_once_beside_its_full_size(graph, tmp_path):
    """image_detect: the frame at detect_size, same header as image_raw; camera_info: full size.

    image_raw is published to its readers as it is; only image_detect is reduced.
    """
    runner, executor, context = graph
    folder = tmp_path / 'large'
    folder.mkdir()
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[:, 160:] = 200          # a frame whose halves tell a resize from a crop
    assert cv2.imwrite(str(folder / '000.png'), frame)
    node = create_node('stream_reader', context=context)
    executor.add_node(node)
    received: dict[str, list] = {'image_raw': [], 'image_detect': [], 'camera_info': []}
    for topic in ('image_raw', 'image_detect'):
        node.create_subscription(Image, topic, received[topic].append, QOS)
    node.create_subscription(CameraInfo, 'camera_info', received['camera_info'].append, QOS)
    runner.start('camera', source=str(folder), fps=5.0, loop=True, detect_size=160,
                 wait_for_nodes=['stream_reader'], wait_timeout=60.0)
    assert spin_until(executor, lambda: all(len(v) >= 3 for v in received.values()),
                      timeout=30), runner.tail()
    full, small = received['image_raw'][-1], received['image_detect'][-1]
    assert (full.width, full.height) == (320, 240)
    assert (small.width, small.height) == (160, 120)
    assert np.array_equal(image_to_bgr(full), frame)
    reduced = image_to_bgr(small)
    assert reduced[:, :78].max() == 0 and reduced[:, 82:].min() == 200
    # Each frame's three messages share its header (best effort may drop one of them).
    headers = [{(m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id)
                for m in messages} for messages in received.values()]
    assert len(headers[0] & headers[1] & headers[2]) >= 2
    assert all((info.width, info.height) == (320, 240) for info in received['camera_info'])


@pytest.mark.parametrize('detect_size, shared', [(640, True), (16, False)])
def test_a_frame_the_detector_takes_whole_is_jpeg_encoded_once(
        graph, folder, detect_size, shared):
    """A frame no larger than detect_size: image_detect/compressed is image_raw/compressed.

    The same JPEG, byte for byte (one encode, at jpeg_quality); a larger frame is reduced and
    encoded for the detector on its own.
    """
    runner, executor, context = graph
    node = create_node('jpeg_reader', context=context)
    executor.add_node(node)
    received: dict[str, dict] = {'image_raw': {}, 'image_detect': {}}
    for topic, by_stamp in received.items():
        node.create_subscription(
            CompressedImage, f'{topic}/compressed',
            lambda m, by_stamp=by_stamp: by_stamp.__setitem__(
                (m.header.stamp.sec, m.header.stamp.nanosec), bytes(m.data)), QOS)
    runner.start('camera', source=str(folder), fps=10.0, loop=True, detect_size=detect_size,
                 wait_for_nodes=['jpeg_reader'], wait_timeout=60.0)

    def stamps_on_both() -> set:
        return received['image_raw'].keys() & received['image_detect'].keys()

    assert spin_until(executor, lambda: len(stamps_on_both()) >= 4, timeout=30), runner.tail()
    both = stamps_on_both()
    assert all((received['image_raw'][stamp] == received['image_detect'][stamp]) == shared
               for stamp in both)
    sizes = {cv2.imdecode(np.frombuffer(received['image_detect'][stamp], np.uint8),
                          cv2.IMREAD_COLOR).shape[:2] for stamp in both}
    assert sizes == ({(24, 32)} if shared else {(12, 16)})


def test_a_motion_jpeg_source_goes_out_as_its_own_jpegs(graph, tmp_path):
    """image_raw/compressed and image_detect/compressed carry the recording's own JPEGs.

    Byte for byte (the detector reduces them itself); the camera decodes them only at the
    size raw image_detect needs (see core.camera.Frame).
    """
    runner, executor, context = graph
    path = tmp_path / 'camera.avi'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10.0, (320, 240))
    for level in LEVELS:
        writer.write(np.full((240, 320, 3), level, np.uint8))
    writer.release()
    raw = cv2.VideoCapture(str(path))
    assert raw.set(cv2.CAP_PROP_FORMAT, -1)
    packets = set()
    while raw.grab():
        packets.add(raw.retrieve()[1].tobytes())
    assert len(packets) == len(LEVELS)
    node = create_node('mjpeg_reader', context=context)
    executor.add_node(node)
    jpegs: list[CompressedImage] = []
    detect_jpegs: list[CompressedImage] = []
    small: list[Image] = []
    node.create_subscription(CompressedImage, 'image_raw/compressed', jpegs.append, QOS)
    node.create_subscription(CompressedImage, 'image_detect/compressed', detect_jpegs.append,
                             QOS)
    node.create_subscription(Image, 'image_detect', small.append, QOS)
    runner.start('camera', source=str(path), loop=True, detect_size=160,
                 wait_for_nodes=['mjpeg_reader'], wait_timeout=60.0)
    assert spin_until(executor, lambda: min(map(len, (jpegs, detect_jpegs, small))) >= 6,
                      timeout=30), runner.tail()
    assert all(bytes(m.data) in packets and m.format == 'jpeg' for m in jpegs + detect_jpegs)
    assert all((m.width, m.height) == (160, 120) for m in small)
    levels = {int(image_to_bgr(m)[60, 80, 0]) for m in small}
    assert all(min(abs(level - want) for want in LEVELS) <= 3 for level in levels)


def test_broken_frames_of_a_motion_jpeg_file_are_skipped_and_it_plays_once(graph, tmp_path):
    """A frame that is no JPEG and one that cannot be decoded are skipped, nothing replayed.

    Before, either made the camera reopen the file and play it again from frame 0 with new
    stamps, without end.
    """
    runner, executor, context = graph
    path = tmp_path / 'broken.avi'
    levels = [10 + 20 * i for i in range(12)]
    write_grey_motion_jpeg(path, levels, (320, 240), not_jpeg=[4], undecodable=[8])
    watcher = _reader('watcher', executor, context)
    camera = runner.start('camera', source=str(path), wait_for_nodes=['watcher'],
                          wait_timeout=60.0)
    assert spin_until(executor, lambda: END_OF_SOURCE in camera.log_path.read_text(),
                      timeout=30), runner.tail()
    spin_until(executor, lambda: False, timeout=1.0)   # the last frames on their way
    log = camera.log_path.read_text()
    assert log.count('publishing video file') == 1 and log.count(END_OF_SOURCE) == 1, log
    assert f'video file {path}: frame 4 skipped (not a JPEG image' in log, log
    received = [min(range(len(levels)), key=lambda i: abs(levels[i] - level))
                for level in watcher]
    assert received == sorted(set(received)), f'in order, none twice: {received}'
    assert not {4, 8} & set(received) and len(received) >= 8, received
