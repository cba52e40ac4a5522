"""The JSON-lines event log: every record once, daily files, corrupt lines skipped, private."""

import datetime
import json
import os
from pathlib import Path
import threading
import time

import pytest

from facetrack_ros.core.event_log import (EventLog, forget_person, prune_event_logs,
                                          read_events)
from facetrack_ros.core.private_files import FileModes
from history_material import fill, mounted_tmpfs

#: 2024-03-01 23:59:50 UTC [s since the epoch], ten seconds before a UTC day boundary.
BEFORE_MIDNIGHT = datetime.datetime(2024, 3, 1, 23, 59, 50,
                                    tzinfo=datetime.timezone.utc).timestamp()


def _record(stamp: float, person: int) -> dict:
    return {'kind': 'PERSON_IN', 'stamp': stamp, 'person_id': f'person-{person}',
            'box': [1.0, 2.0, 3.0, 4.0]}


def test_every_record_is_logged_once_as_valid_json(tmp_path: Path) -> None:
    """Each appended record comes back exactly once, in order, from valid JSON lines."""
    records = [_record(1_700_000_000.0 + i, i) for i in range(50)]
    with EventLog(tmp_path / 'log') as log:
        paths = {log.append(record) for record in records}
    assert len(paths) == 1
    lines = next(iter(paths)).read_text(encoding='utf-8').splitlines()
    assert [json.loads(line) for line in lines] == records
    assert read_events(tmp_path / 'log') == records


def test_utc_day_boundary_starts_a_new_file(tmp_path: Path) -> None:
    """Records either side of midnight UTC go to two dated files; reading joins them in order."""
    records = [_record(BEFORE_MIDNIGHT + 4 * i, i) for i in range(6)]  # 23:59:50 .. 00:00:10
    with EventLog(tmp_path, prefix='cam0') as log:
        paths = [log.append(record) for record in records]
    assert [p.name for p in paths] == ['cam0-2024-03-01.jsonl'] * 3 + ['cam0-2024-03-02.jsonl'] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ['cam0-2024-03-01.jsonl',
                                                          'cam0-2024-03-02.jsonl']
    assert read_events(tmp_path, prefix='cam0') == records
    assert read_events(tmp_path, prefix='other') == []


def test_reopening_appends_and_mends_a_torn_line(tmp_path: Path) -> None:
    """A second log appends to the day's file; a line torn by a crash costs only itself."""
    with EventLog(tmp_path) as log:
        path = log.append(_record(BEFORE_MIDNIGHT, 1))
    with path.open('a', encoding='utf-8') as file:
        file.write('{"kind": "PERSON_OU')  # the crash
    with EventLog(tmp_path) as log:
        assert log.append(_record(BEFORE_MIDNIGHT + 1, 2)) == path
    with pytest.warns(RuntimeWarning, match=f'{path.name}:2'):
        records = read_events(tmp_path)
    assert [r['person_id'] for r in records] == ['person-1', 'person-2']


def test_corrupt_lines_are_skipped_with_a_warning(tmp_path: Path) -> None:
    """Garbage and non-object lines are reported and skipped; the other lines are read."""
    (tmp_path / 'events-2024-03-01.jsonl').write_text(
        '{"stamp": 1, "person_id": "a"}\nnot json\n[1, 2]\n\n{"stamp": 2, "person_id": "b"}\n',
        encoding='utf-8')
    with pytest.warns(RuntimeWarning) as caught:
        records = read_events(tmp_path)
    assert [r['person_id'] for r in records] == ['a', 'b']
    assert [str(w.message).split(': ')[0].rsplit(':', 1)[1] for w in caught] == ['2', '3']


def test_record_without_stamp_uses_the_wall_clock_day(tmp_path: Path) -> None:
    """A record with no 'stamp' is filed under today's UTC date."""
    def today() -> str:
        return datetime.datetime.now(datetime.timezone.utc).date().isoformat()

    before = today()
    with EventLog(tmp_path) as log:
        path = log.append({'note': 'no stamp'})
    assert path.name in {f'events-{before}.jsonl', f'events-{today()}.jsonl'}  # midnight race


@pytest.mark.parametrize('record, error', [
    ({'stamp': float('nan')}, ValueError),
    ({'stamp': 'yesterday'}, ValueError),
    ({'stamp': 1.0, 'value': float('inf')}, ValueError),
    ({'stamp': 1.0, 'value': object()}, TypeError),
])
def test_bad_records_are_refused_and_nothing_is_written(tmp_path: Path, record: dict,
                                                        error: type) -> None:
    """Bad stamps and values that are not strict JSON raise before anything is written."""
    with EventLog(tmp_path) as log:
        with pytest.raises(error):
            log.append(record)
    assert read_events(tmp_path) == []


