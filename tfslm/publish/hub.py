"""Push a finished run directory to a Hugging Face Hub repository in one commit.

What goes up (paths in the repo):

* every file of ``<run>/model/`` at the repo root (``config.json``, ``tf_model.h5``,
  tokenizer files), so ``from_pretrained("<repo_id>")`` works;
* ``labels.json``, ``task.json``, ``README.md`` (the model card), ``metrics.json`` and
  ``config.yaml`` from the run directory, where present (they win over a
  file of the same name in ``model/``);
* ``<run>/saved_model/`` under ``saved_model/``.

A keras_hub run's ``model/`` is a KerasHub preset (``TextClassifier.from_preset("hf://<repo_id>")``)
with ``model.keras``; its ``task.json`` is KerasHub's, so the run's goes up as ``tfslm_task.json``.

``logs/``, ``checkpoints/`` and anything else in the run directory stay local,
as do hidden files (names starting with ``.``, e.g. leftovers of atomic writes).

All files go in ONE ``create_commit``, so the Hub shows the old revision or the
new one, never half a push; a failed push can simply be run again. The run
directory is only read.

Errors are one line, name the endpoint, and never contain the token:
:class:`HubAuthError` (no token, 401, 403) and :class:`HubRequestError` (other
4xx) are user errors (CLI exit 2); a 5xx, a refused connection or a timeout is
a :class:`~tfslm.errors.RemoteError` (exit 1).

Example:
    >>> push_run("runs/demo", "me/demo-classifier", private=True)   # doctest: +SKIP
    'https://huggingface.co/me/demo-classifier/commit/1f0c...'
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import re
import threading
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

from tfslm.errors import ConfigError, RemoteError, RunDirError, UserError
from tfslm.publish.secrets import redact, redacted_logs
from tfslm.run_dir import METRICS_FILE, MODEL_DIR, RUN_FILES, SAVED_MODEL_DIR, RunDir

__all__ = ["push_run", "check_push", "collect_run_files", "HubAuthError", "HubRequestError", "DEFAULT_ENDPOINT"]

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
# LFS uploads go through huggingface_hub's own retry loop (5 retries, 1-8 s apart by
# default); during a push it is shortened to these values so a dead storage host
# fails in seconds rather than minutes.
LFS_MAX_RETRIES = 2
LFS_RETRY_WAIT_S = 0.5
LFS_RETRY_MAX_WAIT_S = 2.0

_REPO_PART = re.compile(r"^(?!.*(--|\.\.))[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")
_HTTP_LOCK = threading.Lock()


class HubAuthError(UserError):
    """No token, or the Hub rejected it (401) or refused the write (403)."""


class HubRequestError(UserError, ValueError):
    """The Hub refused the request for a reason the user can fix (another 4xx)."""


# --------------------------------------------------------------------------- files


def collect_run_files(run_dir: str | os.PathLike) -> dict[str, Path]:
    """Map each repo path to the local file a push of ``run_dir`` uploads.

    Raises:
        RunDirError: the run directory or its ``model/`` is missing or empty.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise RunDirError(
            f"run directory {run}: does not exist or is not a directory; "
            "pass the directory a training run wrote (runs/<name>)"
        )
    model = run / MODEL_DIR
    if not model.is_dir():
        raise RunDirError(
            f"{model} is missing: the run did not save a model; finish or re-run training, "
            "then push that run directory"
        )
    files: dict[str, Path] = {}
    for path in _walk(model):
        files[path.relative_to(model).as_posix()] = path
    if not files:
        raise RunDirError(f"{model}: is empty; re-run training so the model is saved, then push again")
    if not RunDir(run).is_finished():
        raise RunDirError(
            f"{run}: the run did not finish (no {METRICS_FILE}), so its model may not be the best epoch's; "
            "rerun the same `tfslm train` command to resume it, then push"
        )
    keras_hub_preset = (model / "model.keras").is_file()  # a keras_hub run: model/ is a KerasHub preset
    for name in RUN_FILES:
        path = run / name
        if path.is_file():
            if keras_hub_preset and name == "task.json":  # the preset's task.json is what from_preset reads
                files["tfslm_task.json"] = path
                continue
            if name in files:
                logger.info("%s: the run's %s replaces model/%s in the push", run, name, name)
            files[name] = path
    saved = run / SAVED_MODEL_DIR
    if saved.is_dir():
        for path in _walk(saved):
            files["saved_model/" + path.relative_to(saved).as_posix()] = path
    return files


