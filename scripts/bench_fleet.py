#!/usr/bin/env python3
"""Benchmark fleet search: latency with 1, 4, 8 and 16 robots on this machine, bytes per answer.

Each simulated robot is what the launch file starts for the fleet: its frame_history node over
a history folder of its own and its fleet node, two processes in the robot's namespace, over
real DDS (localhost). Each history holds one hour of one camera: ten people, each in view
for 30 s of every minute (five at a time), one index entry per person in view per second
(18,000 entries, as in bench_history.py), and a 640x360 JPEG frame every FRAME_PERIOD_S for
thumbnails. The robots are started in steps (1, then up to 4, 8, 16); at each step the
benchmark calls r1's fleet_search (by embedding: a noisy sighting of one of the people, over
the whole hour, max_results 10, no thumbnails) `--queries` times, at the rate robots answer
an asker (peer_rate), and times the round trip. Every robot finds the person 60 times, so
every answer carries 10 appearances.

It also times, over r1's history: the search in this process (HistorySearch, the core) against
the same search through the frame_history node's backtrack_search (the fleet node's path), and
reads the CPU time every node process used per fleet search. Then it prints one table.
Nothing is asserted.
"""

import argparse
import os
from pathlib import Path
import sys
import tempfile
import time

import cv2
import numpy as np
import psutil
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage

from facetrack_ros.conversions import bgr_to_compressed, ns_to_time
from facetrack_ros.core.embedding import DLIB_EMBEDDING_DIM
from facetrack_ros.core.fleet import DEFAULT_PEER_RATE
from facetrack_ros.core.history import (COMPRESSED_IMAGE_TYPE, FrameHistory, HistorySearch,
                                        IndexEntry, message_definition, QueryKind, SearchQuery,
                                        SerializedMessage)
from facetrack_ros.fleet_messages import REQUEST_QOS, RESULT_QOS
from facetrack_ros.graph_runner import GraphRunner
from facetrack_ros.msg import FleetSearchRequest, FleetSearchResult
from facetrack_ros.srv import BacktrackSearch, FleetSearch

