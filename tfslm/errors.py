"""User-facing error types: the CLI turns these into one line and exit code 2.

Each subclasses the built-in exception a Python user expects (``ValueError``,
``FileNotFoundError``), so ``except ValueError`` keeps working, and also
:class:`UserError`, so the CLI can tell a user mistake from a bug.

Example:
    >>> raise ConfigError("training.epochs: expected a positive integer, got -1; use e.g. 3")
    Traceback (most recent call last):
    ...
    tfslm.errors.ConfigError: training.epochs: expected a positive integer, got -1; use e.g. 3
"""

from __future__ import annotations

import errno

__all__ = ["UserError", "ConfigError", "DataError", "ModelError", "RunDirError", "RemoteError", "ClusterError", "StorageError", "one_line", "storage_problem"]


class UserError(Exception):
    """Base of every error caused by the user's input; the CLI exits 2 on these."""

    exit_code = 2


class ConfigError(UserError, ValueError):
    """A config file, key or value is wrong."""


class DataError(UserError, ValueError):
    """A data file, column, row or label is wrong."""


class ModelError(UserError, ValueError):
    """A checkpoint cannot be found, read or used as asked."""


class RunDirError(UserError, ValueError):
    """A run directory is missing, incomplete, or would be overwritten."""


class RemoteError(Exception):
    """A remote service (a Hub endpoint) failed; not the user's fault, the CLI exits 1."""

    exit_code = 1


class StorageError(Exception):
    """The destination is full or read-only: not the user's input nor a bug; the CLI exits 1."""

    exit_code = 1


class ClusterError(RemoteError):
    """Another worker of a multi-worker cluster stopped or became unreachable; the CLI exits 1."""


def one_line(exc: BaseException, limit: int | None = None) -> str:
    r"""An exception's message on one line (whitespace folded), its type name when it has none.

    Example:
        >>> one_line(ValueError("bad\n  value"))
        'bad value'
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


_STORAGE_ERRNOS = {errno.ENOSPC: "no space left", errno.EDQUOT: "disk quota exceeded", errno.EROFS: "read-only file system"}
_STORAGE_TEXTS = {"no space left on device": "no space left", "disk quota exceeded": "disk quota exceeded",
                  "read-only file system": "read-only file system"}


def storage_problem(exc: BaseException, where: str | None = None) -> str | None:
    """One line for a full or read-only destination anywhere in ``exc``'s chain (h5py and TF wrap OSError), else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        what = _STORAGE_ERRNOS.get(getattr(exc, "errno", None))
        if what is None:
            text = str(exc).lower()
            what = next((v for k, v in _STORAGE_TEXTS.items() if k in text), None)
        if what is not None:
            where = where or getattr(exc, "filename", None) or "the output directory"
            fix = "make it writable or choose another output_dir" if "read-only" in what else "free space there (or choose another output_dir)"
            return f"{where}: {what}; {fix} and rerun the same command (an unfinished training resumes from its backup)"
        exc = exc.__cause__ or exc.__context__
    return None
