"""Run the node graph on a clip and collect what it publishes, placed on the clip's frames.

The graph is the installed executables with config/facetrack.yaml, started as processes by
GraphRunner (as the demo and the end-to-end tests do): camera, detector, face_embedding,
tracker and frame_history, in a namespace of the run's own. A probe node records every
image's stamp (and, for composed clips, the frame number drawn into it), the tracks, the
events (with the wall time each arrived) and the identified faces. This module uses rclpy;
the metrics (identity.py) do not.
"""

from dataclasses import dataclass, field
import math
import os
from pathlib import Path
import subprocess
import sys
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage

from facetrack_ros import camera_node, detector_node, frame_history_node, tracker_node
from facetrack_ros.conversions import jpeg_to_bgr
from facetrack_ros.core.tracking import EventReason
from facetrack_ros.evaluation.clips import decode_frame_number
from facetrack_ros.evaluation.identity import EventRecord, FaceRecord, TrackBox
from facetrack_ros.graph_runner import GraphRunner, wait_for_graph
from facetrack_ros.msg import PersonDetectionArray, PersonEvent
from facetrack_ros.parameters import ParamSpec, RECORDED_QOS, RELIABLE_QOS

#: The probe keeps up to this many images queued: it must see every frame's stamp. It reads
#: the JPEG stream (as the pipeline's nodes do): a best-effort image_raw reader received only
#: 32-229 of a clip's frames with both cores busy, image_raw/compressed 264-275 of 275.
PROBE_IMAGE_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT,
                             history=HistoryPolicy.KEEP_LAST)
KIND_NAMES = {PersonEvent.PERSON_IN: 'PERSON_IN', PersonEvent.PERSON_OUT: 'PERSON_OUT',
              PersonEvent.PERSON_RETURNED: 'PERSON_RETURNED'}
REASON_NAMES = {reason.value: reason.name for reason in EventReason}
#: After the clip ends, wait at least this long for the last events [s], at most
#: SETTLE_MAX_S, and stop early once every person in view got their PERSON_OUT.
SETTLE_MIN_S = 4.0
SETTLE_MAX_S = 40.0


class DetectorDelayUnavailable(RuntimeError):
    """The detector node has no test-only delay parameter to slow it down with."""


def detector_delay_parameter() -> ParamSpec:
    """Return the detector's test-only delay parameter [s per frame], or raise saying why."""
    found = [spec for spec in detector_node.PARAMETERS if 'delay' in spec.name]
    if not found:
        raise DetectorDelayUnavailable(
            'the detector node declares no delay parameter (a test-only one that sleeps per '
            'frame), so --detector-delay cannot slow it down; it is being added with the '
            'tracker work of issue 9')
    if len(found) > 1 or '[s]' not in found[0].description:
        raise DetectorDelayUnavailable(
            f'cannot tell which detector parameter delays it by seconds: '
            f'{[(s.name, s.description) for s in found]}')
    return found[0]


def _folder_parameters(specs: tuple[ParamSpec, ...], work: Path) -> dict[str, str]:
    """Point every *_dir parameter of a node at a folder of the run's own."""
    return {spec.name: str(work / spec.name) for spec in specs if spec.name.endswith('_dir')}


@dataclass
class GraphRecording:
    """What one run published, on the clip's frames; see identity.evaluate."""

    tracks: list[TrackBox] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    faces: list[FaceRecord] = field(default_factory=list)
    frame_stamps: list[float] = field(default_factory=list)
    images_seen: int = 0
    #: tracks messages received: frames the detector and tracker processed, people or not.
    detector_frames: int = 0
    wall_s: float = 0.0


