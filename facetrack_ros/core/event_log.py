"""Append-only JSON-lines log of person events, one file per UTC day.

Each record goes to `<directory>/<prefix>-YYYY-MM-DD.jsonl`, the date being the UTC day of the
record's 'stamp' [s since the epoch]: a replayed recording lands in the files of the days it was
recorded, and a day's file holds that day's events whenever they were written. Records without
a 'stamp' are filed under the wall clock's day. Lines are flushed one by one (no fsync): a crash
loses at most the line being written, and read_events skips such a torn line.
"""

import datetime
import json
import math
import os
from pathlib import Path
import time
from types import TracebackType
from typing import TextIO
import warnings


class EventLog:
    """Writes records as JSON lines to per-UTC-day files, opening the next file on a new day."""

    def __init__(self, directory: str | Path, prefix: str = 'events') -> None:
        """Create directory if needed; files are named `<prefix>-YYYY-MM-DD.jsonl`."""
        if not prefix or '/' in prefix or '\\' in prefix:
            raise ValueError(f'event log prefix must be a plain file name part, got {prefix!r}')
        self._directory = Path(directory)
        self._directory.mkdir(parents=True, exist_ok=True)
        self._prefix = prefix
        self._path: Path | None = None  # file now open, if any
        self._file: TextIO | None = None
        self._closed = False

    def append(self, record: dict) -> Path:
        """Write record as one JSON line and return the file it went to.

        Raises ValueError when the log is closed or record's stamp is not a finite number, and
        TypeError or ValueError (NaN) when record does not serialise to strict JSON.
        """
        if self._closed:
            raise ValueError('event log is closed')
        stamp = record.get('stamp', time.time())
        if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) \
                or not math.isfinite(stamp):
            raise ValueError(f"record 'stamp' must be a finite number of seconds, got {stamp!r}")
        line = json.dumps(record, allow_nan=False, separators=(',', ':')) + '\n'
        day = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).date()
        path = self._directory / f'{self._prefix}-{day.isoformat()}.jsonl'
        file = self._open(path)
        file.write(line)
        file.flush()
        return path

    def close(self) -> None:
        """Close the open file; later appends raise ValueError. Safe to call twice."""
        if self._file is not None:
            self._file.close()
        self._file, self._path, self._closed = None, None, True

    def __enter__(self) -> 'EventLog':
        """Return the log for a with-block."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        """Close the log at the end of a with-block."""
        self.close()

    def _open(self, path: Path) -> TextIO:
        """Return the file for path, switching files when the day changed."""
        if path == self._path and self._file is not None:
            return self._file
        if self._file is not None:
            self._file.close()
        torn = False
        if path.exists() and path.stat().st_size > 0:
            with path.open('rb') as old:
                old.seek(-1, os.SEEK_END)
                torn = old.read(1) != b'\n'
        file = path.open('a', encoding='utf-8')
        if torn:  # a line cut short by a crash must not swallow the next record
            file.write('\n')
        self._path, self._file = path, file
        return file


def read_events(directory: str | Path, prefix: str = 'events') -> list[dict]:
    """Return every record in the log's files, oldest day first, each file in line order.

    A line that is not a JSON object (say, torn by a crash) is skipped with a RuntimeWarning
    naming the file and line. Raises FileNotFoundError if directory does not exist.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f'no event log directory {directory}')
    records = []
    for path in sorted(directory.glob(f'{prefix}-????-??-??.jsonl')):
        with path.open(encoding='utf-8') as file:
            for number, line in enumerate(file, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    record = None
                if not isinstance(record, dict):
                    warnings.warn(f'{path}:{number}: skipped a line that is not a JSON object',
                                  RuntimeWarning, stacklevel=2)
                    continue
                records.append(record)
    return records
