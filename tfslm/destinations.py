"""Where a command may write: never over what tfslm did not create, never over a run's own files.

Every command that takes ``--output`` checks its destination here first, so
the rules are the same everywhere:

- a destination inside (or equal to, or holding) a run directory's own files
  is refused, with or without ``--overwrite``: exporting into ``model/`` would
  destroy the model;
- an existing file, or a non-empty directory that is not tfslm's own output,
  is replaced only with ``--overwrite`` (and then atomically, by the caller);
- a file where a directory is wanted (and the reverse) is an error.

Example:
    >>> check_output_file("scored.csv", overwrite=True, inputs=["reviews.csv"]).name
    'scored.csv'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

from tfslm.errors import RunDirError

__all__ = ["check_output_dir", "check_output_file", "is_saved_model_export"]

# What `tfslm export` writes into a SavedModel directory (and nothing else).
_SAVED_MODEL_ENTRIES = {"saved_model.pb", "variables", "assets", "assets.extra", "fingerprint.pb"}
EXPORT_MARKER = Path("assets.extra") / "tfslm_export.json"


def is_saved_model_export(path: str | os.PathLike) -> bool:
    """True when ``path`` holds a SavedModel written by tfslm and nothing else."""
    path = Path(path)
    if not (path / EXPORT_MARKER).is_file():
        return False
    return {entry.name for entry in path.iterdir()} <= _SAVED_MODEL_ENTRIES


def _inside(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def _check_run_files(target: Path, flag: str, run_dir: str | os.PathLike | None, allowed_in_run: Iterable[str]) -> None:
    if run_dir is None:
        return
    run = Path(run_dir).resolve()
    if _inside(run, target):
        raise RunDirError(f"{flag} {target}: is or holds the run directory {run_dir}; choose a directory outside it")
    allowed = set(allowed_in_run)
    for entry in run.iterdir() if run.is_dir() else ():
        if entry.name not in allowed and _inside(target, entry.resolve()):
            raise RunDirError(
                f"{flag} {target}: would replace the run's own {entry.name} in {run_dir}; choose a path outside the run directory"
            )


def check_output_dir(
    path: str | os.PathLike,
    *,
    overwrite: bool,
    flag: str = "--output",
    run_dir: str | os.PathLike | None = None,
    allowed_in_run: Iterable[str] = (),
    ours: Callable[[Path], bool] = is_saved_model_export,
) -> Path:
    """Refuse a directory destination tfslm may not replace; return it resolved.

    Args:
        path: the destination directory.
        overwrite: the user passed ``--overwrite``: a non-empty directory may be replaced.
        flag: the option named in messages.
        run_dir: the run directory the command reads; its files are never a destination.
        allowed_in_run: names in ``run_dir`` that are this command's own output (``saved_model``).
        ours: tells a directory tfslm wrote (replaced without ``--overwrite``).

    Raises:
        RunDirError: one line naming the path and what to do instead.
    """
    target = Path(path).expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise RunDirError(f"{flag} {path}: exists and is not a directory; choose a directory path")
    for parent in target.parents:
        if parent.exists() and not parent.is_dir():
            raise RunDirError(f"{flag} {path}: {parent} is a file, not a directory; choose another path")
    _check_run_files(target, flag, run_dir, allowed_in_run)
    if target.is_dir() and any(target.iterdir()) and not overwrite and not ours(target):
        raise RunDirError(
            f"{flag} {path}: not empty and not written by tfslm; pass --overwrite to replace it, or choose an empty or new directory"
        )
    return target


def check_output_file(
    path: str | os.PathLike,
    *,
    overwrite: bool,
    flag: str = "--output",
    run_dir: str | os.PathLike | None = None,
    allowed_in_run: Iterable[str] = (),
    inputs: Iterable[str | os.PathLike] = (),
) -> Path:
    """Refuse a file destination tfslm may not replace (an input, a run artefact, an existing file); return it.

    Raises:
        RunDirError: one line naming the path and what to do instead.
    """
    target = Path(path).expanduser().resolve()
    if target.is_dir():
        raise RunDirError(f"{flag} {path}: is a directory; give a file path, e.g. {Path(path) / 'out.json'}")
    for parent in target.parents:
        if parent.exists() and not parent.is_dir():
            raise RunDirError(f"{flag} {path}: {parent} is a file, not a directory; choose another path")
    for source in inputs:
        if Path(source).expanduser().resolve() == target:
            raise RunDirError(f"{flag} {path}: is also the input file; write to another file")
    _check_run_files(target, flag, run_dir, allowed_in_run)
    if target.exists() and not overwrite:
        raise RunDirError(f"{flag} {path}: exists; pass --overwrite to replace it, or choose another file")
    return target
