"""One MCAP segment file: written in small self-contained chunks, salvaged chunk by chunk.

The files are rosbag2-compatible MCAP: profile `ros2`, schema encoding `ros2msg` (the .msg
text with its dependencies, as rosbag2 writes it), message encoding `cdr`, log time = capture
stamp; chunks uncompressed (JPEG does not compress) with their CRC, a message index per
channel after each chunk, and on finish the summary (schemas, channels, statistics, chunk
indexes) and footer. What makes them robust:

- every chunk carries the Schema and Channel records of the messages in it (MCAP allows these
  repeats), so any intact chunk can be read alone, whatever happened to the others;
- nothing reaches the file before flush(): a flush writes the pending chunks, complete, at the
  end of what is already on disk, and fsyncs. A write that fails (disk full) is cut off again
  (truncated to the last complete record) and its chunks stay in memory for the next flush, so
  a file never holds a torn record followed by later data;
- salvage() reads a damaged file (torn by a crash, truncated, bit-flipped) chunk by chunk: a
  chunk whose framing or CRC is wrong is skipped and reading resumes at the next intact chunk.
"""

from collections import deque
from dataclasses import dataclass, field
from io import BytesIO
import mmap
import os
from pathlib import Path
import re
import struct
import sys
import time
from typing import Iterator, Sequence
import zlib

from mcap.data_stream import ReadDataStream, RecordBuilder
from mcap.exceptions import McapError
from mcap.opcode import Opcode
from mcap.records import (Channel, Chunk, ChunkIndex, DataEnd, Footer, Header, Message,
                          MessageIndex, Schema, Statistics, SummaryOffset)
from mcap.stream_reader import breakup_chunk
from mcap.well_known import MessageEncoding, Profile, SchemaEncoding

from facetrack_ros.core.history.config import MIB
from facetrack_ros.core.private_files import FileModes, fsync_folder

COMPRESSED_IMAGE_TYPE = 'sensor_msgs/msg/CompressedImage'
MAGIC = b'\x89MCAP0\r\n'
_LIBRARY = 'facetrack_ros frame history'
#: Largest log time MCAP can hold (unsigned 64 bits); stamps are checked against it [ns].
MAX_LOG_TIME_NS = 2 ** 63 - 1
# Size estimates of what a segment adds around its messages, so rotation by size holds for the
# finished file: per message (record, message index), per chunk (chunk + its summary index),
# and once (statistics, summary offsets, data end, footer, magic).
_MESSAGE_OVERHEAD_BYTES = 64
_CHUNK_INDEX_BYTES = 160
_SUMMARY_BYTES = 512
#: Chunk record fields before its records: start, end, size [8 each], CRC and compression
#: length [4 each], then the compression name and the records' length [8].
_CHUNK_HEAD = struct.Struct('<QQQII')
_RECORD_HEAD = struct.Struct('<BQ')
_DATA_OPCODES = frozenset({Opcode.HEADER, Opcode.SCHEMA, Opcode.CHANNEL, Opcode.MESSAGE,
                           Opcode.MESSAGE_INDEX, Opcode.ATTACHMENT, Opcode.METADATA})

#: What parsing a damaged record can raise.
_PARSE_ERRORS = (McapError, struct.error, ValueError, EOFError, IndexError, KeyError)

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
    written_ns: int = 0   # wall time of the last write (the file's mtime) [ns]

    @property
    def name(self) -> str:
        """Return the file name, which is how the index refers to the segment."""
        return self.path.name


def check_message(message: SerializedMessage) -> None:
    """Raise ValueError unless message can be written (a stamp MCAP can hold, bytes, text)."""
    stamp = message.stamp_ns
    if isinstance(stamp, bool) or not isinstance(stamp, int) or not (
            0 <= stamp <= MAX_LOG_TIME_NS):
        raise ValueError(f'stamp {stamp!r} must be an integer in [0, 2**63) ns')
    if not isinstance(message.data, (bytes, bytearray, memoryview)):
        raise ValueError('message data must be bytes')
    for name in ('topic', 'type_name', 'definition'):
        if not isinstance(getattr(message, name), str) or not getattr(message, name):
            raise ValueError(f'message {name} must be non-empty text')


