#!/usr/bin/env python3
"""Benchmark the facetrack pipeline on CPU: core stages, the old loop, and the ROS graph.

For each video (any resolution; a 1920x1080 copy of the first one is made and cached when
none of them has that size) and each person model (by default the weights of the shared
dynamic-int8 YOLOv8n ONNX file rebuilt by dequantize_yolo as a float .pt and as a float ONNX
file, then that ONNX file itself), with the real face models:
1. core pipeline without ROS (the classes the nodes use, in one process): per-stage latency,
   throughput and the share of the frame time spent beyond the person detector;
2. the detector alone on pre-decoded frames, with the detector node's workers (each frame
   on one of them, all at once): the fastest any graph can detect;
3. the old loop on the same frames (YOLO, then an ImageNet ResNet-50 embedding of every person
   box in every frame, named by box corner), and the speed-up of the new pipeline over it;
4. with the first model only, the node graph as processes (GraphRunner,
   config/facetrack.yaml; camera, detector, tracker, face_embedding and frame_history):
   latency from capture to each topic, detection rate against the detector alone, CPU and
   peak resident memory per node process; then the camera alone (image transport without
   the models' load).
Prints figures only; nothing is asserted. Run with `source scripts/env.sh` first.
"""

import argparse
from dataclasses import dataclass, field
import os
from pathlib import Path
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from types import SimpleNamespace
from typing import Callable, Iterator, Sequence

import cv2
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image
import torch
import torchvision

import facetrack_ros
from facetrack_ros import camera_node, detector_node, face_embedding_node, tracker_node
from facetrack_ros.conversions import time_to_sec
from facetrack_ros.core.camera import Frame, SourceEnded, video_size, VideoFileSource
from facetrack_ros.core.dequantize import cached_float_model
from facetrack_ros.core.detection import detector_workers, PersonDetector
from facetrack_ros.core.face import FaceAnalyzer
from facetrack_ros.core.pipeline import PersonPipeline, STAGES
from facetrack_ros.core.tracking import PersonTracker
from facetrack_ros.graph_runner import exit_on_sigterm, GraphRunner, wait_for_graph
from facetrack_ros.msg import PersonDetectionArray
from facetrack_ros.parameters import image_qos_profile, offline_parameters, RELIABLE_QOS

REPO = Path(__file__).resolve().parents[1]
PARAMS_FILE = REPO / 'config' / 'facetrack.yaml'
# Test material beside the checkout, as the tests find it (FACETRACK_SHARED overrides it).
SHARED = Path(os.environ.get('FACETRACK_SHARED', Path(__file__).resolve().parents[2] / 'shared'))
DEFAULT_VIDEOS = (str(SHARED / 'data/video/hamilton_clip.mp4'),
                  str(SHARED / 'data/video/pedestrians_vtest.avi'))
DEFAULT_ONNX = SHARED / 'models/yolov8n_int8.onnx'
#: Where the float rebuild of DEFAULT_ONNX is kept between runs.
MODEL_CACHE = Path.home() / '.cache' / 'facetrack_ros' / 'models'
#: Camera resolutions always benchmarked, by upscaling the first video when no video given
#: has them (robots carry 720p and 1080p cameras; the shared clips are small) [px].
ALWAYS_SIZES = ((1920, 1080),)
#: Where the upscaled clips are kept between runs.
CLIP_CACHE = Path.home() / '.cache' / 'facetrack_ros' / 'bench'

#: Targets: share of the core frame time beyond the detector, and speed-up over the old loop.
MAX_BEYOND_DETECTOR = 0.15
MIN_SPEEDUP = 3.0

#: Target: the graph's detection rate against the detector alone on pre-decoded frames (or the
#: camera's frame rate, when it is lower).
MIN_DETECTOR_SHARE = 0.8
#: Target: capture -> tracks p95 under this many detector frame times (detector alone).
MAX_TRACKS_P95_FRAMES = 2.0

#: Nodes of the graph runs (the default launch without the optional annotator), in start order.
GRAPH_NODES = ('frame_history', 'tracker', 'face_embedding', 'detector', 'camera')
#: Topics the probe listens to in the graph runs, in pipeline order; each carries the capture
#: stamp. Not image_raw: a full-resolution reader in the probe would load the cores measured.
TOPICS = ('detections', 'tracks', 'faces')
#: Frames captured in the first seconds of a graph run are left out: DDS matching and the
#: first callbacks of freshly started processes are not the steady state being measured.
WARMUP_S = 2.0
#: Time after the measured window for in-flight detections, tracks and faces to arrive [s].
SETTLE_S = 2.0
#: Length of the camera-only run that measures image transport without the models' load [s].
TRANSPORT_ONLY_S = 8.0
#: Longest wait for the models to load in their processes, and then for the first image [s].
READY_TIMEOUT_S = 120.0

