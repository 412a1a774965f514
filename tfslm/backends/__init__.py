"""Model families behind one :class:`~tfslm.backends.base.Backend` seam, picked by name.

``transformers`` (:mod:`tfslm.backends.hf_tf`, Hugging Face's TF classes on
tf-keras) is the one there is. Adding a family is one module with a class
that satisfies :class:`~tfslm.backends.base.Backend`, plus one line in
``_REGISTRY`` (or a :func:`register_backend` call from outside tfslm).
The module is imported on first use, so naming a backend costs nothing.

Example:
    >>> from tfslm.backends import get_backend, available_backends
    >>> available_backends()
    ['transformers']
    >>> get_backend().name                       # doctest: +SKIP
    'transformers'
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from tfslm.backends.base import Backend, KerasInternals

__all__ = ["Backend", "KerasInternals", "get_backend", "register_backend", "available_backends", "DEFAULT_BACKEND"]

DEFAULT_BACKEND = "transformers"

# name -> "module:factory"; the factory is called once, its result kept.
_REGISTRY: dict[str, str | Callable[[], Any]] = {
    "transformers": "tfslm.backends.hf_tf:HFTFBackend",
}
_INSTANCES: dict[str, Any] = {}


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


def get_backend(name: str = DEFAULT_BACKEND) -> Backend:
    """The backend registered as ``name`` (one instance per process).

    Raises ValueError for a name nobody registered, listing the known ones.

    Example:
        >>> get_backend().name
        'transformers'
    """
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
