"""rosbag2-compatible MCAP segments of serialized messages, and the frame store over them.

Each source (a camera, or the robot for its non-image topics) writes one segment at a time to
`<root>/segments/<source>_<first stamp, UTC>.mcap`, e.g. `front_20250102T030405.000000000Z.mcap`:
profile `ros2`, schema encoding `ros2msg` (the .msg text with its dependencies, as rosbag2
writes it), message encoding `cdr`, log time = capture stamp. Chunks are uncompressed (JPEG does
not compress) and cut at every flush, which is followed by an fsync, so a crash loses at most
the flush interval; the unfinished segment left behind is recovered (rewritten as a finished
MCAP holding every readable message) when the store is opened again.
"""

from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime, timezone
import logging
import os
from pathlib import Path
import re
import struct
import sys
import threading
import time
from typing import Callable, IO, Iterator, Sequence

from mcap.exceptions import EndOfFile, McapError
from mcap.opcode import Opcode
from mcap.reader import NonSeekingReader, SeekingReader
from mcap.records import Channel, Message, Schema
from mcap.well_known import MessageEncoding, Profile, SchemaEncoding
from mcap.writer import CompressionType, Writer as McapWriter
from mcap_ros2.decoder import DecoderFactory
import numpy as np

from facetrack_ros.core.history.config import HistoryConfig, MIB, NS_PER_S, seconds_to_ns
from facetrack_ros.core.history.ring import FrameRing, StoredFrame

_LOG = logging.getLogger(__name__)

COMPRESSED_IMAGE_TYPE = 'sensor_msgs/msg/CompressedImage'
_LIBRARY = 'facetrack_ros frame history'
# Size estimates of what a segment adds around its messages, so rotation by size holds for the
# finished file: per message (record, message index), per chunk (chunk + its summary index),
# and once (statistics, summary offsets, data end, footer, magic).
_MESSAGE_OVERHEAD_BYTES = 64
_CHUNK_INDEX_BYTES = 160
_SUMMARY_BYTES = 512
_SOURCE_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]*')
_SEGMENT_RE = re.compile(r'(?P<source>.+)_\d{8}T\d{6}\.\d{9}Z\.mcap')
#: What a damaged MCAP file can raise while it is parsed.
_READ_ERRORS = (McapError, struct.error, ValueError, EOFError, IndexError, KeyError, OSError,
                ArithmeticError, MemoryError)