def _walk(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file():
            yield path


# --------------------------------------------------------------------------- arguments


def _resolve_endpoint(endpoint: str | None) -> str:
    value = endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"Hub endpoint {value!r}: not an http(s) URL; pass e.g. {DEFAULT_ENDPOINT} "
            "(or set HF_ENDPOINT to one)"
        )
    return value.rstrip("/")


def _check_repo_id(repo_id: object) -> str:
    if isinstance(repo_id, str) and repo_id.count("/") == 1:
        owner, name = repo_id.split("/")
        if _REPO_PART.match(owner) and _REPO_PART.match(name) and not name.endswith(".git"):
            return repo_id
    raise ConfigError(
        f"Hub repo id {repo_id!r}: invalid, expected 'owner/name' using letters, digits, '-', '_' "
        "or '.' (no '--' or '..', at most 96 characters each); use e.g. me/sentiment-tiny "
        "(--repo-id of `tfslm push`, hub.repo_id of a train config)"
    )


def _resolve_token(token: str | None) -> str:
    value = (token or os.environ.get("HF_TOKEN") or "").strip()
    if not value:
        import huggingface_hub

        value = (huggingface_hub.get_token() or "").strip()
    if not value:
        raise HubAuthError(
            "HF_TOKEN: no Hugging Face token (HF_TOKEN is unset and there is no stored login); "
            "set HF_TOKEN to a token with write access, or run `huggingface-cli login`"
        )
    return value


# --------------------------------------------------------------------------- HTTP bounds


def _cap_timeout(requested: object, bound: float) -> object:
    if requested is None:
        return bound
    if isinstance(requested, tuple):
        return tuple(bound if t is None else min(float(t), bound) for t in requested)
    try:
        return min(float(requested), bound)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return bound


def _bounded_adapter(inner, bound: float):
    import requests

    class _BoundedTimeoutAdapter(requests.adapters.BaseAdapter):
        """Delegates to ``inner`` with every connect/read timeout capped at ``bound``."""

        def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
            return inner.send(request, stream=stream, timeout=_cap_timeout(timeout, bound),
                              verify=verify, cert=cert, proxies=proxies)

        def close(self):
            inner.close()

    return _BoundedTimeoutAdapter()


@contextlib.contextmanager
def _hub_client(endpoint: str, timeout: float) -> Iterator[None]:
    """Process-wide huggingface_hub settings for the length of one push, restored after.

    * Every request is capped at ``timeout`` s: huggingface_hub 0.36 makes most
      calls with no timeout at all, and takes its ``requests`` sessions from a
      process-wide factory (``configure_http_backend``), so that factory is
      wrapped (its adapters keep their behaviour, e.g. proxies or offline mode,
      but get the cap).
    * LFS uploads retry ``LFS_MAX_RETRIES`` times, 0.5-2 s apart, not 5 times 1-8 s.
    * ``constants.ENDPOINT`` is the push's endpoint: ``CommitInfo`` parses the
      returned commit URL against it (not against ``HfApi.endpoint``), and fails
      after the commit landed for any endpoint other than the one ``HF_ENDPOINT``
      named when huggingface_hub was imported.

    Pushes in one process are serialised by a lock.
    """
    from huggingface_hub import configure_http_backend, constants, lfs
    from huggingface_hub.utils import _http

    with _HTTP_LOCK:
        previous = getattr(_http, "_GLOBAL_BACKEND_FACTORY", _http._default_backend_factory)
        previous_backoff = getattr(lfs, "http_backoff", None)
        previous_endpoint = constants.ENDPOINT

        def factory():
            session = previous()
            for prefix, adapter in list(session.adapters.items()):
                session.mount(prefix, _bounded_adapter(adapter, timeout))
            return session

        configure_http_backend(backend_factory=factory)
        constants.ENDPOINT = endpoint
        if previous_backoff is not None:
            lfs.http_backoff = functools.partial(
                previous_backoff,
                max_retries=LFS_MAX_RETRIES,
                base_wait_time=LFS_RETRY_WAIT_S,
                max_wait_time=LFS_RETRY_MAX_WAIT_S,
            )
        try:
            yield
        finally:
            constants.ENDPOINT = previous_endpoint
            if previous_backoff is not None:
                lfs.http_backoff = previous_backoff
            configure_http_backend(backend_factory=previous)


