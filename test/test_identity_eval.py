"""The identity evaluation's short variant: the real graph on a composed clip of 8 s.

scripts/eval_identity.py runs the long evaluation; this checks that its harness works end to
end (the graph runs, every message lands on a frame of the clip, the metrics are counted),
not the tracker's figures: those are the evaluation's table.
"""

import math
from pathlib import Path
import signal
import subprocess
import sys
import textwrap
import time

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
import pytest
import rclpy
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header

from facetrack_ros import detector_node
from facetrack_ros.camera_node import LATEST_FRAME_KEY, LATEST_FRAME_STAMP_KEY
from facetrack_ros.conversions import bgr_to_compressed
from facetrack_ros.core.dequantize import cached_float_model
from facetrack_ros.evaluation.clips import ClipTruth, compose, encode_frame_number
from facetrack_ros.evaluation.identity import evaluate, Truth
from facetrack_ros.evaluation.run import (detector_delay_parameter, DetectorDelayUnavailable,
                                          GraphProbe, run_graph_on_clip)
from facetrack_ros.evaluation.scenes import SCENES
from facetrack_ros.msg import PersonDetection, PersonDetectionArray

pytestmark = pytest.mark.e2e

#: Numbered frames the probe must read for the harness to place messages on frames.
MIN_NUMBERED_FRAMES = 10


@pytest.fixture(scope='module')
def recording(shared_dir: Path, tmp_path_factory):
    """Run the graph once on the short composed clip; return (truth, recording)."""
    work = tmp_path_factory.mktemp('identity_eval')
    clip = compose(SCENES['short'], shared_dir, work / 'clips')
    model = cached_float_model(shared_dir / 'models' / 'yolov8n_int8.onnx', work / 'models')
    truth = Truth.from_clip(ClipTruth.read(clip.truth))
    run = run_graph_on_clip(clip.video, truth.fps, len(truth.frames), True, str(model),
                            work / 'run', 'identity_eval_short')
    return truth, run


def test_graph_run_lands_on_the_clips_frames(recording) -> None:
    """Images, tracks and events are placed on frames of the clip by their drawn numbers."""
    truth, run = recording
    known = [s for s in run.frame_stamps if not math.isnan(s)]
    # Raw frames reach the probe best-effort, and DDS drops a frame with any of its fragments
    # on a busy machine (19 of 80 arrived in one whole-suite run): the harness places messages
    # by the nearest numbered frame, so a few numbered frames suffice.
    assert len(known) >= MIN_NUMBERED_FRAMES, f'the probe read {len(known)} frame numbers'
    assert known == sorted(known)
    assert run.tracks, 'the tracker published tracks'
    frames = {t.frame for t in run.tracks}
    assert min(frames) >= 0 and max(frames) < len(truth.frames)


def test_graph_run_produces_events_the_metrics_count(recording) -> None:
    """Both people get a PERSON_IN; the report counts them against the truth."""
    truth, run = recording
    kinds = [e.kind for e in run.events]
    assert kinds.count('PERSON_IN') >= 1, kinds
    report = evaluate(truth, run.tracks, run.events, run.faces, run.frame_stamps)
    assert report.real_persons == 2
    assert report.person_in == kinds.count('PERSON_IN')
    assert report.processed_frames == len({t.frame for t in run.tracks})
    assert report.track_recall is not None and report.track_recall > 0.5
    assert all(0 < latency < 30 for latency in report.latency_in), report.latency_in
    assert report.flaps is not None and report.wrong_returned is not None
    assert report.misfiled_faces is not None
    # Faces are placed on the truth by their own box: the harness must read it.
    assert all(face.face_box is not None for face in run.faces)