_PRIMITIVE_TYPES = frozenset({'bool', 'byte', 'char', 'float32', 'float64', 'int8', 'uint8',
                              'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'string'})
_FIELD_TYPE_RE = re.compile(r'(?:^|\n)\s*([a-zA-Z0-9_/]+)(?:\[[^\]]*\])?\s+')


def message_definition(type_name: str, share_dirs: Sequence[Path] | None = None) -> str:
    """Return the complete ros2msg definition of type_name exactly as rosbag2 stores it.

    The type's .msg text comes first, then each dependency (depth first, each once) after a
    line of 80 '=' and a line 'MSG: <type as written in the field>'. share_dirs are searched
    for `<package>/msg/<Type>.msg`; by default the share folders of AMENT_PREFIX_PATH and of
    the running Python prefix (the PyPI ROS wheels). Raises FileNotFoundError for a missing
    .msg.
    """
    if share_dirs is None:
        prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
        share_dirs = [Path(prefix) / 'share' for prefix in [*prefixes, sys.prefix]]
    seen: set[str] = set()

    def text_with_dependencies(name: str) -> str:
        package, _, short = name.partition('/')
        short = short.rpartition('/')[2]
        for share in share_dirs:
            path = Path(share) / package / 'msg' / f'{short}.msg'
            if path.is_file():
                text = path.read_text()
                break
        else:
            raise FileNotFoundError(f'no .msg file for {name} in {list(share_dirs)}')
        dependencies = set()
        for match in _FIELD_TYPE_RE.finditer(text):
            field_type = match.group(1)
            if field_type not in _PRIMITIVE_TYPES:
                dependencies.add(field_type if '/' in field_type else f'{package}/{field_type}')
        for dependency in sorted(dependencies):
            if dependency not in seen:
                seen.add(dependency)
                text += f'\n{"=" * 80}\nMSG: {dependency}\n' + text_with_dependencies(dependency)
        return text

    return text_with_dependencies(type_name)


@dataclass(frozen=True)
class SerializedMessage:
    """One message as the node hands it over: CDR bytes plus what is needed to decode them."""

    topic: str        # e.g. '/camera/image_raw/compressed'
    type_name: str    # e.g. 'sensor_msgs/msg/CompressedImage'
    definition: str   # complete ros2msg definition (see message_definition)
    data: bytes       # CDR, as rclpy.serialization.serialize_message returns it
    stamp_ns: int     # capture stamp, used as the MCAP log time [ns]


@dataclass
class SegmentInfo:
    """What the store knows of one segment file."""

    path: Path
    source: str         # camera or robot that wrote it
    start_ns: int       # earliest message log time [ns]
    end_ns: int         # latest message log time [ns]
    size_bytes: int
    messages: int
    frames: int         # CompressedImage messages among them
    finished: bool      # footer and summary written; False while a writer has it open

    @property
    def name(self) -> str:
        """Return the file name, which is how the index refers to the segment."""
        return self.path.name


def check_source(source: str) -> str:
    """Return source if it can name segment files, else raise ValueError."""
    if not _SOURCE_RE.fullmatch(source):
        raise ValueError(f'source id {source!r} must match {_SOURCE_RE.pattern}')
    return source


def segment_name(source: str, stamp_ns: int) -> str:
    """Return the file name of source's segment starting at stamp_ns; sorts by time."""
    seconds, nanoseconds = divmod(stamp_ns, NS_PER_S)
    utc = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime('%Y%m%dT%H%M%S')
    return f'{check_source(source)}_{utc}.{nanoseconds:09d}Z.mcap'


def spread_indices(count: int, limit: int) -> list[int]:
    """Return up to limit indices into count items, evenly spread, first and last included.

    A limit of 0 (or at least count) returns every index.
    """
    if limit <= 0 or limit >= count:
        return list(range(count))
    if limit == 1:
        return [count // 2]
    return sorted({int(i) for i in np.linspace(0, count - 1, limit).round()})


class SegmentWriter:
    """Write one MCAP segment of already-serialized ROS 2 messages, readable by rosbag2."""

    def __init__(self, path: Path, source: str, chunk_max_bytes: int = 4 * MIB) -> None:
        """Create path (which must not exist) and write the MCAP header."""
        self._file = open(path, 'xb')
        self._mcap = McapWriter(self._file, chunk_size=chunk_max_bytes,
                                compression=CompressionType.NONE)
        self._mcap.start(profile=Profile.ROS2, library=_LIBRARY)
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, tuple[int, str]] = {}   # topic -> (channel id, type name)
        self._unflushed = 0        # bytes held in the chunk being built
        self._summary = _SUMMARY_BYTES   # what finish() will append: summary, footer
        self.frame_stamps: list[int] = []   # of the open segment, which has no index yet
        self.info = SegmentInfo(Path(path), check_source(source), 0, 0, self._file.tell(), 0,
                                0, finished=False)

    def write(self, message: SerializedMessage) -> None:
        """Append one message, registering its schema and channel on first use."""
        schema_id = self._schemas.get(message.type_name)
        if schema_id is None:
            schema_id = self._mcap.register_schema(message.type_name, SchemaEncoding.ROS2,
                                                   message.definition.encode())
            self._schemas[message.type_name] = schema_id
            size = len(message.definition) + len(message.type_name) + 32
            self._grow(size, summary=size)
        channel_id, type_name = self._channels.get(message.topic, (0, message.type_name))
        if type_name != message.type_name:
            raise ValueError(f'topic {message.topic} carries {type_name}, '
                             f'not {message.type_name}')
        if not channel_id:
            channel_id = self._mcap.register_channel(message.topic, MessageEncoding.CDR,
                                                     schema_id)
            self._channels[message.topic] = (channel_id, type_name)
            self._grow(len(message.topic) + 48, summary=len(message.topic) + 48)
        self._mcap.add_message(channel_id, log_time=message.stamp_ns, data=message.data,
                               publish_time=message.stamp_ns)
        info = self.info
        info.start_ns = message.stamp_ns if not info.messages else min(info.start_ns,
                                                                       message.stamp_ns)
        info.end_ns = max(info.end_ns, message.stamp_ns) if info.messages else message.stamp_ns
        info.messages += 1
        if message.type_name == COMPRESSED_IMAGE_TYPE:
            info.frames += 1
            self.frame_stamps.append(message.stamp_ns)
        self._grow(len(message.data) + _MESSAGE_OVERHEAD_BYTES)

    def _grow(self, chunk: int, summary: int = 0) -> None:
        """Account for bytes added to the chunk and to the summary finish() will write."""
        self._unflushed += chunk
        self._summary += summary
        self.info.size_bytes = self._file.tell() + self._unflushed + self._summary

    @property
    def readable_bytes(self) -> int:
        """Return how much of the file another reader sees: everything up to the last flush."""
        return self._file.tell()

    def flush(self) -> None:
        """Cut the chunk in progress, write it out and fsync, so a crash cannot lose it."""
        if self._unflushed:
            self._mcap.flush()
            os.fsync(self._file.fileno())
            self._unflushed = 0
            self._grow(0, summary=_CHUNK_INDEX_BYTES)

    def close(self) -> SegmentInfo:
        """Write the summary and footer, fsync and close; return the finished segment's info."""
        self._mcap.finish()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self.frame_stamps = []
        self.info.size_bytes = self.info.path.stat().st_size
        self.info.finished = True
        return self.info


@dataclass
class _FrameGroup:
    """Frames of one camera in one place (a segment, or the ring) within a queried window."""

    camera_id: str
    segment: SegmentInfo | None   # a copy made under the store lock; None: the ring
    count: int | None             # None until its stamps are read (a segment partly inside)
    stamps: np.ndarray | None     # sorted; None until needed (a segment inside the window)
    until_ns: int = 0             # a segment: the last stamp it answers for (the ring the rest)
    readable_bytes: int = 0       # an open segment: its bytes flushed when the group was made


class _Prefix:
    """The first size bytes of a binary stream: an open segment as far as it was flushed.

    The writer appends to the file meanwhile; the reader must not see a half-written chunk.
    """

    def __init__(self, stream: IO[bytes], size: int) -> None:
        self._stream = stream
        self._left = size

    def read(self, length: int = -1) -> bytes:
        length = self._left if length < 0 else min(length, self._left)
        data = self._stream.read(length)
        self._left -= len(data)
        return data


def _read_message_index_stamps(stream: IO[bytes], offset: int) -> np.ndarray:
    """Return the log times of the MessageIndex record at offset, without reading the chunk."""
    stream.seek(offset)
    opcode, _, _, size = struct.unpack('<BQHI', stream.read(15))
    if opcode != Opcode.MESSAGE_INDEX:
        raise McapError(f'expected a message index at {offset}, found opcode {opcode}')
    return np.frombuffer(stream.read(size), dtype='<u8').reshape(-1, 2)[:, 0].astype(np.int64)


class FrameStore:
    """Frames and other messages of every source in rotating MCAP segments, plus a RAM ring.

    Frame lookups ask the ring for the span it fully holds and read only the segments that
    overlap the rest, through their chunk and message indexes. Thread-safe; a lookup holds the
    store lock only to see what to read (segments, the ring), never while it reads the disk,
    so recording goes on meanwhile.
    """

    def __init__(self, root: Path | str, config: HistoryConfig = HistoryConfig()) -> None:
        """Open (or create) the store under root and list, and if need be recover, its segments.

        Damaged segments are logged, listed in problems and skipped; they never raise.
        """
        self.config = config
        self.segment_dir = Path(root) / 'segments'
        self.segment_dir.mkdir(parents=True, exist_ok=True)
        self.ring = FrameRing(config.ring_bytes)
        self.problems: deque[str] = deque(maxlen=100)   # the latest, for diagnostics
        self.problem_count = 0
        self._segments: dict[str, SegmentInfo] = {}   # finished, by file name
        self._writers: dict[str, SegmentWriter] = {}  # open, by source
        self._decoders: dict[tuple[str, bytes], Callable[[bytes], object]] = {}
        self._lock = threading.RLock()
        self._last_flush = time.monotonic()
        self._closed = False
        for leftover in self.segment_dir.glob('*.mcap.tmp'):   # a recovery cut short
            leftover.unlink()
        for path in sorted(self.segment_dir.glob('*.mcap')):
            info = self._open_existing(path)
            if info is not None:
                self._segments[info.name] = info

    def __enter__(self) -> 'FrameStore':
        """Return self."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Finish every open segment."""
        self.close()

    def _problem(self, text: str) -> None:
        _LOG.warning('frame history: %s', text)
        with self._lock:
            self.problems.append(text)
            self.problem_count += 1

    def _open_existing(self, path: Path) -> SegmentInfo | None:
        match = _SEGMENT_RE.fullmatch(path.name)
        if not match:
            self._problem(f'{path.name}: not a segment name, skipped')
            return None
        try:
            with open(path, 'rb') as stream:
                summary = SeekingReader(stream).get_summary()
        except _READ_ERRORS:
            summary = None
        if summary is None or summary.statistics is None:
            return self._recover(path, match.group('source'))
        stats = summary.statistics
        frame_channels = {channel_id for channel_id, channel in summary.channels.items()
                          if self._is_frame_schema(summary.schemas.get(channel.schema_id))}
        return SegmentInfo(path, match.group('source'), stats.message_start_time,
                           stats.message_end_time, path.stat().st_size, stats.message_count,
                           sum(stats.channel_message_counts.get(channel_id, 0)
                               for channel_id in frame_channels), finished=True)

    def _recover(self, path: Path, source: str) -> SegmentInfo | None:
        """Rewrite an unfinished segment (crash) as a finished one with its readable messages."""
        temporary = path.with_name(path.name + '.tmp')
        writer: SegmentWriter | None = None
        error: Exception | None = None
        try:
            with open(path, 'rb') as stream:
                for schema, channel, message in NonSeekingReader(stream).iter_messages(
                        log_time_order=False):
                    if schema is None:
                        continue   # rosbag2 always writes schemas; nothing to decode without
                    writer = writer or SegmentWriter(temporary, source,
                                                     self.config.chunk_max_bytes)
                    writer.write(SerializedMessage(channel.topic, schema.name,
                                                   schema.data.decode(), message.data,
                                                   message.log_time))
        except _READ_ERRORS as exc:   # the first damaged record ends what can be trusted
            error = exc
        if writer is None:
            self._problem(f'{path.name}: unreadable ({error!r}), skipped')
            return None
        info = writer.close()
        os.replace(temporary, path)
        self._problem(f'{path.name}: unfinished (crash?), recovered {info.messages} messages'
                      f' (reading stopped at {error!r})')
        return replace(info, path=path)

    @staticmethod
    def _is_frame_schema(schema: Schema | None) -> bool:
        return schema is not None and schema.name == COMPRESSED_IMAGE_TYPE

    def write(self, source: str, message: SerializedMessage) -> str:
        """Append a message to source's open segment, rotating first if it is due.

        Returns the file name of the segment it went into. Raises RuntimeError after close():
        a callback still running during shutdown must not leave an unfinished segment behind.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError(f'frame store {self.segment_dir} is closed')
            writer = self._writers.get(source)
            if writer is not None and writer.info.messages and (
                    message.stamp_ns - writer.info.start_ns
                    >= seconds_to_ns(self.config.segment_duration_s)
                    or writer.info.size_bytes + len(message.data)
                    > self.config.segment_max_bytes):
                self._finish(source)
                writer = None
            if writer is None:
                writer = self._open_writer(source, message.stamp_ns)
            writer.write(message)
            self.flush_if_due()
            return writer.info.name

    def add_frame(self, camera_id: str, message: SerializedMessage, jpeg: bytes,
                  frame_id: str = '') -> str:
        """Store a CompressedImage message of camera_id and keep its JPEG in the ring.

        Returns the file name of the segment it went into. Raises RuntimeError after close().
        """
        if message.type_name != COMPRESSED_IMAGE_TYPE:
            raise ValueError(f'frames must be {COMPRESSED_IMAGE_TYPE}, not {message.type_name}')
        with self._lock:
            name = self.write(camera_id, message)
            self.ring.add(message.stamp_ns, camera_id, jpeg, frame_id)
            return name

    def _open_writer(self, source: str, stamp_ns: int) -> SegmentWriter:
        path = self.segment_dir / segment_name(source, stamp_ns)
        while path.exists():   # same source and first stamp as an older segment
            stamp_ns += 1
            path = self.segment_dir / segment_name(source, stamp_ns)
        writer = SegmentWriter(path, source, self.config.chunk_max_bytes)
        self._writers[source] = writer
        return writer

    def _finish(self, source: str) -> None:
        info = self._writers.pop(source).close()
        self._segments[info.name] = info

    def flush(self) -> None:
        """Write out and fsync every open segment's pending chunk."""
        with self._lock:
            for writer in self._writers.values():
                writer.flush()
            self._last_flush = time.monotonic()

    def flush_if_due(self) -> None:
        """Flush when flush_interval_s has passed; call from a timer so idle data is flushed."""
        with self._lock:
            if time.monotonic() - self._last_flush >= self.config.flush_interval_s:
                self.flush()

    def close(self) -> None:
        """Finish every open segment (summary, footer); the store stays readable.

        Writing afterwards raises RuntimeError; closing again does nothing.
        """
        with self._lock:
            self._closed = True
            for source in list(self._writers):
                self._finish(source)

    def segments(self) -> list[SegmentInfo]:
        """Return every segment, open ones included, oldest first."""
        with self._lock:
            infos = [*self._segments.values(), *(w.info for w in self._writers.values())]
            return sorted(infos, key=lambda info: (info.start_ns, info.name))

    def disk_bytes(self) -> int:
        """Return the bytes of all segment files."""
        return sum(info.size_bytes for info in self.segments())

    def segment_for(self, camera_id: str, stamp_ns: int) -> str:
        """Return the file name of the segment holding camera_id's frame at stamp_ns.

        A stamp no finished segment covers gives the open segment (where a frame that has not
        arrived yet will go), or '' when the camera has none.
        """
        with self._lock:
            for info in self._segments.values():
                if info.source == camera_id and info.start_ns <= stamp_ns <= info.end_ns:
                    return info.name
            writer = self._writers.get(camera_id)
            return writer.info.name if writer is not None else ''

    def enforce_retention(self, now_ns: int) -> list[SegmentInfo]:
        """Delete segments older than max_age_s, then the oldest beyond max_bytes.

        An open segment is deleted only once all of it is too old (its camera went quiet).
        Returns the deleted segments, so the caller can drop their index entries.
        """
        cutoff = now_ns - seconds_to_ns(self.config.max_age_s)
        with self._lock:
            for source in [s for s, w in self._writers.items() if w.info.end_ns < cutoff]:
                self._finish(source)
            finished = sorted(self._segments.values(), key=lambda info: info.end_ns)
            doomed = [info for info in finished if info.end_ns < cutoff]
            total = self.disk_bytes() - sum(info.size_bytes for info in doomed)
            for info in finished[len(doomed):]:
                if total <= self.config.max_bytes:
                    break
                doomed.append(info)
                total -= info.size_bytes
            for info in doomed:
                info.path.unlink(missing_ok=True)
                del self._segments[info.name]
            self.ring.drop_before(cutoff)
            return doomed

    def nearest_frame(self, stamp_ns: int, tolerance_s: float = 0.5,
                      camera_id: str = '') -> StoredFrame | None:
        """Return the frame closest to stamp_ns within tolerance_s; camera '' means any.

        Of two equally close frames the earlier wins.
        """
        tolerance_ns = seconds_to_ns(tolerance_s)
        start_ns, end_ns = stamp_ns - tolerance_ns, stamp_ns + tolerance_ns
        best: tuple[int, int, _FrameGroup] | None = None
        for group in self._frame_groups(start_ns, end_ns, camera_id):
            stamps = self._group_stamps(group, start_ns)
            if len(stamps):
                stamp = int(stamps[np.argmin(np.abs(stamps - stamp_ns))])
                if best is None or (abs(stamp - stamp_ns), stamp) < best[:2]:
                    best = (abs(stamp - stamp_ns), stamp, group)
        frames = self._fetch([] if best is None else [(best[2], best[1])])
        return frames[0] if frames else None

    def frames_in_range(self, start_ns: int, end_ns: int, limit: int = 10,
                        camera_id: str = '') -> list[StoredFrame]:
        """Return frames with start_ns <= stamp <= end_ns, at most limit evenly spread (0: all).

        Frames are spread evenly over each camera's frames in turn and returned by stamp.
        Only the segments holding chosen frames are read (their message indexes, then the
        chunks of those frames), so a long range costs about limit chunk reads.
        """
        groups = self._frame_groups(start_ns, end_ns, camera_id)
        counts = np.array([group.count for group in groups], dtype=np.int64)
        offsets = np.cumsum(counts) - counts
        picks: list[tuple[_FrameGroup, int]] = []
        for index in spread_indices(int(counts.sum()), limit):
            number = int(np.searchsorted(offsets, index, side='right')) - 1
            group = groups[number]
            stamps = self._group_stamps(group, start_ns)
            position = index - int(offsets[number])
            if position < len(stamps):   # shorter only if its index proved unreadable
                picks.append((group, int(stamps[position])))
        return self._fetch(picks)

    def _frame_groups(self, start_ns: int, end_ns: int, camera_id: str) -> list[_FrameGroup]:
        """Split the frames in [start_ns, end_ns] by camera and place, oldest first.

        The ring answers from the stamp on which it holds every frame of a camera; older
        frames come from the segments. A segment wholly inside the window is counted from its
        statistics and its stamps are read only if needed. Only the planning holds the lock;
        the segment indexes are read after it.
        """
        with self._lock:
            groups = self._plan(start_ns, end_ns, camera_id)
        for group in groups:
            if group.count is None:
                group.count = len(self._group_stamps(group, start_ns))
        return [group for group in groups if group.count]

    def _plan(self, start_ns: int, end_ns: int, camera_id: str) -> list[_FrameGroup]:
        """Return the groups of _frame_groups, counted where that needs no disk read.

        The caller holds the lock. Segments are copied (an open one changes as it is written),
        the open segments' stamps come from their writers, flushed so a reader sees them.
        """
        segments = self.segments()
        cameras = [camera_id] if camera_id else sorted(
            set(self.ring.cameras) | {info.source for info in segments if info.frames})
        groups: list[_FrameGroup] = []
        for camera in cameras:
            covered_from = self.ring.covered_from(camera)
            disk_end = end_ns if covered_from is None else min(end_ns, covered_from - 1)
            for info in segments:
                if not (info.source == camera and info.frames and info.start_ns <= disk_end
                        and info.end_ns >= start_ns):
                    continue
                group = _FrameGroup(camera, replace(info), info.frames, None, disk_end)
                if not info.finished:
                    writer = self._writers[info.source]
                    stamps = np.array(writer.frame_stamps, dtype=np.int64)
                    group.stamps = np.sort(stamps[(stamps >= start_ns) & (stamps <= disk_end)])
                    group.count = len(group.stamps)
                    if group.count:
                        writer.flush()
                    group.readable_bytes = writer.readable_bytes
                elif not (start_ns <= info.start_ns and info.end_ns <= disk_end):
                    group.count = None   # partly inside: counted from its index, unlocked
                groups.append(group)
            if covered_from is not None:
                ring = np.array(self.ring.stamps(camera, max(start_ns, covered_from), end_ns),
                                dtype=np.int64)
                groups.append(_FrameGroup(camera, None, len(ring), ring))
        return groups

    def _group_stamps(self, group: _FrameGroup, start_ns: int) -> np.ndarray:
        if group.stamps is None:
            group.stamps = self._frame_stamps(group.segment, start_ns, group.until_ns)
        return group.stamps

    def _frame_stamps(self, info: SegmentInfo, start_ns: int, end_ns: int) -> np.ndarray:
        """Return the sorted frame stamps of a finished segment in [start_ns, end_ns].

        Read from its chunk and message indexes.
        """
        parts = [np.empty(0, dtype=np.int64)]
        try:
            with open(info.path, 'rb') as stream:
                summary = SeekingReader(stream).get_summary()
                if summary is None:
                    raise McapError('no summary')
                frame_channels = [
                    channel_id for channel_id, channel in summary.channels.items()
                    if self._is_frame_schema(summary.schemas.get(channel.schema_id))]
                for chunk in summary.chunk_indexes:
                    if chunk.message_end_time < start_ns or chunk.message_start_time > end_ns:
                        continue
                    for channel_id in frame_channels:
                        if channel_id in chunk.message_index_offsets:
                            times = _read_message_index_stamps(
                                stream, chunk.message_index_offsets[channel_id])
                            parts.append(times[(times >= start_ns) & (times <= end_ns)])
        except FileNotFoundError:
            pass   # deleted by retention since the lookup was planned: nothing to find
        except _READ_ERRORS as exc:
            self._problem(f'{info.name}: index unreadable ({exc!r}), frames skipped')
        return np.sort(np.concatenate(parts))

    def _fetch(self, picks: list[tuple[_FrameGroup, int]]) -> list[StoredFrame]:
        """Read the picked (group, stamp) frames from the ring or their segments, by stamp.

        A ring frame evicted since the lookup was planned is skipped.
        """
        frames: list[StoredFrame] = []
        by_segment: dict[str, tuple[_FrameGroup, list[int]]] = {}
        with self._lock:
            for group, stamp in picks:
                if group.segment is None:
                    frame = self.ring.get(group.camera_id, stamp)
                    if frame is not None:
                        frames.append(frame)
                else:
                    by_segment.setdefault(group.segment.name, (group, []))[1].append(stamp)
        for group, stamps in by_segment.values():
            frames.extend(self._read_frames(group, stamps))
        return sorted(frames, key=lambda frame: (frame.stamp_ns, frame.camera_id))

    def _read_frames(self, group: _FrameGroup, stamps: list[int]) -> list[StoredFrame]:
        info = group.segment
        frames: list[StoredFrame] = []
        wanted = set(stamps)
        try:
            with open(info.path, 'rb') as stream:
                for schema, channel, message in self._iter_segment(group, stream, wanted):
                    if self._is_frame_schema(schema) and message.log_time in wanted:
                        wanted.discard(message.log_time)
                        frames.append(self._decode_frame(schema, channel, message, info.source))
        except FileNotFoundError:
            pass   # deleted by retention since the lookup was planned
        except _READ_ERRORS as exc:
            self._problem(f'{info.name}: frames unreadable ({exc!r}), skipped')
        return frames

    def _iter_segment(self, group: _FrameGroup, stream: IO[bytes],
                      stamps: set[int]) -> Iterator[tuple[Schema | None, Channel, Message]]:
        """Yield the messages of a segment at stamps, by index or, if open, by scanning."""
        if group.segment.finished:
            reader = SeekingReader(stream, validate_crcs=True)   # damaged chunks raise
            for stamp in sorted(stamps):   # each reads only the chunk(s) holding stamp
                yield from reader.iter_messages(starting_at=stamp, ending_at=stamp,
                                                log_time_order=False)
            return
        try:
            yield from NonSeekingReader(_Prefix(stream, group.readable_bytes)).iter_messages(
                starting_at=min(stamps), ending_at=max(stamps), log_time_order=False)
        except EndOfFile:   # an open segment ends after its last flushed chunk, no footer yet
            return

    def _decode_frame(self, schema: Schema, channel: Channel, message: Message,
                      camera_id: str) -> StoredFrame:
        key = (schema.name, schema.data)
        if key not in self._decoders:   # DecoderFactory caches by schema id, unique per file
            self._decoders[key] = DecoderFactory().decoder_for(channel.message_encoding, schema)
        decoded = self._decoders[key](message.data)
        return StoredFrame(message.log_time, camera_id, bytes(decoded.data),
                           decoded.header.frame_id, decoded.format)
