"""Frame history without ROS: MCAP segments, a RAM ring of frames and a face embedding index.

Layout under the history folder:

    segments/<source>_<first stamp UTC>.mcap   rosbag2-compatible MCAP segments (FrameStore)
    index.sqlite3 (+ -wal, -shm)               face embedding index (EmbeddingIndex)

FrameHistory ties the two together for retention; the ROS node hands it serialized messages.
HistorySearch (search.py) answers "when and where did this person appear?" over one.
"""

from dataclasses import dataclass
from pathlib import Path

from facetrack_ros.core.embedding import DLIB_EMBEDDING_DIM
from facetrack_ros.core.history.config import HistoryConfig, seconds_to_ns
from facetrack_ros.core.history.index import (Appearance, DEFAULT_APPEARANCE_GAP_S,
                                              EmbeddingIndex, group_appearances, Hit,
                                              IndexEntry, SearchResult)
from facetrack_ros.core.history.ring import FrameRing, StoredFrame
from facetrack_ros.core.history.search import (check_query, HistorySearch, QueryKind,
                                               SearchCode, SearchOutcome, SearchQuery,
                                               SearchRefused, SearchSettings)
from facetrack_ros.core.history.segments import (COMPRESSED_IMAGE_TYPE, FrameStore,
                                                 message_definition, SegmentInfo,
                                                 SegmentWriter, SerializedMessage)

__all__ = ['Appearance', 'check_query', 'COMPRESSED_IMAGE_TYPE', 'DEFAULT_APPEARANCE_GAP_S',
           'EmbeddingIndex', 'FrameHistory', 'FrameRing', 'FrameStore', 'group_appearances',
           'HistoryConfig', 'HistorySearch', 'Hit', 'IndexEntry', 'message_definition',
           'QueryKind', 'RetentionReport', 'SearchCode', 'SearchOutcome', 'SearchQuery',
           'SearchRefused', 'SearchResult', 'SearchSettings', 'SegmentInfo', 'SegmentWriter',
           'SerializedMessage', 'StoredFrame']

INDEX_FILE = 'index.sqlite3'


@dataclass(frozen=True)
class RetentionReport:
    """What one enforce_retention call deleted."""

    segments: list[SegmentInfo]
    bytes_freed: int
    entries_deleted: int


class FrameHistory:
    """A history folder: its FrameStore (store) and EmbeddingIndex (index), opened together."""

    def __init__(self, root: Path | str, config: HistoryConfig = HistoryConfig(),
                 dim: int = DLIB_EMBEDDING_DIM) -> None:
        """Open (or create) the history under root; what is on disk is served at once."""
        self.root = Path(root)
        self.config = config
        self.store = FrameStore(self.root, config)
        self.index = EmbeddingIndex(self.root / INDEX_FILE, dim=dim, bucket_s=config.bucket_s,
                                    block_s=config.block_s,
                                    commit_interval_s=config.flush_interval_s)

    def __enter__(self) -> 'FrameHistory':
        """Return self."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close store and index."""
        self.close()

    def flush(self) -> None:
        """Flush the open segments and commit the index now."""
        self.store.flush()
        self.index.flush()

    def flush_if_due(self) -> None:
        """Flush segments and commit the index if flush_interval_s has passed; call on a timer."""
        self.store.flush_if_due()
        self.index.flush()

    def summary(self) -> str:
        """Return a line saying what the history holds: segments, index entries and span."""
        span = self.index.time_span()
        return (f'{len(self.store.segments())} segments, {self.index.entry_count()} index '
                'entries' + (f' from {span[0] / 1e9:.0f} to {span[1] / 1e9:.0f} s' if span
                             else ''))

    def enforce_retention(self, now_ns: int) -> RetentionReport:
        """Delete segments too old or beyond max_bytes, with their index entries."""
        deleted = self.store.enforce_retention(now_ns)
        entries = self.index.delete_before(now_ns - seconds_to_ns(self.config.max_age_s))
        for info in deleted:
            entries += self.index.delete_segment(info.name, info.start_ns, info.end_ns)
        return RetentionReport(deleted, sum(info.size_bytes for info in deleted), entries)

    def disk_bytes(self) -> int:
        """Return the bytes on disk: segments plus index (with its WAL)."""
        index_files = self.root.glob(INDEX_FILE + '*')
        return self.store.disk_bytes() + sum(path.stat().st_size for path in index_files)

    def close(self) -> None:
        """Finish the open segments and close the index; later writes raise RuntimeError."""
        self.store.close()
        self.index.close()
