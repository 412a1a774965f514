"""Atomic file and directory writes: a crash leaves the old artefact or the new one.

Every artefact tfslm writes goes to a temporary sibling first and is renamed
into place, so a reader never sees a half-written model that looks whole.

Example:
    >>> with atomic_directory("runs/demo/model") as tmp:   # doctest: +SKIP
    ...     model.save_pretrained(tmp)
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator

__all__ = ["atomic_write_text", "atomic_write_json", "atomic_file", "atomic_directory", "remove_stale_temporaries", "make_temporary_sibling", "replace_directory"]

_RENAME_EXCHANGE = 2  # from <linux/fs.h>


_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process umask (reading it means setting it; the lock keeps threads from seeing 0)."""
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def _default_mode(directory: bool) -> int:
    """The mode ``open``/``mkdir`` would give a new file or directory under the umask.

    ``mkstemp``/``mkdtemp`` create 0600/0700 temporaries; an artefact renamed
    into place must be readable by whoever could read a plain write (a TF
    Serving process, a colleague), as with ``cp`` or ``save_pretrained``.
    """
    return (0o777 if directory else 0o666) & ~_umask()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


def _temp_prefix(path: Path) -> str:
    # The writer's pid is in the name, so a later write can tell a dead writer's leftovers from a live one's.
    return f".{path.name}.{os.getpid()}."


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete temporaries of ``path`` left by writers that died (a kill mid-write); return them.

    Only siblings named like this module's temporaries (``.<name>.<pid>.*.tmp``)
    whose process no longer runs are removed; nothing else is touched.
    """
    path = Path(path)
    removed = []
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    except OSError:
        return removed
    for candidate in candidates:
        pid_text = candidate.name[len(path.name) + 2 :].split(".", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _pid_alive(int(pid_text)):
            continue
        if candidate.is_dir() and not candidate.is_symlink():
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
        removed.append(candidate)
    return removed


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[Any]:
    """Open a temporary sibling of ``path`` for writing; rename it into place on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _default_mode(directory=False))
    finally:
        os.close(fd)
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": ""}
        with open(tmp_name, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_file(path) as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux renameat2); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0


def make_temporary_sibling(path: str | os.PathLike) -> Path:
    """A new empty directory beside ``path`` (mode per umask) to build a replacement for it in.

    Its name marks it as this process's temporary, so a later write removes it
    if this process dies (:func:`remove_stale_temporaries`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    os.chmod(tmp, _default_mode(directory=True))
    return tmp


def replace_directory(new: str | os.PathLike, path: str | os.PathLike) -> None:
    """Put the directory ``new`` in place of ``path`` in one step; the old ``path`` is removed.

    Where the OS can exchange two directories atomically (Linux), an existing
    ``path`` is swapped out in a single rename, so a reader or a crash sees the
    old directory or the new one, never neither. Elsewhere the old directory is
    moved aside first and removed after the new one is in place.
    """
    new, path = Path(new), Path(path)
    _fsync_dir(new)
    if path.exists():
        if _exchange(new, path):
            shutil.rmtree(new, ignore_errors=True)
        else:
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(new, path)
            shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, path)
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``path`` in one step (see :func:`replace_directory`)."""
    tmp = make_temporary_sibling(path)
    try:
        yield tmp
        replace_directory(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
