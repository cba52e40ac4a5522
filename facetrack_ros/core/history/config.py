"""Settings of the frame history: segment rotation, flushing, retention, ring and index."""

from dataclasses import dataclass, fields

MIB = 1024 * 1024
GIB = 1024 * MIB
NS_PER_S = 1_000_000_000


def seconds_to_ns(seconds: float) -> int:
    """Return a duration in seconds as whole nanoseconds."""
    return int(round(seconds * NS_PER_S))


@dataclass(frozen=True)
class HistoryConfig:
    """Where the frame history draws its lines; every value must be positive."""

    #: Capture time after which a segment is finished and the next one started [s].
    segment_duration_s: float = 60.0
    #: Size at which a segment is finished early [bytes].
    segment_max_bytes: int = 256 * MIB
    #: Largest MCAP chunk; a chunk is also cut at every flush [bytes].
    chunk_max_bytes: int = 4 * MIB
    #: Wall time between flushes (segment chunk + fsync, index commit): the crash-loss bound [s].
    flush_interval_s: float = 1.0
    #: Segments whose last frame is older than this are deleted, with their index entries [s].
    max_age_s: float = 24 * 3600.0
    #: Oldest segments are deleted while all segments together exceed this [bytes].
    max_bytes: int = 20 * GIB
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
