"""Frame history on real files: MCAP segments, frame ring, embedding index, restart, damage."""

import json
import logging
import os
from pathlib import Path
import sqlite3
import subprocess
import sys
import textwrap

import cv2
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CompressedImage

from facetrack_ros.core.embedding import EmbeddingError
from facetrack_ros.core.history import (COMPRESSED_IMAGE_TYPE, EmbeddingIndex, FrameHistory,
                                        FrameRing, FrameStore, group_appearances,
                                        HistoryConfig, Hit, IndexEntry, message_definition,
                                        SegmentWriter, SerializedMessage)

T0 = 1_750_000_000 * 10 ** 9   # 2025-06-15, an arbitrary capture epoch [ns]
S = 10 ** 9
TOPIC = '/front/image_raw/compressed'
DIM = 128


@pytest.fixture(scope='module')
def definition() -> str:
    """Return the complete CompressedImage definition from the ROS wheels' share folder."""
    return message_definition(COMPRESSED_IMAGE_TYPE, [Path(sys.prefix) / 'share'])


@pytest.fixture(scope='module')
def jpeg() -> bytes:
    """Return a small real JPEG."""
    image = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode('.jpg', image)
    assert ok
    return encoded.tobytes()


def frame_message(stamp_ns: int, jpeg: bytes, definition: str) -> SerializedMessage:
    """Return a CompressedImage stamped stamp_ns, serialized to CDR by rclpy."""
    message = CompressedImage()
    message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp_ns, S)
    message.header.frame_id = 'front_optical'
    message.format = 'jpeg'
    message.data = jpeg
    return SerializedMessage(TOPIC, COMPRESSED_IMAGE_TYPE, definition,
                             bytes(serialize_message(message)), stamp_ns)


def write_frames(store: FrameStore, jpeg: bytes, definition: str, start_s: float, end_s: float,
                 fps: float, camera: str = 'front') -> list[int]:
    """Add frames at fps over [start_s, end_s) after T0; return their stamps."""
    stamps = [T0 + int(t * S) for t in np.arange(start_s, end_s, 1.0 / fps)]
    for stamp in stamps:
        store.add_frame(camera, frame_message(stamp, jpeg, definition), jpeg, 'front_optical')
    return stamps


