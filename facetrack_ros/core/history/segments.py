"""The frame store: rotating MCAP segments of serialized messages, and a RAM ring of frames.

Each source (a camera, or the robot for its non-image topics) writes one segment at a time to
`<root>/segments/<source>_<first stamp, UTC>.mcap`, e.g. `front_20250102T030405.000000000Z.mcap`
(the file format, written in small self-contained chunks, is in mcap_file.py). A message waits
in memory at most half of flush_interval_s before its chunk is written and fsynced, so a crash
loses less than flush_interval_s. An unfinished or damaged segment found on opening is
recovered: every intact chunk is rewritten into a finished segment.

While the disk refuses writes (full, read-only, an I/O error) recording goes on in memory: the
ring keeps the frames for lookups, the open segments keep their messages (up to
pending_max_bytes, the oldest dropped and counted beyond it), write_error says why, and the
next flush that succeeds writes them all. Retention counts a segment's age from the earlier of
its last stamp and its last write (the file's mtime), so stamps from the future cannot keep a
segment beyond max_age_s.
"""

from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime, timezone
import logging
import os
from pathlib import Path
import re
import struct
import threading
import time
from typing import Callable, IO, Iterator

from mcap.exceptions import EndOfFile, McapError
from mcap.opcode import Opcode
from mcap.reader import NonSeekingReader, SeekingReader
from mcap.records import Channel, Message, Schema
from mcap_ros2.decoder import DecoderFactory
import numpy as np

from facetrack_ros.core.history.config import HistoryConfig, NS_PER_S, seconds_to_ns
from facetrack_ros.core.history.mcap_file import (check_message, COMPRESSED_IMAGE_TYPE,
                                                  MAX_LOG_TIME_NS, Salvage, salvage,
                                                  SegmentInfo, SegmentWriter,
                                                  SerializedMessage)
from facetrack_ros.core.history.ring import FrameRing, StoredFrame
from facetrack_ros.core.private_files import FileModes, fsync_folder

_LOG = logging.getLogger(__name__)

_SOURCE_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]*')
_SEGMENT_RE = re.compile(r'(?P<source>.+)_\d{8}T\d{6}\.\d{9}Z\.mcap')
#: What a damaged MCAP file can raise while it is parsed.
_READ_ERRORS = (McapError, struct.error, ValueError, EOFError, IndexError, KeyError, OSError,
                ArithmeticError, MemoryError)
#: A transform of stored messages (FrameStore.rewrite): (type name, topic, log time [ns], CDR)
#: to the new CDR, the same object when unchanged, or None to drop the message.
Transform = Callable[[str, str, int, bytes], bytes | None]


def check_source(source: str) -> str:
    """Return source if it can name segment files, else raise ValueError."""
    if not isinstance(source, str) or not _SOURCE_RE.fullmatch(source) or len(source) > 128:
        raise ValueError(f'source id {source!r} must match {_SOURCE_RE.pattern} '
                         '(at most 128 characters)')
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


