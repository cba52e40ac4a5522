"""Embedding index of the frame history: the best face of each person per time bucket.

Entries are stored in sqlite (WAL) in blocks: one row per (robot, camera, block_s of capture
time) holding packed numpy arrays, the embeddings as one float32 matrix. A search reads the
blocks that overlap its window, one at a time, and scores each with a single matrix-vector
product, so its cost follows the entries in the window, never the frames, and its memory the
block size, never the history length.

Reads never block writes: a reader takes the index lock only to copy the blocks still being
filled and to open a WAL read transaction on a connection of its own (read-only), then reads
and scores the committed blocks of that snapshot while add() and flush() go on.

The index is a cache of the segments (their identified_faces messages): a damaged index, or
one of another FORMAT, is replaced and rebuilt from them (FrameHistory). Its journal stays
small: 4 KiB pages (a commit rewrites only the pages of the blocks it changed), a checkpoint
every WAL_CHECKPOINT_PAGES pages and the WAL cut back to WAL_LIMIT_BYTES after it; deleted
entries give their pages back to the file system (incremental auto-vacuum).

A query by person id needs that person's best faces: the index keeps them, at most
PERSON_QUERY_FACES per person (table best_faces), merged with each commit's blocks, so the
query reads one small table instead of every block holding the person. An entry can only
leave the best faces by being replaced in its slot by a better face of the same person
(add) or deleted (_drop, which then chooses them again from the person's blocks, best block
first, until no other block holds a better face), so the table always holds exactly what a
read of all the blocks would choose.
"""

from contextlib import contextmanager
from dataclasses import dataclass, field
import heapq
import logging
import math
from numbers import Integral
from pathlib import Path
import sqlite3
import threading
import time
from typing import Callable, Collection, Iterable, Iterator, Sequence

import numpy as np

from facetrack_ros.core.embedding import (cosine_similarity, DEFAULT_MIN_SIMILARITY,
                                          DLIB_EMBEDDING_DIM, validate_embedding)
from facetrack_ros.core.history.config import seconds_to_ns
from facetrack_ros.core.history.ring import StoredFrame
from facetrack_ros.core.private_files import FileModes

_LOG = logging.getLogger(__name__)

#: Sightings of one person on one camera further apart than this start a new appearance; keep
#: it above twice the face node's refresh period, the longest a tracked face goes unindexed [s].
DEFAULT_APPEARANCE_GAP_S = 5.0

#: Layout of the per-entry fields packed in a block (the embeddings are a separate matrix).
ROW_DTYPE = np.dtype([('stamp', '<i8'), ('frame_stamp', '<i8'), ('person', '<i4'),
                      ('segment', '<i4'), ('quality', '<f4'), ('box', '<f4', (4,))])
_NO_SEGMENT = -1
_MIN_NS, _MAX_NS = -(2 ** 62), 2 ** 62   # open window ends; 2**62 leaves room for arithmetic