#: Set in the environment when this script chose OMP_WAIT_POLICY for itself.
OWN_WAIT_POLICY = 'FACETRACK_BENCH_WAIT_POLICY'

#: py-spy samples per second of each node with --profile (few: the profiler shares the cores).
PROFILE_RATE = 50
#: Functions listed per node in the profile summary.
PROFILE_TOP = 6

#: ImageNet input of the old loop's ResNet-50.
RESNET_SIZE = 224
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


# ------------------------------------------------------------------------------------------
# Statistics and printing


def mean_ms(seconds: Sequence[float]) -> float:
    """Return the mean of durations in seconds as milliseconds (NaN when empty)."""
    return 1000.0 * float(np.mean(seconds)) if len(seconds) else float('nan')


def p95_ms(seconds: Sequence[float]) -> float:
    """Return the 95th percentile of durations in seconds as milliseconds (NaN when empty)."""
    return 1000.0 * float(np.percentile(seconds, 95)) if len(seconds) else float('nan')


def ms_pair(seconds: Sequence[float]) -> str:
    """Format durations as 'mean / p95' milliseconds."""
    return f'{mean_ms(seconds):.1f} / {p95_ms(seconds):.1f}'


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print rows under headers with aligned columns (first column left, others right)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return '  '.join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths)))

    print(f'\n{title}')
    print(line(cells[0]))
    print('  '.join('-' * w for w in widths))
    for row in cells[1:]:
        print(line(row))
    sys.stdout.flush()


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo (or the platform's guess)."""
    try:
        for text in Path('/proc/cpuinfo').read_text().splitlines():
            if text.startswith('model name'):
                return text.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def load_note() -> str:
    """Return the 1-minute load average against the core count, to flag timing noise."""
    load, cores = os.getloadavg()[0], len(os.sched_getaffinity(0))
    busy = ' (other work is running: expect noisy timings)' if load > 0.5 * cores else ''
    return f'load average {load:.2f} on {cores} cores{busy}'


# ------------------------------------------------------------------------------------------
# Configuration shared with the nodes


def node_parameters(node: str, specs: Sequence) -> SimpleNamespace:
    """Return a node's parameters as the graph runs them (its defaults, then the YAML)."""
    return offline_parameters(node, specs, PARAMS_FILE)


def load_detectors(model: str) -> list[PersonDetector]:
    """Load one person detector per detector node worker, with the node's settings.

    The model comes from the CLI. torch's thread count is the node's per worker (a setting of
    the whole process): the core and old loops run their detector with it too.
    """
    p = node_parameters('detector', detector_node.PARAMETERS)
    p.model, p.require_model = model, True
    workers = detector_workers(p.workers, model, p.device)
    return [detector_node.person_detector(p, workers)[0] for _ in range(workers)]


def new_pipeline(detector: PersonDetector, analyzer: FaceAnalyzer) -> PersonPipeline:
    """Return the core pipeline with the nodes' settings around detector and analyzer."""
    detector_p = node_parameters('detector', detector_node.PARAMETERS)
    face_p = node_parameters('face_embedding', face_embedding_node.PARAMETERS)
    tracker_p = node_parameters('tracker', tracker_node.PARAMETERS)
    camera_p = node_parameters('camera', camera_node.PARAMETERS)
    return PersonPipeline(detector, analyzer,
                          PersonTracker(tracker_node.tracker_config(tracker_p)),
                          face_embedding_node.embedding_scheduler(face_p),
                          detect_size=camera_p.detect_size, appearance=detector_p.appearance)


def upscaled_clip(video: str, size: tuple[int, int], cache: Path = CLIP_CACHE) -> str:
    """Return a copy of video scaled to size (width, height), made once and cached.

    Motion JPEG at the source's frame rate: what a UVC camera streams at 720p and 1080p, so the
    camera node decodes what it would decode on a robot.
    """
    path = cache / f'{Path(video).stem}_{size[0]}x{size[1]}.avi'
    if path.is_file():
        return str(path)
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix('.partial.avi')
    with VideoFileSource(video) as source:
        writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*'MJPG'),
                                 source.nominal_fps or 25.0, size)
        try:
            while True:
                try:
                    frame = source.read()
                except SourceEnded:
                    break
                writer.write(cv2.resize(frame.image, size, interpolation=cv2.INTER_CUBIC))
        finally:
            writer.release()
    partial.rename(path)
    return str(path)


