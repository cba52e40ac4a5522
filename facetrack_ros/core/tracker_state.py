"""The tracker's state on disk: remembered people and the person id sequence, across restarts.

One JSON file, written atomically (a temporary file in the same folder, fsync, rename), mode
0600 in a folder created 0700: it holds face embeddings, which are personal data. Layout
(version 1):

    {"version": 1, "saved_at": <wall clock [s since the epoch]>,
     "next_sequence": <first person id number not handed out yet>,
     "next_track_id": <first track id not handed out yet>,
     "forgets_taken": [[<stamp of a forget taken lately [ns]>, "<id_digest of the id it
                       named: the file names no one forgotten>"], ...] (absent: none),
     "persons": [{"person_id": "r1-000042", "first_seen": <s>, "last_seen": <s>,
                  "appearance_start": <s>, "present": <bool>, "box": [x1, y1, x2, y2],
                  "samples": [[<quality>, "<base64 of float32 unit vector>"], ...]}, ...]}

Times are stamps of the camera timeline [s]. Only people still within the tracker's reid_memory
are written, so the file is bounded like the tracker's memory.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
import json
import math
import os
from pathlib import Path
import re
import time
from typing import Iterable, TYPE_CHECKING

import numpy as np

from facetrack_ros.core.owner_lock import OwnerLock
from facetrack_ros.core.private_files import FileModes, replace_atomically

if TYPE_CHECKING:  # tracking imports this module
    from facetrack_ros.core.tracking import PersonEventRecord, PersonTracker

STATE_VERSION = 1


class StateFileError(ValueError):
    """A state file that cannot be read: damaged, of another version, or not a state file."""


@dataclass(frozen=True)
class PersonRecord:
    """One remembered person as saved.

    samples: (quality [0..1], unit face embedding) pairs behind the running embedding.
    present: the person was in view when saved (their PERSON_OUT is still due).
    """

    person_id: str
    first_seen: float
    last_seen: float
    appearance_start: float
    present: bool
    box: np.ndarray
    samples: tuple[tuple[float, np.ndarray], ...]


@dataclass(frozen=True)
class TrackerState:
    """What a restarted tracker continues from."""

    next_sequence: int
    next_track_id: int
    persons: tuple[PersonRecord, ...]
    forgets_taken: tuple[tuple[int, str], ...] = ()   # (stamp [ns], id_digest), oldest first


def id_digest(person_id: str) -> str:
    """Return a short digest of a forgotten person id, to recognise it without keeping it."""
    return hashlib.sha256(person_id.encode()).hexdigest()[:16]


def _encode(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, '<f4').tobytes()).decode('ascii')


def _decode(text: str) -> np.ndarray:
    vector = np.frombuffer(base64.b64decode(text, validate=True), '<f4').astype(np.float32)
    if vector.size == 0 or not np.all(np.isfinite(vector)):
        raise StateFileError('an embedding is empty or not finite')
    return vector


def to_json(state: TrackerState) -> dict:
    """Return state as the JSON object of the file."""
    return {
        'version': STATE_VERSION, 'saved_at': time.time(),
        'next_sequence': int(state.next_sequence), 'next_track_id': int(state.next_track_id),
        'forgets_taken': [[int(stamp), digest] for stamp, digest in state.forgets_taken],
        'persons': [{
            'person_id': p.person_id, 'first_seen': p.first_seen, 'last_seen': p.last_seen,
            'appearance_start': p.appearance_start, 'present': p.present,
            'box': [float(v) for v in p.box],
            'samples': [[float(q), _encode(v)] for q, v in p.samples]} for p in state.persons],
    }


def from_json(data: object) -> TrackerState:
    """Return the state in a parsed file, or raise StateFileError saying what is wrong."""
    try:
        if data.get('version') != STATE_VERSION:
            raise StateFileError(f'state file version {data.get("version")!r}, '
                                 f'expected {STATE_VERSION}')
        persons = []
        for p in data['persons']:
            times = [float(p[k]) for k in ('first_seen', 'last_seen', 'appearance_start')]
            if not all(math.isfinite(t) for t in times):
                raise StateFileError(f'person {p["person_id"]!r} has non-finite times')
            persons.append(PersonRecord(
                str(p['person_id']), *times, bool(p['present']),
                np.asarray(p['box'], np.float32).reshape(4),
                tuple((float(q), _decode(v)) for q, v in p['samples'])))
        state = TrackerState(int(data['next_sequence']), int(data['next_track_id']),
                             tuple(persons), tuple((int(stamp), str(digest)) for stamp, digest
                                                   in data.get('forgets_taken', [])))
    except StateFileError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise StateFileError(f'not a tracker state file: {error!r}') from error
    if state.next_sequence < 1 or state.next_track_id < 1:
        raise StateFileError('id counters must be >= 1')
    return state


def save_state(path: str | Path, state: TrackerState) -> None:
    """Write state to path atomically, mode 0600; create missing folders with mode 0700."""
    path = Path(path)
    modes = FileModes()
    modes.make_folder(path.parent)
    replace_atomically(path, json.dumps(to_json(state), allow_nan=False,
                                        separators=(',', ':')).encode(), modes)


def load_state(path: str | Path) -> TrackerState | None:
    """Return the state saved at path, None if there is none; raise StateFileError if damaged."""
    path = Path(path)
    try:
        text = path.read_text(encoding='utf-8')
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise StateFileError(f'{path}: {error}') from error
    try:
        return from_json(json.loads(text))
    except json.JSONDecodeError as error:
        raise StateFileError(f'{path}: not JSON: {error}') from error
    except StateFileError as error:
        raise StateFileError(f'{path}: {error}') from error


def set_aside(path: str | Path) -> Path:
    """Rename a damaged state file out of the way (kept for inspection); return the new path."""
    path = Path(path)
    target = path.with_name(f'{path.name}.damaged-{int(time.time())}')
    os.replace(path, target)
    return target


def highest_sequence(person_ids: Iterable[str], id_prefix: str) -> int:
    """Return the highest number n of the ids `<id_prefix>-<n>` among person_ids, or 0."""
    pattern = re.compile(rf'{re.escape(id_prefix)}-(\d+)')
    return max((int(match.group(1)) for person_id in person_ids
                if (match := pattern.fullmatch(person_id))), default=0)


def highest_sequence_in_log(directory: str | Path, id_prefix: str,
                            prefix: str = 'events') -> int:
    """Return the highest person id number `<id_prefix>-<n>` in an event log folder, or 0.

    The fallback when the state file is missing or damaged: ids already written to the event
    log are never handed out again.
    """
    pattern = re.compile(rf'"person_id":"{re.escape(id_prefix)}-(\d+)"')
    highest = 0
    for path in Path(directory).glob(f'{prefix}-????-??-??.jsonl'):
        with path.open(encoding='utf-8', errors='replace') as file:
            for line in file:
                match = pattern.search(line)
                if match:
                    highest = max(highest, int(match.group(1)))
    return highest


class StateStore:
    """A tracker's state file: restored into the tracker on start, saved now and then.

    path: the state file, or None to keep nothing across restarts.
    event_log_dir: the tracker's event log folder (or None): the person id sequence always
    continues after the highest id logged there too.
    From restore() to close() the store holds an OwnerLock on the event log folder's
    `tracker.lock` and on `<path>.lock`: a second tracker on either would hand out the same
    ids, so it is refused (InUseError).
    """

    def __init__(self, path: Path | None, event_log_dir: Path | None) -> None:
        """Remember where the state and the event log are."""
        self.path = path
        self.event_log_dir = event_log_dir
        self.damaged_copy: Path | None = None  # where restore() put a damaged file
        self._locks: list[OwnerLock] = []

    def _take_locks(self) -> None:
        """Hold the event log folder and the state file for this tracker; raise InUseError."""
        lock_files = []
        if self.event_log_dir is not None:
            lock_files.append(self.event_log_dir / 'tracker.lock')
        if self.path is not None:
            lock_files.append(self.path.with_name(self.path.name + '.lock'))
        try:
            for lock_file in lock_files:
                FileModes().make_folder(lock_file.parent)
                self._locks.append(OwnerLock(lock_file, 'a tracker'))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release the locks restore() took; save() before it."""
        while self._locks:
            self._locks.pop().release()

    def restore(self, tracker: PersonTracker, id_prefix: str
                ) -> tuple[list[PersonEventRecord], str]:
        """Continue tracker from the saved state; save() it next (that creates the file).

        Returns the events of the restore (PERSON_OUT of people saved while in view) and a line
        for the log. A damaged file is set aside, never lost. The id sequence goes on after
        the highest id in the event log too: one logged after the last save (a full disk), or
        with no state kept at all, is never handed out again. Raises InUseError while another
        tracker holds the event log folder or the state file.
        """
        self._take_locks()
        note, events = '', []
        if self.path is None:
            note = 'tracker state is not kept (state_file "")'
        else:
            try:
                state = load_state(self.path)
            except StateFileError as error:
                self.damaged_copy = set_aside(self.path)
                note = f'tracker state unreadable, moved to {self.damaged_copy}: {error}; '
                state = None
            if state is not None:
                events = tracker.restore(state)
                note += f'restored {len(state.persons)} people from {self.path}'
            else:
                note += f'new tracker state at {self.path}'
        if self.event_log_dir is not None:
            tracker.skip_sequence_to(highest_sequence_in_log(self.event_log_dir, id_prefix) + 1)
        return events, note

    def save(self, tracker: PersonTracker) -> None:
        """Write the tracker's state (atomically, mode 0600)."""
        if self.path is not None:
            save_state(self.path, tracker.snapshot())
