"""Settings of the frame history: segment rotation, flushing, retention, ring and index."""

from dataclasses import dataclass, fields

from facetrack_ros.core.event_log import DEFAULT_MAX_AGE_S

MIB = 1024 * 1024
GIB = 1024 * MIB
NS_PER_S = 1_000_000_000


def seconds_to_ns(seconds: float) -> int:
    """Return a duration in seconds as whole nanoseconds."""
    return int(round(seconds * NS_PER_S))


@dataclass(frozen=True)
class HistoryConfig:
    """Where the frame history draws its lines; every value must be positive."""

    #: Capture time (or wall time, whichever comes first) after which a segment is finished
    #: and the next one started [s].
    segment_duration_s: float = 60.0
    #: Size at which a segment is finished early [bytes].
    segment_max_bytes: int = 256 * MIB
    #: Largest MCAP chunk; a chunk is also cut at every flush. A damaged chunk loses only
    #: itself, so chunks stay small [bytes].
    chunk_max_bytes: int = 1 * MIB
    #: The most a crash may lose: a message waits at most half of it before its chunk is
    #: written and fsynced; the index commits this often [s].
    flush_interval_s: float = 1.0
    #: Segments last written (or whose last stamp is) longer ago than this are deleted, with
    #: their index entries [s].
    max_age_s: float = DEFAULT_MAX_AGE_S
    #: Oldest segments are deleted while everything the history writes (segments, index and
    #: its journal) exceeds this [bytes].
    max_bytes: int = 20 * GIB
    #: Messages kept in memory while the disk cannot take them (full, read-only); beyond this
    #: the oldest are dropped and counted [bytes].
    pending_max_bytes: int = 64 * MIB
    #: Budget of the in-memory ring of recent JPEG frames [bytes].
    ring_bytes: int = 64 * MIB
    #: The index keeps the best-quality face of each person per bucket of this length [s].
    bucket_s: float = 1.0
    #: Index entries are stored in blocks of this much capture time per camera [s].
    block_s: float = 60.0

    def __post_init__(self) -> None:
        """Reject zero or negative settings, which would make rotation or retention spin."""
        for item in fields(self):
            if not getattr(self, item.name) > 0:
                raise ValueError(f'HistoryConfig.{item.name} must be positive')
