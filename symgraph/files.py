"""Writing files atomically, with temporary files that never outlive a failed write.

A file is written to a temporary file in the target's directory, named
``.<name>.symgraph-tmp-<pid>-<random>``, fsynced and renamed over the target, so a
reader sees the old file or the new one, never half of one. Every failure path
removes the temporary file; one left by a process killed mid-write (kill -9) is
removed by the next write to the same target once that process is gone (POSIX;
processes are judged by id on this machine).
"""

from __future__ import annotations

import os
import re
import tempfile


def check_target(path: str, what: str, kind: str = "file") -> tuple[str, str]:
    """``(directory, file name)`` of a ``kind`` of file to be written, once the directory is known to be
    writable; else a clear error naming the path (``what`` says who asked)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{what}: cannot write {kind} {path!r}: directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{what}: cannot write {kind} {path!r}: it is a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(f"{what}: cannot write {kind} {path!r}: directory {directory!r} is not writable")
    name = os.path.basename(path)
    if len(f".{name}.symgraph-tmp-{os.getpid()}-12345678".encode()) > _name_max(directory):
        raise OSError(f"{what}: cannot write {kind} {path!r}: its name is too long for this file system "
                      f"(with the temporary file's prefix, more than {_name_max(directory)} bytes)")
    return directory, name


def _name_max(directory: str) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # not known here: the common limit
        return 255


def atomic_write(path: str, write, what: str, kind: str = "file", binary: bool = True) -> str:
    """Write ``path`` atomically: ``write(f)`` fills a temporary file opened in binary (or text,
    UTF-8) mode, which is then fsynced and renamed over ``path``. Returns ``path``."""
    directory, name = check_target(path, what, kind)
    _remove_stale_temporaries(directory, name)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.symgraph-tmp-{os.getpid()}-")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # an ordinary file, not mkstemp's private 0600
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    _fsync_directory(directory)
    return path


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable (POSIX); not possible everywhere."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _remove_stale_temporaries(directory: str, name: str) -> None:
    """Remove the temporary files of checkpoint ``name`` whose writing process no longer runs."""
    pattern = re.compile(re.escape(f".{name}.symgraph-tmp-") + r"(\d+)-[a-z0-9_]{8}")
    for entry in os.listdir(directory):
        found = pattern.fullmatch(entry)
        if found and not _running(int(found.group(1))):
            _remove(os.path.join(directory, entry))


def _running(pid: int) -> bool:
    """Whether process ``pid`` may still be running (always True where that cannot be checked safely)."""
    if pid == os.getpid() or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except OSError:  # it exists, under another user
        pass
    return True