#: Layout version of the index file; an index of another one is rebuilt from the segments.
#: 1: 64 KiB pages (every commit rewrote whole 64 KiB pages: the WAL grew 37 MB a minute).
#: 2: 4 KiB pages, incremental auto-vacuum, names written with the entries, indexed segments.
#: 3: best_faces, each person's best faces (a query by person id read every block of theirs),
#:    and block_persons.quality, the person's best in the block (to find the best faces again).
FORMAT = 3
#: Best-quality faces kept per person; a query by person id averages them.
PERSON_QUERY_FACES = 20
PAGE_BYTES = 4096
WAL_CHECKPOINT_PAGES = 256     # a checkpoint once the WAL holds 1 MiB of pages
WAL_LIMIT_BYTES = 4 * 1024 * 1024   # the WAL is truncated to this after a checkpoint

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS persons (code INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS segments (code INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    id INTEGER PRIMARY KEY, robot_id TEXT NOT NULL, camera_id TEXT NOT NULL,
    start_ns INTEGER NOT NULL, first_ns INTEGER NOT NULL, last_ns INTEGER NOT NULL,
    count INTEGER NOT NULL, UNIQUE (robot_id, camera_id, start_ns));
CREATE INDEX IF NOT EXISTS blocks_by_time ON blocks (start_ns);
CREATE TABLE IF NOT EXISTS block_data (
    id INTEGER PRIMARY KEY REFERENCES blocks (id), rows BLOB NOT NULL,
    embeddings BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS block_persons (
    block_id INTEGER NOT NULL, person INTEGER NOT NULL, quality REAL NOT NULL,
    PRIMARY KEY (block_id, person)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blocks_by_person ON block_persons (person, block_id);
CREATE TABLE IF NOT EXISTS indexed_segments (name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS best_faces (
    person INTEGER NOT NULL, robot_id TEXT NOT NULL, camera_id TEXT NOT NULL,
    stamp INTEGER NOT NULL, quality REAL NOT NULL, embedding BLOB NOT NULL,
    PRIMARY KEY (person, robot_id, camera_id, stamp));
"""


@dataclass(frozen=True)
class IndexEntry:
    """One face sighting offered to the index."""

    stamp_ns: int                               # capture stamp of the face [ns]
    robot_id: str
    camera_id: str
    person_id: str
    box: tuple[float, float, float, float]      # x1, y1, x2, y2 [px]
    quality: float                              # face quality; the best per bucket is kept
    embedding: np.ndarray = field(compare=False, repr=False)   # (dim,), normalised on add
    segment: str = ''                           # segment file holding the frame; '' unknown
    frame_stamp_ns: int | None = None           # stamp of that frame; None: stamp_ns


@dataclass(frozen=True)
class Hit:
    """An index entry that matched a query."""

    stamp_ns: int
    robot_id: str
    camera_id: str
    person_id: str
    box: tuple[float, float, float, float]
    quality: float
    similarity: float        # cosine similarity to the query [-1..1]
    segment: str             # segment file holding the frame; '' unknown
    frame_stamp_ns: int


@dataclass(frozen=True)
class Appearance:
    """A contiguous interval in which one person was seen by one camera of one robot."""

    robot_id: str
    camera_id: str
    person_id: str
    first_seen_ns: int
    last_seen_ns: int
    sightings: int           # hits merged into the interval
    best: Hit                # the most similar hit of the interval
    #: JPEG of the best hit's frame, annotated and scaled, when a search attached one.
    thumbnail: StoredFrame | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class SearchResult:
    """Appearances found by a search, best first, and what the search covered."""

    appearances: list[Appearance]
    entries_searched: int    # index entries compared with the query
    hits: int                # entries at or above min_similarity
    searched_from_ns: int    # the window searched, clipped to the entries stored in it
    searched_to_ns: int
    elapsed_s: float


def _group_columns(keys: np.ndarray, stamps: np.ndarray, similarities: np.ndarray,
                   gap_ns: int, max_results: int) -> list[tuple[int, int, int, int]]:
    """Group hits into appearances, vectorised.

    keys identify (robot, camera, person). Returns (first, last, sightings, best hit index),
    best similarity first, at most max_results (0: all).
    """
    if not len(keys):
        return []
    order = np.lexsort((stamps, keys))
    keys, stamps, similarities = keys[order], stamps[order], similarities[order]
    new = np.ones(len(keys), dtype=bool)
    new[1:] = (keys[1:] != keys[:-1]) | (np.diff(stamps) > gap_ns)
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], len(keys)) - 1
    group = np.cumsum(new) - 1
    # Within each group (contiguous), order by similarity descending; stable keeps the earliest.
    best = np.lexsort((-similarities, group))[starts]
    rank = np.lexsort((stamps[starts], -similarities[best]))
    if max_results > 0:
        rank = rank[:max_results]
    return [(int(stamps[starts[g]]), int(stamps[ends[g]]), int(ends[g] - starts[g] + 1),
             int(order[best[g]])) for g in rank]


def group_appearances(hits: Sequence[Hit], gap_s: float = DEFAULT_APPEARANCE_GAP_S,
                      max_results: int = 0) -> list[Appearance]:
    """Merge hits into appearances per (robot, camera, person), split at gaps over gap_s.

    Each appearance spans its first to last hit and carries its most similar hit; the list is
    sorted by that similarity, best first, and holds at most max_results (0: all).
    """
    names: dict[tuple[str, str, str], int] = {}
    keys = np.array([names.setdefault((h.robot_id, h.camera_id, h.person_id), len(names))
                     for h in hits], dtype=np.int64)
    stamps = np.array([h.stamp_ns for h in hits], dtype=np.int64)
    similarities = np.array([h.similarity for h in hits], dtype=np.float32)
    return [Appearance(hits[best].robot_id, hits[best].camera_id, hits[best].person_id,
                       first, last, count, hits[best])
            for first, last, count, best in _group_columns(keys, stamps, similarities,
                                                           seconds_to_ns(gap_s), max_results)]


#: One of a person's faces: its rank key (-quality, block start, robot, camera, stamp), the
#: order of embeddings_of (best quality first, then as the blocks are read), and embedding.
_Face = tuple[tuple[float, int, str, str, int], np.ndarray]


def _best_faces(faces: Iterable[_Face]) -> list[_Face]:
    """Return the PERSON_QUERY_FACES first faces by rank key (the keys of a person differ)."""
    return heapq.nsmallest(PERSON_QUERY_FACES, faces, key=lambda face: face[0])


def _faces_in(robot: str, camera: str, start: int, rows: np.ndarray, values: np.ndarray,
              person: int) -> list[_Face]:
    """Return person's faces among a block's rows (ROW_DTYPE), each with its row of values.

    values: the block's embeddings, or anything else with a row per entry.
    """
    mine = np.flatnonzero(rows['person'] == person)
    return [((-quality, start, robot, camera, stamp), values[i]) for i, stamp, quality
            in zip(mine, rows['stamp'][mine].tolist(), rows['quality'][mine].tolist())]


#: Faces of blocks newer than the committed best faces: person code -> (the blocks' keys,
#: robot, camera and start, and the best of their faces of the person).
_FreshFaces = dict[int, tuple[set[tuple[str, str, int]], list[_Face]]]


def _gather_faces(fresh: _FreshFaces, key: tuple[str, str, int], rows: np.ndarray,
                  embeddings: np.ndarray, persons: Iterable[int] | None = None) -> None:
    """Add the faces of one block (of persons, None: all) to fresh, keeping only the best.

    The embeddings kept are copies, so that the block's matrix is not held.
    """
    for person in np.unique(rows['person']).tolist() if persons is None else persons:
        keys, faces = fresh.setdefault(person, (set(), []))
        keys.add(key)
        faces[:] = [(rank, embedding if embedding.base is None else embedding.copy())
                    for rank, embedding in _best_faces(faces + _faces_in(*key, rows, embeddings,
                                                                         person))]


def _merged_best_faces(committed: list[_Face],
                       fresh: tuple[set[tuple[str, str, int]], list[_Face]] | None
                       ) -> list[_Face]:
    """Return a person's best faces once newer blocks (fresh, see _FreshFaces) replace theirs.

    Exact: a committed best face missing from its new block was replaced in its slot by a
    better face of the person, which still outranks every face outside the best.
    """
    keys, faces = fresh or (set(), [])
    return _best_faces([face for face in committed
                        if face[0][2:4] + face[0][1:2] not in keys] + faces)


def _unpack(rows: bytes, embeddings: bytes, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Return a stored block's rows (ROW_DTYPE) and embeddings (count, dim), without copying."""
    packed = np.frombuffer(rows, dtype=ROW_DTYPE)
    return packed, np.frombuffer(embeddings, dtype=np.float32).reshape(len(packed), dim)


class _Names:
    """A table of names with small integer codes, cached in memory (persons, segments).

    A new name gets its code at once and its row with the next commit (write()), so adding
    an entry never writes to disk: on a full disk it waits in memory like the entry.
    """

    def __init__(self, connection: sqlite3.Connection, table: str) -> None:
        self._connection = connection
        self._table = table
        self._new: dict[str, int] = {}   # names not committed yet
        self.reload()

    def reload(self) -> None:
        """Read the committed names again (after a rollback), keeping the uncommitted ones."""
        self._codes = dict(self._connection.execute(f'SELECT name, code FROM {self._table}'))
        self._codes.update(self._new)
        self._names = {code: name for name, code in self._codes.items()}

    def get(self, name: str) -> int | None:
        return self._codes.get(name)

    def code(self, name: str) -> int:
        code = self._codes.get(name)
        if code is None:
            code = max(self._names, default=0) + 1
            self._codes[name] = code
            self._names[code] = name
            self._new[name] = code
        return code

    def write(self) -> None:
        """Insert the new names; the caller holds a transaction and calls committed() after."""
        self._connection.executemany(f'INSERT OR REPLACE INTO {self._table} (name, code) '
                                     'VALUES (?, ?)', list(self._new.items()))

    @property
    def new(self) -> bool:
        """Return whether names wait for the next commit."""
        return bool(self._new)

    def committed(self) -> None:
        self._new.clear()

    def name(self, code: int) -> str:
        return self._names.get(code, '')

    def remove(self, name: str) -> None:
        code = self._codes.get(name)
        if code is not None:
            # The row first: if deleting it fails, the cache must still know the name.
            self._connection.execute(f'DELETE FROM {self._table} WHERE code = ?', (code,))
            del self._codes[name], self._names[code]
            self._new.pop(name, None)

    def keep(self, codes: set[int]) -> None:
        for name in [name for name, code in self._codes.items() if code not in codes]:
            self.remove(name)

    def copy(self) -> tuple[dict[str, int], dict[int, str]]:
        """Return copies of the name -> code and code -> name maps, for a reader."""
        return dict(self._codes), dict(self._names)


@dataclass
class _Block:
    """A block being filled: its best entry per (person, bucket)."""

    slots: dict[tuple[int, int], tuple[tuple, np.ndarray]] = field(default_factory=dict)
    dirty: bool = False

    def packed(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the entries as ROW_DTYPE rows and their embedding matrix, by stamp."""
        items = list(self.slots.values())
        rows = np.array([item for item, _ in items], dtype=ROW_DTYPE)
        order = np.argsort(rows['stamp'], kind='stable')
        return rows[order], np.stack([embedding for _, embedding in items])[order]


@dataclass(frozen=True)
class _BlockRef:
    """A block as a reader's snapshot holds it: committed (read by id) or pending (in memory)."""

    robot: str
    camera: str
    start: int
    first: int
    last: int
    count: int
    block_id: int | None                                  # committed: its row id
    data: tuple[np.ndarray, np.ndarray] | None = None     # pending: rows and embeddings


class _Snapshot:
    """The index as one reader sees it: committed blocks of a WAL read transaction, pending ones.

    Made under the index lock by EmbeddingIndex._reading; reading its blocks needs no lock.
    """

    def __init__(self, connection: sqlite3.Connection, dim: int, blocks: list[_BlockRef],
                 persons: tuple[dict[str, int], dict[int, str]],
                 segments: dict[int, str]) -> None:
        self._connection = connection
        self._dim = dim
        self.blocks = blocks
        self.person_codes, self._person_names = persons
        self._segment_names = segments

    def loaded(self) -> Iterator[tuple[_BlockRef, np.ndarray, np.ndarray]]:
        """Yield each block with its rows and embeddings, oldest first, one at a time.

        Each committed block is read by its id: as fast, within the noise of this machine, as
        one query joined in time order, and for a person's blocks 2.5x faster than one joined
        through block_persons, for which sqlite sorts the blobs (a temp b-tree for ORDER BY).
        """
        for block in self.blocks:
            yield block, *self.load(block)

    def load(self, block: _BlockRef) -> tuple[np.ndarray, np.ndarray]:
        """Return a block's rows (ROW_DTYPE) and embeddings (count, dim)."""
        if block.data is not None:
            return block.data
        return _unpack(*self._connection.execute(
            'SELECT rows, embeddings FROM block_data WHERE id = ?', (block.block_id,)
        ).fetchone(), self._dim)

    def hit(self, row: np.void, robot: str, camera: str, similarity: float) -> Hit:
        """Return the Hit of one stored row."""
        return Hit(int(row['stamp']), robot, camera,
                   self._person_names.get(int(row['person']), ''),
                   tuple(float(v) for v in row['box']), float(row['quality']), similarity,
                   self._segment_names.get(int(row['segment']), ''), int(row['frame_stamp']))


class IndexUnusable(Exception):
    """An index file that cannot serve: damaged, of another format, or not writable here.

    replaceable: the file is damaged or of another format, so it may be deleted and rebuilt;
    otherwise (read-only, locked by another process) it must be left alone.
    """

    def __init__(self, message: str, replaceable: bool) -> None:
        """Keep replaceable beside the message."""
        super().__init__(message)
        self.replaceable = replaceable


#: SQLite result codes of a damaged file (SQLITE_CORRUPT, SQLITE_NOTADB).
_DAMAGED_CODES = frozenset({11, 26})


def is_damage(error: BaseException) -> bool:
    """Return whether a sqlite error says the file is damaged (not full, locked or read-only)."""
    return isinstance(error, sqlite3.DatabaseError) and (
        getattr(error, 'sqlite_errorcode', None) in _DAMAGED_CODES
        or 'malformed' in str(error) or 'not a database' in str(error))


class EmbeddingIndex:
    """Face embeddings of the history in sqlite, searchable by similarity and time window.

    Thread-safe; searches read a snapshot on connections of their own, so they never hold up
    add() or flush() (see the module docstring). Committed entries survive a crash: WAL with
    synchronous=FULL, a commit every commit_interval_s of wall time while entries arrive, and
    on flush() (call it from a timer so the last entries before a pause are committed too) and
    close; searches also see the entries not committed yet. A failed commit
    (disk full, I/O error, a lock held by another connection) is rolled back and raised; its
    entries stay pending and the next flush writes them. An error that shows the file damaged
    sets `damaged`; the owner then rebuilds the index (FrameHistory does, from the segments).
    """

    def __init__(self, path: Path | str, dim: int = DLIB_EMBEDDING_DIM, bucket_s: float = 1.0,
                 block_s: float = 60.0, commit_interval_s: float = 1.0,
                 lock_timeout_s: float = 5.0, modes: FileModes = FileModes()) -> None:
        """Open or create the index file at path (created with modes.file).

        An existing index keeps the bucket and block lengths it was created with. Raises
        IndexUnusable when the file is damaged, of another FORMAT or embedding length, or
        cannot be opened for writing, so the caller can start a new one and rebuild it.
        """
        self.path = Path(path)
        self.dim = dim
        self.commit_interval_s = commit_interval_s
        self.damaged: str | None = None
        #: Why the last commit failed, while commits fail (a full disk); None otherwise.
        self.commit_error: str | None = None
        self._lock_timeout_s = lock_timeout_s
        self._lock = threading.RLock()
        self._closed = False
        self._readers: list[sqlite3.Connection] = []   # idle read-only connections
        self._db: sqlite3.Connection | None = None
        try:
            modes.make_folder(self.path.parent)
            modes.create_empty(self.path)
            self._db = sqlite3.connect(self.path, timeout=lock_timeout_s, isolation_level=None,
                                       check_same_thread=False)
            self._settings = self._prepare(dim, bucket_s, block_s)
        except (OSError, sqlite3.Error, IndexUnusable) as error:
            if self._db is not None:
                self._db.close()
            if isinstance(error, IndexUnusable):
                raise
            raise IndexUnusable(f'{self.path.name}: {error}', is_damage(error)) from error
        self._bucket_ns, self._block_ns = self._settings['bucket_ns'], self._settings['block_ns']
        self._indexed: set[str] = set()   # segments marked indexed, not committed yet
        self._open: dict[tuple[str, str, int], _Block] = {}
        self._newest_block = _MIN_NS
        self._last_commit = time.monotonic()

    def _prepare(self, dim: int, bucket_s: float, block_s: float) -> dict[str, int]:
        """Set the file up (or check it): pragmas, tables, the settings kept in meta."""
        db = self._db
        fresh = db.execute('PRAGMA page_count').fetchone()[0] == 0
        if fresh:   # before the first table: small pages, files that shrink when emptied
            db.execute(f'PRAGMA page_size = {PAGE_BYTES}')
            db.execute('PRAGMA auto_vacuum = INCREMENTAL')
        db.execute('PRAGMA journal_mode = WAL')
        db.execute('PRAGMA synchronous = FULL')
        db.execute(f'PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}')
        db.execute(f'PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}')
        if not fresh:
            stored = self._meta()
            if stored.get('format') != FORMAT:
                raise IndexUnusable(f'{self.path.name} is of format {stored.get("format", 1)},'
                                    f' not {FORMAT}', replaceable=True)
            if stored.get('dim', dim) != dim:
                raise IndexUnusable(f'{self.path.name} holds {stored["dim"]}-value embeddings,'
                                    f' not {dim}', replaceable=True)
        db.executescript(_SCHEMA)
        wanted = {'format': FORMAT, 'dim': dim, 'bucket_ns': seconds_to_ns(bucket_s),
                  'block_ns': seconds_to_ns(block_s)}
        stored = self._meta()
        for key, value in wanted.items():
            if key in stored and stored[key] != value:
                _LOG.warning('%s keeps its %s of %d, not %d', self.path, key, stored[key], value)
        settings = {**wanted, **stored}
        if settings['bucket_ns'] <= 0 or settings['block_ns'] % settings['bucket_ns']:
            raise ValueError('block_s must be a positive multiple of bucket_s')
        db.executemany('INSERT OR IGNORE INTO meta VALUES (?, ?)',
                       [(key, str(value)) for key, value in settings.items()])
        self._load_names()
        return settings

    def _meta(self) -> dict[str, int]:
        try:
            return {key: int(value) for key, value in self._db.execute('SELECT * FROM meta')}
        except sqlite3.OperationalError:   # no meta table: not an index of this package
            return {}

    def __enter__(self) -> 'EmbeddingIndex':
        """Return self."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Commit and close."""
        self.close()

    def _load_names(self) -> None:
        """Read the person and segment name tables into their caches."""
        self._persons = _Names(self._db, 'persons')
        self._segments = _Names(self._db, 'segments')

    def _check_open(self) -> None:
        """Raise RuntimeError once closed: a late write would never be committed."""
        if self._closed:
            raise RuntimeError(f'embedding index {self.path} is closed')

    def _note(self, error: BaseException) -> None:
        """Remember an error that shows the file damaged (see `damaged`)."""
        if is_damage(error) and self.damaged is None:
            self.damaged = str(error)
            _LOG.error('embedding index %s is damaged: %s', self.path, error)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Run the body in one transaction, rolled back if anything in it fails.

        Without the rollback a failed statement or COMMIT would leave the connection inside
        the transaction, and every later BEGIN would fail.
        """
        try:
            self._db.execute('BEGIN')
            yield
            self._db.execute('COMMIT')
        except BaseException as error:
            self._note(error)
            try:
                if self._db.in_transaction:   # sqlite already rolled back after some errors
                    self._db.execute('ROLLBACK')
                self._persons.reload()   # names the rolled-back statements deleted are back
                self._segments.reload()
            except sqlite3.Error as second:
                self._note(second)
            raise

    def add(self, entry: IndexEntry) -> bool:
        """Offer an entry; False when its bucket already holds a face at least as good.

        Raises EmbeddingError for an unusable embedding, ValueError for a stamp that is not
        an integer in [0, 2**62), a box that is not four finite numbers or a quality that is
        not finite, and RuntimeError after close(). Writes to disk only when a commit is due;
        a commit the disk refuses is not raised here (see commit_error): the entry waits for
        the next one, so recording goes on while the disk is full.
        """
        embedding = validate_embedding(entry.embedding, self.dim)
        box = tuple(float(value) for value in entry.box)
        if len(box) != 4 or not all(math.isfinite(value) for value in box):
            raise ValueError(f'box must be four finite numbers x1, y1, x2, y2, got {entry.box}')
        if not math.isfinite(entry.quality):
            raise ValueError(f'quality must be finite, got {entry.quality}')
        for stamp in (entry.stamp_ns, entry.frame_stamp_ns or 0):
            if isinstance(stamp, bool) or not isinstance(stamp, Integral) \
                    or not 0 <= stamp < _MAX_NS:
                raise ValueError(f'stamp {stamp!r} must be an integer in [0, 2**62) ns')
        with self._lock:
            self._check_open()
            person = self._persons.code(entry.person_id)
            segment = self._segments.code(entry.segment) if entry.segment else _NO_SEGMENT
            start = entry.stamp_ns // self._block_ns * self._block_ns
            block = self._block((entry.robot_id, entry.camera_id, start))
            slot = (person, entry.stamp_ns // self._bucket_ns)
            kept = block.slots.get(slot)
            stored = kept is None or entry.quality > kept[0][4]
            if stored:
                frame_stamp = entry.stamp_ns if entry.frame_stamp_ns is None \
                    else entry.frame_stamp_ns
                block.slots[slot] = ((entry.stamp_ns, frame_stamp, person, segment,
                                      float(entry.quality), box), embedding)
                block.dirty = True
            self._newest_block = max(self._newest_block, start)
            if time.monotonic() - self._last_commit >= self.commit_interval_s:
                try:
                    self.flush()
                except sqlite3.OperationalError:
                    pass   # a full disk, a lock: kept in commit_error, retried when due
            return stored

    def _block(self, key: tuple[str, str, int]) -> _Block:
        """Return the block being filled for key, loading it if it was stored already."""
        block = self._open.get(key)
        if block is None:
            block = _Block()
            try:
                row = self._db.execute(
                    'SELECT d.rows, d.embeddings FROM blocks b JOIN block_data d ON d.id = b.id'
                    ' WHERE b.robot_id = ? AND b.camera_id = ? AND b.start_ns = ?',
                    key).fetchone()
            except sqlite3.DatabaseError as error:
                self._note(error)
                raise
            if row is not None:
                rows, embeddings = _unpack(*row, self.dim)
                for item, embedding in zip(rows.tolist(), embeddings):
                    block.slots[item[2], item[0] // self._bucket_ns] = (item, embedding)
            self._open[key] = block
        return block

    def _store(self, key: tuple[str, str, int], rows: np.ndarray,
               embeddings: np.ndarray) -> None:
        """Write (or with no rows delete) one block; the caller holds a transaction."""
        found = self._db.execute('SELECT id FROM blocks WHERE robot_id = ? AND camera_id = ?'
                                 ' AND start_ns = ?', key).fetchone()
        if found is not None:
            self._db.execute('DELETE FROM block_persons WHERE block_id = ?', found)
        if not len(rows):
            if found is not None:
                self._db.execute('DELETE FROM block_data WHERE id = ?', found)
                self._db.execute('DELETE FROM blocks WHERE id = ?', found)
            return
        (block_id,) = self._db.execute(
            'INSERT INTO blocks (robot_id, camera_id, start_ns, first_ns, last_ns, count)'
            ' VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (robot_id, camera_id, start_ns) DO UPDATE'
            ' SET first_ns = excluded.first_ns, last_ns = excluded.last_ns,'
            ' count = excluded.count RETURNING id',
            (*key, int(rows['stamp'].min()), int(rows['stamp'].max()), len(rows))).fetchone()
        self._db.execute('INSERT OR REPLACE INTO block_data VALUES (?, ?, ?)',
                         (block_id, rows.tobytes(), np.ascontiguousarray(embeddings).tobytes()))
        persons, which = np.unique(rows['person'], return_inverse=True)
        best = np.full(len(persons), -np.inf, np.float32)
        np.maximum.at(best, which, rows['quality'])
        self._db.executemany('INSERT INTO block_persons VALUES (?, ?, ?)',
                             [(block_id, *pair) for pair in zip(persons.tolist(), best.tolist())])

    def flush(self) -> None:
        """Commit every pending entry and forget blocks too old to be filled any more.

        If the commit fails its error is raised and the entries stay pending.
        """
        with self._lock:
            if self._db is None:
                return
            dirty = [(key, block) for key, block in self._open.items() if block.dirty]
            # Counted from the attempt, so while the disk is full or the file locked add()
            # retries every commit_interval_s instead of waiting for the lock on every call.
            self._last_commit = time.monotonic()
            marks = sorted(self._indexed)
            if dirty or marks or self._persons.new or self._segments.new:
                try:
                    with self._transaction():
                        self._persons.write()
                        self._segments.write()
                        fresh: _FreshFaces = {}
                        for key, block in dirty:
                            rows, embeddings = block.packed()
                            self._store(key, rows, embeddings)
                            _gather_faces(fresh, key, rows, embeddings)
                        self._merge_best_faces(fresh)
                        self._db.executemany('INSERT OR IGNORE INTO indexed_segments VALUES '
                                             '(?)', [(name,) for name in marks])
                except sqlite3.Error as error:
                    self.commit_error = f'index commit failed: {error}'
                    raise
                self.commit_error = None
                self._persons.committed()
                self._segments.committed()
                self._indexed.difference_update(marks)
                for _, block in dirty:   # only now: a rolled-back block must be written again
                    block.dirty = False
            # Keep the newest two blocks per camera in memory; late entries reload theirs.
            horizon = self._newest_block - self._block_ns
            for key in [key for key in self._open if key[2] < horizon]:
                del self._open[key]

    def flush_if_due(self) -> None:
        """Commit pending entries if commit_interval_s has passed since the last commit."""
        with self._lock:
            if time.monotonic() - self._last_commit >= self.commit_interval_s:
                self.flush()

    def mark_indexed(self, segment: str) -> None:
        """Record that segment's faces are all in the index (committed with the next flush).

        Entries added before are committed with the mark or before it, never after.
        """
        with self._lock:
            self._check_open()
            self._indexed.add(segment)

    def indexed_segments(self) -> set[str]:
        """Return the segments whose faces are all in the index, marks not committed included."""
        with self._lock:
            self._check_open()
            return {name for (name,) in self._db.execute(
                'SELECT name FROM indexed_segments')} | self._indexed

    def verify(self) -> str | None:
        """Check the whole file (sqlite quick_check); return what is wrong, or None.

        Reads every page once, on a connection of its own; it sets `damaged` when it fails.
        """
        reader = self._reader()
        try:
            found = [row[0] for row in reader.execute('PRAGMA quick_check(5)')]
        except sqlite3.DatabaseError as error:
            self._note(error)
            return str(error)
        finally:
            reader.close()
        if found == ['ok']:
            return None
        problem = '; '.join(found)
        if self.damaged is None:
            self.damaged = problem
        return problem

    def file_bytes(self) -> int:
        """Return the bytes of the index on disk: the file, its write-ahead log and shm."""
        total = 0
        for suffix in ('', '-wal', '-shm'):
            try:
                total += self.path.with_name(self.path.name + suffix).stat().st_size
            except OSError:
                pass
        return total

    def close(self) -> None:
        """Commit and close the database; later writes raise RuntimeError, closing is idempotent.

        The database is closed even if the last commit fails (its error is raised).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self.flush()
            finally:
                # Readers first: the last connection to close checkpoints and removes the WAL,
                # which a read-only one cannot. One still in use closes on its return.
                for reader in self._readers:
                    reader.close()
                self._readers.clear()
                self._db.close()

    @contextmanager
    def _reading(self, start_ns: int, end_ns: int,
                 person_id: str | None = None) -> Iterator[_Snapshot]:
        """Yield a snapshot of the blocks overlapping [start_ns, end_ns], oldest first.

        With person_id, only the blocks holding that person (none for an unknown id). Only
        making the snapshot takes the index lock; reading its blocks does not. Raises
        RuntimeError after close().
        """
        reader = self._reader()
        try:
            with self._lock:
                self._check_open()
                person = None if person_id is None else self._persons.get(person_id)
                pending = {key: block.packed() for key, block in self._open.items()
                           if block.dirty and block.slots
                           and (person_id is None or person is not None)}
                join = ('JOIN block_persons p ON p.block_id = b.id AND p.person = ?'
                        if person_id is not None else '')
                reader.execute('BEGIN')   # the first SELECT fixes the snapshot, under the lock
                committed = reader.execute(
                    'SELECT b.robot_id, b.camera_id, b.start_ns, b.first_ns, b.last_ns,'
                    f' b.count, b.id FROM blocks b {join}'
                    ' WHERE b.start_ns > ? AND b.start_ns <= ? AND b.last_ns >= ?'
                    ' AND b.first_ns <= ?',
                    (*(() if person_id is None else (person,)), start_ns - self._block_ns,
                     end_ns, start_ns, end_ns)).fetchall()
                persons, segments = self._persons.copy(), self._segments.copy()[1]
            blocks = [_BlockRef(*row) for row in committed if row[:3] not in pending]
            for (robot, camera, start), (rows, embeddings) in pending.items():
                if person_id is not None:
                    keep = rows['person'] == person
                    rows, embeddings = rows[keep], embeddings[keep]
                if len(rows) and rows['stamp'][-1] >= start_ns and rows['stamp'][0] <= end_ns:
                    blocks.append(_BlockRef(robot, camera, start, int(rows['stamp'][0]),
                                            int(rows['stamp'][-1]), len(rows), None,
                                            (rows, embeddings)))
            blocks.sort(key=lambda block: (block.start, block.robot, block.camera))
            yield _Snapshot(reader, self.dim, blocks, persons, segments)
        except sqlite3.DatabaseError as error:
            self._note(error)
            raise
        finally:
            if reader.in_transaction:
                reader.execute('COMMIT')   # ends the read transaction; nothing was written
            with self._lock:
                if self._closed:
                    reader.close()
                else:
                    self._readers.append(reader)

    def _reader(self) -> sqlite3.Connection:
        """Return an idle read-only connection, opening one if every one is in use."""
        with self._lock:
            self._check_open()
            if self._readers:
                return self._readers.pop()
        return sqlite3.connect(f'{self.path.absolute().as_uri()}?mode=ro', uri=True,
                               timeout=self._lock_timeout_s, isolation_level=None,
                               check_same_thread=False)

    def search(self, query: np.ndarray, start_ns: int | None = None, end_ns: int | None = None,
               min_similarity: float = DEFAULT_MIN_SIMILARITY, max_results: int = 10,
               person_filter: Collection[str] | None = None,
               gap_s: float = DEFAULT_APPEARANCE_GAP_S) -> SearchResult:
        """Find the appearances of the face query in [start_ns, end_ns] (None: unbounded).

        Entries at or above min_similarity are grouped by group_appearances' rules; at most
        max_results appearances (0: all), best first. person_filter limits the entries
        compared to those person ids. Raises EmbeddingError for an unusable query and
        RuntimeError after close().
        """
        began = time.perf_counter()
        query = validate_embedding(query, self.dim)
        start = _MIN_NS if start_ns is None else start_ns
        end = _MAX_NS if end_ns is None else end_ns
        compared, low, high = 0, _MAX_NS, _MIN_NS
        places: dict[tuple[str, str], int] = {}
        found_rows: list[np.ndarray] = []
        found_places: list[np.ndarray] = []
        found_similarities: list[np.ndarray] = []
        with self._reading(start, end) as snapshot:
            codes = None if person_filter is None else np.array(
                [code for code in map(snapshot.person_codes.get, person_filter)
                 if code is not None], dtype=np.int32)
            for block, rows, embeddings in snapshot.loaded():
                keep = None
                if block.first < start or block.last > end:
                    keep = (rows['stamp'] >= start) & (rows['stamp'] <= end)
                if codes is not None:
                    chosen = np.isin(rows['person'], codes)
                    keep = chosen if keep is None else keep & chosen
                if keep is not None:
                    rows, embeddings = rows[keep], embeddings[keep]
                if not len(rows):
                    continue
                compared += len(rows)
                low = min(low, int(rows['stamp'].min()))
                high = max(high, int(rows['stamp'].max()))
                similarities = cosine_similarity(query, embeddings)
                hit = similarities >= min_similarity
                if hit.any():
                    place = places.setdefault((block.robot, block.camera), len(places))
                    found_rows.append(rows[hit])
                    found_similarities.append(similarities[hit])
                    found_places.append(np.full(int(hit.sum()), place, dtype=np.int64))
            rows = np.concatenate(found_rows) if found_rows else np.empty(0, ROW_DTYPE)
            similarities = np.concatenate(found_similarities) if found_rows else np.empty(0)
            keys = (np.concatenate(found_places) << 32 | rows['person'].astype(np.int64)
                    if found_rows else np.empty(0, np.int64))
            where = {place: key for key, place in places.items()}
            appearances = []
            for first, last, count, best in _group_columns(keys, rows['stamp'], similarities,
                                                           seconds_to_ns(gap_s), max_results):
                robot, camera = where[int(keys[best] >> 32)]
                hit = snapshot.hit(rows[best], robot, camera, float(similarities[best]))
                appearances.append(Appearance(robot, camera, hit.person_id, first, last, count,
                                              hit))
        if not compared:
            low, high = (0 if start_ns is None else start_ns), (0 if end_ns is None else end_ns)
        return SearchResult(appearances, compared, len(rows), low, high,
                            time.perf_counter() - began)

    def embeddings_of(self, person_id: str, start_ns: int | None = None,
                      end_ns: int | None = None, limit: int = 100) -> np.ndarray:
        """Return person_id's stored embeddings in the window, best quality first.

        Shape (n, dim), n at most limit (0: all); empty for an unknown person. The whole
        history with a limit up to PERSON_QUERY_FACES is read from the person's kept best
        faces, without reading a block.
        """
        if start_ns is None and end_ns is None and 0 < limit <= PERSON_QUERY_FACES:
            faces = self._person_best_faces(person_id)[:limit]
            return (np.stack([embedding for _, embedding in faces]) if faces
                    else np.empty((0, self.dim), np.float32))
        start = _MIN_NS if start_ns is None else start_ns
        end = _MAX_NS if end_ns is None else end_ns
        qualities, embeddings = np.empty(0, np.float32), np.empty((0, self.dim), np.float32)
        with self._reading(start, end, person_id) as snapshot:
            person = snapshot.person_codes.get(person_id)
            for _, rows, block_embeddings in snapshot.loaded():
                keep = ((rows['person'] == person) & (rows['stamp'] >= start)
                        & (rows['stamp'] <= end))
                qualities = np.concatenate([qualities, rows['quality'][keep]])
                embeddings = np.concatenate([embeddings, block_embeddings[keep]])
                if limit and len(qualities) > 2 * limit:   # keep memory flat on long windows
                    best = np.argsort(-qualities, kind='stable')[:limit]
                    qualities, embeddings = qualities[best], embeddings[best]
        order = np.argsort(-qualities, kind='stable')
        return embeddings[order[:limit] if limit else order]

    def _person_best_faces(self, person_id: str) -> list[_Face]:
        """Return person_id's best faces, committed and pending, best first."""
        with self._lock:
            self._check_open()
            person = self._persons.get(person_id)
            if person is None:
                return []
            fresh: _FreshFaces = {}
            for key, block in self._open.items():
                if block.dirty and any(mine == person for mine, _ in block.slots):
                    _gather_faces(fresh, key, *block.packed(), [person])
            try:
                return _merged_best_faces(self._committed_best_faces(person), fresh.get(person))
            except sqlite3.DatabaseError as error:
                self._note(error)
                raise

    def _committed_best_faces(self, person: int) -> list[_Face]:
        """Return the best faces of person code `person` as committed (or in this transaction).

        Best first, so that an unchanged list compares equal (_write_best_faces).
        """
        return _best_faces(
            ((-quality, stamp // self._block_ns * self._block_ns, robot, camera, stamp),
             np.frombuffer(embedding, dtype=np.float32))
            for robot, camera, stamp, quality, embedding in self._db.execute(
                'SELECT robot_id, camera_id, stamp, quality, embedding FROM best_faces'
                ' WHERE person = ?', (person,)))

    def _merge_best_faces(self, fresh: _FreshFaces) -> None:
        """Merge the faces of blocks just stored into best_faces (within the caller's commit)."""
        for person, theirs in fresh.items():
            committed = self._committed_best_faces(person)
            self._write_best_faces(person, committed, _merged_best_faces(committed, theirs))

    def _write_best_faces(self, person: int, before: list[_Face], after: list[_Face]) -> None:
        """Replace person's best faces (a face keeps its key: equal keys, equal faces)."""
        if [key for key, _ in before] == [key for key, _ in after]:
            return
        self._db.execute('DELETE FROM best_faces WHERE person = ?', (person,))
        self._db.executemany(
            'INSERT INTO best_faces VALUES (?, ?, ?, ?, ?, ?)',
            [(person, robot, camera, stamp, -rank, np.ascontiguousarray(embedding).tobytes())
             for (rank, _, robot, camera, stamp), embedding in after])

    def _reread_best_faces(self, doomed: dict[int, set[tuple[str, str, int]]]) -> None:
        """Choose again the best faces of the persons who lost one of them.

        The caller holds a transaction and has already deleted the entries from the blocks;
        doomed: person code -> (robot, camera, stamp) of their deleted entries. The person's
        blocks are read best first (block_persons.quality) until PERSON_QUERY_FACES faces
        better than any in the blocks left are found: the rows of each, then the embeddings
        of those holding a best face only (the rows are a tenth of a block).
        """
        for person, gone in doomed.items():
            before = self._committed_best_faces(person)
            if not any(key[2:4] + key[4:] in gone for key, _ in before):
                continue   # deleting faces outside the best leaves the best as they are
            ranked = []
            for block_id, robot, camera, start, best in self._db.execute(
                    'SELECT b.id, b.robot_id, b.camera_id, b.start_ns, p.quality'
                    ' FROM block_persons p JOIN blocks b ON b.id = p.block_id'
                    ' WHERE p.person = ? ORDER BY p.quality DESC', (person,)).fetchall():
                if len(ranked) == PERSON_QUERY_FACES and -ranked[-1][0][0] > best:
                    break   # every face of this block and of the rest ranks behind
                (rows,) = self._db.execute('SELECT rows FROM block_data WHERE id = ?',
                                           (block_id,)).fetchone()
                rows = np.frombuffer(rows, dtype=ROW_DTYPE)
                ranked = _best_faces(ranked + [(key, (block_id, index)) for key, index in
                                               _faces_in(robot, camera, start, rows,
                                                         np.arange(len(rows)), person)])
            embeddings = {}
            for block_id in {block_id for _, (block_id, _) in ranked}:
                (packed,) = self._db.execute('SELECT embeddings FROM block_data WHERE id = ?',
                                             (block_id,)).fetchone()
                embeddings[block_id] = np.frombuffer(packed, np.float32).reshape(-1, self.dim)
            self._write_best_faces(person, before, [
                (key, embeddings[block_id][index]) for key, (block_id, index) in ranked])

    def entry_count(self, start_ns: int | None = None, end_ns: int | None = None) -> int:
        """Return the number of entries stamped in [start_ns, end_ns] (None: unbounded)."""
        start = _MIN_NS if start_ns is None else start_ns
        end = _MAX_NS if end_ns is None else end_ns
        inside = 0
        with self._reading(start, end) as snapshot:
            for block in snapshot.blocks:
                if start <= block.first and block.last <= end:
                    inside += block.count   # no need to read the block
                else:
                    stamps = snapshot.load(block)[0]['stamp']
                    inside += int(np.count_nonzero((stamps >= start) & (stamps <= end)))
        return inside

    def person_ids(self) -> list[str]:
        """Return the ids of the persons with faces in the index."""
        with self._lock:
            self._check_open()
            return list(self._persons.copy()[0])

    def time_span(self) -> tuple[int, int] | None:
        """Return the first and last entry stamps, or None when the index is empty."""
        with self._reading(_MIN_NS, _MAX_NS) as snapshot:
            if not snapshot.blocks:
                return None
            return (min(block.first for block in snapshot.blocks),
                    max(block.last for block in snapshot.blocks))

    def _drop(self, where: str, params: tuple, drop: Callable[[np.ndarray], np.ndarray],
              also: Callable[[], None] | None = None) -> int:
        """Delete the entries drop() marks in the blocks matching where; return how many.

        also() runs in the same transaction. The freed pages go back to the file system.
        """
        with self._lock:
            self._check_open()
            self.flush()
            self._open.clear()   # blocks change below; reload them on the next add
            deleted = 0
            doomed_faces: dict[int, set[tuple[str, str, int]]] = {}
            with self._transaction():
                for block_id, robot, camera, start, packed_rows in self._db.execute(
                        'SELECT b.id, b.robot_id, b.camera_id, b.start_ns, d.rows FROM blocks b'
                        f' JOIN block_data d ON d.id = b.id WHERE {where}', params).fetchall():
                    rows = np.frombuffer(packed_rows, dtype=ROW_DTYPE)
                    doomed = drop(rows)
                    if not doomed.any():
                        continue
                    deleted += int(doomed.sum())
                    for person, stamp in zip(rows['person'][doomed].tolist(),
                                             rows['stamp'][doomed].tolist()):
                        doomed_faces.setdefault(person, set()).add((robot, camera, stamp))
                    (packed_embeddings,) = self._db.execute(
                        'SELECT embeddings FROM block_data WHERE id = ?', (block_id,)).fetchone()
                    rows, embeddings = _unpack(packed_rows, packed_embeddings, self.dim)
                    self._store((robot, camera, start), rows[~doomed], embeddings[~doomed])
                self._reread_best_faces(doomed_faces)
                if also is not None:
                    also()
                # Forget the ids of people no entry mentions any more, so names stay bounded.
                self._persons.keep({code for (code,) in self._db.execute(
                    'SELECT DISTINCT person FROM block_persons')})
            if deleted:
                try:
                    self._db.execute('PRAGMA incremental_vacuum')
                except sqlite3.OperationalError:
                    pass   # a full disk: the pages are reused by later entries all the same
            return deleted

    def delete_before(self, cutoff_ns: int) -> int:
        """Delete the entries stamped before cutoff_ns (retention by age); return how many.

        Raises RuntimeError after close().
        """
        return self._drop('b.first_ns < ?', (cutoff_ns,),
                          lambda rows: rows['stamp'] < cutoff_ns)

    def delete_segment(self, name: str, start_ns: int | None = None,
                       end_ns: int | None = None) -> int:
        """Delete the entries whose frame lives in segment name, and its indexed mark.

        [start_ns, end_ns], the segment's span, limits the blocks read (None: all blocks).
        Returns how many entries; raises RuntimeError after close().
        """
        with self._lock:
            self._check_open()
            self._indexed.discard(name)
            code = self._segments.get(name)

            def unmark() -> None:
                self._db.execute('DELETE FROM indexed_segments WHERE name = ?', (name,))
                if code is not None:
                    self._segments.remove(name)

            if start_ns is None or end_ns is None:
                where, params = '1', ()
            else:
                where = 'b.start_ns > ? AND b.start_ns <= ?'
                params = (start_ns - 2 * self._block_ns, end_ns + self._block_ns)
            return self._drop(where, params, (lambda rows: rows['segment'] == code)
                              if code is not None else (lambda rows: np.zeros(len(rows), bool)),
                              unmark)

    def delete_person(self, person_id: str) -> int:
        """Delete every entry of person_id and the id itself; return how many entries.

        Raises RuntimeError after close().
        """
        with self._lock:
            self._check_open()
            code = self._persons.get(person_id)
            if code is None:
                return 0
            return self._drop('b.id IN (SELECT block_id FROM block_persons WHERE person = ?)',
                              (code,), lambda rows: rows['person'] == code)

    def segment_names(self) -> set[str]:
        """Return the segments the index refers to (entries or indexed marks)."""
        with self._lock:
            self._check_open()
            return set(self._segments.copy()[0]) | self.indexed_segments()
