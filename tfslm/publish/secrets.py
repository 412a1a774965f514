"""Secret scrubbing, in one place: config copies, model cards, exception messages and log records.

Two kinds of secret are recognised: values under a key whose name contains
``token``, ``secret``, ``password`` or ``key`` (any case, any depth), and the
values of environment variables with such names (``HF_TOKEN``,
``OPENAI_API_KEY``); plus any ``Bearer`` credential in a text.

Example:
    >>> scrub_secrets({"hub": {"repo_id": "a/b", "token": "hf_x"}, "API_KEY": 1})
    {'hub': {'repo_id': 'a/b'}}
    >>> scrub_text("Authorization: Bearer hf_abc failed for hf_abc", ["hf_abc"])
    'Authorization: Bearer *** failed for ***'
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from typing import Any, Iterable, Iterator, Mapping

__all__ = ["SECRET_WORDS", "secret_env_values", "scrub_secrets", "scrub_text", "redact", "redacted_logs"]

SECRET_WORDS = ("token", "secret", "password", "key")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\"]+")
_MIN_SECRET_LENGTH = 6  # shorter values ("1", "yes") would scrub ordinary words


def _is_secret_name(name: Any) -> bool:
    return any(word in str(name).lower() for word in SECRET_WORDS)


def secret_env_values(environ: Mapping[str, str] | None = None) -> set[str]:
    """Values of environment variables whose names look secret (HF_TOKEN, ..._API_KEY)."""
    environ = os.environ if environ is None else environ
    return {value for name, value in environ.items() if _is_secret_name(name) and len(value) >= _MIN_SECRET_LENGTH}


def scrub_secrets(value: Any, _env: set[str] | None = None) -> Any:
    """Copy ``value`` without keys naming a secret (any depth) and without secret env values."""
    env = secret_env_values() if _env is None else _env

    def holds_secret(item: Any) -> bool:
        return isinstance(item, str) and any(secret in item for secret in env)

    if isinstance(value, Mapping):
        return {k: scrub_secrets(v, env) for k, v in value.items() if not _is_secret_name(k) and not holds_secret(v)}
    if isinstance(value, (list, tuple)):
        return [scrub_secrets(item, env) for item in value if not holds_secret(item)]
    return value


def scrub_text(text: str, secrets: Iterable[str], replacement: str = "***") -> str:
    """``text`` with each secret (and any bearer credential) replaced by ``replacement``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, replacement)
    return _BEARER.sub(lambda m: m.group(1) + replacement, text)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` scrubbed of the secrets and folded onto one line (for exception messages)."""
    return " ".join(scrub_text(text, secrets).split())


class _RedactFilter(logging.Filter):
    """Scrubs the secrets from a record's message and from its formatted traceback."""

    _formatter = logging.Formatter()

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def _needs_scrub(self, text: str) -> bool:
        return any(s in text for s in self._secrets) or bool(_BEARER.search(text))

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging
            message = None
        if message is not None and self._needs_scrub(message):
            record.msg, record.args = scrub_text(message, self._secrets), None
        if record.exc_info and record.exc_info[0] is not None:
            # A traceback prints the whole exception chain, whose messages may hold the secret.
            record.exc_text = scrub_text(self._formatter.formatException(record.exc_info), self._secrets)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = scrub_text(record.exc_text, self._secrets)
        if record.stack_info:
            record.stack_info = scrub_text(record.stack_info, self._secrets)
        return True


@contextlib.contextmanager
def redacted_logs(secrets: Iterable[str], loggers: Iterable[str] = ("tfslm", "huggingface_hub", "urllib3", "requests", "filelock")) -> Iterator[None]:
    """Scrub ``secrets`` from every record of the named loggers (and their children) while inside."""
    filt = _RedactFilter(secrets)
    roots = set(loggers)
    names = roots | {n for n in logging.root.manager.loggerDict if n.split(".")[0] in roots}
    attached = [logging.getLogger(n) for n in sorted(names)]
    for lg in attached:
        lg.addFilter(filt)
    try:
        yield
    finally:
        for lg in attached:
            lg.removeFilter(filt)