# --------------------------------------------------------------------------- errors


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _where(request) -> str:
    if request is None:
        return ""
    path = urlsplit(getattr(request, "url", "") or "").path
    method = getattr(request, "method", None) or ""
    return f" on {method} {path}".rstrip() if path else ""


def _server_message(exc: BaseException, response) -> str:
    """The Hub's own one-line reason (``X-Error-Message``, else the JSON ``error``), shortened."""
    message = None
    if response is not None:
        message = response.headers.get("X-Error-Message")
        if not message:
            try:
                data = response.json()
                message = data.get("error") if isinstance(data, dict) else None
            except ValueError:
                message = None
    if not message:
        message = getattr(exc, "server_message", None)
    message = " ".join(str(message or "").split())
    return message if len(message) <= 200 else message[:197] + "..."


def _translate(exc: BaseException, *, endpoint: str, repo_id: str, token: str, timeout: float) -> Exception:
    """Turn anything a push raised into one tfslm error with a one-line, token-free message."""
    import requests
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    hub = f"Hub at {endpoint}"
    for err in _chain(exc):
        response = getattr(err, "response", None)
        if isinstance(err, (HfHubHTTPError, requests.HTTPError)) and response is not None:
            status = response.status_code
            where = _where(response.request)
            detail = _server_message(err, response)
            said = f": {detail}" if detail else ""
            if status == 401:
                return HubAuthError(redact(
                    f"{hub}: rejected the token (HTTP 401{where}){said}; set HF_TOKEN to a valid token "
                    "or run `huggingface-cli login` again", [token]))
            if status == 403:
                return HubAuthError(redact(
                    f"{hub}: refused the write to {repo_id!r} (HTTP 403{where}){said}; the token has no write "
                    "access there: use a write token or a namespace you own", [token]))
            if status >= 500:
                return RemoteError(redact(
                    f"{hub} failed with HTTP {status}{where}{said}; nothing was committed, retry later", [token]))
            return HubRequestError(redact(
                f"{hub}: refused the push with HTTP {status}{where}{said}; fix what the Hub's answer names "
                "(the repo id, the revision or a file), then push again", [token]))
        if isinstance(err, OfflineModeIsEnabled):
            return HubRequestError(f"{hub}: cannot push, offline mode is on; unset HF_HUB_OFFLINE, then push again")
        if isinstance(err, requests.Timeout):
            return RemoteError(redact(
                f"{hub} did not answer within {timeout:g} s{_where(err.request)} (timed out); "
                "nothing was committed, retry later or raise the timeout", [token]))
        if isinstance(err, requests.ConnectionError):
            text = str(err)
            cause = "connection refused" if "refused" in text.lower() else "connection failed"
            if "Name or service not known" in text or "nodename nor servname" in text:
                cause = "host name not found"
            return RemoteError(redact(f"cannot reach {hub}: {cause}{_where(err.request)}; check the endpoint "
                                       "and your network, then retry", [token]))
        if isinstance(err, requests.RequestException):
            return RemoteError(redact(f"request to {hub} failed: {type(err).__name__}: {err}", [token]))
    if isinstance(exc, ValueError) and "metadata in README.md" in str(exc):
        return HubRequestError(redact(
            f"{hub}: rejected README.md metadata: {exc}; fix the field it names (the card's metadata "
            "comes from the run's config.yaml, labels.json and metrics.json), then push again", [token]))
    if isinstance(exc, (ValueError, KeyError, RuntimeError)):
        return RemoteError(redact(f"{hub} sent an unexpected answer: {type(exc).__name__}: {exc}", [token]))
    return RemoteError(redact(f"push to {hub} failed: {type(exc).__name__}: {exc}", [token]))


# --------------------------------------------------------------------------- push


