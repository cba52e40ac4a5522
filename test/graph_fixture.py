"""Run the real node graph (processes over DDS) on a video and collect what it publishes."""

import bisect
from dataclasses import dataclass, field
from pathlib import Path
import time

import cv2
import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import CompressedImage

from facetrack_ros.conversions import jpeg_to_bgr, time_to_sec
from facetrack_ros.graph_runner import GraphRunner, wait_for_graph
from facetrack_ros.msg import PersonDetectionArray, PersonEvent
from facetrack_ros.parameters import image_qos_profile, RELIABLE_QOS

NODES_BEFORE_CAMERA = ('frame_history', 'tracker', 'face_embedding', 'detector')
#: The tracker's input_timeout in these runs [s]: long enough for a detector slowed by other
#: work on the two cores, short enough to wait for after each clip.
INPUT_TIMEOUT = 5.0
#: Images the probe queues while busy with other messages.
PROBE_IMAGE_DEPTH = 100


def thumbnail(image_bgr: np.ndarray) -> np.ndarray:
    """Return a 32x18 grey thumbnail, zero mean and unit length, to recognise a video frame."""
    grey = cv2.cvtColor(cv2.resize(image_bgr, (32, 18), interpolation=cv2.INTER_AREA),
                        cv2.COLOR_BGR2GRAY).astype(np.float32).reshape(-1)
    grey -= grey.mean()
    return grey / max(float(np.linalg.norm(grey)), 1e-6)


def video_thumbnails(video: Path) -> np.ndarray:
    """Return the thumbnail of every frame of a video file, (frames, 576)."""
    capture = cv2.VideoCapture(str(video))
    thumbs = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return np.stack(thumbs)
        thumbs.append(thumbnail(frame))


