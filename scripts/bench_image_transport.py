#!/usr/bin/env python3
"""How many frames of each camera image topic reach a reader as slow as the detector.

The camera node plays a video in real time; for each topic in turn, a reader that spends
--work seconds on every frame (as the detector does) counts the frames it receives with the
given QoS. Large best-effort samples travel in fragments, and a frame is lost when one of
its fragments is: this shows which topic a slow reader can rely on. Prints a table; nothing
is asserted. Run with `source scripts/env.sh` first.
"""

import argparse
import os
from pathlib import Path
import sys
import tempfile
import time
from typing import Sequence

import rclpy
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import CompressedImage, Image

from bench_pipeline import ALWAYS_SIZES, DEFAULT_VIDEOS, upscaled_clip
from facetrack_ros.graph_runner import GraphRunner
from facetrack_ros.parameters import image_qos_profile

REPO = Path(__file__).resolve().parents[1]
TOPICS = ('image_detect', 'image_detect/compressed', 'image_raw', 'image_raw/compressed')
#: Frames before this are left out (DDS matching, the first callbacks) [s].
WARMUP_S = 1.0


def received_rate(video: str, topic: str, work: float, qos: str, seconds: float,
                  log_dir: Path) -> tuple[float, int]:
    """Return (frames per second received, mean message size [bytes]) of topic."""
    node = rclpy.create_node('transport_probe')
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    arrivals: list[float] = []
    sizes: list[int] = []

    def on_frame(msg: Image | CompressedImage) -> None:
        arrivals.append(time.monotonic())
        sizes.append(len(msg.data))
        time.sleep(work)

    msg_type = CompressedImage if topic.endswith('/compressed') else Image
    node.create_subscription(msg_type, topic, on_frame, image_qos_profile(qos))
    runner = GraphRunner(log_dir, str(REPO / 'config' / 'facetrack.yaml'))
    try:
        runner.start('camera', source=video, realtime=True, loop=True, image_qos=qos,
                     wait_for_nodes=[node.get_name()])
        deadline = time.monotonic() + 60.0
        while not arrivals or time.monotonic() < arrivals[0] + WARMUP_S + seconds:
            if time.monotonic() > deadline or runner.failed():
                raise RuntimeError(f'no frames on {topic}\n{runner.tail()}')
            executor.spin_once(timeout_sec=0.05)
    finally:
        runner.stop()
        executor.shutdown()
        node.destroy_node()
    start = arrivals[0] + WARMUP_S
    counted = [t for t in arrivals if start <= t < start + seconds]
    return len(counted) / seconds, int(sum(sizes) / len(sizes))


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every topic and print the table; return a process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('video', nargs='?',
                        help='video file the camera plays (default: the 1920x1080 clip of '
                        'bench_pipeline.py, made if missing)')
    parser.add_argument('--work', type=float, default=0.06,
                        help='seconds the reader spends on each frame (default: 0.06)')
    parser.add_argument('--qos', choices=('sensor_data', 'reliable'), default='sensor_data')
    parser.add_argument('--seconds', type=float, default=8.0, help='measured seconds per topic')
    parser.add_argument('--domain-id', type=int, default=77,
                        help='ROS_DOMAIN_ID of the runs (keep it away from others)')
    args = parser.parse_args(argv)
    args.video = args.video or upscaled_clip(DEFAULT_VIDEOS[0], ALWAYS_SIZES[0])
    os.environ['ROS_DOMAIN_ID'] = str(args.domain_id)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    most = 1.0 / args.work if args.work > 0 else float('inf')
    rclpy.init()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix='bench_transport_') as work:
            for topic in TOPICS:
                rate, size = received_rate(args.video, topic, args.work, args.qos,
                                           args.seconds, Path(work) / topic.replace('/', '_'))
                rows.append((topic, size, rate))
    finally:
        rclpy.try_shutdown()
    print(f'{Path(args.video).name}, {args.qos} QoS, reader busy {1000 * args.work:.0f} ms a '
          f'frame (at most {most:.1f} frames/s)')
    print(f'{"topic":<26}{"size [KiB]":>12}{"received [frames/s]":>22}')
    for topic, size, rate in rows:
        print(f'{topic:<26}{size / 1024:>12.0f}{rate:>22.1f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
