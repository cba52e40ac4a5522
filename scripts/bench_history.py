#!/usr/bin/env python3
"""Benchmark the frame history on synthetic data: build time, search latency, disk, memory.

(a) One hour of one camera at 30 FPS with five people in view: real small JPEGs, serialized to
    CDR by rclpy as the node does, written into MCAP segments (flushed once per capture second,
    as the node's timer would), and one identified_faces message a second (stored and indexed
    as the node does: an entry per person per second). Also the index's journal (WAL) size,
    and the time to rebuild the index from the segments once it is deleted.
(b) 24 hours of the index alone (five people, one entry per second each); also the latency of
    index writes (what recording does every second) while searches run back to back.
(c) The old approach on a short window of real video stored as JPEG: every frame decoded, the
    person detector and the face model run again, each face compared with a real query face.
(d) The frame_history node itself (a process, config/facetrack.yaml) serving (a) and then (b):
    BacktrackSearch calls over the whole history and the node's resident memory.

Then it times searches over each whole window (random person embedding plus noise) through the
core's HistorySearch, which the node's BacktrackSearch calls, and frame lookups, and prints one
table, then the targets and whether each is met. Nothing is asserted.
"""

import argparse
import contextlib
from concurrent.futures import ProcessPoolExecutor
import multiprocessing
import os
from pathlib import Path
import resource
import shutil
import sys
import tempfile
import threading
import time
from typing import Callable

import cv2
import numpy as np
import psutil
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage

from facetrack_ros import frame_history_node
from facetrack_ros.conversions import bgr_to_compressed, bgr_to_image, jpeg_to_bgr
from facetrack_ros.core.camera import SourceEnded, VideoFileSource
from facetrack_ros.core.detection import YoloPersonDetector
from facetrack_ros.core.embedding import DEFAULT_MIN_SIMILARITY, DLIB_EMBEDDING_DIM
from facetrack_ros.core.face import DlibResNetEmbedder, FaceAnalyzer, FaceDetector
from facetrack_ros.core.history import (COMPRESSED_IMAGE_TYPE, EmbeddingIndex, FrameHistory,
                                        HistoryConfig, HistorySearch, INDEX_FILE, IndexEntry,
                                        message_definition, QueryKind, SearchQuery,
                                        SerializedMessage)
from facetrack_ros.core.history.config import NS_PER_S
from facetrack_ros.core.history.frame_history import FACES_TYPE
from facetrack_ros.core.history.inputs import faces_to_entries
from facetrack_ros.graph_runner import GraphRunner, wait_for_graph
from facetrack_ros.msg import PersonDetection, PersonDetectionArray
from facetrack_ros.srv import BacktrackSearch

REPO = Path(__file__).resolve().parents[1]
PARAMS_FILE = REPO / 'config' / 'facetrack.yaml'
# Test material beside the checkout, as the tests find it (FACETRACK_SHARED overrides it).
SHARED = Path(os.environ.get('FACETRACK_SHARED', Path(__file__).resolve().parents[2] / 'shared'))
DEFAULT_VIDEO = str(SHARED / 'data/video/hamilton_clip.mp4')
DEFAULT_MODEL = str(SHARED / 'models/yolov8n_int8.onnx')
DEFAULT_PHOTO = str(SHARED / 'data/faces/lin-manuel-miranda.png')

#: Start of the synthetic histories, two days before the run: the frame_history node deletes
#: history older than its max_age on a timer, so (d) must serve recent stamps (NODE_MAX_AGE_S).
T0 = (int(time.time()) - 2 * 86400) * NS_PER_S
#: max_age given to the node in (d): longer than the synthetic histories are old [s].
NODE_MAX_AGE_S = 7 * 86400.0
PEOPLE = 5
FPS = 30
JPEG_POOL = 30      # distinct JPEGs, reused in turn, to keep the build short
NOISE = 0.015       # per-value noise of a sighting: same-person similarity ~0.97
#: Random seeds of (a) and (b); (d) draws their people's faces again from them.
HOUR_SEED, DAY_SEED = 7, 8
#: JPEG quality of stored frames: the frame_history node's default.
JPEG_QUALITY = next(spec.default for spec in frame_history_node.PARAMETERS
                    if spec.name == 'jpeg_quality')
