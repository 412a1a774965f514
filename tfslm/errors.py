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

__all__ = ["UserError", "ConfigError", "DataError", "ModelError", "RunDirError", "RemoteError", "ClusterError", "one_line"]


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
