#!/usr/bin/env python3
"""Benchmark the frame history on synthetic data: build time, search latency, disk, memory.

(a) One hour of one camera at 30 FPS with five people in view: real small JPEGs, serialized to
    CDR by rclpy as the node does, written into MCAP segments (flushed once per capture second,
    as the node's timer would), and one index entry per person per second.
(b) 24 hours of the index alone (five people, one entry per second each).

Then it times searches over each whole window (random person embedding plus noise) and frame
lookups, and prints one table. Figures only; nothing is asserted.
"""

import argparse
from concurrent.futures import ProcessPoolExecutor
import multiprocessing
from pathlib import Path
import sys
import tempfile
import time

import cv2
import numpy as np
import psutil
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage

from facetrack_ros.core.embedding import DLIB_EMBEDDING_DIM
from facetrack_ros.core.history import (COMPRESSED_IMAGE_TYPE, EmbeddingIndex, FrameHistory,
                                        HistoryConfig, IndexEntry, message_definition,
                                        SerializedMessage)
from facetrack_ros.core.history.config import NS_PER_S

T0 = 1_750_000_000 * NS_PER_S
PEOPLE = 5
FPS = 30
JPEG_POOL = 30      # distinct JPEGs, reused in turn, to keep the build short
NOISE = 0.015       # per-value noise of a sighting: same-person similarity ~0.97


def rss_mib() -> float:
    """Return this process's resident memory [MiB]."""
    return psutil.Process().memory_info().rss / 2 ** 20


def synthetic_jpegs(rng: np.random.Generator) -> list[bytes]:
    """Encode JPEG_POOL small 160x120 scenes: gradient, people-sized blobs, sensor noise."""
    jpegs = []
    ys, xs = np.mgrid[0:120, 0:160]
    for i in range(JPEG_POOL):
        image = np.dstack([(xs + 2 * i) % 256, (ys * 2) % 256, (xs + ys) % 256]).astype(np.uint8)
        for person in range(PEOPLE):
            cv2.circle(image, (20 + 30 * person, 60 + (i + person) % 9), 12, (200, 170, 150), -1)
        noise = rng.integers(0, 12, image.shape, dtype=np.uint8)
        jpegs.append(cv2.imencode('.jpg', cv2.add(image, noise),
                                  [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes())
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


def time_searches(index: EmbeddingIndex, people: np.ndarray, end_s: int, queries: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    """Search the whole window `queries` times; return latencies [ms], entries, appearances."""
    latencies, entries, appearances = [], 0, 0
    for _ in range(queries):
        query = sighting(people[rng.integers(PEOPLE)], rng)
        began = time.perf_counter()
        result = index.search(query, T0, T0 + end_s * NS_PER_S)
        latencies.append((time.perf_counter() - began) * 1000)
        entries, appearances = result.entries_searched, len(result.appearances)
    return np.array(latencies), entries, appearances


def time_calls(call, arguments: list) -> np.ndarray:
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


def bench_hour(scratch: str, queries: int) -> list[tuple[str, str]]:
    """Build part (a), one hour of frames and faces; time searches and frame lookups."""
    rng = np.random.default_rng(7)
    people = unit_people(rng)
    definition = message_definition(COMPRESSED_IMAGE_TYPE)
    jpegs = synthetic_jpegs(rng)
    root = Path(scratch) / 'hour'
    rss_start = rss_mib()
    began = time.perf_counter()
    with FrameHistory(root, HistoryConfig(flush_interval_s=3600.0)) as history:
        message = CompressedImage()
        message.header.frame_id, message.format = 'front_optical', 'jpeg'
        for frame in range(3600 * FPS):
            stamp = T0 + frame * NS_PER_S // FPS
            jpeg = jpegs[frame % JPEG_POOL]
            message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp, NS_PER_S)
            message.data = jpeg
            # bytearray: the ring then holds its own copy, as with real, distinct frames
            segment = history.store.add_frame('front', SerializedMessage(
                '/front/image_raw/compressed', COMPRESSED_IMAGE_TYPE, definition,
                serialize_message(message), stamp), bytearray(jpeg), 'front_optical')
            if frame % FPS == FPS - 1:   # end of a capture second: what the node's timer does
                add_entries(history.index, people, frame // FPS, segment, rng)
                history.store.flush()
                history.index.flush()
        build = time.perf_counter() - began
        search, entries, appearances = time_searches(history.index, people, 3600, queries, rng)
        old = [(T0 + int(s * NS_PER_S), 0.05, 'front')
               for s in rng.uniform(0, 2400, queries)]   # older than the ring holds
        nearest = time_calls(history.store.nearest_frame, old)
        spread = time_calls(history.store.frames_in_range,
                            [(T0, T0 + 3600 * NS_PER_S, 10, 'front')] * 10)
        rss_end = rss_mib()
        segments, ring_frames = len(history.store.segments()), len(history.store.ring)
    total = folder_bytes(root)
    index_bytes = total - folder_bytes(root / 'segments')
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
    ]


def bench_index(scratch: str, hours: int, queries: int) -> list[tuple[str, str]]:
    """Build part (b), `hours` of index alone; time whole-window searches, watch memory."""
    rng = np.random.default_rng(8)
    people = unit_people(rng)
    path = Path(scratch) / 'day' / 'index.sqlite3'
    rss = {'start': rss_mib()}
    began = time.perf_counter()
    with EmbeddingIndex(path) as index:
        for second in range(hours * 3600):
            add_entries(index, people, second, '', rng)
            if second % (6 * 3600) == 3599:
                rss[f'{second // 3600 + 1} h'] = rss_mib()
        index.flush()
        build = time.perf_counter() - began
        rss[f'{hours} h'] = rss_mib()
        search, entries, appearances = time_searches(index, people, hours * 3600, queries, rng)
        rss['queries'] = rss_mib()
    size = folder_bytes(path.parent)
    return [
        (f'(b) {hours} h index: entries searched', f'{entries}'),
        (f'(b) {hours} h index: build time', f'{build:.1f} s'),
        (f'(b) {hours} h index: search p50 / p95 (whole window)',
         f'{np.percentile(search, 50):.0f} / {np.percentile(search, 95):.0f} ms'),
        (f'(b) {hours} h index: appearances per search', f'{appearances}'),
        (f'(b) {hours} h index: disk per hour', f'{size / hours / 2 ** 20:.1f} MiB'),
        (f'(b) {hours} h index: resident memory ' + ' / '.join(rss),
         ' / '.join(f'{value:.0f}' for value in rss.values()) + ' MiB'),
    ]


def main() -> None:
    """Run both parts, each in a fresh process so that memory figures stay apart."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--hours', type=int, default=24, help='length of history (b) [h]')
    parser.add_argument('--queries', type=int, default=60, help='searches per history')
    parser.add_argument('--dir', default=None, help='scratch folder (default: a temp dir)')
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        for part, arguments in ((bench_hour, (scratch, args.queries)),
                                (bench_index, (scratch, args.hours, args.queries))):
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn')) as pool:
                rows += pool.submit(part, *arguments).result()
    width = max(len(name) for name, _ in rows)
    print(f'frame history benchmark ({psutil.cpu_count()} CPUs, Python {sys.version.split()[0]},'
          f' {args.queries} queries per history; frames: a pool of {JPEG_POOL} JPEGs encoded'
          ' once and reused, each frame serialized to CDR on its own)')
    for name, value in rows:
        print(f'  {name:<{width}}  {value}')


if __name__ == '__main__':
    main()