#: BacktrackSearch calls per history in (d).
NODE_SEARCHES = 10

#: Targets of the issue: search p95 over 1 h and 24 h [ms]; memory independent of history
#: length, read as: RSS growth over the second half of the history below this fraction.
MAX_P95_1H_MS = 50.0
MAX_P95_24H_MS = 500.0
MAX_RSS_GROWTH = 0.10

#: One line of the table: name, value.
Row = tuple[str, str]
#: Numbers a part hands to the targets table, by name.
Figures = dict[str, float]


def rss_mib() -> float:
    """Return this process's resident memory [MiB]."""
    return psutil.Process().memory_info().rss / 2 ** 20


def busy_cpu_s() -> float:
    """Return the CPU time [s] every process on the machine has used since boot."""
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + times.irq + times.softirq


def own_cpu_s() -> float:
    """Return the CPU time [s] of this process and of its children that have ended."""
    return sum(getattr(resource.getrusage(who), kind)
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for kind in ('ru_utime', 'ru_stime'))


def synthetic_jpegs(rng: np.random.Generator) -> list[bytes]:
    """Encode JPEG_POOL small 160x120 scenes: gradient, people-sized blobs, sensor noise."""
    jpegs = []
    ys, xs = np.mgrid[0:120, 0:160]
    for i in range(JPEG_POOL):
        image = np.dstack([(xs + 2 * i) % 256, (ys * 2) % 256, (xs + ys) % 256]).astype(np.uint8)
        for person in range(PEOPLE):
            cv2.circle(image, (20 + 30 * person, 60 + (i + person) % 9), 12, (200, 170, 150), -1)
        noise = rng.integers(0, 12, image.shape, dtype=np.uint8)
        jpegs.append(bytes(bgr_to_compressed(cv2.add(image, noise), quality=JPEG_QUALITY).data))
    return jpegs