S = 10 ** 9
PEOPLE = 10
VISIT_S = 30             # each person is in view for VISIT_S, then away for VISIT_S
NOISE = 0.015            # per-value noise of a sighting: same-person similarity ~0.97
FRAME_PERIOD_S = 5       # one stored frame per this many seconds (thumbnails)
JPEG_POOL = 12
STEPS = (1, 4, 8, 16)
TARGET_ROBOTS, TARGET_P95_MS = 8, 300.0
#: Before each step the robots' CPU is read over windows of IDLE_S until the last three agree
#: within SETTLED of their mean (the robots just started have finished loading and discovering
#: each other: about a minute for 16 robots here), or MAX_SETTLE_S.
IDLE_S, SETTLED, MAX_SETTLE_S = 5.0, 0.15, 180.0
#: The histories end a few minutes before the run: recent enough for the nodes' retention.
T0 = (time.time_ns() // S - 3600 - 300) * S


def unit_people(rng: np.random.Generator) -> np.ndarray:
    """Return PEOPLE random unit face embeddings (the same people for every robot)."""
    people = rng.normal(size=(PEOPLE, DLIB_EMBEDDING_DIM)).astype(np.float32)
    return people / np.linalg.norm(people, axis=1, keepdims=True)


def sighting(base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return one noisy unit-length sighting of the face base."""
    vector = base + rng.normal(scale=NOISE, size=base.shape).astype(np.float32)
    return vector / np.linalg.norm(vector)


def camera_jpegs(rng: np.random.Generator) -> list[bytes]:
    """Return JPEG_POOL 640x360 scenes with face-sized blobs and sensor noise."""
    jpegs = []
    ys, xs = np.mgrid[0:360, 0:640]
    for i in range(JPEG_POOL):
        image = np.dstack([(xs + 5 * i) % 256, (ys // 2) % 256, (xs + ys) % 256]).astype(
            np.uint8)
        for person in range(PEOPLE):
            cv2.circle(image, (55 + 60 * person, 170 + 4 * ((i + person) % 5)), 25,
                       (170, 190, 220), -1)
        noise = rng.integers(0, 16, image.shape, dtype=np.uint8)
        jpegs.append(bytes(bgr_to_compressed(cv2.add(image, noise), quality=80).data))
    return jpegs


def build_history(root: Path, robot: str, people: np.ndarray, jpegs: list[bytes],
                  seed: int) -> None:
    """Write one hour of robot's history: frames every FRAME_PERIOD_S, faces every second."""
    rng = np.random.default_rng(seed)
    definition = message_definition(COMPRESSED_IMAGE_TYPE, [Path(sys.prefix) / 'share'])
    message = CompressedImage(format='jpeg')
    message.header.frame_id = 'front_optical'
    with FrameHistory(root) as history:
        segment = ''
        for second in range(3600):
            stamp = T0 + second * S
            frame_stamp = T0 + (second - second % FRAME_PERIOD_S) * S
            if second % FRAME_PERIOD_S == 0:
                message.header.stamp = ns_to_time(stamp)
                message.data = jpegs[second // FRAME_PERIOD_S % len(jpegs)]
                segment = history.store.add_frame('front', SerializedMessage(
                    f'/{robot}/image_raw/compressed', COMPRESSED_IMAGE_TYPE, definition,
                    serialize_message(message), stamp), bytes(message.data), 'front_optical')
            for person, base in enumerate(people):
                if (second // VISIT_S + person) % 2:
                    continue
                history.index.add(IndexEntry(
                    stamp + person * 1000, robot, 'front', f'person{person}',
                    (30.0 + 60 * person, 140.0, 80.0 + 60 * person, 200.0),
                    float(rng.uniform(0.3, 1.0)), sighting(base, rng), segment, frame_stamp))
            if second % 60 == 59:
                history.flush()


def node_cpu_s(runners: dict[str, GraphRunner]) -> float:
    """Return the CPU time [s] the robots' node processes have used so far."""
    total = 0.0
    for runner in runners.values():
        for node in runner.nodes:
            try:
                times = psutil.Process(node.process.pid).cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
    return total


def settle(bench: 'Bench') -> float:
    """Wait until the robots' idle CPU is steady; return it [CPU s per s]."""
    began, rates = time.monotonic(), []
    while True:
        start, cpu = time.monotonic(), node_cpu_s(bench.runners)
        bench.spin(IDLE_S)
        rates.append((node_cpu_s(bench.runners) - cpu) / (time.monotonic() - start))
        last = rates[-3:]
        mean = sum(last) / len(last)
        if len(last) == 3 and all(abs(rate - mean) <= SETTLED * max(mean, 0.02)
                                  for rate in last) or time.monotonic() - began > MAX_SETTLE_S:
            return mean


def busy_cpu_s() -> float:
    """Return the CPU time [s] every process on the machine has used since boot."""
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + times.irq + times.softirq


def percentiles(values: list[float]) -> str:
    """Return 'p50 / p95' of values in ms."""
    return f'{np.percentile(values, 50):.0f} / {np.percentile(values, 95):.0f}'


class Bench:
    """The probe node, the robots' processes and what was measured."""

    def __init__(self, scratch: Path) -> None:
        """Create the probe node (rclpy must be initialised)."""
        self.scratch = scratch
        self.node = rclpy.create_node('bench_fleet_probe')
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.results: list[FleetSearchResult] = []
        self.requests: list[FleetSearchRequest] = []
        self.node.create_subscription(FleetSearchResult, '/fleet/search_result',
                                      self.results.append, RESULT_QOS)
        self.node.create_subscription(FleetSearchRequest, '/fleet/search_request',
                                      self.requests.append, REQUEST_QOS)
        self.runners: dict[str, GraphRunner] = {}
        self.fleet_search = self.node.create_client(FleetSearch, '/r1/fleet_search')

    def spin(self, seconds: float) -> None:
        """Process incoming messages for a while."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)

    def start(self, robot: str) -> None:
        """Start a robot's frame_history and fleet nodes."""
        runner = GraphRunner(self.scratch / robot / 'logs', None, robot)
        self.runners[robot] = runner
        runner.start('frame_history', robot_id=robot, camera_id='front',
                     history_dir=str(self.scratch / robot / 'history'))
        runner.start('fleet', robot_id=robot, camera_id='front', people_file='',
                     max_clock_skew=5.0)

    def call(self, client, request, timeout: float = 60.0):
        """Call a service; return the response and its round trip [s]."""
        began = time.perf_counter()
        future = client.call_async(request)
        end = time.monotonic() + timeout
        while not future.done() and time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.01)
        if not future.done():
            raise RuntimeError(f'no answer from {client.srv_name}\n{self.tails()}')
        return future.result(), time.perf_counter() - began

    def ready(self, robots: int, timeout: float = 300.0) -> None:
        """Wait until r1's fleet search is answered by every robot started."""
        request = FleetSearch.Request(query_type=FleetSearch.Request.QUERY_EMBEDDING,
                                      embedding=[1.0] + [0.0] * (DLIB_EMBEDDING_DIM - 1),
                                      window_width=60.0, timeout=5.0)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            failed = [name for runner in self.runners.values() for name in runner.failed()]
            if failed:
                raise RuntimeError(f'nodes exited: {failed}\n{self.tails()}')
            if self.fleet_search.service_is_ready():
                response, _ = self.call(self.fleet_search, request)
                if len(response.answered) == robots and not response.not_answered:
                    return
            self.spin(1.0)
        raise RuntimeError(f'{robots} robots not up after {timeout} s\n{self.tails()}')

    def tails(self) -> str:
        """Return the end of every node's log."""
        return '\n'.join(runner.tail(5) for runner in self.runners.values())

    def stop(self) -> None:
        """Stop every robot and the probe."""
        for runner in self.runners.values():
            runner.stop()
        self.executor.shutdown()
        self.node.destroy_node()


def time_core(history_dir: Path, people: np.ndarray, queries: int,
              rng: np.random.Generator) -> list[float]:
    """Time r1's search over its whole hour in this process (before its node opens it) [ms]."""
    latencies = []
    with FrameHistory(history_dir) as history:
        search = HistorySearch(history)
        for number in range(queries + 3):
            query = SearchQuery(QueryKind.EMBEDDING, window_s=0.0,
                                embedding=sighting(people[number % PEOPLE], rng))
            began = time.perf_counter()
            search.search(query)
            if number >= 3:
                latencies.append(1000 * (time.perf_counter() - began))
    return latencies


def time_service(bench: 'Bench', people: np.ndarray, queries: int,
                 rng: np.random.Generator) -> list[float]:
    """Time the same searches through r1's backtrack_search, as its fleet node asks [ms]."""
    client = bench.node.create_client(BacktrackSearch, '/r1/backtrack_search')
    latencies = []
    try:
        end = time.monotonic() + 60.0
        while not client.service_is_ready() and time.monotonic() < end:
            bench.spin(0.1)
        for number in range(queries + 3):
            _, took = bench.call(client, BacktrackSearch.Request(
                query_type=BacktrackSearch.Request.QUERY_EMBEDDING, window_width=0.0,
                embedding=sighting(people[number % PEOPLE], rng).tolist()))
            if number >= 3:
                latencies.append(1000 * took)
    finally:
        bench.node.destroy_client(client)
    return latencies


def main() -> None:
    """Build the histories, then measure each step of robots; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--robots', default=','.join(map(str, STEPS)),
                        help='robot counts to measure, ascending')
    parser.add_argument('--queries', type=int, default=30, help='fleet searches per step')
    parser.add_argument('--dir', default=None, help='scratch folder (default: a temp dir)')
    parser.add_argument('--domain-id', type=int, default=102,
                        help='ROS_DOMAIN_ID of the robots, away from other graphs')
    args = parser.parse_args()
    steps = [int(n) for n in args.robots.split(',')]
    os.environ['ROS_DOMAIN_ID'] = str(args.domain_id)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    rng = np.random.default_rng(11)
    people = unit_people(rng)
    jpegs = camera_jpegs(rng)
    started, busy = time.monotonic(), busy_cpu_s() - sum(psutil.Process().cpu_times()[:2])
    loads = [os.getloadavg()[0]]
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch_dir:
        scratch = Path(scratch_dir)
        began = time.perf_counter()
        for number in range(steps[-1]):
            build_history(scratch / f'r{number + 1}' / 'history', f'r{number + 1}', people,
                          jpegs, number)
        rows.append((f'{steps[-1]} one-hour histories built (18,000 entries, 720 frames each)',
                     f'{time.perf_counter() - began:.0f} s'))
        core = time_core(scratch / 'r1' / 'history', people, args.queries, rng)
        rclpy.init()
        bench = Bench(scratch)
        nodes_cpu = 0.0
        try:
            for count in steps:
                for number in range(len(bench.runners), count):
                    bench.start(f'r{number + 1}')
                bench.ready(count)
                if count == steps[0]:
                    service = time_service(bench, people, args.queries, rng)
                    rows.append(('r1 search over its hour in process (HistorySearch) p50 / p95',
                                 f'{percentiles(core)} ms'))
                    rows.append(('the same through its backtrack_search (DDS) p50 / p95',
                                 f'{percentiles(service)} ms'))
                rows += measure(bench, count, people, rng, args.queries, loads)
        finally:
            nodes_cpu = node_cpu_s(bench.runners)
            bench.stop()
            rclpy.try_shutdown()
    wall, cpus = time.monotonic() - started, psutil.cpu_count()
    print(f'fleet search benchmark ({cpus} CPUs, Python {sys.version.split()[0]}, '
          f'{args.queries} fleet searches per step, 1 h history per robot)')
    width = max(len(row[0]) for row in rows)
    for name, value in rows:
        print(f'  {name.ljust(width)}  {value}')
    own = nodes_cpu + sum(psutil.Process().cpu_times()[:2])
    other = (busy_cpu_s() - busy - own) / (wall * cpus)
    print(f'finished in {wall:.0f} s; load average (1 min) {min(loads):.1f} to {max(loads):.1f}'
          f'; other processes used {100 * other:.0f} % of the {cpus} CPUs meanwhile')


def measure(bench: Bench, count: int, people: np.ndarray, rng: np.random.Generator,
            queries: int, loads: list[float]) -> list[tuple[str, str]]:
    """Time `queries` fleet searches from r1 with count robots; return the table rows."""
    latencies, inside = [], []
    idle_rate = settle(bench)
    cpu_before, answers_before = node_cpu_s(bench.runners), len(bench.results)
    asking_began = time.monotonic()
    for number in range(queries + 3):
        bench.spin(max(0.0, asking_began + number / DEFAULT_PEER_RATE - time.monotonic()))
        embedding = sighting(people[number % PEOPLE], rng)
        thumbnails = number == queries + 2   # the last one: bytes with thumbnails
        request = FleetSearch.Request(query_type=FleetSearch.Request.QUERY_EMBEDDING,
                                      embedding=embedding.tolist(), window_width=0.0,
                                      include_thumbnails=thumbnails, timeout=10.0)
        response, took = bench.call(bench.fleet_search, request)
        if len(response.answered) != count:
            print(f'  note: {count} robots, answered by {len(response.answered)}: '
                  f'{response.message}', file=sys.stderr)
        if 3 <= number < queries + 2:
            latencies.append(1000 * took)
            inside.append(1000 * response.elapsed)
        loads.append(os.getloadavg()[0])
    cpu = (node_cpu_s(bench.runners) - cpu_before
           - idle_rate * (time.monotonic() - asking_began)) / (queries + 3)
    bench.spin(0.5)
    answers = bench.results[answers_before:]
    plain = [len(serialize_message(a)) for a in answers if not any(
        len(x.thumbnail.data) for x in a.appearances)]
    with_thumbnails = [len(serialize_message(a)) for a in answers if any(
        len(x.thumbnail.data) for x in a.appearances)]
    met = ''
    if count == TARGET_ROBOTS:
        p95 = np.percentile(latencies, 95)
        met = f' (target < {TARGET_P95_MS:.0f} ms: {"met" if p95 < TARGET_P95_MS else "NOT met"})'
    rows = [(f'{count:2d} robots: fleet_search round trip p50 / p95',
             f'{percentiles(latencies)} ms{met}'),
            (f'{count:2d} robots: inside r1 (response.elapsed) p50 / p95',
             f'{percentiles(inside)} ms'),
            (f'{count:2d} robots: CPU of all node processes per fleet search (beyond idle)',
             f'{1000 * cpu:.0f} ms ({1000 * cpu / count:.0f} ms per robot); idle '
             f'{100 * idle_rate:.0f} % of a CPU')]
    if count == max(STEPS) or count == 1:
        rows.append((f'{count:2d} robots: bytes per answer (CDR, 10 appearances), no '
                     'thumbnails / with', f'{int(np.mean(plain))} / '
                     f'{int(np.mean(with_thumbnails)) if with_thumbnails else "-"} B (largest '
                     f'{max(plain + with_thumbnails)} B); request '
                     f'{len(serialize_message(bench.requests[-1]))} B'))
    return rows


if __name__ == '__main__':
    main()
