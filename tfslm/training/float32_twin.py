"""A float32 twin of a mixed-precision model, kept in step with it, so metrics score what is saved.

tfslm saves and serves a float32 model whatever it trained in
(:func:`tfslm.training.performance.float32_copy`). Scored on the bf16 training
model, the validation metrics would describe a different model: an output
near a rounding boundary (a score grid step, a class tie) decodes one way in
bf16 and the other in float32, so ``metrics.json`` would disagree with
``tfslm predict`` on the run it describes, and early stopping would pick the
epoch by numbers nobody is served. The twin is built once, outside any
``tf.distribute`` scope (plain variables, no collective set-up), and takes the
training model's weights each time it is asked for.

Example:
    >>> twin = Float32Twin(model)                  # doctest: +SKIP
    >>> scored = twin(model)                       # the twin, with model's current weights  # doctest: +SKIP
    >>> scored.compute_dtype                       # doctest: +SKIP
    'float32'
"""

from __future__ import annotations

import logging

__all__ = ["Float32Twin", "computes_in_float32"]

log = logging.getLogger("tfslm")


def computes_in_float32(model) -> bool:
    """Whether ``model`` (a window model, or the :class:`~tfslm.training.documents.DocumentModel` around one) computes in float32."""
    from tfslm.training.documents import window_model_of

    inner = window_model_of(model)
    return str(getattr(inner, "compute_dtype", "float32")) == "float32"


class Float32Twin:
    """``twin(model)``: a float32 model with ``model``'s current weights (``model`` itself when it is float32 already).

    Args:
        model: the training model; its twin is rebuilt by the backend (``float32_copy``), and a
            :class:`~tfslm.training.documents.DocumentModel` gets a DocumentModel around the twin of its window model.
    """

    def __init__(self, model):
        self.source = model
        self.model = None if computes_in_float32(model) else _build_twin(model)

    def __call__(self, model=None):
        model = self.source if model is None else model
        if self.model is None or model is not self.source:
            return model
        # Variables in the same order (the twin is the same class from the same config); assign in
        # place: the twin's traced forward functions stay valid, and nothing is rebuilt.
        for target, variable in zip(self.model.weights, model.weights):
            target.assign(variable)
        return self.model


def _build_twin(model):
    from tfslm.training.documents import DocumentModel, window_model_of
    from tfslm.training.performance import float32_copy

    twin = float32_copy(window_model_of(model))
    if isinstance(model, DocumentModel):
        twin = DocumentModel(twin, pooling=model.pooling)
    log.info("validation: scored on a float32 twin of the %s training model (the numbers the saved model serves)",
             window_model_of(model).compute_dtype)
    return twin