def with_always_sizes(videos: Sequence[str]) -> list[str]:
    """Return videos plus an upscaled first video for each ALWAYS_SIZES size not among them."""
    sizes = {video_size(video) for video in videos}
    return [*videos, *(upscaled_clip(videos[0], size) for size in ALWAYS_SIZES
                       if size not in sizes)]


# ------------------------------------------------------------------------------------------
# 1. Core pipeline without ROS

CORE_STAGES = ('capture', *STAGES, 'total')


@dataclass
class CoreResult:
    """Per-frame stage durations [s] of the core pipeline on one video."""

    stages: dict[str, list[float]] = field(
        default_factory=lambda: {name: [] for name in CORE_STAGES})
    persons: int = 0
    faces_tried: int = 0
    faces_identified: int = 0

    @property
    def frames(self) -> int:
        """Frames processed."""
        return len(self.stages['total'])

    @property
    def fps(self) -> float:
        """Throughput [frames/s]."""
        return self.frames / sum(self.stages['total'])

    @property
    def beyond_detector(self) -> float:
        """Share of the frame time spent outside the detector's inference [0..1]."""
        return 1.0 - sum(self.stages['detection']) / sum(self.stages['total'])


def timed_frames(video: str, frames: int) -> Iterator[tuple[Frame, float, float]]:
    """Yield (frame, perf_counter before its read, video time [s]) for the first frames.

    Video time, not wall time: frames are read faster than real time here, and the tracker's
    and scheduler's periods must see the clip's own pace, as in ROS.
    """
    with VideoFileSource(video) as source:
        fps = source.nominal_fps or 30.0
        for _ in range(frames):
            start = time.perf_counter()
            try:
                frame = source.read()
            except SourceEnded:
                return
            yield frame, start, frame.index / fps


def run_core(video: str, frames: int, detector: PersonDetector,
             analyzer: FaceAnalyzer) -> CoreResult:
    """Run the core pipeline (core.pipeline, as index_bag runs it) on the first frames."""
    result = CoreResult()
    pipeline = new_pipeline(detector, analyzer)
    for frame, start, stamp in timed_frames(video, frames):
        read = time.perf_counter()
        out = pipeline.process(frame, stamp)
        done = time.perf_counter()
        result.stages['capture'].append(read - start)
        for name in STAGES:
            result.stages[name].append(out.seconds[name])
        result.stages['total'].append(done - start)
        result.persons += len(out.persons)
        result.faces_tried += out.faces_tried
        result.faces_identified += len(out.identified)
    return result


# ------------------------------------------------------------------------------------------
# 2. The old loop: a ResNet-50 embedding of every person box in every frame


@dataclass
class OldResult:
    """Per-frame durations [s] of the old loop on one video."""

    totals: list[float] = field(default_factory=list)
    embeds: list[float] = field(default_factory=list)  # one per person box

    @property
    def fps(self) -> float:
        """Throughput [frames/s]."""
        return len(self.totals) / sum(self.totals)


