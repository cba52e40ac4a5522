"""A history folder: its frame store and its embedding index, kept consistent and healthy.

The index is a cache of the segments: every identified_faces message is in a segment, so the
index can always be rebuilt from them. FrameHistory opens both and keeps them in step:

- an index that is missing, damaged (it will not open, quick_check fails, or an error says so
  later) or of an older FORMAT is replaced by a new one, and a maintenance thread fills it
  from the segments, newest first, while everything else goes on: searches see what is
  indexed so far, recording goes on. When the history folder cannot be written the index is
  built in a private temporary folder instead (it is a cache);
- a segment recovered after a crash is indexed again (the index may have missed its last
  second); finished segments are marked indexed, so an interrupted rebuild resumes;
- retention counts the index and its journal against max_bytes with the segments;
- health() says what is wrong now (each condition clears when its cause is gone), values()
  what it holds.
"""

from contextlib import contextmanager
from dataclasses import dataclass
import errno
import logging
import os
from pathlib import Path
import shutil
import sqlite3
import tempfile
import threading
from typing import Iterator

from facetrack_ros.core.embedding import DLIB_EMBEDDING_DIM, EmbeddingError
from facetrack_ros.core.history.config import HistoryConfig, MIB, seconds_to_ns
from facetrack_ros.core.history.index import EmbeddingIndex, IndexUnusable
from facetrack_ros.core.history.inputs import (check_number, check_text, faces_to_entries,
                                               InputRefused)
from facetrack_ros.core.history.mcap_file import SegmentInfo
from facetrack_ros.core.history.ring import StoredFrame
from facetrack_ros.core.history.segments import FrameStore
from facetrack_ros.core.owner_lock import OwnerLock
from facetrack_ros.core.private_files import FileModes

_LOG = logging.getLogger(__name__)

INDEX_FILE = 'index.sqlite3'
#: Held by the one FrameHistory writing the folder (core/owner_lock.py).
LOCK_FILE = 'history.lock'
_UNLOCKABLE = (errno.EROFS, errno.ENOLCK, errno.EOPNOTSUPP)
#: Most frames one lookup returns (a GetFrames response is one DDS message), and the widest
#: nearest-frame tolerance it accepts [s].
MAX_FRAMES_PER_CALL = 100
MAX_TOLERANCE_S = 3600.0
#: The message type whose faces the index holds.
FACES_TYPE = 'facetrack_ros/msg/PersonDetectionArray'
#: The person events stored beside them.
EVENTS_TYPE = 'facetrack_ros/msg/PersonEvent'
#: A maintenance that failed (the disk) is tried again after this long [s].
MAINTENANCE_RETRY_S = 10
#: diagnostic_msgs/DiagnosticStatus levels, used by health().
OK, WARN, ERROR = 0, 1, 2


@dataclass(frozen=True)
class FrameQuery:
    """A frame lookup (stamps in ns; camera_id '' means any camera).

    The frame nearest start_ns within tolerance_s [s] when end_ns is 0, else up to limit
    frames of [start_ns, end_ns] spread evenly (0, or more than MAX_FRAMES_PER_CALL: that
    many).
    """

    start_ns: int
    end_ns: int = 0
    tolerance_s: float = 0.5
    limit: int = 0
    camera_id: str = ''

    def check(self) -> None:
        """Raise InputRefused for a query no frame could answer."""
        check_text(self.camera_id, 'camera_id')
        if self.end_ns == 0:
            check_number(self.tolerance_s, 'tolerance [s]', 0.0, MAX_TOLERANCE_S)
        elif self.end_ns < self.start_ns:
            raise InputRefused('end is before start')


@dataclass(frozen=True)
class RetentionReport:
    """What one enforce_retention call deleted."""

    segments: list[SegmentInfo]
    bytes_freed: int
    entries_deleted: int


@dataclass(frozen=True)
class Condition:
    """Something about the history worth reporting now: a level (OK, WARN, ERROR) and why."""

    level: int
    text: str


@dataclass
class Rebuild:
    """Progress of the maintenance thread's indexing of segments."""

    reason: str = ''          # why the index is being (re)built; '' while it is not
    segments: int = 0         # segments to index
    done: int = 0             # segments indexed so far
    entries: int = 0          # entries added from them
    refused: int = 0          # stored faces refused (invalid fields)