def age_reference_ns(info: SegmentInfo, now_ns: int) -> int:
    """Return the stamp retention ages a segment by: its last stamp or its last write [ns].

    The earlier of the two, so neither a future stamp nor a recent copy keeps data longer.
    """
    return min(info.end_ns, info.written_ns if info.finished else now_ns)


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
    so recording goes on meanwhile. See the module docstring for faults.
    """

    def __init__(self, root: Path | str, config: HistoryConfig = HistoryConfig(),
                 modes: FileModes = FileModes()) -> None:
        """Open (or create) the store under root and list, and if need be recover, its segments.

        Damaged segments are logged, listed in problems and recovered or skipped; they never
        raise. A folder that cannot be written is served as it is (read_only). Raises OSError
        only when the segment folder neither exists nor can be made.
        """
        self.config = config
        self.modes = modes
        self.segment_dir = Path(root) / 'segments'
        self.ring = FrameRing(config.ring_bytes)
        self.problems: deque[str] = deque(maxlen=100)   # the latest, for diagnostics
        self.problem_count = 0
        #: Segments recovered on opening (a crash): their last index entries may be missing.
        self.recovered: list[str] = []
        #: Why the last flush failed, while writes fail; None when writing works.
        self.write_error: str | None = None
        #: Messages dropped because the disk refused them for too long (pending_max_bytes).
        self.lost_messages = 0
        #: Called (under the store lock) with each segment once it is finished.
        self.on_finished: Callable[[SegmentInfo], None] | None = None
        self._segments: dict[str, SegmentInfo] = {}   # finished, by file name
        self._writers: dict[str, SegmentWriter] = {}  # open, by source
        self._decoders: dict[tuple[str, bytes], Callable[[bytes], object]] = {}
        self._lock = threading.RLock()
        self._last_flush = time.monotonic()
        self._closed = False
        try:
            modes.make_folder(self.segment_dir)
        except OSError as error:
            if not self.segment_dir.is_dir():
                raise
            self._problem(f'cannot write {self.segment_dir} ({error}): serving it as it is')
        self.read_only = not os.access(self.segment_dir, os.W_OK)
        for leftover in self.segment_dir.glob('*.mcap.tmp'):   # a recovery cut short
            try:
                leftover.unlink()
            except OSError:
                pass
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
            status = path.stat()
            with open(path, 'rb') as stream:
                summary = SeekingReader(stream).get_summary()
        except _READ_ERRORS:
            summary = None
        if summary is None or summary.statistics is None:
            return self._recover(path, match.group('source'))
        self.modes.restrict(path)
        stats = summary.statistics
        frame_channels = {channel_id for channel_id, channel in summary.channels.items()
                          if self._is_frame_schema(summary.schemas.get(channel.schema_id))}
        return SegmentInfo(path, match.group('source'), stats.message_start_time,
                           stats.message_end_time, status.st_size, stats.message_count,
                           sum(stats.channel_message_counts.get(channel_id, 0)
                               for channel_id in frame_channels), finished=True,
                           written_ns=status.st_mtime_ns)

    def _recover(self, path: Path, source: str) -> SegmentInfo | None:
        """Rewrite an unfinished or damaged segment with the messages of its intact chunks.

        A file with nothing in it (empty, or a header only) is deleted; one with nothing
        readable is skipped. The recovered file keeps the original's mtime (its real age).
        """
        try:
            in_place = SegmentWriter.adopt(path, source, self.config.chunk_max_bytes,
                                           self.modes)
            if in_place is not None and in_place.info.messages:
                return self._finish_in_place(path, in_place)
        except OSError as error:
            self._problem(f'{path.name}: unfinished and cannot be finished here ({error}); '
                          'skipped')
            return None
        report = Salvage()
        temporary = path.with_name(path.name + '.tmp')
        writer: SegmentWriter | None = None
        try:
            written_ns = path.stat().st_mtime_ns
            for messages in salvage(path, report):
                writer = writer or SegmentWriter(temporary, source, self.config.chunk_max_bytes,
                                                 self.modes)
                for schema, channel, message in messages:
                    try:
                        writer.write(SerializedMessage(channel.topic, schema.name,
                                                       schema.data.decode(), message.data,
                                                       message.log_time))
                    except ValueError:   # a stamp or type the store would not have written
                        report.orphans += 1
                writer.cut()   # the chunks keep their size
            if writer is None:
                return self._unreadable(path, report)
            info = writer.close()
            os.utime(temporary, ns=(written_ns, written_ns))
            os.replace(temporary, path)
            fsync_folder(path.parent)
        except OSError as error:   # a read-only folder, a full disk
            if writer is not None:
                writer.abandon()
            try:
                temporary.unlink(missing_ok=True)
            except OSError:
                pass
            self._problem(f'{path.name}: unfinished or damaged and cannot be recovered here '
                          f'({error}); skipped')
            return None
        self.recovered.append(path.name)
        unreadable = f' and {report.orphans} unreadable messages' if report.orphans else ''
        self._problem(f'{path.name}: unfinished (crash?) or damaged: recovered {info.messages} '
                      f'messages in {report.chunks} intact chunks, skipped {report.damaged} '
                      f'damaged stretch(es){unreadable}')
        return replace(info, path=path, written_ns=written_ns)

    def _finish_in_place(self, path: Path, writer: SegmentWriter) -> SegmentInfo:
        """Finish a segment torn only at its end (see SegmentWriter.adopt), keeping its mtime."""
        written_ns = path.stat().st_mtime_ns
        torn = writer.torn_bytes
        info = writer.close()
        os.utime(path, ns=(written_ns, written_ns))
        self.recovered.append(path.name)
        self._problem(f'{path.name}: unfinished (crash?): recovered {info.messages} messages '
                      f'in place, a torn tail of {torn} bytes cut off')
        return replace(info, written_ns=written_ns)

    def _unreadable(self, path: Path, report: Salvage) -> None:
        """Delete a segment file that holds nothing; report one holding nothing readable."""
        size = path.stat().st_size
        if report.damaged == 0 or size <= 64:   # empty, or a header without a chunk
            path.unlink()
            self._problem(f'{path.name}: empty ({size} bytes), deleted')
        else:
            self._problem(f'{path.name}: unreadable ({size} bytes, no intact chunk), skipped')

    @staticmethod
    def _is_frame_schema(schema: Schema | None) -> bool:
        return schema is not None and schema.name == COMPRESSED_IMAGE_TYPE

    def write(self, source: str, message: SerializedMessage) -> str:
        """Append a message to source's open segment, rotating first if it is due.

        Returns the file name of the segment it went into. The message is kept in memory if
        the disk refuses it (see the module docstring). Raises ValueError for a message that
        cannot be stored (check_message) and RuntimeError after close(): a callback still
        running during shutdown must not leave an unfinished segment behind.
        """
        check_message(message)
        with self._lock:
            if self._closed:
                raise RuntimeError(f'frame store {self.segment_dir} is closed')
            writer = self._writers.get(source)
            # While the disk refuses writes the segment stays open (flush_if_due retries).
            if writer is not None and writer.info.messages and self.write_error is None \
                    and self._rotation_due(writer, message):
                self._finish(source)
                writer = self._writers.get(source)
            if writer is None:
                writer = self._open_writer(source, message.stamp_ns)
            writer.write(message)
            self._bound_pending()
            self.flush_if_due()
            return writer.info.name

    def _rotation_due(self, writer: SegmentWriter, message: SerializedMessage) -> bool:
        """Return whether writer's segment is long (capture or wall time) or large enough."""
        duration_ns = seconds_to_ns(self.config.segment_duration_s)
        return (message.stamp_ns - writer.info.start_ns >= duration_ns
                or time.monotonic() - writer.opened >= self.config.segment_duration_s
                or writer.info.size_bytes + len(message.data) > self.config.segment_max_bytes)

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
        taken = {*self._segments, *(w.info.name for w in self._writers.values())}
        path = self.segment_dir / segment_name(source, stamp_ns)
        while path.name in taken or path.exists():   # same source and first stamp as another
            stamp_ns += 1
            path = self.segment_dir / segment_name(source, stamp_ns)
        writer = SegmentWriter(path, source, self.config.chunk_max_bytes, self.modes)
        self._writers[source] = writer
        return writer

    def _finish(self, source: str) -> bool:
        """Finish source's open segment; False (and it stays open) when the disk refuses."""
        writer = self._writers[source]
        try:
            info = writer.close()
        except OSError as error:
            self._note_write(error)
            return False
        del self._writers[source]
        if info.messages:
            self._segments[info.name] = info
            if self.on_finished is not None:
                self.on_finished(info)
        return True

    def _bound_pending(self) -> None:
        """Drop the oldest messages held in memory beyond pending_max_bytes, counting them."""
        while sum(w.pending_bytes for w in self._writers.values()) \
                > self.config.pending_max_bytes:
            holding = [w for w in self._writers.values() if w.oldest_pending is not None]
            if not holding:
                return
            dropped = min(holding, key=lambda w: w.oldest_pending).drop_oldest_pending()
            if not dropped:
                return
            self.lost_messages += dropped

    def _note_write(self, error: OSError | None) -> None:
        """Record the outcome of a write to disk: the error, or that writing works again."""
        if error is not None:
            if self.write_error is None:
                _LOG.error('frame history: cannot write segments (%s): recording to memory '
                           'until it works again', error)
            self.write_error = f'{error.strerror or error}'
        elif self.write_error is not None:
            _LOG.warning('frame history: writing segments again')
            self.write_error = None

    def flush(self) -> None:
        """Write out and fsync every open segment's pending chunks; never raises.

        A failure is kept in write_error (and the chunks in memory) until a flush succeeds.
        """
        with self._lock:
            self._last_flush = time.monotonic()
            failure = None
            for writer in self._writers.values():
                try:
                    writer.flush()
                except OSError as error:
                    failure = error
            self._note_write(failure)

    def flush_if_due(self) -> None:
        """Flush when a message has waited half of flush_interval_s; call from a timer.

        While writes fail, a flush is tried once per flush_interval_s.
        """
        with self._lock:
            now = time.monotonic()
            interval = self.config.flush_interval_s
            if self.write_error is not None:
                due = now - self._last_flush >= interval
            else:
                due = any(w.oldest_pending is not None and now - w.oldest_pending >= interval / 2
                          for w in self._writers.values())
            if due:
                self.flush()

    def finish_open(self) -> str | None:
        """Finish every open segment now; return why one could not be finished, or None."""
        with self._lock:
            for source in list(self._writers):
                if not self._finish(source):
                    return self.write_error
            return None

    def close(self) -> None:
        """Finish every open segment (summary, footer); the store stays readable. Never raises.

        A segment the disk refuses to finish is left unfinished (recovered at the next open)
        and its messages not on disk are counted in lost_messages. Writing afterwards raises
        RuntimeError; closing again does nothing.
        """
        with self._lock:
            self._closed = True
            for source in list(self._writers):
                if not self._finish(source):
                    writer = self._writers.pop(source)
                    lost = writer.pending_messages
                    writer.abandon()
                    self.lost_messages += lost
                    self._problem(f'{writer.info.name} left unfinished on close '
                                  f'({self.write_error}): {lost} messages not written')

    def segments(self) -> list[SegmentInfo]:
        """Return every segment, open ones included, oldest first."""
        with self._lock:
            infos = [*self._segments.values(), *(w.info for w in self._writers.values())]
            return sorted(infos, key=lambda info: (info.start_ns, info.name))

    def last_write_ns(self) -> int:
        """Return the wall time of the latest write to any segment [ns]; 0 when none."""
        return max((info.written_ns for info in self.segments()), default=0)

    def disk_bytes(self) -> int:
        """Return the bytes of all segment files."""
        return sum(info.size_bytes for info in self.segments())

    def pending_bytes(self) -> int:
        """Return the message bytes held in memory, not on disk yet."""
        with self._lock:
            return sum(writer.pending_bytes for writer in self._writers.values())

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

    def enforce_retention(self, now_ns: int, other_bytes: int = 0) -> list[SegmentInfo]:
        """Delete segments older than max_age_s, then the oldest while over max_bytes.

        Age counts from age_reference_ns (the earlier of last stamp and last write);
        other_bytes (the index and its journal) count against max_bytes with the segments.
        An open segment is deleted only once all of it is too old (its camera went quiet).
        Returns the deleted segments, so the caller can drop their index entries.
        """
        cutoff = now_ns - seconds_to_ns(self.config.max_age_s)
        with self._lock:
            for source in [s for s, w in self._writers.items()
                           if age_reference_ns(w.info, now_ns) < cutoff]:
                self._finish(source)
            finished = sorted(self._segments.values(),
                              key=lambda info: age_reference_ns(info, now_ns))
            doomed = [info for info in finished if age_reference_ns(info, now_ns) < cutoff]
            total = self.disk_bytes() + other_bytes - sum(info.size_bytes for info in doomed)
            for info in finished[len(doomed):]:
                if total <= self.config.max_bytes:
                    break
                doomed.append(info)
                total -= info.size_bytes
            deleted = []
            for info in doomed:
                try:
                    info.path.unlink(missing_ok=True)
                except OSError as error:
                    self._problem(f'{info.name}: cannot delete ({error})')
                    continue
                del self._segments[info.name]
                deleted.append(info)
            self.ring.drop_before(cutoff)
            return deleted

    def ring_replace(self, camera_id: str,
                     change: Callable[[StoredFrame], bytes | None]) -> int:
        """Replace camera_id's ring frames by change(frame) where it is not None; count them."""
        with self._lock:
            changed = 0
            for stamp in self.ring.stamps(camera_id, 0, MAX_LOG_TIME_NS):
                frame = self.ring.get(camera_id, stamp)
                data = None if frame is None else change(frame)
                if data is not None:
                    changed += self.ring.replace(camera_id, stamp, data)
            return changed

    def messages(self, name: str, type_names: set[str] | None = None
                 ) -> Iterator[tuple[Schema, str, int, bytes]]:
        """Yield (schema, topic, log time, CDR) of a finished segment's intact chunks.

        Only messages of type_names (None: all). A damaged chunk is skipped; a segment that
        is gone (retention) or open yields nothing.
        """
        with self._lock:
            info = self._segments.get(name)
        if info is None:
            return
        try:
            for messages in salvage(info.path):
                for schema, channel, message in messages:
                    if type_names is None or schema.name in type_names:
                        yield schema, channel.topic, message.log_time, message.data
        except FileNotFoundError:
            return

    def rewrite(self, name: str, transform: Transform) -> tuple[int, int]:
        """Rewrite a finished segment with transform applied to each message (see Transform).

        The new file replaces the old one at once (keeping its mtime, i.e. its age); it holds
        only the old file's intact chunks. Returns (messages changed, messages dropped);
        (0, 0) leaves the file untouched. Raises OSError when the new file cannot be written.
        """
        with self._lock:
            info = self._segments.get(name)
        if info is None:
            return 0, 0
        temporary = info.path.with_name(info.path.name + '.tmp')
        writer = SegmentWriter(temporary, info.source, self.config.chunk_max_bytes, self.modes)
        changed = dropped = 0
        try:
            for messages in salvage(info.path):
                for schema, channel, message in messages:
                    data = transform(schema.name, channel.topic, message.log_time, message.data)
                    if data is None:
                        dropped += 1
                        continue
                    changed += data is not message.data
                    writer.write(SerializedMessage(channel.topic, schema.name,
                                                   schema.data.decode(), data,
                                                   message.log_time))
                writer.cut()
            if not (changed or dropped):
                writer.abandon()
                return 0, 0
            new = writer.close()
            if new.messages:
                os.utime(temporary, ns=(info.written_ns, info.written_ns))
        except BaseException:
            writer.abandon()
            temporary.unlink(missing_ok=True)
            raise
        with self._lock:
            if new.messages:
                os.replace(temporary, info.path)
                self._segments[name] = replace(new, path=info.path, written_ns=info.written_ns)
            else:
                info.path.unlink(missing_ok=True)
                del self._segments[name]
            fsync_folder(info.path.parent)
        return changed, dropped

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
                        try:
                            writer.flush()
                        except OSError as error:   # what is not on disk is in the ring
                            self._note_write(error)
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
                            try:
                                times = _read_message_index_stamps(
                                    stream, chunk.message_index_offsets[channel_id])
                            except _READ_ERRORS as exc:   # this chunk only
                                self._problem(f'{info.name}: a message index is unreadable '
                                              f'({exc!r}), its frames skipped')
                                continue
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
        if wanted and not info.finished:   # not on disk yet (the disk refuses): in memory
            with self._lock:
                writer = self._writers.get(info.source)
                pending = [] if writer is None or writer.info.name != info.name else \
                    writer.pending_frames(wanted)
            frames.extend(self._decode_frame(schema, None, message, info.source)
                          for schema, message in pending)
        return frames

    def _iter_segment(self, group: _FrameGroup, stream: IO[bytes],
                      stamps: set[int]) -> Iterator[tuple[Schema | None, Channel, Message]]:
        """Yield the messages of a segment at stamps, by index or, if open, by scanning."""
        if group.segment.finished:
            reader = SeekingReader(stream, validate_crcs=True)   # damaged chunks raise
            damaged: list[int] = []
            for stamp in sorted(stamps):   # each reads only the chunk(s) holding stamp
                try:
                    yield from reader.iter_messages(starting_at=stamp, ending_at=stamp,
                                                    log_time_order=False)
                except (McapError, struct.error, ValueError, EOFError):
                    damaged.append(stamp)
            if damaged:
                self._problem(f'{group.segment.name}: {len(damaged)} frame(s) in damaged '
                              f'chunks skipped (first at {damaged[0]} ns)')
            return
        try:
            yield from NonSeekingReader(_Prefix(stream, group.readable_bytes)).iter_messages(
                starting_at=min(stamps), ending_at=max(stamps), log_time_order=False)
        except EndOfFile:   # an open segment ends after its last flushed chunk, no footer yet
            return

    def decode(self, schema: Schema, data: bytes) -> object:
        """Return a stored CDR message decoded (mcap_ros2: the message's fields as attributes)."""
        key = (schema.name, schema.data)
        decoder = self._decoders.get(key)
        if decoder is None:   # DecoderFactory caches by schema id, unique per file only
            decoder = self._decoders[key] = DecoderFactory().decoder_for('cdr', schema)
        return decoder(data)

    def _decode_frame(self, schema: Schema, channel: Channel | None, message: Message,
                      camera_id: str) -> StoredFrame:
        decoded = self.decode(schema, message.data)
        return StoredFrame(message.log_time, camera_id, bytes(decoded.data),
                           decoded.header.frame_id, decoded.format)