def sighting(base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return one noisy unit-length sighting of the face base."""
    vector = base + rng.normal(scale=NOISE, size=base.shape).astype(np.float32)
    return vector / np.linalg.norm(vector)


def add_entries(index: EmbeddingIndex, people: np.ndarray, second: int, segment: str,
                rng: np.random.Generator) -> None:
    """Offer one entry per person for capture second `second`."""
    for person, base in enumerate(people):
        stamp = T0 + second * NS_PER_S + person * 1000
        index.add(IndexEntry(stamp, 'robot', 'front', f'person{person}',
                             (10.0 + 30 * person, 40.0, 34.0 + 30 * person, 80.0),
                             float(rng.uniform(0.3, 1.0)), sighting(base, rng), segment))


def time_searches(history: FrameHistory, people: np.ndarray, end_s: int, queries: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    """Search the whole window `queries` times; return latencies [ms], entries, appearances."""
    search = HistorySearch(history)
    latencies, entries, appearances = [], 0, 0
    for _ in range(queries):
        query = SearchQuery(QueryKind.EMBEDDING, embedding=sighting(people[rng.integers(PEOPLE)],
                                                                    rng),
                            center_ns=T0 + end_s * NS_PER_S // 2, window_s=end_s)
        began = time.perf_counter()
        outcome = search.search(query)
        latencies.append((time.perf_counter() - began) * 1000)
        entries, appearances = outcome.entries_searched, len(outcome.appearances)
    return np.array(latencies), entries, appearances


def time_adds_beside_searches(history: FrameHistory, people: np.ndarray, end_s: int,
                              searches: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Time index adds, one per 10 ms, while a thread runs `searches` whole-window searches.

    Returns the add latencies [ms] and how many searches ran meanwhile. The adds go to the
    seconds after the history, as a recording node's would.
    """
    thread = threading.Thread(target=time_searches, args=(history, people, end_s, searches,
                                                          np.random.default_rng(0)))
    latencies, second = [], end_s
    thread.start()
    while thread.is_alive():
        began = time.perf_counter()
        add_entries(history.index, people[:1], second, '', rng)
        latencies.append((time.perf_counter() - began) * 1000)
        second += 1
        time.sleep(0.01)
    return np.array(latencies), searches


def time_calls(call: Callable[..., object], arguments: list) -> np.ndarray:
    """Return the latency [ms] of call(*a) for each a in arguments."""
    latencies = []
    for argument in arguments:
        began = time.perf_counter()
        call(*argument)
        latencies.append((time.perf_counter() - began) * 1000)
    return np.array(latencies)


def folder_bytes(path: Path) -> int:
    """Return the bytes of every file under path."""
    return sum(item.stat().st_size for item in path.rglob('*') if item.is_file())


def unit_people(rng: np.random.Generator) -> np.ndarray:
    """Return PEOPLE random unit face embeddings."""
    people = rng.normal(size=(PEOPLE, DLIB_EMBEDDING_DIM)).astype(np.float32)
    return people / np.linalg.norm(people, axis=1, keepdims=True)


def bench_hour(scratch: str, queries: int) -> tuple[list[Row], Figures]:
    """Build part (a), one hour of frames and faces; time searches and frame lookups."""
    rng = np.random.default_rng(HOUR_SEED)
    people = unit_people(rng)
    definition = message_definition(COMPRESSED_IMAGE_TYPE)
    jpegs = synthetic_jpegs(rng)
    root = Path(scratch) / 'hour'
    rss_start = rss_mib()
    began = time.perf_counter()
    largest_wal = 0
    with FrameHistory(root, HistoryConfig(flush_interval_s=3600.0)) as history:
        message = CompressedImage()
        message.header.frame_id, message.format = 'front_optical', 'jpeg'
        for frame in range(3600 * FPS):
            stamp = T0 + frame * NS_PER_S // FPS
            jpeg = jpegs[frame % JPEG_POOL]
            message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp, NS_PER_S)
            message.data = jpeg
            # bytearray: the ring then holds its own copy, as with real, distinct frames
            history.store.add_frame('front', SerializedMessage(
                '/front/image_raw/compressed', COMPRESSED_IMAGE_TYPE, definition,
                serialize_message(message), stamp), bytearray(jpeg), 'front_optical')
            if frame % FPS == FPS - 1:   # end of a capture second: what the node's timer does
                record_faces(history, people, stamp, rng)
                history.store.flush()
                history.index.flush()
                largest_wal = max(largest_wal, wal_bytes(root))
        build = time.perf_counter() - began
        search, entries, appearances = time_searches(history, people, 3600, queries, rng)
        old = [(T0 + int(s * NS_PER_S), 0.05, 'front')
               for s in rng.uniform(0, 2400, queries)]   # older than the ring holds
        nearest = time_calls(history.store.nearest_frame, old)
        spread = time_calls(history.store.frames_in_range,
                            [(T0, T0 + 3600 * NS_PER_S, 10, 'front')] * 10)
        rss_end = rss_mib()
        segments, ring_frames = len(history.store.segments()), len(history.store.ring)
    total = folder_bytes(root)
    index_bytes = total - folder_bytes(root / 'segments')
    rebuild, rebuilt = time_rebuild(root)
    return [
        ('(a) 1 h: frames written (30 FPS, 1 camera, 160x120 JPEG)',
         f'{3600 * FPS} (mean JPEG {np.mean([len(j) for j in jpegs]) / 1024:.1f} KiB)'),
        ('(a) 1 h: build time (serialize + write + fsync/s + index)', f'{build:.1f} s'),
        ('(a) 1 h: segments / frames held by the RAM ring', f'{segments} / {ring_frames}'),
        ('(a) 1 h: index entries searched', f'{entries}'),
        ('(a) 1 h: search p50 / p95 (whole hour)',
         f'{np.percentile(search, 50):.1f} / {np.percentile(search, 95):.1f} ms'),
        ('(a) 1 h: appearances per search (person seen all hour)', f'{appearances}'),
        ('(a) 1 h: nearest_frame from segments p50 / p95',
         f'{np.percentile(nearest, 50):.1f} / {np.percentile(nearest, 95):.1f} ms'),
        ('(a) 1 h: frames_in_range(1 h, limit 10) p50 / p95',
         f'{np.percentile(spread, 50):.1f} / {np.percentile(spread, 95):.1f} ms'),
        ('(a) 1 h: disk per hour, segments + index',
         f'{total / 2 ** 20:.0f} MiB (index {index_bytes / 2 ** 20:.1f} MiB)'),
        ('(a) 1 h: resident memory at start / after build + queries (ring full)',
         f'{rss_start:.0f} / {rss_end:.0f} MiB'),
        ('(a) 1 h: largest index journal (WAL) while recording, a commit a second',
         f'{largest_wal / 2 ** 20:.2f} MiB'),
        ('(a) 1 h: index rebuilt from the segments (index deleted), entries',
         f'{rebuild:.1f} s, {rebuilt} entries'),
    ], {'p95 1 h': float(np.percentile(search, 95))}