class FrameHistory:
    """A history folder: its FrameStore (store) and EmbeddingIndex (index), opened together."""

    def __init__(self, root: Path | str, config: HistoryConfig = HistoryConfig(),
                 dim: int = DLIB_EMBEDDING_DIM, robot_id: str = 'robot',
                 modes: FileModes = FileModes(), background: bool = True) -> None:
        """Open (or create) the history under root; what is on disk is served at once.

        robot_id labels the entries rebuilt from the segments. background: index what the
        index lacks in a thread of its own (else call maintain() yourself). Raises OSError
        only when root neither exists nor can be made, InUseError while another FrameHistory
        (of this or another process) has it open.
        """
        self.root = Path(root)
        self.config = config
        self.dim = dim
        self.robot_id = robot_id
        self.modes = modes
        try:
            modes.make_folder(self.root)
        except OSError:
            if not self.root.is_dir():
                raise
        self.rebuild = Rebuild()
        self.index_error: str | None = None   # retention or maintenance failing, while it does
        self._temporary: Path | None = None   # the index's folder when root is read-only
        self._lock = threading.RLock()        # index replacement and segment rewrites
        self._reindex: set[str] = set()       # open segments whose live entries were lost
        self._stop = threading.Event()
        self.owner = self._lock_folder()
        store = None
        try:
            self.store = store = FrameStore(self.root, config, modes)
            existed = (self.root / INDEX_FILE).exists()
            self.index = self._open_index()
            todo = self.unindexed()
        except BaseException:   # the folder is not held by a history that never opened
            if store is not None:
                store.close()
            if self.owner is not None:
                self.owner.release()
            raise
        if todo and not self.rebuild.reason:
            self.rebuild.reason = ('no index' if not existed else
                                   f'{len(todo)} segment(s) not indexed yet (after a crash)')
        self.store.on_finished = self._on_finished
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._maintain_forever,
                                            name='history-maintenance', daemon=True)
            self._thread.start()

    def __enter__(self) -> 'FrameHistory':
        """Return self."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close store and index."""
        self.close()

    def _lock_folder(self) -> OwnerLock | None:
        """Hold the folder for this history alone; raise InUseError while another holds it.

        A read-only folder is served without (nobody writes there), and so is one on a file
        system without locks; any other failure to lock is raised.
        """
        try:
            return OwnerLock(self.root / LOCK_FILE, f'the history of {self.robot_id}')
        except OSError as error:
            if error.errno not in _UNLOCKABLE and os.access(self.root, os.W_OK):
                raise
            _LOG.warning('frame history: %s is not locked against a second writer (%s)',
                         self.root, error)
            return None

    # The index as a cache --------------------------------------------------------------------

    def _new_index(self, folder: Path) -> EmbeddingIndex:
        return EmbeddingIndex(folder / INDEX_FILE, dim=self.dim, bucket_s=self.config.bucket_s,
                              block_s=self.config.block_s,
                              commit_interval_s=self.config.flush_interval_s, modes=self.modes)

    def _open_index(self, damage: str | None = None) -> EmbeddingIndex:
        """Open the index, or replace it: delete a damaged one, start one where it can be."""
        path = self.root / INDEX_FILE
        reason, retry = damage, True
        if damage is None:
            try:
                return self._new_index(self.root)
            except IndexUnusable as error:
                reason, retry = str(error), error.replaceable
        if retry:
            self._delete_index_files(path)
            try:
                index = self._new_index(self.root)
            except IndexUnusable as error:
                reason, retry = f'{reason}; {error}', False
        if not retry:   # a read-only folder: the cache goes elsewhere
            self._temporary = Path(tempfile.mkdtemp(prefix='facetrack-index-'))
            index = self._new_index(self._temporary)
            reason = f'{reason}: the index is kept in {self._temporary} until the end'
        self.rebuild = Rebuild(reason=reason)
        _LOG.warning('frame history %s: rebuilding the index from the segments: %s',
                     self.root, reason)
        return index

    def _delete_index_files(self, path: Path) -> None:
        """Delete a damaged index (personal data of no more use) with its journal files."""
        for suffix in ('', '-wal', '-shm'):
            try:
                path.with_name(path.name + suffix).unlink(missing_ok=True)
            except OSError:
                pass   # read-only: left there, and rebuilt elsewhere

    def _replace_index(self, damage: str) -> None:
        """Swap a damaged index for a new one; maintain() then refills it from the segments."""
        with self._lock:
            old = self.index
            self._reindex = {info.name for info in self.store.segments() if not info.finished}
            self.index = self._open_index(damage=f'damaged: {damage}')
            try:
                old.close()
            except sqlite3.Error:
                pass

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold off index maintenance (and other exclusive work) while the body runs."""
        with self._lock:
            yield

    def _on_finished(self, info: SegmentInfo) -> None:
        """Mark a segment recorded live as indexed (its faces went into the index as they came).

        One whose live entries went with a replaced index is left for maintain().
        """
        if info.name in self._reindex:
            return
        try:
            self.index.mark_indexed(info.name)
        except RuntimeError:
            pass   # closing

    def unindexed(self) -> list[str]:
        """Return the finished segments whose faces the index may lack, newest first."""
        indexed = self.index.indexed_segments() - set(self.store.recovered)
        return [info.name for info in reversed(self.store.segments())
                if info.finished and info.name not in indexed]

    def maintain(self) -> None:
        """Bring the index in step with the segments: verify it, index what it lacks.

        Replaces a damaged index first. Entries of segments no longer on disk are dropped.
        Safe beside recording and searches; returns when done or when close() begins.
        """
        problem = self.index.verify() if not self.rebuild.reason else None
        if problem is not None or self.index.damaged is not None:
            self._replace_index(problem or self.index.damaged)
        gone = self.index.segment_names() - {info.name for info in self.store.segments()}
        for name in gone:
            self.index.delete_segment(name)
        todo = self.unindexed()
        self.rebuild.segments, self.rebuild.done = len(todo), 0
        for name in todo:
            if self._stop.is_set():
                return
            self.index_segment(name)
            self.rebuild.done += 1
        self.store.recovered.clear()
        self._reindex.clear()
        self.index.flush()
        if self.rebuild.reason:
            _LOG.warning('frame history %s: index rebuilt: %d entries from %d segments',
                         self.root, self.rebuild.entries, self.rebuild.segments)
        self.rebuild.reason = ''

    def index_segment(self, name: str) -> int:
        """Index the faces stored in one finished segment, then mark it; return entries added.

        Faces the index holds already are not duplicated (one per person and bucket).
        """
        info = next((i for i in self.store.segments() if i.name == name), None)
        added = 0
        with self._lock:
            if info is None or not info.finished:
                return 0
            for schema, _, _, data in self.store.messages(name, {FACES_TYPE}):
                try:
                    message = self.store.decode(schema, data)
                except Exception:  # noqa: B902 - a stored message that does not decode
                    self.rebuild.refused += 1
                    continue
                entries, refused = faces_to_entries(message, self.robot_id, info.source,
                                                    self.dim, segment=name)
                self.rebuild.refused += len(refused)
                for entry in entries:
                    try:
                        added += self.index.add(entry)
                    except (EmbeddingError, ValueError):
                        self.rebuild.refused += 1
            self.index.mark_indexed(name)
            self.index.flush()
        self.rebuild.entries += added
        return added

    def _maintain_forever(self) -> None:
        """Maintain once, then watch for a damaged index until close()."""
        while not self._stop.is_set():
            try:
                self.maintain()
                self.index_error = None
            except Exception as error:  # noqa: B902 - the thread must outlive a bad moment
                self.index_error = f'index maintenance failed: {error}'
                _LOG.exception('frame history: index maintenance failed')
            waited = 0
            while not self._stop.wait(1.0):
                waited += 1
                retry = self.index_error is not None and waited >= MAINTENANCE_RETRY_S
                if self.index.damaged is not None or self.store.recovered or retry:
                    break

    # Recording ---------------------------------------------------------------------------

    def flush(self) -> None:
        """Flush the open segments and commit the index now; a failure shows in health()."""
        self.store.flush()
        self._commit(self.index.flush)

    def flush_if_due(self) -> None:
        """Flush segments and commit the index when due; call on a timer (flush_interval/4)."""
        self.store.flush_if_due()
        self._commit(self.index.flush_if_due)

    def _commit(self, commit) -> None:
        try:
            commit()
        except sqlite3.Error:   # in index.commit_error; damage: maintenance replaces the index
            pass
        except RuntimeError:
            pass   # closed

    def enforce_retention(self, now_ns: int) -> RetentionReport:
        """Delete segments too old or beyond max_bytes (index included), with their entries."""
        deleted = self.store.enforce_retention(now_ns, other_bytes=self.index.file_bytes())
        entries = 0
        try:
            entries = self.index.delete_before(now_ns - seconds_to_ns(self.config.max_age_s))
            for info in deleted:
                entries += self.index.delete_segment(info.name, info.start_ns, info.end_ns)
            self.index_error = None
        except sqlite3.Error as error:   # the entries go with the next retention
            self.index_error = f'index retention failed: {error}'
        return RetentionReport(deleted, sum(info.size_bytes for info in deleted), entries)

    # State ---------------------------------------------------------------------------------

    def frames(self, query: FrameQuery) -> list[StoredFrame]:
        """Return the stored frames query asks for (checked first: may raise InputRefused)."""
        query.check()
        if query.end_ns == 0:
            frame = self.store.nearest_frame(query.start_ns, query.tolerance_s, query.camera_id)
            return [frame] if frame else []
        return self.store.frames_in_range(
            query.start_ns, query.end_ns, min(query.limit or MAX_FRAMES_PER_CALL,
                                              MAX_FRAMES_PER_CALL), query.camera_id)

    def person_ids(self) -> list[str]:
        """Return the ids of the persons with faces in the history's index."""
        return self.index.person_ids()

    def summary(self) -> str:
        """Return a line saying what the history holds: segments, index entries and span."""
        span = self.index.time_span()
        return (f'{len(self.store.segments())} segments, {self.index.entry_count()} index '
                'entries' + (f' from {span[0] / 1e9:.0f} to {span[1] / 1e9:.0f} s' if span
                             else ''))

    def disk_bytes(self) -> int:
        """Return the bytes on disk: segments plus index (with its WAL)."""
        return self.store.disk_bytes() + self.index.file_bytes()

    def health(self) -> list[Condition]:
        """Return what is wrong now (empty when all is well); each clears with its cause."""
        store = self.store
        found = []
        if store.write_error is not None or store.read_only:
            why = store.write_error or 'the folder is read-only'
            found.append(Condition(ERROR, f'cannot write segments ({why}): recording to memory '
                                          f'({store.pending_bytes() / MIB:.1f} MiB held, '
                                          f'{store.lost_messages} messages dropped so far)'))
        if self.rebuild.reason:
            found.append(Condition(WARN, f'rebuilding the index from the segments: '
                                         f'{self.rebuild.done}/{self.rebuild.segments} segments, '
                                         f'searches see what is done ({self.rebuild.reason})'))
        elif self._temporary is not None:
            found.append(Condition(WARN, f'index kept in {self._temporary}: the history folder '
                                         'cannot be written'))
        if self.index.damaged is not None:
            found.append(Condition(ERROR, f'index damaged ({self.index.damaged}): rebuilding'))
        found += [Condition(ERROR, error) for error in (self.index.commit_error,
                                                        self.index_error) if error]
        return found

    def values(self) -> dict[str, str]:
        """Return the history's figures for /diagnostics."""
        return {
            'history disk [MiB]': f'{self.disk_bytes() / MIB:.1f}',
            'index [MiB]': f'{self.index.file_bytes() / MIB:.2f}',
            'segments': str(len(self.store.segments())),
            'held in memory [MiB]': f'{self.store.pending_bytes() / MIB:.1f}',
            'messages lost to the disk': str(self.store.lost_messages),
            'damaged segment files': str(self.store.problem_count),
            'index rebuild': (f'{self.rebuild.done}/{self.rebuild.segments} segments'
                              if self.rebuild.reason else 'none'),
        }

    def close(self) -> None:
        """Stop maintenance, finish the open segments and close the index; never raises."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.store.close()
        try:
            self.index.close()
        except sqlite3.Error as error:
            _LOG.error('frame history: the index closed without its last commit (%s); it is '
                       'rebuilt from the segments', error)
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None
        if self.owner is not None:
            self.owner.release()