def unit(rng: np.random.Generator) -> np.ndarray:
    """Return a random unit vector of DIM values."""
    vector = rng.normal(size=DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def noisy(vector: np.ndarray, rng: np.random.Generator, scale: float = 0.01) -> np.ndarray:
    """Return vector plus a little noise, as repeated sightings of one face look."""
    return vector + rng.normal(scale=scale, size=vector.shape).astype(np.float32)


def entry(stamp_s: float, person: str, embedding: np.ndarray, quality: float = 0.5,
          segment: str = '', camera: str = 'front') -> IndexEntry:
    """Return an index entry of robot r1 at T0 + stamp_s."""
    return IndexEntry(T0 + int(stamp_s * S), 'r1', camera, person, (10.0, 20.0, 50.0, 80.0),
                      quality, embedding, segment)


# --- segments -------------------------------------------------------------------------------

def test_message_definition_has_rosbag2_layout(definition: str) -> None:
    """The .msg text comes first, each dependency after 80 '=' and a MSG: line."""
    assert definition.startswith('# This message contains a compressed image.')
    assert f'\n{"=" * 80}\nMSG: std_msgs/Header\n' in definition
    assert f'\n{"=" * 80}\nMSG: builtin_interfaces/Time\n' in definition
    assert definition.count('MSG: ') == 2


def test_segment_opens_and_decodes_into_the_same_messages(tmp_path: Path, jpeg: bytes,
                                                          definition: str) -> None:
    """A segment is an MCAP with profile ros2, ros2msg schema, CDR messages that decode back."""
    path = tmp_path / 'front_20250615T000000.000000000Z.mcap'
    writer = SegmentWriter(path, 'front')
    messages = [frame_message(T0 + i * S // 30, jpeg, definition) for i in range(5)]
    for message in messages:
        writer.write(message)
    info = writer.close()
    assert (info.messages, info.frames, info.start_ns, info.end_ns) == (
        5, 5, messages[0].stamp_ns, messages[-1].stamp_ns)
    with open(path, 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == 'ros2'
        summary = reader.get_summary()
        assert summary is not None and summary.statistics.message_count == 5
        decoded = list(reader.iter_decoded_messages())
    assert len(decoded) == 5
    for (schema, channel, record, ros_message), original in zip(decoded, messages):
        assert (schema.name, schema.encoding, schema.data.decode()) == (
            COMPRESSED_IMAGE_TYPE, 'ros2msg', definition)
        assert (channel.topic, channel.message_encoding) == (TOPIC, 'cdr')
        assert record.log_time == original.stamp_ns and record.data == original.data
        expected = deserialize_message(original.data, CompressedImage)
        assert ros_message.header.stamp.sec == expected.header.stamp.sec
        assert ros_message.header.stamp.nanosec == expected.header.stamp.nanosec
        assert ros_message.header.frame_id == expected.header.frame_id == 'front_optical'
        assert ros_message.format == expected.format == 'jpeg'
        assert bytes(ros_message.data) == bytes(expected.data) == jpeg
        assert cv2.imdecode(np.frombuffer(bytes(ros_message.data), np.uint8),
                            cv2.IMREAD_COLOR).shape == (48, 64, 3)


def test_rotation_by_duration(tmp_path: Path, jpeg: bytes, definition: str) -> None:
    """Segments hold segment_duration_s of capture time; all are finished after close."""
    with FrameStore(tmp_path, HistoryConfig(segment_duration_s=1.0)) as store:
        stamps = write_frames(store, jpeg, definition, 0.0, 5.0, 10.0)
        infos = store.segments()
        assert len(infos) == 5
        assert [info.finished for info in infos] == [True] * 4 + [False]
        assert all(info.end_ns - info.start_ns < S for info in infos)
        assert sorted(info.name for info in infos) == [info.name for info in infos]
    for info in infos:
        with open(info.path, 'rb') as stream:
            assert make_reader(stream).get_summary().statistics.message_count == 10
    assert sum(info.frames for info in infos) == len(stamps)


def test_rotation_by_size(tmp_path: Path, jpeg: bytes, definition: str) -> None:
    """A segment is finished before it would pass segment_max_bytes."""
    limit = 8 * len(jpeg)
    with FrameStore(tmp_path, HistoryConfig(segment_max_bytes=limit)) as store:
        write_frames(store, jpeg, definition, 0.0, 2.0, 15.0)
    infos = store.segments()
    assert len(infos) >= 4
    assert all(info.finished and info.size_bytes <= limit + 2048 for info in infos)
    assert sum(info.messages for info in infos) == 30


# --- frame lookups ----------------------------------------------------------------------------

def test_frame_ring_stays_under_budget() -> None:
    """The ring drops its oldest frames to stay under budget and says from when it holds all."""
    ring = FrameRing(max_bytes=20_000)
    for i in range(100):
        ring.add(T0 + i * S // 10, 'front' if i % 2 else 'back', bytes(1000))
        assert ring.bytes_used <= 20_000
    assert 10 <= len(ring) < 20
    assert not ring.add(T0, 'front', bytes(30_000))   # alone over budget
    assert ring.cameras == ['back', 'front'] and ring.covered_from('side') is None
    held = ring.stamps('front', T0, T0 + 10 * S)
    assert held == sorted(held) and held[-1] == T0 + 99 * S // 10
    assert T0 + 80 * S // 10 < ring.covered_from('front') <= held[0]   # older ones dropped
    assert ring.get('front', held[0]).stamp_ns == held[0]
    assert ring.get('front', T0 + S // 10) is None


def test_frame_lookups_span_ring_and_segments(tmp_path: Path, jpeg: bytes,
                                              definition: str) -> None:
    """Two cameras at 10 Hz, the ring holding the newest 20 frames: lookups see them all."""
    config = HistoryConfig(segment_duration_s=3.0, ring_bytes=20 * (len(jpeg) + 256))
    added = [(T0 + i * S // 10, 'front' if i % 2 else 'back') for i in range(100)]
    with FrameStore(tmp_path, config) as store:
        for stamp, camera in added:
            store.add_frame(camera, frame_message(stamp, jpeg, definition), jpeg)
        assert len(store.ring) == 20
        newest = store.nearest_frame(T0 + 99 * S // 10 + 10, tolerance_s=0.05)
        assert (newest.stamp_ns, newest.camera_id) == (T0 + 99 * S // 10, 'front')
        tie = store.nearest_frame(T0 + 98 * S // 10, 0.15, camera_id='front')
        assert tie.stamp_ns == T0 + 97 * S // 10   # equally near: the earlier frame
        # 7.9 s is on disk, 8.1 s in the ring: the earlier still wins.
        assert store.nearest_frame(T0 + 8 * S, 0.15, 'front').stamp_ns == T0 + 79 * S // 10
        oldest = store.nearest_frame(T0, tolerance_s=1.0)   # long gone from the ring
        assert (oldest.stamp_ns, oldest.camera_id) == (T0, 'back')
        everything = store.frames_in_range(T0, T0 + 10 * S, limit=0)
        assert [(f.stamp_ns, f.camera_id) for f in everything] == added
        spread = store.frames_in_range(T0, T0 + 10 * S, limit=4)
        assert len(spread) == 4
        assert spread[0] == everything[0] and spread[-1] == everything[-1]
        assert [f.stamp_ns for f in spread] == sorted(f.stamp_ns for f in spread)
        back = store.frames_in_range(T0, T0 + 10 * S, limit=0, camera_id='back')
        assert [f.stamp_ns for f in back] == [stamp for stamp, _ in added[::2]]


def test_frames_come_from_ring_and_segments(tmp_path: Path, jpeg: bytes,
                                            definition: str) -> None:
    """Frames the ring dropped are read from the segments (finished and open) by their index."""
    config = HistoryConfig(segment_duration_s=2.0, ring_bytes=10 * (len(jpeg) + 256))
    with FrameStore(tmp_path, config) as store:
        stamps = write_frames(store, jpeg, definition, 0.0, 5.0, 10.0)
        assert len(store.ring) == 10
        old = store.nearest_frame(T0 + int(0.52 * S), tolerance_s=0.1)
        assert old.stamp_ns == T0 + S // 2 and old.data == jpeg
        assert (old.camera_id, old.frame_id, old.format) == ('front', 'front_optical', 'jpeg')
        in_open_segment = store.nearest_frame(T0 + int(4.01 * S), 0.1, camera_id='front')
        assert in_open_segment.stamp_ns == T0 + 4 * S
        assert store.nearest_frame(T0 + 9 * S, tolerance_s=1.0) is None
        assert store.nearest_frame(T0 + S, 0.5, camera_id='back') is None
        frames = store.frames_in_range(stamps[0], stamps[-1], limit=0)
        assert [f.stamp_ns for f in frames] == stamps and all(f.data == jpeg for f in frames)
        spread = store.frames_in_range(stamps[0], stamps[-1], limit=5)
        assert [f.stamp_ns for f in spread] == [stamps[i] for i in (0, 12, 24, 37, 49)]
        assert store.segment_for('front', T0 + S // 2) == store.segments()[0].name
    assert not store.problems


def test_frames_of_several_cameras(tmp_path: Path, jpeg: bytes, definition: str) -> None:
    """Each camera writes its own segments; '' looks at all of them, a camera id at one."""
    config = HistoryConfig(segment_duration_s=1.0, ring_bytes=4 * (len(jpeg) + 256))
    with FrameStore(tmp_path, config) as store:
        front = write_frames(store, jpeg, definition, 0.0, 3.0, 4.0, camera='front')
        back = write_frames(store, jpeg, definition, 0.1, 3.1, 4.0, camera='back')
        assert {info.source for info in store.segments()} == {'front', 'back'}
        every = store.frames_in_range(T0, T0 + 4 * S, limit=0)
        assert [(f.stamp_ns, f.camera_id) for f in every] == sorted(
            [(stamp, 'front') for stamp in front] + [(stamp, 'back') for stamp in back])
        assert [f.stamp_ns for f in store.frames_in_range(T0, T0 + 4 * S, 0, 'back')] == back
        spread = store.frames_in_range(T0, T0 + 4 * S, limit=4)
        assert sorted(f.camera_id for f in spread) == ['back', 'back', 'front', 'front']
        assert store.nearest_frame(T0 + S // 10 + 1, 0.2).camera_id == 'back'
        assert store.nearest_frame(T0 + S // 10 + 1, 0.2, camera_id='front').stamp_ns == T0
        with pytest.raises(ValueError):
            store.write('bad/name', frame_message(T0, jpeg, definition))


# --- index --------------------------------------------------------------------------------------

def test_best_quality_per_bucket(tmp_path: Path) -> None:
    """One entry per person per second: a better face replaces it, a worse one does not."""
    rng = np.random.default_rng(2)
    faces = [unit(rng) for _ in range(3)]
    with EmbeddingIndex(tmp_path / 'index.sqlite3') as index:
        assert index.add(entry(10.1, 'alice', faces[0], quality=0.5))
        assert index.add(entry(10.6, 'alice', faces[1], quality=0.9))
        assert not index.add(entry(10.9, 'alice', faces[2], quality=0.7))
        assert index.add(entry(10.9, 'bob', faces[2], quality=0.1))
        assert index.add(entry(11.0, 'alice', faces[2], quality=0.1))
        assert index.entry_count() == 3
        assert index.entry_count(T0 + 10 * S, T0 + 10 * S + S // 2) == 0
        stored = index.embeddings_of('alice')
        assert stored.shape == (2, DIM)
        np.testing.assert_allclose(stored[0], faces[1], atol=1e-6)   # best quality first
        assert index.embeddings_of('nobody').shape == (0, DIM)
        # A late, better face for a block already written and dropped from memory still wins.
        index.add(entry(900.0, 'carol', faces[0]))
        index.flush()
        assert index.add(entry(10.2, 'alice', faces[0], quality=0.95))
        assert index.entry_count() == 4
        np.testing.assert_allclose(index.embeddings_of('alice', limit=1)[0], faces[0],
                                   atol=1e-6)


@pytest.fixture
def two_visits(tmp_path: Path) -> tuple[EmbeddingIndex, np.ndarray]:
    """Index alice at t=10..20 s and 100..110 s and bob at 0..200 s, 1 entry/s each."""
    rng = np.random.default_rng(3)
    alice, bob = unit(rng), unit(rng)
    index = EmbeddingIndex(tmp_path / 'index.sqlite3')
    for t in range(0, 201):
        if 10 <= t <= 20 or 100 <= t <= 110:
            index.add(entry(t + 0.25, 'alice', noisy(alice, rng), quality=0.5 + t / 1000))
        index.add(entry(t + 0.5, 'bob', noisy(bob, rng)))
    yield index, alice
    index.close()


def test_search_finds_each_visit(two_visits: tuple[EmbeddingIndex, np.ndarray]) -> None:
    """Two visits give two appearances with their bounds; bob, a stranger, is not a hit."""
    index, alice = two_visits
    result = index.search(noisy(alice, np.random.default_rng(4)))
    assert result.entries_searched == 22 + 201 == index.entry_count()
    assert result.hits == 22
    assert (result.searched_from_ns, result.searched_to_ns) == (T0 + S // 2, T0 + 200 * S + S // 2)
    bounds = sorted((a.first_seen_ns, a.last_seen_ns) for a in result.appearances)
    assert bounds == [(T0 + 10 * S + S // 4, T0 + 20 * S + S // 4),
                      (T0 + 100 * S + S // 4, T0 + 110 * S + S // 4)]
    for appearance in result.appearances:
        assert (appearance.robot_id, appearance.camera_id, appearance.person_id) == (
            'r1', 'front', 'alice')
        assert appearance.sightings == 11
        assert appearance.best.similarity > 0.9
        assert appearance.first_seen_ns <= appearance.best.stamp_ns <= appearance.last_seen_ns
        assert appearance.best.box == (10.0, 20.0, 50.0, 80.0)
        assert appearance.best.frame_stamp_ns == appearance.best.stamp_ns
    similarities = [a.best.similarity for a in result.appearances]
    assert similarities == sorted(similarities, reverse=True)
    assert len(index.search(alice, max_results=1).appearances) == 1
    merged = index.search(alice, gap_s=100.0).appearances
    assert len(merged) == 1 and merged[0].sightings == 22


def test_search_window_and_filters(two_visits: tuple[EmbeddingIndex, np.ndarray]) -> None:
    """Only entries inside the window (and of the filtered persons) are compared."""
    index, alice = two_visits
    start, end = T0 + 50 * S, T0 + 105 * S
    result = index.search(alice, start, end)
    assert result.entries_searched == index.entry_count(start, end) == 55 + 5
    assert [(a.first_seen_ns, a.last_seen_ns) for a in result.appearances] == [
        (T0 + 100 * S + S // 4, T0 + 105 * S - 3 * S // 4)]
    assert (result.searched_from_ns, result.searched_to_ns) == (T0 + 50 * S + S // 2,
                                                                T0 + 104 * S + S // 2)
    assert index.search(alice, person_filter=['bob']).appearances == []
    assert index.search(alice, person_filter=['bob']).entries_searched == 201
    assert len(index.search(alice, person_filter=['alice', 'eve']).appearances) == 2
    assert index.time_span() == (T0 + S // 2, T0 + 200 * S + S // 2)
    empty = index.search(alice, T0 + 1000 * S, T0 + 2000 * S)
    assert (empty.entries_searched, empty.appearances) == (0, [])
    assert (empty.searched_from_ns, empty.searched_to_ns) == (T0 + 1000 * S, T0 + 2000 * S)


def test_index_write_refused_by_a_lock_is_rolled_back(tmp_path: Path) -> None:
    """A write failing on another writer's lock leaves no open transaction: the next works."""
    rng = np.random.default_rng(6)
    path = tmp_path / 'index.sqlite3'
    with EmbeddingIndex(path, commit_interval_s=3600.0, lock_timeout_s=0.05) as index:
        index.add(entry(1.0, 'alice', unit(rng)))
        index.add(entry(70.0, 'bob', unit(rng)))
        other = sqlite3.connect(path, isolation_level=None)
        other.execute('BEGIN IMMEDIATE')   # holds the write lock past lock_timeout_s
        with pytest.raises(sqlite3.OperationalError, match='locked'):
            index.flush()
        other.execute('ROLLBACK')
        index.flush()
        assert index.entry_count() == 2
        other.execute('BEGIN IMMEDIATE')
        with pytest.raises(sqlite3.OperationalError, match='locked'):
            index.delete_before(T0 + 3 * S)
        other.execute('ROLLBACK')
        other.close()
        assert index.delete_before(T0 + 3 * S) == 1
    with EmbeddingIndex(path) as reopened:
        assert reopened.entry_count() == 1


def test_reads_see_pending_entries_and_commit_nothing(tmp_path: Path) -> None:
    """Searches read committed blocks plus the ones being filled, and never write."""
    rng = np.random.default_rng(8)
    alice = unit(rng)
    path = tmp_path / 'index.sqlite3'
    index = EmbeddingIndex(path, commit_interval_s=3600.0)
    for t in range(0, 30):
        index.add(entry(t, 'alice', noisy(alice, rng)))
    index.flush()   # block 0..59 s committed with 30 entries
    for t in [*range(30, 60), *range(60, 75)]:   # the same block again, and the next one
        index.add(entry(t, 'alice', noisy(alice, rng)))
    outside = sqlite3.connect(path)

    def committed() -> int:
        return outside.execute('SELECT COALESCE(SUM(count), 0) FROM blocks').fetchone()[0]

    (appearance,) = index.search(alice).appearances
    assert (appearance.first_seen_ns, appearance.last_seen_ns) == (T0, T0 + 74 * S)
    assert appearance.sightings == 75 and index.entry_count() == 75
    assert index.entry_count(T0 + 50 * S, T0 + 64 * S) == 15
    assert len(index.embeddings_of('alice', limit=0)) == 75
    assert index.time_span() == (T0, T0 + 74 * S)
    assert committed() == 30   # the reads above committed nothing
    index.flush()
    assert committed() == 75 and index.entry_count() == 75
    outside.close()
    index.close()
    assert not path.with_name(path.name + '-wal').exists()   # the readers closed first
    with pytest.raises(RuntimeError, match='closed'):
        index.search(alice)


DISK_FULL_WRITER = textwrap.dedent('''
    import json, os, resource, signal, sqlite3, sys
    import numpy as np
    from facetrack_ros.core.history import EmbeddingIndex, IndexEntry
    path, T0, S = sys.argv[1], {T0}, {S}
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # so a write past the limit fails (EFBIG)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

    def entry(second, person):
        return IndexEntry(T0 + second * S, 'r1', 'front', person, (0, 0, 1, 1), 0.5,
                          np.ones(128, np.float32))

    def full(write):
        """Run write while no file may grow, as on a full disk; return its error."""
        resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path + '-wal'), hard))
        try:
            write()
            return ''
        except sqlite3.Error as error:
            return str(error)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))

    found = {{}}
    with EmbeddingIndex(path, commit_interval_s=3600.0) as index:
        index.add(entry(1, 'alice'))
        index.flush()
        index.add(entry(2, 'alice'))
        index.add(entry(70, 'bob'))
        found['flush error'] = full(index.flush)
        index.flush()
        found['after flush'] = index.entry_count()
        found['delete error'] = full(lambda: index.delete_before(T0 + 3 * S))
        found['after delete'] = index.entry_count()
        index.add(entry(80, 'alice'))   # the rolled-back delete had dropped her name
        found['deleted'] = index.delete_before(T0 + 3 * S)
    print(json.dumps(found))
''').format(T0=T0, S=S)


def test_index_commit_failing_on_a_full_disk_loses_nothing(tmp_path: Path) -> None:
    """A COMMIT that cannot write (file size limit, like a full disk) keeps entries pending."""
    done = subprocess.run([sys.executable, '-c', DISK_FULL_WRITER, str(tmp_path / 'index.db')],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found.pop('flush error') and found.pop('delete error')   # both writes failed
    assert found == {'after flush': 3, 'after delete': 3, 'deleted': 2}


def test_closed_history_refuses_writes(tmp_path: Path, jpeg: bytes, definition: str) -> None:
    """After close() writes raise RuntimeError and leave no unfinished segment behind."""
    face = unit(np.random.default_rng(7))
    history = FrameHistory(tmp_path)
    history.store.add_frame('front', frame_message(T0, jpeg, definition), jpeg)
    history.index.add(entry(0.0, 'alice', face))
    history.close()
    history.close()   # again: nothing happens
    history.flush_if_due()   # a timer firing during shutdown is harmless
    with pytest.raises(RuntimeError, match='closed'):
        history.store.add_frame('front', frame_message(T0 + S, jpeg, definition), jpeg)
    with pytest.raises(RuntimeError, match='closed'):
        history.store.write('robot', frame_message(T0 + S, jpeg, definition))
    with pytest.raises(RuntimeError, match='closed'):
        history.index.add(entry(0.5, 'alice', face, quality=0.9))
    for delete in (lambda: history.index.delete_before(T0 + S),
                   lambda: history.index.delete_segment('x.mcap', T0, T0 + S)):
        with pytest.raises(RuntimeError, match='closed'):
            delete()
    assert [info.finished for info in history.store.segments()] == [True]
    with FrameHistory(tmp_path) as reopened:
        assert len(reopened.store.segments()) == 1 and not reopened.store.problems
        assert reopened.index.entry_count() == 1


def test_unknown_face_and_bad_queries(two_visits: tuple[EmbeddingIndex, np.ndarray]) -> None:
    """A face never seen matches nothing; malformed queries raise EmbeddingError."""
    index, _ = two_visits
    stranger = index.search(unit(np.random.default_rng(99)))
    assert stranger.hits == 0 and stranger.appearances == []
    assert stranger.entries_searched == 223
    for bad in (np.ones(DIM - 1), np.full(DIM, np.nan), np.zeros(DIM)):
        with pytest.raises(EmbeddingError):
            index.search(bad)
    with pytest.raises(EmbeddingError):
        index.add(entry(5.0, 'mallory', np.ones(7)))


def test_group_appearances_on_hits() -> None:
    """Hits split at gaps per (robot, camera, person), best similarity first, limited."""
    def hit(second: float, similarity: float, camera: str = 'front') -> Hit:
        stamp = T0 + int(second * S)
        return Hit(stamp, 'r1', camera, 'alice', (0.0, 0.0, 1.0, 1.0), 0.5, similarity, '',
                   stamp)

    hits = [hit(1, 0.85), hit(2, 0.95), hit(3, 0.9), hit(30, 0.99), hit(2.5, 0.97, 'back')]
    appearances = group_appearances(hits, gap_s=5.0)
    assert [(a.camera_id, a.first_seen_ns - T0, a.last_seen_ns - T0, a.sightings,
             a.best.similarity) for a in appearances] == [
        ('front', 30 * S, 30 * S, 1, 0.99), ('back', 2.5 * S, 2.5 * S, 1, 0.97),
        ('front', S, 3 * S, 3, 0.95)]
    assert group_appearances(hits, gap_s=5.0, max_results=2) == appearances[:2]
    assert group_appearances([]) == []


# --- retention, restart, damage --------------------------------------------------------------

def build_history(root: Path, jpeg: bytes, definition: str, seconds: int,
                  config: HistoryConfig) -> tuple[FrameHistory, np.ndarray]:
    """Write frames at 5 FPS and one alice entry per second pointing at its frame's segment."""
    rng = np.random.default_rng(5)
    alice = unit(rng)
    history = FrameHistory(root, config)
    for stamp in write_frames(history.store, jpeg, definition, 0.0, seconds, 5.0):
        if (stamp - T0) % S == 0:
            history.index.add(IndexEntry(stamp, 'r1', 'front', 'alice', (1.0, 2.0, 3.0, 4.0),
                                         0.5, noisy(alice, rng),
                                         history.store.segment_for('front', stamp)))
    return history, alice


def test_retention_by_age(tmp_path: Path, jpeg: bytes, definition: str) -> None:
    """Segments (and entries) older than max_age_s go; the rest stays searchable."""
    config = HistoryConfig(segment_duration_s=5.0, max_age_s=12.0)
    history, alice = build_history(tmp_path, jpeg, definition, 30, config)
    with history:
        assert len(history.store.segments()) == 6
        report = history.enforce_retention(now_ns=T0 + 30 * S)
        assert [info.start_ns for info in report.segments] == [T0 + i * 5 * S for i in range(3)]
        assert report.bytes_freed > 0 and all(not i.path.exists() for i in report.segments)
        assert report.entries_deleted == 18
        assert history.index.entry_count() == 12
        assert history.index.entry_count(None, T0 + 17 * S) == 0
        assert history.store.nearest_frame(T0 + 10 * S, 0.5) is None
        assert history.store.nearest_frame(T0 + 20 * S, 0.5).stamp_ns == T0 + 20 * S
        (appearance,) = history.index.search(alice).appearances
        assert appearance.first_seen_ns == T0 + 18 * S


def test_retention_by_bytes(tmp_path: Path, jpeg: bytes, definition: str) -> None:
    """Beyond max_bytes (segments, index and journal) the oldest segments go first."""
    config = HistoryConfig(segment_duration_s=5.0)
    history, alice = build_history(tmp_path, jpeg, definition, 30, config)
    history.store.close()   # all six segments finished, so sizes are final
    history.index.flush()
    sizes = [info.size_bytes for info in history.store.segments()]
    index_bytes = history.index.file_bytes()
    assert index_bytes > 0
    history.config = history.store.config = HistoryConfig(
        segment_duration_s=5.0, max_bytes=sum(sizes[2:]) + index_bytes)
    with history:
        report = history.enforce_retention(now_ns=T0 + 30 * S)
        assert [info.start_ns for info in report.segments] == [T0, T0 + 5 * S]
        assert report.bytes_freed == sum(sizes[:2])
        assert report.entries_deleted == 10
        assert history.index.entry_count(None, T0 + 10 * S - 1) == 0
        assert history.index.entry_count() == 20
        assert history.disk_bytes() >= sum(sizes[2:])
        first = min(a.first_seen_ns for a in history.index.search(alice).appearances)
        assert first == T0 + 10 * S
        assert not history.store.problems


def test_restart_serves_what_is_on_disk(tmp_path: Path, jpeg: bytes, definition: str) -> None:
    """New objects over the folder find the frames and index entries written before."""
    config = HistoryConfig(segment_duration_s=4.0)
    history, alice = build_history(tmp_path, jpeg, definition, 10, config)
    names = [info.name for info in history.store.segments()]
    history.close()
    with FrameHistory(tmp_path, config) as reopened:
        assert [info.name for info in reopened.store.segments()] == names
        assert all(info.finished for info in reopened.store.segments())
        assert len(reopened.store.ring) == 0
        frame = reopened.store.nearest_frame(T0 + 5 * S + 1000, 0.1)
        assert frame.stamp_ns == T0 + 5 * S and frame.data == jpeg
        assert len(reopened.store.frames_in_range(T0, T0 + 10 * S, limit=0)) == 50
        assert reopened.index.entry_count() == 10
        (appearance,) = reopened.index.search(alice).appearances
        assert (appearance.first_seen_ns, appearance.last_seen_ns) == (T0, T0 + 9 * S)
        assert appearance.best.segment in names
        # Writing goes on in new segments beside the old ones.
        write_frames(reopened.store, jpeg, definition, 10.0, 11.0, 5.0)
        reopened.flush_if_due()
        assert len(reopened.store.segments()) == len(names) + 1
        assert reopened.store.segment_for('back', T0) == ''
    assert not reopened.store.problems


CRASHING_WRITER = textwrap.dedent('''
    import os, sys
    import numpy as np
    from facetrack_ros.core.history import *
    root, data, definition = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3]
    T0, S = {T0}, {S}
    history = FrameHistory(root, HistoryConfig(flush_interval_s=3600.0), background=False)
    face = np.ones(128, np.float32)
    for i in range(40):
        stamp = T0 + i * S // 10
        history.store.write('front', SerializedMessage('/front', '{TYPE}', definition, data,
                                                       stamp))
        history.index.add(IndexEntry(stamp, 'r1', 'front', 'alice', (0, 0, 1, 1), 0.5, face))
        if i == 29:
            history.store.flush()
            history.index.flush()
    os._exit(1)   # a crash: no footer, last ten frames and entries never flushed
''').format(T0=T0, S=S, TYPE=COMPRESSED_IMAGE_TYPE)


@pytest.fixture
def store_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture the frame store's warnings at the store's own logger.

    Importing `launch` (its pytest plugins do) stops loggers created later from propagating to
    the root logger, where caplog listens.
    """
    logger = logging.getLogger('facetrack_ros.core.history.segments')
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


def test_crash_loses_only_unflushed_data(tmp_path: Path, jpeg: bytes, definition: str,
                                         store_log: pytest.LogCaptureFixture) -> None:
    """After a crash the unfinished segment is recovered up to the last flush; so is the index."""
    data = frame_message(T0, jpeg, definition).data
    subprocess.run([sys.executable, '-c', CRASHING_WRITER, str(tmp_path), data.hex(),
                    definition], check=False, env={**os.environ,
                                                   'PYTHONPATH': os.pathsep.join(sys.path)})
    (path,) = (tmp_path / 'segments').glob('*.mcap')
    with open(path, 'rb') as stream, pytest.raises(Exception):
        make_reader(stream).get_summary()   # no footer
    with store_log.at_level(logging.WARNING), FrameHistory(tmp_path) as history:
        (info,) = history.store.segments()
        assert info.finished and info.messages == 30
        assert len(history.store.problems) == 1 and 'recovered 30' in history.store.problems[0]
        assert any('recovered 30' in record.message for record in store_log.records)
        assert history.store.nearest_frame(T0 + 29 * S // 10, 0.01).data == jpeg
        assert history.store.nearest_frame(T0 + 35 * S // 10, 0.01) is None
        assert history.index.entry_count() == 3   # t = 0, 1, 2 s; bucket of 3.x s not committed
    with open(path, 'rb') as stream:
        assert make_reader(stream).get_summary().statistics.message_count == 30


@pytest.mark.parametrize('chop', [1, 37, 500, 0.5])
def test_truncated_and_garbage_segments_are_skipped(tmp_path: Path, jpeg: bytes,
                                                    definition: str, chop: float,
                                                    store_log: pytest.LogCaptureFixture
                                                    ) -> None:
    """Damaged files are reported and skipped (or recovered); the rest stays readable."""
    config = HistoryConfig(segment_duration_s=2.0)
    with FrameStore(tmp_path, config) as store:
        stamps = write_frames(store, jpeg, definition, 0.0, 6.0, 5.0)
    infos = store.segments()
    last = infos[-1].path
    size = last.stat().st_size
    cut = int(size * chop) if chop < 1 else chop
    with open(last, 'r+b') as stream:
        stream.truncate(size - cut)
    segment_dir = tmp_path / 'segments'
    (segment_dir / 'front_20990101T000000.000000000Z.mcap').write_bytes(os.urandom(5000))
    (segment_dir / 'notes.mcap').write_bytes(b'not a segment')
    with store_log.at_level(logging.WARNING), FrameStore(tmp_path, config) as reopened:
        assert len(reopened.problems) == 3 and len(store_log.records) == 3
        names = [info.name for info in reopened.segments()]
        # A cut inside the last chunk leaves nothing to recover: that segment is skipped too.
        assert names == [info.name for info in infos][:len(names)] and len(names) >= 2
        frames = reopened.frames_in_range(stamps[0], stamps[-1], limit=0)
        assert [f.stamp_ns for f in frames[:20]] == stamps[:20]
        assert 20 <= len(frames) <= len(stamps)
        assert reopened.nearest_frame(T0 + S, 0.1).data == jpeg


def test_corrupt_chunk_is_reported_not_raised(tmp_path: Path, jpeg: bytes,
                                              definition: str) -> None:
    """A segment whose data was overwritten mid-file yields a problem, not an exception."""
    with FrameStore(tmp_path, HistoryConfig(segment_duration_s=2.0)) as store:
        write_frames(store, jpeg, definition, 0.0, 4.0, 5.0)
    first = store.segments()[0].path
    with open(first, 'r+b') as stream:
        stream.seek(200)
        stream.write(os.urandom(3 * len(jpeg)))
    with FrameStore(tmp_path) as reopened:
        found = reopened.frames_in_range(T0, T0 + 4 * S, limit=0)
        assert len(found) >= 10   # the intact second segment
        assert reopened.nearest_frame(T0 + 3 * S, 0.1).stamp_ns == T0 + 3 * S
        reopened.nearest_frame(T0 + S // 5, 0.1)
    assert reopened.problems
