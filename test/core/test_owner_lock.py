"""OwnerLock: one writer per state file or history folder, freed when its process ends."""

import os
from pathlib import Path
import signal
import subprocess
import sys

import pytest

from facetrack_ros.core.owner_lock import InUseError, OwnerLock


def test_a_second_owner_is_refused_with_the_first_ones_name(tmp_path: Path) -> None:
    """The refusal says who holds the lock; after release() the next owner gets it."""
    first = OwnerLock(tmp_path / 'x.lock', 'the front tracker')
    assert first.held and os.stat(tmp_path / 'x.lock').st_mode & 0o777 == 0o600
    with pytest.raises(InUseError, match=rf'held by the front tracker \(pid {os.getpid()} '):
        OwnerLock(tmp_path / 'x.lock', 'the rear tracker')
    assert first.held, 'a refused owner takes nothing from the holder'
    first.release()
    assert not first.held
    second = OwnerLock(tmp_path / 'x.lock', 'the rear tracker')
    assert 'the rear tracker' in (tmp_path / 'x.lock').read_text()
    second.release()


def test_the_lock_of_a_killed_process_is_free_at_once(tmp_path: Path) -> None:
    """A crash (SIGKILL: no cleanup at all) leaves no stale lock behind."""
    lock_file = tmp_path / 'history.lock'
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time\n'
         'from facetrack_ros.core.owner_lock import OwnerLock\n'
         f'lock = OwnerLock({str(lock_file)!r}, "a history")\n'
         'print("held", flush=True)\ntime.sleep(60)\n'],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        with pytest.raises(InUseError, match=rf'a history \(pid {holder.pid} '):
            OwnerLock(lock_file, 'a second history')
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    OwnerLock(lock_file, 'a second history').release()


def test_a_lock_file_that_cannot_be_made_is_an_os_error(tmp_path: Path) -> None:
    """A missing folder is not silently unlocked: the caller decides."""
    with pytest.raises(FileNotFoundError):
        OwnerLock(tmp_path / 'missing' / 'x.lock', 'a tracker')