def record_faces(history: FrameHistory, people: np.ndarray, stamp: int,
                 rng: np.random.Generator) -> None:
    """Store one identified_faces message of every person and index it, as the node does."""
    faces = PersonDetectionArray(image_width=160, image_height=120)
    faces.header.stamp.sec, faces.header.stamp.nanosec = divmod(stamp, NS_PER_S)
    faces.detections = [PersonDetection(
        box=[10.0 + 30 * person, 40.0, 34.0 + 30 * person, 80.0], confidence=0.9,
        track_id=person + 1, person_id=f'person{person}', has_face=True,
        face_box=[12.0 + 30 * person, 42.0, 32.0 + 30 * person, 62.0],
        face_quality=float(rng.uniform(0.3, 1.0)), embedding=sighting(base, rng).tolist())
        for person, base in enumerate(people)]
    segment = history.store.write('front', SerializedMessage(
        '/front/identified_faces', FACES_TYPE, message_definition(FACES_TYPE),
        serialize_message(faces), stamp))
    for entry in faces_to_entries(faces, 'robot', 'front', DLIB_EMBEDDING_DIM, segment)[0]:
        history.index.add(entry)


def wal_bytes(root: Path) -> int:
    """Return the size of the index's write-ahead log under root (0 when there is none)."""
    wal = root / f'{INDEX_FILE}-wal'
    return wal.stat().st_size if wal.exists() else 0


def time_rebuild(root: Path) -> tuple[float, int]:
    """Delete the index under root and rebuild it from the segments; return [s] and entries."""
    for suffix in ('', '-wal', '-shm'):
        (root / f'{INDEX_FILE}{suffix}').unlink(missing_ok=True)
    began = time.perf_counter()
    with FrameHistory(root, background=False) as history:
        history.maintain()
        return time.perf_counter() - began, history.index.entry_count()