@dataclass
class _PendingChunk:
    """Messages cut into one chunk, not on disk yet."""

    messages: list[Message] = field(default_factory=list)
    data_bytes: int = 0
    arrived: float = 0.0   # monotonic time of its first message


class SegmentWriter:
    """Write one MCAP segment of already-serialized ROS 2 messages, readable by rosbag2.

    Messages are kept in memory until flush() (or a full chunk) writes them; see the module
    docstring. The file itself is created on the first flush, so a writer can hold messages
    while the folder cannot be written.
    """

    def __init__(self, path: Path, source: str, chunk_max_bytes: int = 1 * MIB,
                 modes: FileModes = FileModes()) -> None:
        """Prepare a segment at path (which must not exist) for source."""
        self.path = Path(path)
        self._modes = modes
        self._chunk_max_bytes = chunk_max_bytes
        self._descriptor: int | None = None
        self._written = 0   # bytes on disk: complete records only
        self.torn_bytes = 0   # adopt(): the torn tail close() cuts off
        self._schemas: dict[str, Schema] = {}     # by type name
        self._channels: dict[str, Channel] = {}   # by topic
        self._chunk = _PendingChunk()
        self._ready: deque[_PendingChunk] = deque()   # cut, waiting for a flush
        self._chunk_indexes: list[ChunkIndex] = []
        self._channel_counts: dict[int, int] = {}
        self.opened = time.monotonic()
        self.frame_stamps: list[int] = []   # of the open segment, which has no index yet
        self.info = SegmentInfo(self.path, source, 0, 0, _SUMMARY_BYTES, 0, 0, finished=False,
                                written_ns=time.time_ns())

    @classmethod
    def adopt(cls, path: Path, source: str, chunk_max_bytes: int = 1 * MIB,
              modes: FileModes = FileModes()) -> 'SegmentWriter | None':
        """Take over an unfinished segment whose damage is only a torn tail (a crash).

        Returns a writer positioned after its last complete chunk (and that chunk's message
        indexes), knowing its schemas, channels and chunks; close() cuts the torn tail off
        and finishes the file in place: no copy, so it works on a nearly full disk. Returns
        None when the file is damaged elsewhere (an intact chunk after the damage).
        """
        with open(path, 'rb') as stream:
            size = os.fstat(stream.fileno()).st_size
            if size < len(MAGIC) + _RECORD_HEAD.size:
                return None
            with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as view:
                if view[:len(MAGIC)] != MAGIC:
                    return None
                writer = cls(path, source, chunk_max_bytes, modes)
                end = writer._adopt_prefix(view, size)
                if end is None or _next_intact_chunk(view, end + 1, size) < size:
                    return None
        writer._written = end
        writer.torn_bytes = size - end
        writer._descriptor = os.open(path, os.O_WRONLY)
        os.ftruncate(writer._descriptor, end)
        return writer

    def _adopt_prefix(self, view: mmap.mmap, size: int) -> int | None:
        """Read the header and the complete chunks at the start of view; return where they end.

        Fills the writer's schemas, channels, chunk indexes, counts and info from them.
        """
        opcode, length = _RECORD_HEAD.unpack_from(view, len(MAGIC))
        end = len(MAGIC) + _RECORD_HEAD.size + length
        if opcode != Opcode.HEADER or end > size:
            return None
        info = self.info
        while True:
            found = _intact_chunk(view, end, size)
            if found is None:
                return end
            chunk, position = found
            counts: dict[int, int] = {}
            offsets: dict[int, int] = {}
            while position + _RECORD_HEAD.size <= size and view[position] == \
                    Opcode.MESSAGE_INDEX:
                record_end = position + _RECORD_HEAD.size + _RECORD_HEAD.unpack_from(
                    view, position)[1]
                if record_end > size:
                    break
                channel_id, entries = struct.unpack_from('<HI', view, position + 9)
                offsets[channel_id] = position
                counts[channel_id] = entries // 16
                position = record_end
            try:
                records = breakup_chunk(chunk, validate_crc=False)
            except _PARSE_ERRORS:
                return end
            channels = {r.id: r for r in records if isinstance(r, Channel)}
            messages = sum(1 for r in records if isinstance(r, Message))
            if sum(counts.values()) != messages or set(counts) - set(channels):
                return end   # its message indexes are torn: the chunk goes with the tail
            for schema in (r for r in records if isinstance(r, Schema)):
                self._schemas[schema.name] = schema
            for channel in channels.values():
                self._channels[channel.topic] = channel
            frame_ids = {c.id for c in channels.values()
                         if self._schemas_by_id().get(c.schema_id) == COMPRESSED_IMAGE_TYPE}
            for channel_id, count in counts.items():
                self._channel_counts[channel_id] = self._channel_counts.get(channel_id, 0) + count
                info.frames += count if channel_id in frame_ids else 0
            info.start_ns = chunk.message_start_time if not info.messages else min(
                info.start_ns, chunk.message_start_time)
            info.end_ns = max(info.end_ns, chunk.message_end_time)
            info.messages += messages
            self._chunk_indexes.append(ChunkIndex(
                message_start_time=chunk.message_start_time,
                message_end_time=chunk.message_end_time, chunk_start_offset=end,
                chunk_length=found[1] - end, message_index_offsets=offsets,
                message_index_length=position - found[1], compression=chunk.compression,
                compressed_size=len(chunk.data), uncompressed_size=chunk.uncompressed_size))
            end = position

    def _schemas_by_id(self) -> dict[int, str]:
        return {schema.id: name for name, schema in self._schemas.items()}

    @property
    def readable_bytes(self) -> int:
        """Return how much of the file a reader may read: complete records only."""
        return self._written

    @property
    def pending_bytes(self) -> int:
        """Return the message bytes held in memory, not on disk yet."""
        return self._chunk.data_bytes + sum(chunk.data_bytes for chunk in self._ready)

    @property
    def pending_messages(self) -> int:
        """Return the messages held in memory, not on disk yet."""
        return len(self._chunk.messages) + sum(len(chunk.messages) for chunk in self._ready)

    @property
    def oldest_pending(self) -> float | None:
        """Return the monotonic arrival time of the oldest message not on disk, if any."""
        if self._ready:
            return self._ready[0].arrived
        return self._chunk.arrived if self._chunk.messages else None

    def write(self, message: SerializedMessage) -> None:
        """Add one message (in memory), registering its schema and channel on first use.

        Raises ValueError for a message check_message refuses or a topic that changes type.
        """
        check_message(message)
        schema = self._schemas.get(message.type_name)
        if schema is None:
            schema = Schema(id=len(self._schemas) + 1, name=message.type_name,
                            encoding=SchemaEncoding.ROS2, data=message.definition.encode())
            self._schemas[message.type_name] = schema
        channel = self._channels.get(message.topic)
        if channel is None:
            channel = Channel(id=len(self._channels) + 1, topic=message.topic,
                              message_encoding=MessageEncoding.CDR, schema_id=schema.id,
                              metadata={})
            self._channels[message.topic] = channel
        elif channel.schema_id != schema.id:
            raise ValueError(f'topic {message.topic} carries another type, '
                             f'not {message.type_name}')
        if not self._chunk.messages:
            self._chunk.arrived = time.monotonic()
        self._chunk.messages.append(Message(channel_id=channel.id, sequence=0,
                                            log_time=message.stamp_ns,
                                            publish_time=message.stamp_ns,
                                            data=bytes(message.data)))
        self._chunk.data_bytes += len(message.data) + _MESSAGE_OVERHEAD_BYTES
        info = self.info
        info.start_ns = message.stamp_ns if not info.messages else min(info.start_ns,
                                                                       message.stamp_ns)
        info.end_ns = message.stamp_ns if not info.messages else max(info.end_ns,
                                                                     message.stamp_ns)
        info.messages += 1
        self._channel_counts[channel.id] = self._channel_counts.get(channel.id, 0) + 1
        if message.type_name == COMPRESSED_IMAGE_TYPE:
            info.frames += 1
            self.frame_stamps.append(message.stamp_ns)
        if self._chunk.data_bytes >= self._chunk_max_bytes:
            self.cut()
        self._update_size()

    def cut(self) -> None:
        """End the chunk being built; it is written by the next flush."""
        if self._chunk.messages:
            self._ready.append(self._chunk)
            self._chunk = _PendingChunk()

    def _update_size(self) -> None:
        """Estimate the finished file's size: on disk, pending, and the summary to come."""
        definitions = sum(len(schema.data) + len(schema.name) + 32
                          for schema in self._schemas.values()) + sum(
            len(channel.topic) + 48 for channel in self._channels.values())
        pending_chunks = len(self._ready) + 1
        chunks = len(self._chunk_indexes) + pending_chunks
        self.info.size_bytes = (self._written + self.pending_bytes
                                + pending_chunks * (definitions + _CHUNK_INDEX_BYTES)
                                + _SUMMARY_BYTES + definitions + chunks * _CHUNK_INDEX_BYTES)

    def flush(self, sync: bool = True) -> None:
        """Write every pending chunk at the end of the file and fsync (if sync).

        Raises OSError when the file cannot be written; nothing torn stays in it and the
        chunks stay pending for the next flush.
        """
        self.cut()
        if not self._ready:
            return
        blob = RecordBuilder()
        if self._written == 0:
            blob.write(MAGIC)
            Header(profile=Profile.ROS2, library=_LIBRARY).write(blob)
        indexes = []
        for chunk in self._ready:
            indexes.append(self._chunk_record(chunk.messages, self._written + blob.count, blob))
        self._append(blob.end(), sync)
        self._chunk_indexes.extend(indexes)
        self._ready.clear()
        self.info.written_ns = time.time_ns()
        self._update_size()

    def _chunk_record(self, messages: list[Message], offset: int,
                      out: RecordBuilder) -> ChunkIndex:
        """Append a chunk of messages and its message indexes to out; return its index."""
        records = RecordBuilder()
        used = sorted({message.channel_id for message in messages})
        channels = {channel.id: channel for channel in self._channels.values()}
        schemas = {schema.id: schema for schema in self._schemas.values()}
        for schema_id in sorted({channels[c].schema_id for c in used}):
            schemas[schema_id].write(records)
        for channel_id in used:
            channels[channel_id].write(records)
        message_indexes = {c: MessageIndex(channel_id=c, records=[]) for c in used}
        for message in messages:
            message_indexes[message.channel_id].records.append((message.log_time,
                                                                records.count))
            message.write(records)
        data = records.end()
        start = min(message.log_time for message in messages)
        end = max(message.log_time for message in messages)
        chunk_start = out.count
        Chunk(compression='', data=data, message_start_time=start, message_end_time=end,
              uncompressed_crc=zlib.crc32(data), uncompressed_size=len(data)).write(out)
        chunk_length = out.count - chunk_start
        offsets = {}
        for channel_id, index in message_indexes.items():
            offsets[channel_id] = offset + out.count - chunk_start
            index.write(out)
        return ChunkIndex(message_start_time=start, message_end_time=end,
                          chunk_start_offset=offset, chunk_length=chunk_length,
                          message_index_offsets=offsets,
                          message_index_length=out.count - chunk_start - chunk_length,
                          compression='', compressed_size=len(data),
                          uncompressed_size=len(data))

    def _append(self, data: bytes, sync: bool) -> None:
        """Write data after the complete records, or leave the file as it was and raise."""
        try:
            if self._descriptor is None:
                self._descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                           self._modes.file)
            view = memoryview(data)
            done = 0
            while done < len(view):
                done += os.pwrite(self._descriptor, view[done:], self._written + done)
            if sync:
                os.fsync(self._descriptor)
        except OSError:
            if self._descriptor is not None:
                try:
                    os.ftruncate(self._descriptor, self._written)
                except OSError:
                    pass   # reading stops at the torn record; salvage() skips it
            raise
        self._written += len(data)

    def pending_frames(self, stamps: set[int]) -> list[tuple[Schema, Message]]:
        """Return the frames at stamps among the messages not on disk yet, with their schema."""
        schema = self._schemas.get(COMPRESSED_IMAGE_TYPE)
        if schema is None:
            return []
        return [(schema, message) for chunk in (*self._ready, self._chunk)
                for message in chunk.messages
                if message.log_time in stamps and self._is_frame_channel(message.channel_id)]

    def drop_oldest_pending(self) -> int:
        """Forget the oldest pending chunk (memory is short); return its message count."""
        self.cut()
        if not self._ready:
            return 0
        chunk = self._ready.popleft()
        frames = {m.log_time for m in chunk.messages
                  if self._is_frame_channel(m.channel_id)}
        self.frame_stamps = [stamp for stamp in self.frame_stamps if stamp not in frames]
        self.info.frames -= sum(1 for m in chunk.messages
                                if self._is_frame_channel(m.channel_id))
        self.info.messages -= len(chunk.messages)
        for message in chunk.messages:
            self._channel_counts[message.channel_id] -= 1
        self._update_size()
        return len(chunk.messages)

    def _is_frame_channel(self, channel_id: int) -> bool:
        schema = self._schemas.get(COMPRESSED_IMAGE_TYPE)
        return schema is not None and any(
            c.id == channel_id and c.schema_id == schema.id for c in self._channels.values())

    def close(self) -> SegmentInfo:
        """Flush, write the summary and footer, fsync and close; return the segment's info.

        A writer that never held a message leaves no file. Raises OSError when the disk
        refuses (the file stays unfinished and consistent; close again later, or abandon()).
        """
        self.flush(sync=False)
        if self._written == 0:
            self.abandon()
            self.info.finished = True
            self.info.size_bytes = 0
            return self.info
        data_end = RecordBuilder()
        DataEnd(data_section_crc=0).write(data_end)
        head = data_end.end()
        summary_start = self._written + len(head)
        self._append(head + self._summary(summary_start) + MAGIC, sync=True)
        os.close(self._descriptor)
        self._descriptor = None
        fsync_folder(self.path.parent)
        self.frame_stamps = []
        self.info.size_bytes = self._written
        self.info.finished = True
        self.info.written_ns = time.time_ns()
        return self.info

    def _summary(self, summary_start: int) -> bytes:
        """Return the summary section and the footer, starting at file offset summary_start."""
        summary = RecordBuilder()
        offsets = []

        def group(opcode: Opcode, records: list) -> None:
            begin = summary.count
            for record in records:
                record.write(summary)
            offsets.append(SummaryOffset(group_opcode=opcode, group_start=summary_start + begin,
                                         group_length=summary.count - begin))

        info = self.info
        group(Opcode.SCHEMA, list(self._schemas.values()))
        group(Opcode.CHANNEL, list(self._channels.values()))
        group(Opcode.STATISTICS, [Statistics(
            message_count=info.messages, schema_count=len(self._schemas),
            channel_count=len(self._channels), attachment_count=0, metadata_count=0,
            chunk_count=len(self._chunk_indexes), message_start_time=info.start_ns,
            message_end_time=info.end_ns, channel_message_counts=dict(self._channel_counts))])
        group(Opcode.CHUNK_INDEX, self._chunk_indexes)
        offset_start = summary_start + summary.count
        for offset in offsets:
            offset.write(summary)
        data = summary.end()
        crc = zlib.crc32(struct.pack('<BQQQ', Opcode.FOOTER, 20, summary_start, offset_start),
                         zlib.crc32(data))
        footer = RecordBuilder()
        Footer(summary_start=summary_start, summary_offset_start=offset_start,
               summary_crc=crc).write(footer)
        return data + footer.end()

    def abandon(self) -> None:
        """Close the file as it is (unfinished, recovered at the next open); drop the rest."""
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None
        self._ready.clear()
        self._chunk = _PendingChunk()