class GraphProbe:
    """Collects messages and turns stamps into frame numbers."""

    def __init__(self, node, fps: float, frames: int, coded: bool) -> None:
        """Subscribe node to the graph's topics; the clip has frames at fps, coded or not."""
        self.fps, self.frames, self.coded = fps, frames, coded
        self.stamp_frames: dict[int, int] = {}  # stamp [ns] -> frame
        self.order: list[int] = []              # stamps in arrival order (uncoded clips)
        self.raw_tracks: list[PersonDetectionArray] = []
        self.raw_events: list[tuple[PersonEvent, float]] = []
        self.raw_faces: list[PersonDetectionArray] = []
        self.anchors: dict[int, int] = {}  # stamp [ns] -> frame, from the camera's diagnostics
        self.camera = f'{node.get_namespace().rstrip("/")}/camera'
        self.last_message = time.monotonic()
        node.create_subscription(CompressedImage, 'image_raw/compressed', self.on_image,
                                 PROBE_IMAGE_QOS)
        node.create_subscription(PersonDetectionArray, 'tracks', self.on_tracks, RELIABLE_QOS)
        node.create_subscription(PersonEvent, 'person_events', self.on_event, RECORDED_QOS)
        node.create_subscription(PersonDetectionArray, 'identified_faces', self.raw_faces.append,
                                 RECORDED_QOS)
        node.create_subscription(DiagnosticArray, '/diagnostics', self.on_diagnostics, 100)

    def on_image(self, msg: CompressedImage) -> None:
        """Note an image's stamp and, in a composed clip, the frame number drawn into it."""
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        self.order.append(stamp)
        if self.coded:
            number = decode_frame_number(jpeg_to_bgr(bytes(msg.data)))
            if number is not None:
                self.stamp_frames[stamp] = number

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        """Keep the camera's latest frame (position and stamp) as an anchor of the numbering."""
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name == self.camera and camera_node.LATEST_FRAME_KEY in values:
                stamp = round(float(values[camera_node.LATEST_FRAME_STAMP_KEY]) * 1e9)
                self.anchors[stamp] = int(values[camera_node.LATEST_FRAME_KEY])

    def on_tracks(self, msg: PersonDetectionArray) -> None:
        """Keep a tracks message."""
        self.raw_tracks.append(msg)
        self.last_message = time.monotonic()

    def on_event(self, msg: PersonEvent) -> None:
        """Keep an event with the wall time it arrived."""
        self.raw_events.append((msg, time.time()))
        self.last_message = time.monotonic()

    def mapping(self) -> tuple[list[int], list[int]]:
        """Return known (stamps [ns], frames), sorted by stamp."""
        if not self.coded and len(self.order) == self.frames:
            pairs = list(zip(self.order, range(self.frames)))
        elif not self.coded and self.anchors:
            # Frames were lost on the way to the probe, the first ones too under load: number
            # them by time from the nearest frame the camera reported.
            anchors = sorted(self.anchors.items())
            known = ([p[0] for p in anchors], [p[1] for p in anchors])
            pairs = anchors + [(s, self._frame_at(s, known)) for s in self.order]
        elif not self.coded:
            # No report from the camera: number them by time from the first received.
            pairs = [(s, round((s - self.order[0]) * 1e-9 * self.fps)) for s in self.order]
        else:
            pairs = sorted(self.stamp_frames.items())
        pairs.sort()
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def frame_of(self, stamp, known: tuple[list[int], list[int]]) -> int:
        """Return the frame a header stamp belongs to (nearest known frame, moved by fps)."""
        return self._frame_at(stamp.sec * 10**9 + stamp.nanosec, known)

    def _frame_at(self, ns: int, known: tuple[list[int], list[int]]) -> int:
        """Return the frame of a stamp [ns]: the nearest known frame, moved by fps."""
        stamps, frames = known
        if not stamps:
            return -1
        index = int(np.searchsorted(stamps, ns))
        candidates = [i for i in (index - 1, index) if 0 <= i < len(stamps)]
        nearest = min(candidates, key=lambda i: abs(stamps[i] - ns))
        return frames[nearest] + round((ns - stamps[nearest]) * 1e-9 * self.fps)

    def recording(self) -> GraphRecording:
        """Place everything collected on frames."""
        known = self.mapping()
        out = GraphRecording(images_seen=len(self.order), detector_frames=len(self.raw_tracks))
        stamps = [math.nan] * self.frames
        for stamp, frame in zip(*known):
            if 0 <= frame < self.frames:
                stamps[frame] = stamp * 1e-9
        out.frame_stamps = stamps
        for msg in self.raw_tracks:
            frame = self.frame_of(msg.header.stamp, known)
            out.tracks += [TrackBox(frame, d.track_id, d.person_id, tuple(d.box))
                           for d in msg.detections]
        for msg, received in self.raw_events:
            out.events.append(EventRecord(self.frame_of(msg.header.stamp, known),
                                          KIND_NAMES.get(msg.kind, str(msg.kind)),
                                          msg.person_id, msg.track_id, tuple(msg.box),
                                          received, REASON_NAMES.get(msg.reason, '')))
        for msg in self.raw_faces:
            frame = self.frame_of(msg.header.stamp, known)
            out.faces += [FaceRecord(frame, d.track_id, d.person_id, tuple(d.box),
                                     tuple(map(float, d.face_box)) if d.has_face else None)
                          for d in msg.detections]
        return out

    def open_people(self) -> int:
        """Persons announced IN or RETURNED without an OUT since."""
        present: set[str] = set()
        for msg, _ in self.raw_events:
            if msg.kind == PersonEvent.PERSON_OUT:
                present.discard(msg.person_id)
            else:
                present.add(msg.person_id)
        return len(present)