@dataclass
class GraphRun:
    """Messages collected from one run, and the probe node to call services with."""

    runner: GraphRunner
    node: rclpy.node.Node
    executor: SingleThreadedExecutor
    log_dir: Path
    history_dir: Path
    image_stamps: list[float] = field(default_factory=list)
    image_thumbs: list[np.ndarray] = field(default_factory=list)
    events: list[PersonEvent] = field(default_factory=list)
    tracks: list[PersonDetectionArray] = field(default_factory=list)
    faces: list[PersonDetectionArray] = field(default_factory=list)
    stopped: bool = False

    def spin_for(self, seconds: float) -> None:
        """Process incoming messages for a while."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)

    def clip_time(self, stamp) -> float:
        """Return a header stamp as seconds since the first published frame."""
        return time_to_sec(stamp) - self.image_stamps[0]

    def frame_span(self, stamp, frames: np.ndarray) -> tuple[int, int]:
        """Return the first and last frame of the video (video_thumbnails) stamp may have shown.

        By the image content, not the stamp: when other work slows the camera, the video
        plays slower than its frame rate. Both are that frame when the probe received the
        stamp's image; one it missed (best effort, under load) lies between the frames of the
        images received before and after it. (Taking the nearest received image instead put
        Miranda's last box before a cut 16 frames into the next shot.)
        """
        seconds = time_to_sec(stamp)
        i = bisect.bisect_left(self.image_stamps, seconds)
        if i < len(self.image_stamps) and self.image_stamps[i] == seconds:
            index = self._frame_of(i, frames)
            return index, index
        return (self._frame_of(i - 1, frames) if i > 0 else 0,
                self._frame_of(i, frames) if i < len(self.image_stamps) else len(frames) - 1)

    def _frame_of(self, received: int, frames: np.ndarray) -> int:
        """Return which frame of the video the received-th image showed."""
        return int(np.argmax(frames @ self.image_thumbs[received]))

    def closed(self) -> bool:
        """Return whether every PERSON_IN or PERSON_RETURNED has had its PERSON_OUT."""
        opened = sum(e.kind != PersonEvent.PERSON_OUT for e in self.events)
        return opened == len(self.events) - opened


def run_graph(video: Path, model: Path, work: Path, context, namespace: str,
              settle: float = 30.0, yunet: Path | None = None) -> GraphRun:
    """Start the graph in namespace, play video once (real time), wait for the last OUT.

    yunet: the face node finds faces with this YuNet model instead of the default HOG.

    After the video ends the tracker's input stalls: INPUT_TIMEOUT later the appearances
    end. This waits that long, then until every appearance has ended (at most settle [s]).

    Each run has a namespace of its own, as each robot on a shared domain would, so that
    graphs left running for later tests never mix with the next one.
    """
    params = Path(__file__).resolve().parents[1] / 'config' / 'facetrack.yaml'
    runner = GraphRunner(work / 'logs', str(params), namespace)
    node = rclpy.create_node('graph_probe', namespace=namespace, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    run = GraphRun(runner, node, executor, work / 'events', work / 'history')

    def on_image(msg: CompressedImage) -> None:
        run.image_stamps.append(time_to_sec(msg.header.stamp))
        run.image_thumbs.append(thumbnail(jpeg_to_bgr(bytes(msg.data))))

    # Every frame of the clip, for frame_span: the camera's JPEG (as the face node reads
    # it), queued while the probe is busy. (Under load, 36-58 of the clip's 275 raw images
    # reached the probe.)
    images = image_qos_profile('sensor_data')
    images.depth = PROBE_IMAGE_DEPTH
    node.create_subscription(CompressedImage, 'image_raw/compressed', on_image, images)
    node.create_subscription(PersonEvent, 'person_events', run.events.append, RELIABLE_QOS)
    node.create_subscription(PersonDetectionArray, 'tracks', run.tracks.append, RELIABLE_QOS)
    node.create_subscription(
        PersonDetectionArray, 'identified_faces', run.faces.append, RELIABLE_QOS)
    try:
        runner.start('frame_history', robot_id='test_robot', camera_id='stage',
                     history_dir=str(run.history_dir))
        # The clip ends: input stops, and appearances end (INPUT_STALLED) within settle.
        runner.start('tracker', robot_id='test_robot', camera_id='stage',
                     event_log_dir=str(run.log_dir), input_timeout=INPUT_TIMEOUT)
        runner.start('face_embedding', **(
            {'face_detector': 'yunet', 'yunet_model': str(yunet)} if yunet else {}))
        # One torch thread: with other work on the two cores, two threads spin-wait on each
        # other (YOLOv8n float on a Hamilton frame at load 12: 743 ms with two, 105 with one).
        runner.start('detector', model=str(model), require_model=True, threads=1)
        # image_raw has no reader: the detector reads image_detect, face_embedding, frame_history
        # and this probe image_raw/compressed; the camera starts once the nodes are up.
        wait_for_graph(runner, node, executor,
                       ('detections', 'faces', 'tracks', 'person_events', 'identified_faces'), 0)
        # The probe subscribed long before the nodes loaded their models: matched by now. An
        # image it still misses under load only widens frame_span, never misplaces a box.
        runner.start('camera', source=str(video), realtime=True, loop=False,
                     frame_id='stage_optical')
        deadline = time.monotonic() + 180
        while not runner.source_ended() and time.monotonic() < deadline:
            run.spin_for(0.2)
            assert not runner.failed(), runner.tail()
        run.spin_for(INPUT_TIMEOUT + 1.0)
        deadline = time.monotonic() + settle
        while not run.closed() and time.monotonic() < deadline:
            run.spin_for(0.2)
    except BaseException:
        stop_graph(run)
        raise
    return run


def stop_graph(run: GraphRun) -> dict[str, int]:
    """Stop every node process (SIGINT) and the probe; return exit codes. Idempotent."""
    if run.stopped:
        return {}
    run.stopped = True
    codes = run.runner.stop()
    run.executor.shutdown()
    run.node.destroy_node()
    return codes
