"""Every layer of a model, nested ones included, on tf-keras and on Keras 3.

Example:
    >>> [type(layer).__name__ for layer in layers_of(model)][:2]   # doctest: +SKIP
    ['TFBertForSequenceClassification', 'TFBertMainLayer']
"""

from __future__ import annotations

__all__ = ["layers_of"]


def layers_of(model) -> list:
    """The layers inside ``model`` at any depth (on Keras 3 with ``model`` itself): what the in-place kernel swaps walk."""
    # tf-keras models are tf.Modules (``submodules``); Keras 3 ones are not, and list theirs with
    # ``_flatten_layers`` (no public equivalent walks nested functional models).
    submodules = getattr(model, "submodules", None)
    if submodules is not None:
        return list(submodules)
    flatten = getattr(model, "_flatten_layers", None)
    return list(flatten(include_self=True, recursive=True)) if flatten is not None else []