def run_graph_on_clip(video: Path, fps: float, frames: int, coded: bool, model: str,
                      work: Path, namespace: str, context=None,
                      detector_overrides: dict | None = None,
                      params_file: Path | None = None) -> GraphRecording:
    """Play video once, in real time, through the whole graph; return what it published.

    fps, frames: the clip's rate and length; coded: frame numbers are drawn into the frames
    (composed clips). detector_overrides: extra detector parameters (e.g. a delay).
    """
    params = params_file or _installed_config()
    runner = GraphRunner(work / 'logs', str(params), namespace)
    own_context = context is None
    if own_context:
        context = rclpy.context.Context()
        rclpy.init(context=context)
    node = rclpy.create_node('identity_eval_probe', namespace=namespace, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    probe = GraphProbe(node, fps, frames, coded)
    started = time.monotonic()

    def spin(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.02)

    try:
        runner.start('frame_history', robot_id='eval', camera_id='eval',
                     **_folder_parameters(frame_history_node.PARAMETERS, work))
        runner.start('tracker', robot_id='eval', camera_id='eval',
                     **_folder_parameters(tracker_node.PARAMETERS, work))
        runner.start('face_embedding')
        runner.start('detector', model=model, require_model=True,
                     **(detector_overrides or {}))
        # image_raw has no reader: the detector reads image_detect, face_embedding, frame_history
        # and this probe image_raw/compressed; the camera awaits the nodes (wait_for_nodes).
        wait_for_graph(runner, node, executor,
                       ('detections', 'faces', 'tracks', 'person_events', 'identified_faces'),
                       0, timeout=180.0)
        # The probe subscribed long before the nodes loaded their models: matched by now.
        runner.start('camera', source=str(video), realtime=True, loop=False,
                     frame_id='eval_camera')
        deadline = time.monotonic() + frames / fps * 3 + 120
        while not runner.source_ended() and time.monotonic() < deadline:
            spin(0.2)
            if runner.failed():
                raise RuntimeError(f'nodes exited: {runner.failed()}\n{runner.tail()}')
        ended = time.monotonic()
        while time.monotonic() - ended < SETTLE_MAX_S:
            spin(0.2)
            quiet = time.monotonic() - probe.last_message
            if (time.monotonic() - ended >= SETTLE_MIN_S and quiet > 2.0
                    and probe.open_people() == 0):
                break
    finally:
        runner.stop()
        executor.shutdown()
        node.destroy_node()
        if own_context:
            context.try_shutdown()
    recording = probe.recording()
    recording.wall_s = time.monotonic() - started
    return recording


def _installed_config() -> Path:
    """Return config/facetrack.yaml of the sourced install (what ros2 launch uses)."""
    for prefix in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        path = Path(prefix) / 'share' / 'facetrack_ros' / 'config' / 'facetrack.yaml'
        if path.is_file():
            return path
    raise FileNotFoundError('config/facetrack.yaml not installed: source install/setup.bash')


#: A CPU hog: a busy loop that ends once its parent (pid argv[1]: known before the hog
#: starts) is gone, killed before it could stop it.
_HOG = ('import os, sys\nparent = int(sys.argv[1])\nwhile os.getppid() == parent:\n'
        '    for _ in range(100000):\n        pass\n')


class CpuLoad:
    """One busy-looping process per CPU this process may use (a context manager)."""

    def __init__(self, processes: int | None = None) -> None:
        """Start nothing yet; processes defaults to the CPUs available."""
        self.count = processes or len(os.sched_getaffinity(0))
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> 'CpuLoad':
        """Start the busy loops."""
        for _ in range(self.count):
            self.processes.append(subprocess.Popen(
                [sys.executable, '-c', _HOG, str(os.getpid())],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop them."""
        for process in self.processes:
            process.kill()
        for process in self.processes:
            process.wait()
        self.processes = []