def bench_index(scratch: str, hours: int, queries: int) -> tuple[list[Row], Figures]:
    """Build part (b), `hours` of index alone; time whole-window searches, watch memory.

    The index is in a history folder of its own (no frames), so (d) can serve it.
    """
    rng = np.random.default_rng(DAY_SEED)
    people = unit_people(rng)
    root = Path(scratch) / 'day'
    half = max(1, hours // 2)
    marks = {1, half, *range(6, hours, 6)}   # hours after which RSS is read (and at the end)
    rss = {'start': rss_mib()}
    began = time.perf_counter()
    with FrameHistory(root) as history:
        for second in range(hours * 3600):
            add_entries(history.index, people, second, '', rng)
            if (second + 1) % 3600 == 0 and (second + 1) // 3600 in marks:
                rss[f'{(second + 1) // 3600} h'] = rss_mib()
        history.index.flush()
        build = time.perf_counter() - began
        rss[f'{hours} h'] = rss_mib()
        search, entries, appearances = time_searches(history, people, hours * 3600, queries,
                                                     rng)
        rss['queries'] = rss_mib()
        adds, beside = time_adds_beside_searches(history, people, hours * 3600,
                                                 max(1, queries // 6), rng)
    size = folder_bytes(root)
    return [
        (f'(b) {hours} h index: entries searched', f'{entries}'),
        (f'(b) {hours} h index: build time', f'{build:.1f} s'),
        (f'(b) {hours} h index: search p50 / p95 (whole window)',
         f'{np.percentile(search, 50):.0f} / {np.percentile(search, 95):.0f} ms'),
        (f'(b) {hours} h index: appearances per search', f'{appearances}'),
        (f'(b) {hours} h index: add() during {beside} searches, p50 / p99 / max '
         f'({len(adds)} adds)', f'{np.percentile(adds, 50):.2f} / {np.percentile(adds, 99):.2f}'
         f' / {adds.max():.1f} ms'),
        (f'(b) {hours} h index: disk per hour', f'{size / hours / 2 ** 20:.1f} MiB'),
        (f'(b) {hours} h index: resident memory ' + ' / '.join(rss),
         ' / '.join(f'{value:.0f}' for value in rss.values()) + ' MiB'),
    ], {f'p95 {hours} h': float(np.percentile(search, 95)), 'rss half': rss[f'{half} h'],
        'rss end': rss['queries']}


def bench_old(video: str, seconds: float, model: str, photo: str) -> tuple[list[Row], Figures]:
    """Run part (c): the old approach's search over the first `seconds` of video.

    The old design answered a search by decoding every stored frame of the window, running
    the person detector on it and embedding the face in each person box. The frames are
    stored first as the node stores them (full size, JPEG at its default quality).
    """
    analyzer = FaceAnalyzer(FaceDetector('hog'), DlibResNetEmbedder())
    query = analyzer.largest_face(jpeg_to_bgr(Path(photo).read_bytes()))
    if query is None:
        raise RuntimeError(f'no face found in the query photo {photo}')
    detector = YoloPersonDetector(model)
    jpegs = []
    with VideoFileSource(video) as source:
        fps = source.nominal_fps or FPS
        while len(jpegs) < round(seconds * fps):
            try:
                image = source.read().image
            except SourceEnded:
                break
            jpegs.append(bytes(bgr_to_compressed(image, quality=JPEG_QUALITY).data))
    if not jpegs:
        raise RuntimeError(f'no frames in {video}')
    height, width = image.shape[:2]   # of the last frame read: every frame's size
    durations, persons, faces, matches = [], 0, 0, 0
    for jpeg in jpegs:
        began = time.perf_counter()
        image = jpeg_to_bgr(jpeg)
        for person in detector.detect(image):
            face = analyzer.face_in_person(image, person.box)
            persons += 1
            if face is not None:
                faces += 1
                matches += float(face.embedding @ query.embedding) >= DEFAULT_MIN_SIMILARITY
        durations.append(time.perf_counter() - began)
    per_frame = float(np.mean(durations))
    hour = per_frame * 3600 * FPS
    return [
        (f'(c) old: window, first {len(jpegs) / fps:.1f} s of {Path(video).name}',
         f'{len(jpegs)} frames, {width}x{height}, mean JPEG '
         f'{np.mean([len(j) for j in jpegs]) / 1024:.1f} KiB'),
        ('(c) old: whole window (decode, YOLO, HOG face + dlib embedding per person)',
         f'{sum(durations):.1f} s'),
        ('(c) old: per frame mean / p95',
         f'{1000 * per_frame:.0f} / {1000 * np.percentile(durations, 95):.0f} ms'),
        (f'(c) old: persons / faces / faces like the query (>= {DEFAULT_MIN_SIMILARITY})',
         f'{persons} / {faces} / {matches}'),
        (f'(c) old: 1 h window at {FPS} FPS ({3600 * FPS} frames), extrapolated',
         f'{hour:.0f} s ({hour / 3600:.1f} h)'),
    ], {'old per frame': per_frame}


def bench_node(history_dir: str, label: str, seed: int, domain_id: int,
               photo: str) -> tuple[list[Row], Figures]:
    """Run part (d) on one history: start the frame_history node, search it, read its RSS.

    Each round asks twice for person0 over the whole history: by the face the history was
    built from (the search that (a) and (b) time) and by person id (the node first gathers
    that person's stored faces). Then one search by photo, which loads the face ResNet.
    """
    request = BacktrackSearch.Request
    queries = {  # window_width 0: the whole history
        'embedding': request(query_type=request.QUERY_EMBEDDING, window_width=0.0,
                             embedding=unit_people(np.random.default_rng(seed))[0].tolist(),
                             include_thumbnails=True),
        'person id': request(query_type=request.QUERY_PERSON_ID, person_id='person0',
                             window_width=0.0, include_thumbnails=True),
    }
    answers: dict[str, list[tuple[BacktrackSearch.Response, float]]] = {
        kind: [] for kind in queries}   # per query: response, round trip [s]
    # Before rclpy.init and the node's start: only this run's processes may see each other.
    os.environ['ROS_DOMAIN_ID'] = str(domain_id)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    rclpy.init()
    try:
        probe = rclpy.create_node('bench_history_probe')
        executor = SingleThreadedExecutor()
        executor.add_node(probe)
        client = probe.create_client(BacktrackSearch, 'backtrack_search')
        with GraphRunner(Path(history_dir).parent / f'logs_{Path(history_dir).name}',
                         str(PARAMS_FILE)) as runner:
            began = time.perf_counter()
            node = runner.start('frame_history', history_dir=history_dir, camera_id='front',
                                max_age=NODE_MAX_AGE_S, image_transport='raw')
            # The node subscribes to image_raw on activation, when it also offers its
            # services: that is, once the history is open and the face model loaded.
            wait_for_graph(runner, probe, executor, (), 1)
            if not client.wait_for_service(timeout_sec=30.0):
                raise RuntimeError(f'no backtrack_search service\n{runner.tail()}')
            ready = time.perf_counter() - began
            process = psutil.Process(node.process.pid)
            rss_ready = process.memory_info().rss / 2 ** 20
            for _ in range(NODE_SEARCHES):
                for kind, query in queries.items():
                    sent = time.perf_counter()
                    future = client.call_async(query)
                    executor.spin_until_future_complete(future, timeout_sec=60.0)
                    if future.result() is None:
                        raise RuntimeError(f'backtrack_search did not answer\n{runner.tail()}')
                    answers[kind].append((future.result(), time.perf_counter() - sent))
            rss_end = process.memory_info().rss / 2 ** 20
            sent = time.perf_counter()
            future = client.call_async(request(
                query_type=request.QUERY_IMAGE, window_width=0.0,
                image=bgr_to_image(cv2.imread(photo))))
            executor.spin_until_future_complete(future, timeout_sec=60.0)
            if future.result() is None:
                raise RuntimeError(f'backtrack_search did not answer\n{runner.tail()}')
            by_photo = future.result(), time.perf_counter() - sent
            rss_photo = process.memory_info().rss / 2 ** 20
        executor.shutdown()
        probe.destroy_node()
    finally:
        rclpy.try_shutdown()
    last = answers['embedding'][-1][0]
    result = next(name[len('RESULT_'):] for name in dir(BacktrackSearch.Response)
                  if name.startswith('RESULT_')
                  and getattr(BacktrackSearch.Response, name) == last.result)
    thumbnails = sum(len(a.thumbnail.data) > 0 for a in last.appearances)
    rows = [
        (f'(d) node, {label}: ready after start / RSS ready / after {2 * NODE_SEARCHES} '
         'searches', f'{ready:.1f} s / {rss_ready:.0f} / {rss_end:.0f} MiB'),
        (f'(d) node, {label}: first search by photo (loads the face ResNet): in node / round '
         'trip; RSS after', f'{1000 * by_photo[0].elapsed:.0f} / {1000 * by_photo[1]:.0f} ms; '
         f'{rss_photo:.0f} MiB'),
        (f'(d) node, {label}: result / entries searched / appearances (with thumbnail)',
         f'{result} / {last.entries_searched} / {len(last.appearances)} ({thumbnails})'),
    ]
    for kind, pairs in answers.items():
        elapsed = [1000 * response.elapsed for response, _ in pairs]
        round_trip = [1000 * seconds for _, seconds in pairs]
        rows.append((f'(d) node, {label}: by {kind}, in node p50 / p95; round trip p95',
                     f'{np.percentile(elapsed, 50):.1f} / {np.percentile(elapsed, 95):.1f}; '
                     f'{np.percentile(round_trip, 95):.1f} ms'))
    return rows, {f'node rss {label}': rss_end}


def targets(figures: Figures, hours: int) -> list[tuple[str, str, str, str]]:
    """Return the targets table: metric, value, target, met."""
    def met(ok: bool) -> str:
        return 'yes' if ok else 'NO'

    p95_hour, p95_day = figures['p95 1 h'], figures[f'p95 {hours} h']
    growth = figures['rss end'] / figures['rss half'] - 1
    node_hour, node_day = figures['node rss 1 h'], figures[f'node rss {hours} h']
    node_growth = node_day / node_hour - 1
    old_hour = figures['old per frame'] * 3600 * FPS
    old_day = old_hour * hours
    return [
        ('search p95, 1 h (a)', f'{p95_hour:.1f} ms', f'< {MAX_P95_1H_MS:.0f} ms',
         met(p95_hour < MAX_P95_1H_MS)),
        (f'search p95, {hours} h (b)', f'{p95_day:.0f} ms', f'< {MAX_P95_24H_MS:.0f} ms',
         met(p95_day < MAX_P95_24H_MS)),
        (f'memory vs history length: RSS of (b) at {max(1, hours // 2)} h -> {hours} h + '
         'queries', f'{figures["rss half"]:.0f} -> {figures["rss end"]:.0f} MiB '
         f'({100 * growth:+.0f} %)', f'< {100 * MAX_RSS_GROWTH:+.0f} %',
         met(growth < MAX_RSS_GROWTH)),
        (f'memory vs history length: node RSS, 1 h (a) -> {hours} h (b), after searches',
         f'{node_hour:.0f} -> {node_day:.0f} MiB ({100 * node_growth:+.0f} %)',
         f'< {100 * MAX_RSS_GROWTH:+.0f} %', met(node_growth < MAX_RSS_GROWTH)),
        ('old approach (c) / index search p95, 1 h',
         f'{old_hour / (p95_hour / 1000):,.0f}x ({old_hour:.0f} s vs {p95_hour:.1f} ms)',
         '-', '-'),
        (f'old approach (c) / index search p95, {hours} h',
         f'{old_day / (p95_day / 1000):,.0f}x ({old_day:.0f} s vs {p95_day:.0f} ms)',
         '-', '-'),
    ]


def print_table(rows: list[tuple[str, ...]]) -> None:
    """Print rows indented, every column but the last padded to its widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print('  ' + '  '.join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]))


def main() -> None:
    """Run every part, each in a fresh process so that memory figures stay apart."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--hours', type=int, default=24, help='length of history (b) [h]')
    parser.add_argument('--queries', type=int, default=60, help='searches per history')
    parser.add_argument('--dir', default=None, help='scratch folder (default: a temp dir)')
    parser.add_argument('--parts', default='abcd',
                        help='parts to run, e.g. "bd"; (d) serves the histories of (a) and (b) '
                             'built now or kept in --dir by an earlier --keep run')
    parser.add_argument('--keep', action='store_true',
                        help='build the histories in --dir itself (hour/, day/) and keep them')
    parser.add_argument('--video', default=DEFAULT_VIDEO, help='real video of part (c)')
    parser.add_argument('--old-seconds', type=float, default=10.0,
                        help='window of the old approach (c): first seconds of the video')
    parser.add_argument('--model', default=DEFAULT_MODEL, help='YOLO person model of (c)')
    parser.add_argument('--photo', default=DEFAULT_PHOTO,
                        help='query face photo of (c) and of the search by photo of (d)')
    # 101: the tests pick domains 1..100 and the pipeline benchmark 77.
    parser.add_argument('--domain-id', type=int, default=101,
                        help='ROS_DOMAIN_ID of the node runs (d), away from other graphs')
    args = parser.parse_args()
    if args.keep and args.dir is None:
        parser.error('--keep needs --dir')
    started, busy, own = time.monotonic(), busy_cpu_s(), own_cpu_s()
    rows: list[Row] = []
    figures: Figures = {}
    with (contextlib.nullcontext(args.dir) if args.keep
          else tempfile.TemporaryDirectory(dir=args.dir)) as scratch:
        hour, day = Path(scratch) / 'hour', Path(scratch) / 'day'
        for built, (part, arguments) in (
                ('a', (bench_hour, (scratch, args.queries))),
                ('b', (bench_index, (scratch, args.hours, args.queries))),
                ('c', (bench_old, (args.video, args.old_seconds, args.model, args.photo))),
                ('d', (bench_node, (str(hour), '1 h', HOUR_SEED, args.domain_id, args.photo))),
                ('d', (bench_node, (str(day), f'{args.hours} h', DAY_SEED, args.domain_id,
                                    args.photo)))):
            if built not in args.parts or (part is bench_node and not Path(arguments[0]).is_dir()):
                continue
            if part in (bench_hour, bench_index):   # a kept history is built anew
                shutil.rmtree(hour if part is bench_hour else day, ignore_errors=True)
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn')) as pool:
                part_rows, part_figures = pool.submit(part, *arguments).result()
            rows += part_rows
            figures.update(part_figures)
    print(f'frame history benchmark ({psutil.cpu_count()} CPUs, Python {sys.version.split()[0]},'
          f' {args.queries} queries per history; frames: a pool of {JPEG_POOL} JPEGs encoded'
          ' once and reused, each frame serialized to CDR on its own)')
    if not rows:
        sys.exit(f'nothing to measure: part (d) alone serves the histories an earlier --keep '
                 f'run left in --dir ({args.dir or "none given"})')
    print_table(rows)
    if set(args.parts) >= set('abcd'):
        print('targets')
        print_table([('metric', 'value', 'target', 'met'), *targets(figures, args.hours)])
    # The parts, and the node processes they start, have all ended: what they used is in
    # own_cpu_s, and the rest of the machine's CPU time went to other work.
    wall, cpus = time.monotonic() - started, psutil.cpu_count()
    other = (busy_cpu_s() - busy - (own_cpu_s() - own)) / (wall * cpus)
    noisy = ' (expect noisy timings)' if other > 0.1 else ''
    print(f'finished in {wall:.0f} s; other processes used {100 * other:.0f} % of the {cpus} '
          f'CPUs meanwhile{noisy}')


if __name__ == '__main__':
    main()
