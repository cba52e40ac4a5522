"""One writer per state file or history folder: an exclusive lock held while a node runs.

Two trackers on one state file would hand out the same person ids to different people, and
two histories in one folder would delete and rewrite each other's segments. That is what two
`ros2 launch` of one robot's graph (one per camera, the default folders) would do. So each
owner holds an advisory flock on a lock file beside what it writes: the second one is refused
with the first one's name and process, and the operating system drops the lock when its
process ends, however it ends, so no stale lock outlives a crash.
"""

import fcntl
import os
from pathlib import Path
import socket
from typing import BinaryIO


class InUseError(RuntimeError):
    """What the lock guards is held by another owner (this or another process)."""


class OwnerLock:
    """An exclusive flock on lock_file, taken on construction and held until release().

    owner: who holds it (e.g. the node's name), written into the file for the next one's
    refusal. Raises InUseError when another owner holds it; OSError when the lock file cannot
    be opened for writing (a folder that is not there, or read-only) or not be locked.
    """

    def __init__(self, lock_file: Path | str, owner: str) -> None:
        """Take the lock, or raise InUseError naming the holder."""
        self.path = Path(lock_file)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        # A file object: an owner dropped without release() (a test's simulated crash) frees
        # the lock when it is collected, as a real crash does.
        self._file: BinaryIO | None = os.fdopen(descriptor, 'r+b', buffering=0)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 512, 0).decode(errors='replace').strip()
            self.release()
            raise InUseError(f'{self.path} is held by {holder or "another process"}') from None
        except OSError:   # a file system without locks (NFS without lockd)
            self.release()
            raise
        try:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor,
                      f'{owner} (pid {os.getpid()} on {socket.gethostname()})\n'.encode(), 0)
        except OSError:
            pass   # a full disk: the lock holds, without the holder's name

    @property
    def held(self) -> bool:
        """Return whether this object still holds the lock."""
        return self._file is not None

    def release(self) -> None:
        """Release the lock (the file stays: removing it would race a new owner's open)."""
        if self._file is not None:
            self._file.close()
            self._file = None