def test_an_uncoded_clip_is_numbered_from_the_camera_reports(ros_context) -> None:
    """Images lost at the start (best effort under load) do not shift the frame numbers.

    The probe got every third image from frame 12 on; the camera reported frame 20's stamp.
    """
    node = rclpy.create_node('numbering_probe', context=ros_context)
    probe = GraphProbe(node, fps=10.0, frames=40, coded=False)

    def header(frame: int) -> Header:
        ns = 1_800_000_000 * 10**9 + frame * 10**8 + 123  # 10 frames a second
        return Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9))
    for frame in range(12, 40, 3):
        probe.on_image(CompressedImage(header=header(frame)))
    probe.on_tracks(PersonDetectionArray(header=header(26), detections=[PersonDetection()]))
    assert probe.recording().tracks[0].frame == 26 - 12  # numbered from the first received
    stamp = header(20).stamp
    # Another namespace's camera reports last: were it read, frame 20 would be numbered 3.
    probe.on_diagnostics(DiagnosticArray(status=[
        DiagnosticStatus(name='/camera', values=[
            KeyValue(key=LATEST_FRAME_KEY, value='20'),
            KeyValue(key=LATEST_FRAME_STAMP_KEY, value=f'{stamp.sec}.{stamp.nanosec:09d}')]),
        DiagnosticStatus(name='/elsewhere/camera', values=[
            KeyValue(key=LATEST_FRAME_KEY, value='3'),
            KeyValue(key=LATEST_FRAME_STAMP_KEY, value=f'{stamp.sec}.{stamp.nanosec:09d}')])]))
    recording = probe.recording()
    assert recording.tracks[0].frame == 26
    assert [i for i, s in enumerate(recording.frame_stamps) if not math.isnan(s)] == [
        *sorted([*range(12, 40, 3), 20])]
    node.destroy_node()


def test_a_composed_clip_is_numbered_from_its_jpeg_images(ros_context) -> None:
    """The probe reads the frame number drawn into each image_raw/compressed image."""
    node = rclpy.create_node('coded_probe', context=ros_context)
    probe = GraphProbe(node, fps=10.0, frames=40, coded=True)
    image = np.full((360, 640, 3), 90, np.uint8)
    for frame, sec in ((31, 7), (7, 5)):  # the numbers, not the order of arrival, count
        encode_frame_number(image, frame)
        probe.on_image(bgr_to_compressed(image, Header(stamp=Time(sec=sec))))
    probe.on_image(bgr_to_compressed(np.full((360, 640, 3), 90, np.uint8),
                                     Header(stamp=Time(sec=9))))  # no number: no frame
    probe.on_tracks(PersonDetectionArray(header=Header(stamp=Time(sec=5)),
                                         detections=[PersonDetection()]))
    recording = probe.recording()
    assert recording.images_seen == 3
    assert [i for i, s in enumerate(recording.frame_stamps) if not math.isnan(s)] == [7, 31]
    assert recording.frame_stamps[7] == 5.0
    assert recording.tracks[0].frame == 7
    node.destroy_node()


def test_detector_delay_is_found_or_refused_with_the_reason() -> None:
    """--detector-delay uses the detector's test-only delay parameter, or says it is missing."""
    delays = [spec for spec in detector_node.PARAMETERS if 'delay' in spec.name]
    if not delays:
        with pytest.raises(DetectorDelayUnavailable, match='no delay parameter'):
            detector_delay_parameter()
    else:
        assert detector_delay_parameter().name == delays[0].name


def _alive(pid: int) -> bool:
    """Return whether process pid runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0] != 'Z'
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGKILL])
def test_the_cpu_hogs_end_with_the_evaluation_however_it_is_ended(signum: int,
                                                                  tmp_path: Path) -> None:
    """An evaluation under --load ended by SIGTERM (timeout, kill) stops its hogs on its way out.

    exit_on_sigterm makes SIGTERM run the script's cleanup; one killed outright cannot, and
    its hogs end by themselves once orphaned. Left running, they would load every later test.
    """
    script = textwrap.dedent('''
        import time
        from facetrack_ros.evaluation.run import CpuLoad
        from facetrack_ros.graph_runner import exit_on_sigterm
        exit_on_sigterm()
        with CpuLoad(2) as load:
            print(*(hog.pid for hog in load.processes), flush=True)
            time.sleep(120)
        ''')
    # Not from the source tree, which would shadow the installed package (messages and all).
    process = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE,
                               text=True, cwd=tmp_path)
    hogs = [int(pid) for pid in process.stdout.readline().split()]
    assert len(hogs) == 2 and all(_alive(pid) for pid in hogs)
    process.send_signal(signum)
    assert process.wait(timeout=30) == (128 + signum if signum == signal.SIGTERM else -signum)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in hogs) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in hogs)
