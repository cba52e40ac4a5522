"""Files of personal data (faces, embeddings, events): private modes, written safely.

Every file the history and the event log write is created with FileModes.file (0600 by
default: the owner only) in folders of FileModes.folder (0700), so that another user of the
robot cannot read the faces stored there. shared_with_group() (0640, 0750) lets a group of
operators read them, which is a deliberate choice made by configuration.
"""

from dataclasses import dataclass
import os
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class FileModes:
    """Permission bits of the folders and files holding personal data."""

    folder: int = 0o700
    file: int = 0o600

    @staticmethod
    def shared_with_group(shared: bool) -> 'FileModes':
        """Return the modes for files a group of operators may read (True) or private ones."""
        return FileModes(0o750, 0o640) if shared else FileModes()

    def make_folder(self, path: Path | str) -> Path:
        """Create path (missing parents get the default mode) and set its mode.

        An existing folder gets the mode too, so a history made world-readable by an older
        version is closed. Raises OSError when the folder cannot be made; a mode that cannot be
        set (a read-only mount, a folder of another user) is left as it is.
        """
        path = Path(path)
        path.mkdir(mode=self.folder, parents=True, exist_ok=True)
        self.restrict(path, self.folder)
        return path

    def restrict(self, path: Path | str, mode: int | None = None) -> bool:
        """Set path's mode (the file mode by default); False when that is not possible."""
        mode = self.file if mode is None else mode
        try:
            if (os.stat(path).st_mode & 0o777) != mode:
                os.chmod(path, mode)
            return True
        except OSError:
            return False

    def opener(self, path: str, flags: int) -> int:
        """Open path with this file mode when created; pass as open(..., opener=...)."""
        return os.open(path, flags, self.file)

    def open(self, path: Path | str, mode: str, **kwargs) -> IO:
        """Return path opened in mode as by the built-in; a file it creates gets the file mode."""
        return open(path, mode, opener=self.opener, **kwargs)

    def create_empty(self, path: Path | str) -> None:
        """Create path empty with the file mode unless it exists (e.g. before sqlite opens it).

        sqlite creates its -wal and -shm files with the mode of the database file.
        """
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self.file))
        except FileExistsError:
            self.restrict(path)


def replace_atomically(path: Path, data: bytes, modes: FileModes) -> None:
    """Write data to path through a temporary file, fsynced, then renamed over path."""
    temporary = path.with_name(path.name + '.tmp')
    with modes.open(temporary, 'wb') as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)
    fsync_folder(path.parent)


def fsync_folder(path: Path) -> None:
    """Make a rename or unlink in folder path durable; ignored where folders cannot sync."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
