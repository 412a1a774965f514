"""Model families behind one :class:`~tfslm.backends.base.Backend` seam, picked by name.

``transformers`` (:mod:`tfslm.backends.hf_tf`, Hugging Face's TF classes on
tf-keras) and ``keras_hub`` (:mod:`tfslm.backends.keras_hub`, KerasHub on
Keras 3). ``model.backend`` picks one per command (:func:`use_backend`;
``auto`` = transformers while it is installed with its TF classes, else
keras_hub); ``get_backend()`` without a name is that active one, and
:func:`keras_module` is the Keras its models use (``tf_keras`` or
``keras``), so callbacks, losses and metrics are made from the right one.
Adding a family is one module with a class
that satisfies :class:`~tfslm.backends.base.Backend`, plus one line in
``_REGISTRY`` (or a :func:`register_backend` call from outside tfslm).
The module is imported on first use, so naming a backend costs nothing.

Example:
    >>> from tfslm.backends import get_backend, available_backends
    >>> available_backends()
    ['keras_hub', 'transformers']
    >>> get_backend().name                       # doctest: +SKIP
    'transformers'
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Callable

from tfslm.backends.base import Backend, KerasInternals

__all__ = ["Backend", "KerasInternals", "get_backend", "register_backend", "available_backends", "DEFAULT_BACKEND",
           "resolve_backend_name", "use_backend", "active_backend_name", "keras_module"]

log = logging.getLogger("tfslm")

DEFAULT_BACKEND = "transformers"

# name -> "module:factory"; the factory is called once, its result kept.
_REGISTRY: dict[str, str | Callable[[], Any]] = {
    "transformers": "tfslm.backends.hf_tf:HFTFBackend",
    "keras_hub": "tfslm.backends.keras_hub:KerasHubBackend",
}
_INSTANCES: dict[str, Any] = {}
_ACTIVE: list[str] = []  # the name use_backend chose; empty: "auto", resolved on first use
_ANNOUNCED: list[str] = []  # the backend last logged


def transformers_tf_status() -> str | None:
    """None when transformers is importable with its TF classes (a 4.x release), else why not (for the log).

    Asked of the import system and the installed metadata only: importing
    transformers takes seconds, and an import blocker (a test) must count as absent.
    """
    import importlib.metadata
    import importlib.util

    try:
        if importlib.util.find_spec("transformers") is None:
            return "transformers is not installed"
        version = importlib.metadata.version("transformers")
    except (ImportError, ValueError, importlib.metadata.PackageNotFoundError):
        return "transformers is not importable"
    if int(version.split(".")[0]) >= 5:
        return f"transformers {version} has no TF classes (removed in v5)"
    return None


def resolve_backend_name(name: str | None = "auto") -> tuple[str, str]:
    """``(backend name, why)`` for a ``model.backend`` value; ``auto`` = transformers while it has TF classes.

    Example:
        >>> resolve_backend_name("keras_hub")
        ('keras_hub', 'model.backend: keras_hub')
    """
    name = name or "auto"
    if name != "auto":
        return name, f"model.backend: {name}"
    missing = transformers_tf_status()
    if missing is None:
        return "transformers", "auto: transformers is installed with its TF classes"
    return "keras_hub", f"auto: {missing}"


def use_backend(name: str | None = "auto", *, announce: bool = True) -> Backend:
    """Make ``name`` (a ``model.backend`` value) the backend ``get_backend()`` returns; log which and why.

    Example:
        >>> use_backend("transformers", announce=False).name      # doctest: +SKIP
        'transformers'
    """
    resolved, why = resolve_backend_name(name)
    backend = get_backend(resolved)
    _ACTIVE[:] = [resolved]
    if announce and _ANNOUNCED[:1] != [resolved]:  # once per command, and again only when it changes
        _ANNOUNCED[:] = [resolved]
        log.info("backend: %s (%s)", resolved, why)
    return backend


def active_backend_name() -> str:
    """The name ``get_backend()`` answers to now (``auto`` resolved on first use)."""
    if not _ACTIVE:
        _ACTIVE.append(resolve_backend_name("auto")[0])
    return _ACTIVE[0]


def keras_module(backend: Any = None):
    """The Keras module the active backend's models use: ``tf_keras`` (transformers) or Keras 3 (keras_hub).

    Callbacks, losses, metrics, policies and seeds come from it, so a model never meets another Keras's objects.

    Example:
        >>> keras_module().__name__                              # doctest: +SKIP
        'tf_keras'
    """
    return (backend or get_backend()).keras


def available_backends() -> list[str]:
    """The registered backend names."""
    return sorted(_REGISTRY)


def register_backend(name: str, factory: str | Callable[[], Any]) -> None:
    """Register a backend: ``factory`` is a zero-argument callable or ``"module:attribute"`` naming one.

    Example:
        >>> register_backend("mine", "my_package.backend:MyBackend")   # doctest: +SKIP
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_backend: name must be a non-empty string, got {name!r}")
    _REGISTRY[name] = factory
    _INSTANCES.pop(name, None)


def get_backend(name: str | None = None) -> Backend:
    """The backend registered as ``name`` (one instance per process); no name: the active one (:func:`use_backend`).

    Raises ValueError for a name nobody registered, listing the known ones.

    Example:
        >>> get_backend().name
        'transformers'
    """
    if name is None:
        name = active_backend_name()
    backend = _INSTANCES.get(name)
    if backend is not None:
        return backend
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ValueError(
            f"backend: unknown {name!r}; registered backends: {', '.join(available_backends())}; "
            "use one of them, or register_backend(name, factory) first"
        )
    if isinstance(factory, str):
        module_name, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
    backend = factory()
    _INSTANCES[name] = backend
    return backend