def test_closed_log_and_bad_arguments(tmp_path: Path) -> None:
    """Appending after close, a path-like prefix and a missing directory raise."""
    log = EventLog(tmp_path)
    log.close()
    log.close()
    with pytest.raises(ValueError, match='closed'):
        log.append(_record(1.0, 1))
    with pytest.raises(ValueError, match='prefix'):
        EventLog(tmp_path, prefix='../x')
    with pytest.raises(FileNotFoundError):
        read_events(tmp_path / 'missing')


def test_files_are_private_and_hold_no_embedding(tmp_path: Path) -> None:
    """Folder 0700, files 0600 (0750/0640 when shared with a group); embeddings not written."""
    with EventLog(tmp_path / 'log') as log:
        path = log.append({**_record(time.time(), 1), 'embedding': [0.1] * 128})
    assert (os.stat(tmp_path / 'log').st_mode & 0o777, os.stat(path).st_mode & 0o777) == (
        0o700, 0o600)
    assert 'embedding' not in path.read_text() and read_events(tmp_path / 'log')[0][
        'person_id'] == 'person-1'
    with EventLog(tmp_path / 'shared', modes=FileModes.shared_with_group(True)) as log:
        path = log.append(_record(time.time(), 1))
    assert (os.stat(tmp_path / 'shared').st_mode & 0o777, os.stat(path).st_mode & 0o777) == (
        0o750, 0o640)


def test_retention_deletes_files_by_their_last_write(tmp_path: Path) -> None:
    """A day file not written for max_age_s goes, whatever day its name says; others stay."""
    now = time.time()
    old, future, fresh = (tmp_path / f'events-{day}.jsonl'
                          for day in ('2024-03-01', '2038-01-19', '2024-03-02'))
    for path in (old, future, fresh):
        path.write_text(json.dumps(_record(1.0, 1)) + '\n')
    for path in (old, future):
        os.utime(path, (now - 7200, now - 7200))
    assert sorted(prune_event_logs(tmp_path, 3600.0, now=now)) == sorted([old, future])
    assert [p.name for p in tmp_path.iterdir()] == [fresh.name]
    os.utime(fresh, (now - 7200, now - 7200))
    with EventLog(tmp_path, max_age_s=3600.0):   # opening a log prunes too
        assert not fresh.exists()
    with pytest.raises(ValueError, match='max_age_s'):
        EventLog(tmp_path, max_age_s=0.0)


def test_forget_person_loses_no_record_of_a_concurrent_writer(tmp_path: Path) -> None:
    """forget_person removes one person's records while a writer appends; nothing else goes.

    The writer appends 400 records of two people (the tracker's log) while forget_person runs
    again and again (the frame_history node's forget_person service, in another process on a
    robot: the file lock and the writer's reopen-on-replace keep every other record).
    """
    modes = FileModes()
    start = time.time()
    done = threading.Event()

    def write() -> None:
        with EventLog(tmp_path, modes=modes) as log:
            for i in range(400):
                log.append(_record(start + i * 1e-3, i % 2))
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    removed = 0
    while not done.is_set():
        removed += forget_person(tmp_path, 'person-1')
    writer.join()
    removed += forget_person(tmp_path, 'person-1')
    records = read_events(tmp_path)
    assert removed == 200
    assert [r['stamp'] for r in records] == [start + i * 1e-3 for i in range(0, 400, 2)]
    assert all(os.stat(p).st_mode & 0o777 == 0o600 for p in tmp_path.iterdir())
    assert forget_person(tmp_path, 'person-1') == 0
    assert forget_person(tmp_path / 'missing', 'person-1') == 0


def test_a_refused_append_leaves_the_log_usable_once_there_is_room(
        tmp_path: Path, mounts_allowed) -> None:
    """An append a full disk refuses raises OSError; appends work again once there is room.

    Here the room comes from deleting the day's file (an operator clearing space): the file
    object still holding the refused line is given up, not left closed to make every later
    append fail (ValueError) for the rest of the day.
    """
    with mounted_tmpfs(tmp_path / 'disk', 64 * 1024) as disk:
        log = EventLog(disk / 'events')
        day = log.append({'kind': 'PERSON_IN', 'stamp': 1e9, 'person_id': 'r1-000001'})
        filler = fill(disk)
        refused = 0
        for number in range(40):   # past the file's last page: refused, some left buffered
            try:
                log.append({'kind': 'PERSON_IN', 'stamp': 1e9, 'person_id': f'r1-{number}',
                            'note': 'y' * 150})
            except OSError:
                refused += 1
        assert refused
        day.unlink()
        for person in ('r1-a', 'r1-b'):
            log.append({'kind': 'PERSON_IN', 'stamp': 1e9, 'person_id': person})
        filler.unlink()
        log.close()
        assert [r['person_id'] for r in read_events(disk / 'events')] == ['r1-a', 'r1-b']
