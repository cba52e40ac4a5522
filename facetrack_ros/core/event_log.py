"""Append-only JSON-lines log of person events, one file per UTC day, private and bounded.

Each record goes to `<directory>/<prefix>-YYYY-MM-DD.jsonl`, the date being the UTC day of the
record's 'stamp' [s since the epoch]: a replayed recording lands in the files of the days it was
recorded, and a day's file holds that day's events whenever they were written. Records without
a 'stamp' are filed under the wall clock's day. Lines are flushed one by one (no fsync): a crash
loses at most the line being written, and read_events skips such a torn line.

Personal data: files are created 0600 in a 0700 folder (FileModes); face embeddings (the
BIOMETRIC_FIELDS) are never written, since an event says who came and went, which needs no
face; a day's file is deleted once its last write is older than max_age_s (so a record is kept
between max_age_s and max_age_s plus a day: real age, whatever the stamps say); and
forget_person() removes every record of one person. Writers and forget_person() lock each file
(flock) while they use it, and a writer reopens a file that forget_person() replaced, so a
tracker appending while another process forgets loses no line.
"""

import datetime
import fcntl
import json
import math
import os
from pathlib import Path
import time
from types import TracebackType
from typing import TextIO
import warnings

from facetrack_ros.core.private_files import FileModes, fsync_folder

#: Record fields never written: face embeddings are biometric data an event log does not need.
BIOMETRIC_FIELDS = ('embedding',)
#: Default retention of personal data (frame history and event logs) [s].
DEFAULT_MAX_AGE_S = 24 * 3600.0
#: Where the tracker writes its event log and frame_history forgets people in it.
DEFAULT_EVENT_LOG_DIR = '~/.ros/facetrack/events'
_DAY_PATTERN = '????-??-??.jsonl'


class EventLog:
    """Writes records as JSON lines to per-UTC-day files, opening the next file on a new day."""

    def __init__(self, directory: str | Path, prefix: str = 'events',
                 max_age_s: float = DEFAULT_MAX_AGE_S, modes: FileModes = FileModes()) -> None:
        """Create directory if needed (modes.folder); files are `<prefix>-YYYY-MM-DD.jsonl`.

        Day files last written more than max_age_s ago are deleted now and whenever the
        log moves to another day's file.
        """
        if not prefix or '/' in prefix or '\\' in prefix:
            raise ValueError(f'event log prefix must be a plain file name part, got {prefix!r}')
        if not max_age_s > 0:
            raise ValueError(f'event log max_age_s must be positive, got {max_age_s!r}')
        self._directory = modes.make_folder(directory)
        self._prefix = prefix
        self._max_age_s = max_age_s
        self._modes = modes
        self._path: Path | None = None  # file now open, if any
        self._file: TextIO | None = None
        self._closed = False
        prune_event_logs(self._directory, max_age_s, prefix)

    def append(self, record: dict) -> Path:
        """Write record (less its BIOMETRIC_FIELDS) as one JSON line; return its file.

        Raises ValueError when the log is closed or record's stamp is not a finite number, and
        TypeError or ValueError (NaN) when record does not serialise to strict JSON.
        """
        if self._closed:
            raise ValueError('event log is closed')
        stamp = record.get('stamp', time.time())
        if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) \
                or not math.isfinite(stamp):
            raise ValueError(f"record 'stamp' must be a finite number of seconds, got {stamp!r}")
        kept = {key: value for key, value in record.items() if key not in BIOMETRIC_FIELDS}
        line = json.dumps(kept, allow_nan=False, separators=(',', ':')) + '\n'
        day = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).date()
        path = self._directory / f'{self._prefix}-{day.isoformat()}.jsonl'
        if path != self._path:
            prune_event_logs(self._directory, self._max_age_s, self._prefix)
        file = self._locked(path)
        try:
            file.write(line)
            file.flush()
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)
        return path

    def close(self) -> None:
        """Close the open file; later appends raise ValueError. Safe to call twice."""
        self._drop_file()
        self._closed = True

    def _drop_file(self) -> None:
        """Close the open file, giving up lines a full disk refused that are still buffered.

        The append that failed raised already; the next one starts from a new file object.
        """
        file, self._file, self._path = self._file, None, None
        if file is not None:
            try:
                file.close()
            except OSError:
                pass

    def __enter__(self) -> 'EventLog':
        """Return the log for a with-block."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        """Close the log at the end of a with-block."""
        self.close()

    def _locked(self, path: Path) -> TextIO:
        """Return the file for path, locked, reopened if the day changed or it was replaced."""
        while True:
            if path != self._path or self._file is None:
                self._open(path)
            fcntl.flock(self._file, fcntl.LOCK_EX)
            try:
                if os.stat(path).st_ino == os.fstat(self._file.fileno()).st_ino:
                    return self._file
            except FileNotFoundError:
                pass   # deleted (retention, forget_person): start it again
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._drop_file()

    def _open(self, path: Path) -> None:
        """Open path for appending, mending a line a crash left torn."""
        self._drop_file()
        file = self._modes.open(path, 'a', encoding='utf-8')
        self._modes.restrict(path)
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            if file.tell() > 0:
                with path.open('rb') as old:
                    old.seek(-1, os.SEEK_END)
                    if old.read(1) != b'\n':   # a torn line must not swallow the next record
                        file.write('\n')
                        file.flush()
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)
        self._path, self._file = path, file


def _day_files(directory: Path, prefix: str) -> list[Path]:
    return sorted(directory.glob(f'{prefix}-{_DAY_PATTERN}'))


def read_events(directory: str | Path, prefix: str = 'events') -> list[dict]:
    """Return every record in the log's files, oldest day first, each file in line order.

    A line that is not a JSON object (say, torn by a crash) is skipped with a RuntimeWarning
    naming the file and line. Raises FileNotFoundError if directory does not exist.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f'no event log directory {directory}')
    records = []
    for path in _day_files(directory, prefix):
        with path.open(encoding='utf-8') as file:
            for number, line in enumerate(file, 1):
                record = _parse(line)
                if record is None and line.strip():
                    warnings.warn(f'{path}:{number}: skipped a line that is not a JSON object',
                                  RuntimeWarning, stacklevel=2)
                if record is not None:
                    records.append(record)
    return records


