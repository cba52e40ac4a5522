#!/usr/bin/env python3
"""`make demo`: run the whole graph on a sample clip, print events, search the history.

Starts camera, detector, face_embedding, tracker, frame_history and annotator with
`ros2 launch facetrack_ros facetrack.launch.py` where the ROS 2 launch tools are installed,
else as processes of the installed executables (facetrack_ros.graph_runner), and says which.
Prints every PersonEvent, writes the event log, the history and an annotated video under
demo_output/, and ends with a BacktrackSearch by photo that prints the intervals found.
"""

import argparse
from datetime import datetime, timezone
from pathlib import Path
import shutil
import subprocess
import sys
import time

import cv2
import rclpy
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image

from facetrack_ros import tracker_node
from facetrack_ros.annotator_node import ANNOTATED_QOS
from facetrack_ros.conversions import bgr_to_image, image_to_bgr, time_to_sec
from facetrack_ros.core.tracking import EventKind
from facetrack_ros.graph_runner import GraphRunner, LaunchRunner, ros2_launch_available
from facetrack_ros.msg import PersonEvent
from facetrack_ros.parameters import offline_parameters, RECORDED_QOS
from facetrack_ros.srv import BacktrackSearch

REPO = Path(__file__).resolve().parents[1]


def clock(stamp) -> str:
    """Return a stamp as a UTC time of day with hundredths, for people reading the output."""
    moment = datetime.fromtimestamp(time_to_sec(stamp), timezone.utc)
    return moment.strftime('%H:%M:%S.%f')[:-4]


def sample_clip() -> tuple[str, str]:
    """Return (clip, query photo) made by make_demo_clip.py."""
    out = subprocess.run([sys.executable, str(REPO / 'scripts' / 'make_demo_clip.py')],
                         check=True, capture_output=True, text=True).stdout.split()
    return out[0], out[1]