@dataclass
class Salvage:
    """What salvage() found in a file."""

    chunks: int = 0           # intact chunks read
    messages: int = 0         # messages in them with a known channel
    damaged: int = 0          # damaged stretches skipped (each cost the chunk(s) in it)
    orphans: int = 0          # messages whose channel was in a damaged stretch
    finished: bool = False    # the data section ended properly (a DataEnd record)


def _intact_chunk(view: mmap.mmap, position: int, size: int) -> tuple[Chunk, int] | None:
    """Return the chunk record at position and where it ends, if it is whole and its CRC holds."""
    head_end = position + _RECORD_HEAD.size + _CHUNK_HEAD.size
    if head_end + 8 > size or view[position] != Opcode.CHUNK:
        return None
    length = _RECORD_HEAD.unpack_from(view, position)[1]
    end = position + _RECORD_HEAD.size + length
    if end > size:
        return None
    start_time, end_time, uncompressed_size, crc, name_length = _CHUNK_HEAD.unpack_from(
        view, position + _RECORD_HEAD.size)
    if name_length > 16 or head_end + name_length + 8 > end:
        return None
    compression = bytes(view[head_end:head_end + name_length])
    data_start = head_end + name_length + 8
    (data_length,) = struct.unpack_from('<Q', view, data_start - 8)
    if data_start + data_length != end or start_time > end_time:
        return None
    data = bytes(view[data_start:end])
    if compression == b'' and (uncompressed_size != data_length or zlib.crc32(data) != crc):
        return None
    try:
        name = compression.decode()
    except UnicodeDecodeError:
        return None
    return Chunk(compression=name, data=data, message_start_time=start_time,
                 message_end_time=end_time, uncompressed_crc=crc,
                 uncompressed_size=uncompressed_size), end