def check_push(
    repo_id: str, *, token: str | None = None, endpoint: str | None = None, timeout: float = 10.0, verify: bool = True,
) -> str:
    """Check before training what a push after it needs, so a missing token does not cost a whole run.

    The repo id's form and a token's presence are checked offline; with
    ``verify``, the endpoint is asked who the token belongs to (``whoami``): a
    rejected token is an error, an unreachable endpoint only a warning (the
    push after training retries it). Returns the token's user name, or "" when unverified.

    Example:
        >>> check_push("me/sentiment-tiny", token="hf_x", endpoint="http://127.0.0.1:8000", verify=False)
        ''
    """
    repo_id = _check_repo_id(repo_id)
    url = _resolve_endpoint(endpoint)
    secret = _resolve_token(token)
    if not verify:
        return ""
    from huggingface_hub import HfApi

    with redacted_logs([secret]):
        try:
            with _hub_client(url, float(timeout)):
                return str(HfApi(endpoint=url, token=secret).whoami().get("name") or "")
        except Exception as exc:  # noqa: BLE001 - sorted below
            failure = _translate(exc, endpoint=url, repo_id=repo_id, token=secret, timeout=float(timeout))
    if isinstance(failure, HubAuthError):
        raise failure
    logger.warning("hub: could not check the token before training (%s); the push after training will try again", failure)
    return ""


def push_run(
    run_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    timeout: float = 30.0,
) -> str:
    """Upload a run directory to a Hub model repo in ONE commit; return the commit URL.

    The URL ends in ``/commit/<oid>``. The repo is created if missing (``private``
    only applies then); ``revision`` names a branch, created from ``main`` if missing.
    ``endpoint`` defaults to ``$HF_ENDPOINT``, then ``https://huggingface.co``;
    ``token`` to ``$HF_TOKEN``, then the stored ``huggingface-cli login`` token.
    ``timeout`` caps each HTTP connect/read, in seconds.

    Raises:
        RunDirError: the run directory or its ``model/`` is missing.
        ConfigError: bad ``repo_id``, ``endpoint`` or ``timeout``.
        HubAuthError: no token, token rejected (401), no write access (403).
        HubRequestError: another 4xx answer.
        RemoteError: 5xx, refused connection, timeout, malformed answer.

    Example:
        >>> push_run("runs/quickstart", "me/reviews-tiny", private=True)   # doctest: +SKIP
        'https://huggingface.co/me/reviews-tiny/commit/1f0c...'
    """
    files = collect_run_files(run_dir)
    repo_id = _check_repo_id(repo_id)
    url = _resolve_endpoint(endpoint)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (
        math.isfinite(timeout) and timeout > 0
    ):
        raise ConfigError(f"push timeout: expected a positive number of seconds, got {timeout!r}; pass e.g. timeout=30 (the default)")
    if revision is not None and (not isinstance(revision, str) or not revision.strip()):
        raise ConfigError(
            f"--revision / hub.revision: expected a branch name, got {revision!r}; use e.g. main, or leave it out to push to main"
        )
    secret = _resolve_token(token)
    message = commit_message or f"Upload tfslm run {Path(run_dir).resolve().name}"

    from huggingface_hub import CommitOperationAdd, HfApi

    import tfslm

    try:  # hashes every file (sha256), so a file that vanished shows up here
        operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(f)) for p, f in files.items()]
    except (OSError, ValueError) as exc:
        raise RunDirError(
            f"{run_dir}: cannot read it for the push ({exc}); make the run's files readable "
            "(and let a run still writing them finish), then push again"
        ) from None

    failure: Exception
    with redacted_logs([secret]):
        try:
            api = HfApi(endpoint=url, token=secret, library_name="tfslm",
                        library_version=getattr(tfslm, "__version__", None))
            logger.info("pushing %d files from %s to %s/%s", len(operations), run_dir, url, repo_id)
            with _hub_client(url, float(timeout)):
                api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
                if revision is not None and revision != "main":
                    api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
                info = api.create_commit(
                    repo_id, operations, commit_message=message, revision=revision, repo_type="model",
                )
            commit_url = str(info.commit_url)
            logger.info("pushed %s to %s (commit %s)", run_dir, url, info.oid)
            return commit_url
        except Exception as exc:  # noqa: BLE001 - every failure becomes one clean tfslm error
            failure = _translate(exc, endpoint=url, repo_id=repo_id, token=secret, timeout=float(timeout))
    # Raised outside the except block so the original exception (whose message or
    # attached request could carry the token) is not chained into the traceback.
    logger.debug("push failed: %s", failure)
    raise failure