def main() -> int:
    """Run the demo; return a process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--video', help='video file or camera (default: the sample clip)')
    parser.add_argument('--photo', help='photo of the person to search for at the end')
    parser.add_argument('--model', default='yolo11n.pt', help='detector model parameter')
    parser.add_argument('--output', type=Path, default=REPO / 'demo_output')
    parser.add_argument('--duration', type=float, default=0.0,
                        help='stop after this long [s] (default: when the video ends)')
    parser.add_argument('--runner', choices=('auto', 'launch', 'processes'), default='auto',
                        help='ros2 launch, the node processes without it, or launch when '
                             'available (default)')
    args = parser.parse_args()
    clip, photo = sample_clip() if not args.video else (args.video, args.photo)
    shutil.rmtree(args.output, ignore_errors=True)
    args.output.mkdir(parents=True)

    rclpy.init()
    node = rclpy.create_node('facetrack_demo')
    events: list[PersonEvent] = []
    video = {'writer': None}

    def on_event(msg: PersonEvent) -> None:
        events.append(msg)
        extra = f' after {msg.duration:.1f} s' if msg.kind == PersonEvent.PERSON_OUT else ''
        print(f'[{clock(msg.header.stamp)}] {EventKind(msg.kind).name:<15} '
              f'{msg.person_id} (track {msg.track_id}, robot {msg.robot_id}){extra}',
              flush=True)

    def on_annotated(msg: Image) -> None:
        frame = image_to_bgr(msg)
        if video['writer'] is None:
            video['writer'] = cv2.VideoWriter(
                str(args.output / 'annotated.mp4'), cv2.VideoWriter_fourcc(*'mp4v'), 10,
                (frame.shape[1], frame.shape[0]))
        video['writer'].write(frame)

    # Transient local: events published before the tracker matched this subscription too.
    node.create_subscription(PersonEvent, 'person_events', on_event, RECORDED_QOS)
    node.create_subscription(Image, 'annotated', on_annotated, ANNOTATED_QOS)
    search = node.create_client(BacktrackSearch, 'backtrack_search')
    executor = SingleThreadedExecutor()
    executor.add_node(node)

    use_launch = args.runner == 'launch' or (args.runner == 'auto' and ros2_launch_available())
    code = 0
    runner = start_graph(use_launch, args, clip)
    try:
        end = time.monotonic() + args.duration if args.duration else None
        while end is None or time.monotonic() < end:
            executor.spin_once(timeout_sec=0.1)
            if runner.source_ended() or runner.failed():
                break
        if runner.failed():
            print(f'demo: stopped early: {runner.failed()}\n{runner.tail()}', flush=True)
            code = 1
        # The clip is over: the tracker ends the appearances when its input has stalled for
        # input_timeout (PERSON_OUT, INPUT_STALLED); wait for them, with time to spare.
        tracker = offline_parameters('tracker', tracker_node.PARAMETERS,
                                     REPO / 'config' / 'facetrack.yaml')
        settle = time.monotonic() + tracker.input_timeout + 3.0
        while time.monotonic() < settle:
            executor.spin_once(timeout_sec=0.1)
        code = report_search(node, executor, search, photo) or code
    finally:
        runner.stop()
        if video['writer'] is not None:
            video['writer'].release()
        node.destroy_node()
        rclpy.try_shutdown()
    print(f'demo: {len(events)} events; event log {args.output / "events"}; annotated video '
          f'{args.output / "annotated.mp4"}')
    return code


def start_graph(use_launch: bool, args: argparse.Namespace,
                clip: str) -> GraphRunner | LaunchRunner:
    """Start the graph with ros2 launch or as processes; say which. The clip plays once."""
    logs = args.output / 'logs'
    if use_launch:
        runner = LaunchRunner({'source': clip, 'model': args.model, 'robot_id': 'demo',
                               'log_dir': args.output, 'annotate': True, 'loop': False},
                              logs / 'launch.log')
        print(f'demo: ros2 launch is installed: {" ".join(runner.command)}\n'
              f'demo: its output and the nodes\' in {runner.log_path}', flush=True)
        return runner
    print('demo: no ros2 launch here (the ROS 2 launch tools are not installed): starting the '
          f'node executables with facetrack_ros.graph_runner; node logs in {logs}', flush=True)
    runner = GraphRunner(logs, str(REPO / 'config' / 'facetrack.yaml'))
    runner.start('frame_history', robot_id='demo', history_dir=str(args.output / 'history'))
    runner.start('tracker', robot_id='demo', event_log_dir=str(args.output / 'events'))
    runner.start('face_embedding')
    runner.start('annotator')
    runner.start('detector', model=args.model)
    # The camera holds the clip until these nodes are up, the annotator too (the video).
    runner.start('camera', source=clip, realtime=True, loop=False,
                 wait_for_nodes=['detector', 'face_embedding', 'tracker', 'frame_history',
                                 'annotator'])
    return runner


def report_search(node, executor, client, photo: str | None) -> int:
    """Search the history for the person in photo and print the intervals found."""
    if not photo:
        print('demo: no --photo given; skipping the backtrack search')
        return 0
    image = cv2.imread(photo)
    if image is None:
        print(f'demo: cannot read photo {photo}')
        return 1
    request = BacktrackSearch.Request(query_type=BacktrackSearch.Request.QUERY_IMAGE,
                                      image=bgr_to_image(image), window_width=0.0,
                                      include_thumbnails=False)
    future = client.call_async(request)
    executor.spin_until_future_complete(future, timeout_sec=30.0)
    response = future.result()
    if response is None:
        print('demo: backtrack_search did not answer')
        return 1
    print(f'\nBacktrackSearch for {Path(photo).name}: {response.message} '
          f'in {1000 * response.elapsed:.1f} ms')
    for a in response.appearances:
        print(f'  {a.person_id} on {a.robot_id}/{a.camera_id}: '
              f'{clock(a.first_seen)} .. {clock(a.last_seen)} UTC '
              f'({a.sightings} sightings, best similarity {a.best.similarity:.3f})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
