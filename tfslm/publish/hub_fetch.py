"""Use a run pushed to the Hub by its repo id: download it and hand back a run directory.

``tfslm push`` lays a run out as the repo root (the ``model/`` files plus
``config.yaml``, ``labels.json``, ``task.json``, ``metrics.json``, ``README.md``)
and a ``saved_model/`` subfolder. :func:`resolve_run` downloads such a repo with
``huggingface_hub.snapshot_download`` into the Hugging Face cache (``HF_HOME``;
the endpoint is ``HF_ENDPOINT``, the token ``HF_TOKEN`` or the stored login) and
returns a run-directory *view* of it beside the snapshot: symbolic links, the
model files under ``model/``, so :class:`tfslm.Predictor`, ``tfslm predict`` and
``tfslm demo`` take it as they take a local run. A path that exists is used as it is.

Example:
    >>> resolve_run("tester/tiny-topics")          # doctest: +SKIP
    PosixPath('/home/me/.cache/huggingface/hub/models--tester--tiny-topics/tfslm-run/3f2a...')
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from tfslm.errors import RemoteError, RunDirError, one_line
from tfslm.publish.secrets import scrub_text, secret_env_values
from tfslm.run_dir import MODEL_DIR, RUN_FILES, SAVED_MODEL_DIR

__all__ = ["is_repo_id", "resolve_run"]

_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
VIEW_DIR = "tfslm-run"


def is_repo_id(value: str | os.PathLike) -> bool:
    """True for ``owner/name`` (what ``tfslm push --repo-id`` takes), False for other strings.

    Example:
        >>> is_repo_id("tester/tiny-topics"), is_repo_id("runs/a/b")
        (True, False)
    """
    text = os.fspath(value)
    return bool(_REPO_ID.fullmatch(text)) and ".." not in text


def resolve_run(run: str | os.PathLike, *, revision: str | None = None, token: str | None = None) -> Path:
    """A local run directory for ``run``: the path itself, or a downloaded Hub repo ``owner/name``.

    A missing path that is not ``owner/name`` comes back as it is, for the command to
    report (:meth:`tfslm.RunDir.require`: "run directory not found").

    Raises:
        RunDirError: ``run`` is a file, or ``owner/name`` that is neither a download nor a run under
            an existing local ``owner/`` directory (``runs/typo``; exit 2).
        RemoteError: the download failed: no such repo or revision, refused, unreachable (exit 1).
    """
    path = Path(run)
    if path.exists():
        if not path.is_dir():
            raise RunDirError(f"{path}: is a file; pass a run directory written by `tfslm train`, or owner/name of a pushed run")
        return path
    if not is_repo_id(run):
        return path  # not a repo id: the command reports the missing run directory as it always has
    try:
        snapshot = _download(os.fspath(run), revision, token)
    except RemoteError as exc:
        if path.parent.is_dir():  # `runs/typo`: most likely a local run directory that is not there
            raise RunDirError(f"run directory {path} not found, and as a Hub repo id: {exc}; "
                              "pass a run directory written by `tfslm train`, or owner/name of a pushed run") from None
        raise
    return _run_view(snapshot)


def _download(repo_id: str, revision: str | None, token: str | None) -> Path:
    import huggingface_hub

    from tfslm.publish.hub import _resolve_endpoint

    endpoint = _resolve_endpoint(None)  # HF_ENDPOINT or the default, checked as `tfslm push` checks it
    try:
        path = huggingface_hub.snapshot_download(repo_id, revision=revision, token=token, endpoint=endpoint)
    except Exception as exc:  # noqa: BLE001 - huggingface_hub raises its HTTP, cache and network errors; one line each
        secrets = {token} - {None} | secret_env_values()
        reason = scrub_text(_reason(exc), secrets)
        raise RemoteError(f"{endpoint}: cannot download {repo_id}" + (f"@{revision}" if revision else "")
                          + f": {reason}") from None
    return Path(path)


def _reason(exc: BaseException) -> str:
    from huggingface_hub import errors

    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(exc, errors.RevisionNotFoundError):
        return "no such revision (branch, tag or commit); check --revision"
    if isinstance(exc, errors.RepositoryNotFoundError) or status == 404:
        return "repository not found (or private: set HF_TOKEN); check the repo id and HF_ENDPOINT"
    if status in (401, 403):
        return f"refused ({status}); set HF_TOKEN to a token that can read the repository"
    if isinstance(exc, errors.LocalEntryNotFoundError):
        return "the Hub is unreachable and the repo is not in the local cache; check the network and HF_ENDPOINT"
    return f"{type(exc).__name__}: {one_line(exc, 200)}"


def _run_view(snapshot: Path) -> Path:
    """``<repo cache>/tfslm-run/<commit>``: links to the run files, ``model/`` (the rest) and ``saved_model/``."""
    view = snapshot.parent.parent / VIEW_DIR / snapshot.name
    if view.is_dir():
        return view
    view.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".view-", dir=view.parent))
    try:
        (tmp / MODEL_DIR).mkdir()
        for entry in sorted(snapshot.iterdir()):
            if entry.name == SAVED_MODEL_DIR and entry.is_dir():
                (tmp / SAVED_MODEL_DIR).symlink_to(entry, target_is_directory=True)
            elif entry.is_file():
                target = tmp / entry.name if entry.name in RUN_FILES else tmp / MODEL_DIR / entry.name
                target.symlink_to(entry)
        os.replace(tmp, view)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not view.is_dir():  # another process won the race and made the same view
            raise
    return view