def load_resnet() -> Callable[[np.ndarray], np.ndarray]:
    """Return an ImageNet ResNet-50 (random weights: only its cost matters) as crop -> vector.

    It computes with as many torch threads as the detector of the same loop (torch's thread
    count is per process, and YoloPersonDetector sets it).
    """
    model = torchvision.models.resnet50(weights=None).eval()

    def embed(crop_bgr: np.ndarray) -> np.ndarray:
        rgb = cv2.cvtColor(cv2.resize(crop_bgr, (RESNET_SIZE, RESNET_SIZE)), cv2.COLOR_BGR2RGB)
        pixels = (rgb.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        with torch.no_grad():
            return model(torch.from_numpy(pixels.transpose(2, 0, 1))[None]).numpy()[0]

    # The first pass allocates and picks kernels; it is not part of the steady state.
    embed(np.zeros((RESNET_SIZE, RESNET_SIZE, 3), np.uint8))
    return embed


def run_old_loop(video: str, frames: int, detector: PersonDetector,
                 embed: Callable[[np.ndarray], np.ndarray]) -> OldResult:
    """Run the old per-frame loop on the first frames of video."""
    result = OldResult()
    for frame, start, _ in timed_frames(video, frames):
        height, width = frame.image.shape[:2]
        names = []
        for person in detector.detect(frame.image):
            x1, y1, x2, y2 = np.clip(np.round(person.box).astype(int), 0,
                                     [width, height, width, height])
            if x2 <= x1 or y2 <= y1:
                continue
            embedded = time.perf_counter()
            embed(frame.image[y1:y2, x1:x2])
            result.embeds.append(time.perf_counter() - embedded)
            names.append(f'person_{x1}_{y1}')  # the old "identity": the box's corner
        result.totals.append(time.perf_counter() - start)
    return result


# ------------------------------------------------------------------------------------------
# 3. The detector alone on pre-decoded frames: the fastest any graph can detect


@dataclass
class DetectorAlone:
    """The detectors alone on pre-decoded frames.

    durations: each frame's detect() [s] (a frame's latency); rate: frames a second through
    all the detectors at once [Hz].
    """

    durations: list[float]
    rate: float


def run_detector_alone(video: str, frames: int,
                       detectors: Sequence[PersonDetector]) -> DetectorAlone:
    """Detect the first frames, decoded beforehand, every detector in a thread at once."""
    with VideoFileSource(video) as source:
        images = []
        for _ in range(frames):
            try:
                images.append(source.read().image)
            except SourceEnded:
                break
    durations = [0.0] * len(images)

    def detect_share(detector: PersonDetector, first: int) -> None:
        for index in range(first, len(images), len(detectors)):
            start = time.perf_counter()
            detector.detect(images[index])
            durations[index] = time.perf_counter() - start

    threads = [threading.Thread(target=detect_share, args=(detector, first))
               for first, detector in enumerate(detectors)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return DetectorAlone(durations, len(images) / (time.perf_counter() - start))


# ------------------------------------------------------------------------------------------
# 4. Through ROS


def process_cpu_s(pid: int) -> float:
    """Return the CPU time [s] a process has used so far (user + system, its threads too)."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def process_peak_rss_mib(pid: int) -> float:
    """Return the most resident memory a process has held so far (VmHWM) [MiB]."""
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f'no VmHWM for process {pid}')


@dataclass
class GraphResult:
    """What the probe saw of one graph run, restricted to frames captured in the window."""

    window_s: float
    nominal_fps: float
    latencies: dict[str, list[float]]   # per topic: arrival - capture stamp [s]
    camera_rate: float                  # publishing rate the camera reports [Hz]
    cpu: dict[str, float]               # per node: CPU time over the window / window [cores]
    peak_rss: dict[str, float]          # per node: most resident memory by the window's end [MiB]

    def frames(self, topic: str) -> int:
        """Frames (distinct capture stamps) that reached topic."""
        return len(self.latencies[topic])

    def rate(self, topic: str) -> float:
        """Frames per second that reached topic [Hz]."""
        return self.frames(topic) / self.window_s


class Probe:
    """Records, per topic, each message's arrival time and capture stamp."""

    def __init__(self, node: Node, topics: Sequence[str]) -> None:
        """Subscribe to topics with the QoS their publishers use."""
        self.arrivals: dict[str, dict[float, float]] = {topic: {} for topic in topics}
        for topic in topics:
            msg_type = Image if topic == 'image_raw' else PersonDetectionArray
            qos = image_qos_profile('sensor_data') if topic == 'image_raw' else RELIABLE_QOS
            node.create_subscription(msg_type, topic, self._recorder(topic), qos)
        # The camera's own count of frames published (image_raw is not probed with models).
        self.camera_rates: list[tuple[float, float]] = []
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)

    def _recorder(self, topic: str) -> Callable[[object], None]:
        arrivals = self.arrivals[topic]

        def record(msg: Image | PersonDetectionArray) -> None:
            # The clock is read first so that the probe's own work is not counted.
            now = time.time()
            arrivals.setdefault(time_to_sec(msg.header.stamp), now)
        return record

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith('/camera'):
                values = {kv.key: kv.value for kv in status.values}
                self.camera_rates.append((time.time(), float(values.get('rate [Hz]', 'nan'))))

    def camera_rate(self, start: float, end: float) -> float:
        """Return the median rate the camera reported between start and end [Hz, s]."""
        rates = [rate for when, rate in self.camera_rates if start <= when <= end]
        return float(np.median(rates)) if rates else float('nan')

    def first_stamp(self) -> float | None:
        """Return the earliest capture stamp received on the first topic, or None."""
        first = next(iter(self.arrivals.values()))
        return min(first) if first else None


def start_profiles(runner: GraphRunner, seconds: float, out: Path) -> list[subprocess.Popen]:
    """Start py-spy on every node process for seconds; each writes out/<node>.txt (raw)."""
    out.mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen(
        [shutil.which('py-spy'), 'record', '--pid', str(node.process.pid), '--duration',
         str(max(1, round(seconds))), '--rate', str(PROFILE_RATE), '--format', 'raw',
         '--nonblocking', '--output', str(out / f'{node.name}.txt')],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for node in runner.nodes]


def print_profiles(out: Path, seconds: float) -> None:
    """Print each node's busiest functions (own time, from py-spy's raw stacks) [% of a core]."""
    for path in sorted(out.glob('*.txt')):
        own: dict[str, int] = {}
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(' ')
            leaf = stack.rsplit(';', 1)[-1]
            own[leaf] = own.get(leaf, 0) + int(count)
        busiest = sorted(own.items(), key=lambda item: -item[1])[:PROFILE_TOP]
        print_table(f'py-spy, {path.stem}: own time of its busiest functions',
                    ['function', '% of a core'],
                    [[name[:90], f'{100 * count / (PROFILE_RATE * seconds):.1f}']
                     for name, count in busiest])


def run_graph(video: str, model: str, seconds: float, log_dir: Path,
              with_models: bool, profile: Path | None = None) -> GraphResult:
    """Run the camera (and the other GRAPH_NODES with models); probe topics and node CPU.

    The camera plays video in real time, looping, for WARMUP_S + seconds after the first
    stamped message; CPU is read from /proc at the start and the end of the measured window,
    in which py-spy samples every node when profile names a folder.
    """
    node = rclpy.create_node('bench_probe')
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    probe = Probe(node, TOPICS if with_models else ('image_raw',))
    runner = GraphRunner(log_dir, str(PARAMS_FILE))
    cpu_marks: list[dict[str, float]] = []
    peak_rss: dict[str, float] = {}
    profilers: list[subprocess.Popen] = []
    try:
        if with_models:
            runner.start('frame_history', history_dir=str(log_dir / 'history'))
            runner.start('tracker', event_log_dir=str(log_dir / 'events'))
            runner.start('face_embedding')
            runner.start('detector', model=model, require_model=True)
            # Lifecycle nodes subscribe and create their publishers once their models are
            # loaded; the camera starts after that so that no frame meets a cold graph.
            wait_for_graph(runner, node, executor, TOPICS, 0, READY_TIMEOUT_S)
        # The camera publishes its first frame once every node has subscribed.
        runner.start('camera', source=video, realtime=True, loop=True,
                     wait_for_nodes=[node.get_name()]
                     + ([name for name in GRAPH_NODES if name != 'camera'] if with_models
                        else []))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            first = probe.first_stamp()
            elapsed = time.time() - first if first is not None else 0.0
            if len(cpu_marks) < 2 and elapsed >= WARMUP_S + seconds * len(cpu_marks):
                cpu_marks.append({n.name: process_cpu_s(n.process.pid) for n in runner.nodes}
                                 | {'probe': sum(os.times()[:2]), 'time': time.monotonic()})
                if profile is not None and len(cpu_marks) == 1:
                    profilers = start_profiles(runner, seconds, profile)
                if len(cpu_marks) == 2:
                    peak_rss = {n.name: process_peak_rss_mib(n.process.pid) for n in runner.nodes}
            if first is not None and elapsed >= WARMUP_S + seconds + SETTLE_S:
                break
            if runner.failed() or (first is None and time.monotonic() > deadline):
                raise RuntimeError(f'no first message, or nodes exited: {runner.failed()}\n'
                                   f'{runner.tail()}')
            executor.spin_once(timeout_sec=0.05)
    finally:
        for profiler in profilers:
            profiler.wait()
        runner.stop()
        executor.shutdown()
        node.destroy_node()
    if profile is not None:
        print_profiles(profile, seconds)
    start = first + WARMUP_S
    end = start + seconds
    with VideoFileSource(video) as source:
        nominal_fps = source.nominal_fps or float('nan')
    latencies = {topic: [arrival - stamp for stamp, arrival in arrivals.items()
                         if start <= stamp < end]
                 for topic, arrivals in probe.arrivals.items()}
    span = cpu_marks[1]['time'] - cpu_marks[0]['time']
    cpu = {name: (cpu_marks[1][name] - cpu_marks[0][name]) / span
           for name in cpu_marks[0] if name != 'time'}
    return GraphResult(seconds, nominal_fps, latencies, probe.camera_rate(start, end + SETTLE_S),
                       cpu, peak_rss)


# ------------------------------------------------------------------------------------------
# Report


@dataclass
class VideoReport:
    """Every measurement of one video."""

    video: str
    model: str
    size: tuple[int, int]
    core: CoreResult
    old: OldResult
    alone: DetectorAlone
    graph: GraphResult | None = None
    #: The detector alone again, right before the graph run: the same load on the machine.
    alone_before_graph: DetectorAlone | None = None
    camera_only: GraphResult | None = None

    @property
    def label(self) -> str:
        """Video, resolution and model file names, for titles and columns."""
        return f'{Path(self.video).name} {self.size[0]}x{self.size[1]}, {Path(self.model).name}'

    @property
    def limit(self) -> DetectorAlone:
        """The detector alone measured closest to the graph run."""
        return self.alone_before_graph or self.alone


def print_core(report: VideoReport) -> None:
    """Print the core pipeline's stages, the detector alone and the old loop of one video."""
    core, old = report.core, report.old
    rows = [[name, f'{mean_ms(core.stages[name]):.1f}', f'{p95_ms(core.stages[name]):.1f}',
             f'{100 * sum(core.stages[name]) / sum(core.stages["total"]):.1f}']
            for name in CORE_STAGES]
    print_table(f'Core pipeline without ROS, {report.label}: {core.frames} frames, '
                f'{core.persons / core.frames:.1f} tracked persons/frame, '
                f'{core.faces_tried} face searches, {core.faces_identified} identified',
                ['stage', 'mean [ms]', 'p95 [ms]', 'share [%]'], rows)
    print(f'  throughput {core.fps:.2f} frames/s; beyond the detector '
          f'{100 * core.beyond_detector:.1f} % of the frame time')
    print(f'  detector alone on pre-decoded frames: {report.alone.rate:.2f} frames/s, '
          f'{ms_pair(report.alone.durations)} ms a frame (mean / p95)')
    print(f'  old loop: {old.fps:.2f} frames/s, {ms_pair(old.totals)} ms/frame (mean / p95), '
          f'{len(old.embeds) / len(old.totals):.1f} ResNet-50 crops/frame at '
          f'{ms_pair(old.embeds)} ms each')


def print_graph(report: VideoReport) -> None:
    """Print the ROS graph's latencies, rates and CPU per node for one video."""
    graph = report.graph
    rows = [[f'capture -> {topic}', graph.frames(topic), f'{graph.rate(topic):.2f}',
             f'{mean_ms(graph.latencies[topic]):.1f}', f'{p95_ms(graph.latencies[topic]):.1f}']
            for topic in TOPICS]
    print_table(f'Through ROS, {report.label}: {graph.window_s:.0f} s measured '
                f'(camera {graph.nominal_fps:.1f} fps, real time)',
                ['stage', 'frames', 'rate [Hz]', 'mean [ms]', 'p95 [ms]'], rows)
    print(f'  camera published {graph.camera_rate * graph.window_s:.0f} frames '
          f'({graph.camera_rate:.1f} Hz), detected {graph.frames("detections")}: the detector '
          'takes the newest frame (sensor-data QoS, keep-last 1); the detector alone, just '
          f'before: {report.limit.rate:.2f} frames/s, {ms_pair(report.limit.durations)} ms a '
          'frame (mean / p95)')
    cpu_rows = [[name, f'{100 * graph.cpu[name]:.1f}',
                 f'{100 * report.camera_only.cpu[name]:.1f}'
                 if name in report.camera_only.cpu else '',
                 f'{graph.peak_rss[name]:.0f}' if name in graph.peak_rss else '']
                for name in graph.cpu]
    print_table(f'CPU per process over the window [% of one core] and peak resident memory, '
                f'{report.label}', ['process', 'graph', 'camera alone', 'peak RSS [MiB]'],
                cpu_rows)
    alone = report.camera_only.latencies['image_raw']
    print(f'  capture -> image_raw with the camera alone (no models running): '
          f'{ms_pair(alone)} ms (mean / p95), {len(alone)} frames')


#: One summary line of one video: metric -> (value, target, whether it is met or None).
Summary = dict[str, tuple[str, str, bool | None]]


def graph_summary(report: VideoReport) -> Summary:
    """Return the summary lines of the ROS graph run of one video."""
    graph = report.graph
    rate = graph.rate('detections')
    # A frame's latency is one detect() (frame_time); the rate is the workers' together.
    frame_time = float(np.mean(report.limit.durations))
    # No graph detects frames the camera never captured: a 10 fps file caps it at 10 Hz.
    possible = min(report.limit.rate, graph.camera_rate)
    share = rate / possible
    tracks_p95 = p95_ms(graph.latencies['tracks']) / 1000
    lines: Summary = {
        'detector alone before the graph run [frames/s]': (f'{report.limit.rate:.2f}', '-',
                                                           None),
        'ROS camera publish rate [Hz] (file fps)':
            (f'{graph.camera_rate:.1f} ({graph.nominal_fps:.0f})', '-', None),
        'ROS detection rate [Hz]': (f'{rate:.2f}', '-', None),
        'ROS detection rate / min(detector alone, camera rate)': (
            f'{100 * share:.0f} %', f'>= {100 * MIN_DETECTOR_SHARE:.0f} %',
            bool(share >= MIN_DETECTOR_SHARE)),
        'ROS capture->tracks p95 / detector frame time': (
            f'{tracks_p95 / frame_time:.2f}', f'< {MAX_TRACKS_P95_FRAMES:.0f}',
            bool(tracks_p95 < MAX_TRACKS_P95_FRAMES * frame_time)),
    }
    for topic in TOPICS:
        lines[f'ROS capture->{topic} mean / p95 [ms]'] = (ms_pair(graph.latencies[topic]), '-',
                                                          None)
    lines['transport: capture->image_raw, camera alone [ms]'] = (
        ms_pair(report.camera_only.latencies['image_raw']), '-', None)
    for name, cores in graph.cpu.items():
        lines[f'CPU {name} [% of a core]'] = (f'{100 * cores:.1f}', '-', None)
    lines['CPU all but the detector [% of a core]'] = (
        f'{100 * sum(c for n, c in graph.cpu.items() if n != "detector"):.1f}', '-', None)
    for name, mib in graph.peak_rss.items():
        lines[f'peak RSS {name} [MiB]'] = (f'{mib:.0f}', '-', None)
    lines['peak RSS of the nodes together [MiB]'] = (f'{sum(graph.peak_rss.values()):.0f}',
                                                     '-', None)
    return lines


def summary(report: VideoReport) -> Summary:
    """Return the final table's lines for one video."""
    core, old = report.core, report.old
    speedup = core.fps / old.fps
    lines: Summary = {
        'detector alone [frames/s]': (f'{report.alone.rate:.2f}', '-', None),
        'core throughput [frames/s]': (f'{core.fps:.2f}', '-', None),
        'core total mean / p95 [ms]': (ms_pair(core.stages['total']), '-', None),
        'core share beyond the detector': (
            f'{100 * core.beyond_detector:.1f} %', f'< {100 * MAX_BEYOND_DETECTOR:.0f} %',
            bool(core.beyond_detector < MAX_BEYOND_DETECTOR)),
        'old loop throughput [frames/s]': (f'{old.fps:.2f}', '-', None),
        'speed-up new / old': (f'{speedup:.2f}x', f'>= {MIN_SPEEDUP:.0f}x',
                               bool(speedup >= MIN_SPEEDUP)),
    }
    if report.graph is not None:
        lines.update(graph_summary(report))
    return lines


def print_summary(reports: Sequence[VideoReport]) -> None:
    """Print one row per metric with a column per video, the target and whether it is met."""
    columns = [summary(report) for report in reports]
    metrics = list(dict.fromkeys(metric for column in columns for metric in column))
    rows = []
    for metric in metrics:
        entries = [column.get(metric, ('', '-', None)) for column in columns]
        met = [entry[2] for entry in entries if entry[2] is not None]
        target = next(entry[1] for entry in entries if entry[0])
        rows.append([metric, *(entry[0] for entry in entries), target,
                     ' / '.join('yes' if ok else 'NO' for ok in met) if met else '-'])
    print_table('Summary', ['metric', *(r.label for r in reports), 'target', 'met'], rows)


# ------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--videos', nargs='+', default=list(DEFAULT_VIDEOS),
                        help='video files to run, any resolution (default: hamilton clip and '
                        'pedestrians); the first is upscaled to '
                        f'{", ".join(f"{w}x{h}" for w, h in ALWAYS_SIZES)} when no video has '
                        f'that size (cached in {CLIP_CACHE})')
    parser.add_argument('--models', nargs='+',
                        help='YOLO person models, each run on every video; the graph runs use '
                        'the first (default: the float rebuilds of the shared ONNX as .pt and '
                        '.onnx, then the ONNX itself)')
    parser.add_argument('--frames', type=int, default=60,
                        help='first frames of each video for the core and old loops and the '
                        'detector alone')
    parser.add_argument('--ros-seconds', type=float, default=25.0,
                        help='measured seconds of each video through the ROS graph')
    parser.add_argument('--skip-ros', action='store_true', help='skip the ROS graph runs')
    parser.add_argument('--profile', type=Path,
                        help='folder for py-spy profiles of every node over each graph run\'s '
                        'window (py-spy must be on PATH; it is no dependency of the package)')
    parser.add_argument('--domain-id', type=int, default=77,
                        help='ROS_DOMAIN_ID of the graph runs (keep it away from others)')
    args = parser.parse_args(argv)
    if args.frames < 1 or args.ros_seconds <= 0:
        parser.error('--frames and --ros-seconds must be positive')
    for path in [*args.videos, *(args.models or [DEFAULT_ONNX])]:
        if not Path(path).is_file():
            parser.error(f'no such file: {path}')
    if args.profile and not shutil.which('py-spy'):
        parser.error('--profile needs py-spy on PATH (pip install py-spy)')
    args.videos = with_always_sizes(args.videos)
    if not args.models:
        args.models = [str(cached_float_model(DEFAULT_ONNX, MODEL_CACHE, suffix))
                       for suffix in ('.pt', '.onnx')] + [str(DEFAULT_ONNX)]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run every benchmark and print the tables; return a process exit code."""
    if argv is None and 'OMP_WAIT_POLICY' not in os.environ:
        # torch, loaded with the tracker's imports above, reads it once: start again with the
        # detector node's setting (core.detection.passive_thread_waits), so that the detector
        # here waits as the node's does; the node processes then choose their own.
        os.execve(sys.executable, [sys.executable, *sys.argv],
                  {**os.environ, 'OMP_WAIT_POLICY': 'PASSIVE', OWN_WAIT_POLICY: '1'})
    if os.environ.pop(OWN_WAIT_POLICY, None):
        del os.environ['OMP_WAIT_POLICY']
    args = parse_args(argv)
    exit_on_sigterm()  # the graph's nodes and profilers are stopped on the way out
    # Before rclpy.init and before any node process starts: this run's nodes must only see
    # each other, not other graphs (tests) running on the same machine.
    os.environ['ROS_DOMAIN_ID'] = str(args.domain_id)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    started = time.monotonic()
    print(f'machine: {platform.node()}, nproc {len(os.sched_getaffinity(0))}, CPU {cpu_model()}; '
          f'{load_note()}')
    print(f'models: {", ".join(args.models)}\nvideos: {", ".join(args.videos)}\n'
          f'params: {PARAMS_FILE}\n'
          f'facetrack_ros: {Path(facetrack_ros.__file__).parent}; '
          f'RMW {os.environ.get("RMW_IMPLEMENTATION") or "default (rmw_fastrtps_cpp)"}')
    sys.stdout.flush()

    analyzer = face_embedding_node.face_analyzer(
        node_parameters('face_embedding', face_embedding_node.PARAMETERS))
    resnet = load_resnet()
    reports = []
    for model in args.models:
        # Both loops use the same detector: the comparison is about what follows it.
        detectors = load_detectors(model)
        for video in args.videos:
            print(f'\n[{Path(video).name}, {Path(model).name}] core pipeline, detector alone '
                  f'and old loop; {load_note()}', flush=True)
            core = run_core(video, args.frames, detectors[0], analyzer)
            alone = run_detector_alone(video, args.frames, detectors)
            old = run_old_loop(video, args.frames, detectors[0], resnet)
            reports.append(VideoReport(video, model, video_size(video), core, old, alone))
            print_core(reports[-1])
        for detector in detectors:
            detector.close()
    # The in-process face models would compete with the node processes for the two cores.
    del detectors, analyzer, resnet

    if not args.skip_ros:
        rclpy.init()
        # Idle during the graph runs: it only measures the limit right before each.
        detectors = load_detectors(args.models[0])
        try:
            with tempfile.TemporaryDirectory(prefix='bench_pipeline_') as work:
                graphed = [report for report in reports if report.model == args.models[0]]
                for index, report in enumerate(graphed):
                    print(f'\n[{report.label}] ROS graph run; {load_note()}', flush=True)
                    report.alone_before_graph = run_detector_alone(report.video, args.frames,
                                                                   detectors)
                    logs = Path(work) / str(index)
                    report.graph = run_graph(
                        report.video, report.model, args.ros_seconds, logs / 'graph',
                        with_models=True,
                        profile=args.profile / Path(report.video).stem if args.profile else None)
                    report.camera_only = run_graph(report.video, report.model,
                                                   min(TRANSPORT_ONLY_S, args.ros_seconds),
                                                   logs / 'camera', with_models=False)
                    print_graph(report)
        finally:
            for detector in detectors:
                detector.close()
            rclpy.try_shutdown()

    print_summary(reports)
    print(f'\nfinished in {time.monotonic() - started:.0f} s; {load_note()}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