def _next_intact_chunk(view: mmap.mmap, position: int, size: int) -> int:
    """Return the offset of the first intact chunk at or after position, or size if none."""
    while True:
        position = view.find(bytes([Opcode.CHUNK]), position)
        if position < 0:
            return size
        if _intact_chunk(view, position, size) is not None:
            return position
        position += 1


def salvage(path: Path, report: Salvage | None = None
            ) -> Iterator[list[tuple[Schema, Channel, Message]]]:
    """Yield the messages of each intact chunk of an MCAP file, chunk by chunk.

    Damaged records (torn, bit-flipped, truncated) are skipped: reading resumes at the next
    chunk whose framing and CRC hold. Schemas and channels come from every intact chunk (and
    from records outside chunks), so a message is lost only with its own chunk. Fills report.
    """
    report = Salvage() if report is None else report
    with open(path, 'rb') as stream:
        size = os.fstat(stream.fileno()).st_size
        if size == 0:
            return
        with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as view:
            yield from _salvage_view(view, size, report)


def _salvage_view(view: mmap.mmap, size: int, report: Salvage
                  ) -> Iterator[list[tuple[Schema, Channel, Message]]]:
    schemas: dict[int, Schema] = {}
    channels: dict[int, Channel] = {}
    position = len(MAGIC) if view[:len(MAGIC)] == MAGIC else 0
    while position < size:
        records = None
        if position + _RECORD_HEAD.size <= size:
            opcode, length = _RECORD_HEAD.unpack_from(view, position)
            end = position + _RECORD_HEAD.size + length
            if opcode == Opcode.CHUNK:
                found = _intact_chunk(view, position, size)
                if found is not None:
                    try:
                        records = breakup_chunk(found[0], validate_crc=False)
                        end = found[1]
                    except _PARSE_ERRORS:
                        records = None   # consistent framing, nonsense inside: damaged
            elif opcode == Opcode.DATA_END:
                report.finished = True
                return
            elif opcode in _DATA_OPCODES and end <= size:
                records = _outside_record(view, position, opcode, end)
        if records is None:
            report.damaged += 1
            position = _next_intact_chunk(view, position + 1, size)
            continue
        position = end
        messages = []
        for record in records:
            if isinstance(record, Schema):
                schemas[record.id] = record
            elif isinstance(record, Channel):
                channels[record.id] = record
            elif isinstance(record, Message):
                channel = channels.get(record.channel_id)
                schema = None if channel is None else schemas.get(channel.schema_id)
                if schema is None:
                    report.orphans += 1
                else:
                    messages.append((schema, channel, record))
        if messages:
            report.chunks += 1
            report.messages += len(messages)
            yield messages


def _outside_record(view: mmap.mmap, position: int, opcode: int, end: int) -> list | None:
    """Return a schema or channel written outside chunks as a record list; [] for others."""
    if opcode not in (Opcode.SCHEMA, Opcode.CHANNEL):
        return []
    stream = ReadDataStream(BytesIO(bytes(view[position + _RECORD_HEAD.size:end])))
    try:
        return [(Schema if opcode == Opcode.SCHEMA else Channel).read(stream)]
    except _PARSE_ERRORS:
        return None