def _parse(line: str) -> dict | None:
    """Return a line's JSON object, or None for a blank, torn or non-object line."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def prune_event_logs(directory: str | Path, max_age_s: float, prefix: str = 'events',
                     now: float | None = None) -> list[Path]:
    """Delete the day files last written more than max_age_s before now; return them.

    Their modification time, not their name, decides: a file of a replayed day, or of a day in
    the future (a wrong clock), is kept max_age_s after it was written, no longer.
    """
    cutoff = (time.time() if now is None else now) - max_age_s
    deleted = []
    for path in _day_files(Path(directory), prefix):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                deleted.append(path)
        except FileNotFoundError:
            continue
    if deleted:
        fsync_folder(Path(directory))
    return deleted


def forget_person(directory: str | Path, person_id: str, prefix: str = 'events',
                  modes: FileModes = FileModes()) -> int:
    """Remove every record of person_id from the log's files; return how many were removed.

    Each file holding one is rewritten without it (a new file renamed over the old, under the
    old file's lock), its modification time kept so retention still counts from the original
    writes. Torn and non-object lines are dropped too. A directory that does not exist holds
    no record.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    removed = 0
    for path in _day_files(directory, prefix):
        try:
            stream = path.open('r', encoding='utf-8')
        except FileNotFoundError:
            continue
        with stream:
            fcntl.flock(stream, fcntl.LOCK_EX)
            parsed = [(line, _parse(line)) for line in stream]
            kept = [line for line, record in parsed
                    if record is not None and record.get('person_id') != person_id]
            gone = sum(1 for _, record in parsed
                       if record is not None and record.get('person_id') == person_id)
            if not gone:
                continue
            status = os.fstat(stream.fileno())
            temporary = path.with_name(path.name + '.tmp')
            with modes.open(temporary, 'w', encoding='utf-8') as out:
                out.writelines(kept)
                out.flush()
                os.fsync(out.fileno())
            os.utime(temporary, ns=(status.st_atime_ns, status.st_mtime_ns))
            os.replace(temporary, path)
            removed += gone
    if removed:
        fsync_folder(directory)
    return removed
