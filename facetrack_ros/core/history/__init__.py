"""Frame history without ROS: MCAP segments, a RAM ring of frames and a face embedding index.

Layout under the history folder (0700; every file 0600 by default, see private_files):

    segments/<source>_<first stamp UTC>.mcap   rosbag2-compatible MCAP segments (FrameStore)
    index.sqlite3 (+ -wal, -shm)               face embedding index (EmbeddingIndex), a cache
                                               of the segments' identified faces

FrameHistory (frame_history.py) ties the two together: rebuilds the index, retention, health;
the ROS node hands it serialized messages, checked by inputs.py. HistorySearch (search.py)
answers "when and where did this person appear?" over one; forget.py removes one person.
"""

from facetrack_ros.core.history.config import HistoryConfig
from facetrack_ros.core.history.frame_history import (Condition, EVENTS_TYPE, FACES_TYPE,
                                                      FrameHistory, FrameQuery, INDEX_FILE,
                                                      MAX_FRAMES_PER_CALL, Rebuild,
                                                      RetentionReport)
from facetrack_ros.core.history.index import (Appearance, DEFAULT_APPEARANCE_GAP_S,
                                              EmbeddingIndex, group_appearances, Hit,
                                              IndexEntry, IndexUnusable, SearchResult)
from facetrack_ros.core.history.mcap_file import (COMPRESSED_IMAGE_TYPE, message_definition,
                                                  SegmentInfo, SegmentWriter,
                                                  SerializedMessage)
from facetrack_ros.core.history.ring import FrameRing, StoredFrame
from facetrack_ros.core.history.search import (check_query, HistorySearch, QueryKind,
                                               SearchCode, SearchOutcome, SearchQuery,
                                               SearchRefused, SearchSettings)
from facetrack_ros.core.history.segments import FrameStore

__all__ = ['Appearance', 'check_query', 'COMPRESSED_IMAGE_TYPE', 'Condition',
           'DEFAULT_APPEARANCE_GAP_S', 'EmbeddingIndex', 'EVENTS_TYPE', 'FACES_TYPE',
           'FrameHistory', 'FrameQuery', 'FrameRing', 'FrameStore', 'group_appearances',
           'HistoryConfig', 'HistorySearch', 'Hit', 'INDEX_FILE', 'IndexEntry', 'IndexUnusable',
           'MAX_FRAMES_PER_CALL', 'message_definition', 'QueryKind',
           'Rebuild', 'RetentionReport', 'SearchCode', 'SearchOutcome', 'SearchQuery',
           'SearchRefused', 'SearchResult', 'SearchSettings', 'SegmentInfo', 'SegmentWriter',
           'SerializedMessage', 'StoredFrame']
