"""What tfslm needs from a model family: the :class:`Backend` protocol.

Everything outside ``tfslm/backends/`` reaches models, tokenizers and the
framework's private corners through one of these methods, so a second
family (a KerasHub backend, say) is one new module registered in
:mod:`tfslm.backends`, not edits across the package.

A model here is a built ``tf.keras`` classifier whose call takes a dict of
int32 ``[batch, length]`` features (``input_ids``, ``attention_mask`` and
maybe ``token_type_ids``) and returns logits ``[batch, outputs]`` or an
object carrying them; a tokenizer is callable on a list of texts like a
Hugging Face fast tokenizer (``input_ids``, ``pad_token_id``,
``model_input_names``, ``save_pretrained``).

Example:
    >>> from tfslm.backends import get_backend
    >>> backend = get_backend()                                      # doctest: +SKIP
    >>> model, tokenizer = backend.build_model(cfg.model, data.labels, train_texts=texts)  # doctest: +SKIP
    >>> logits = backend.forward_fn(model)(features)                 # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence, runtime_checkable

__all__ = ["Backend", "KerasInternals"]


@runtime_checkable
class KerasInternals(Protocol):
    """The framework-private state tfslm's callbacks must read or write (see the implementation for why)."""

    step_backups: bool  # whether fit can resume mid-epoch from a step backup
    step_backups_missing: str  # why not, in a few words ("" when it can)

    def latest_backup(self, backup_dir: str | os.PathLike) -> str | None: ...
    def backup_counters(self, checkpoint_path: str) -> tuple[int, int]: ...
    def restore_backup(self, callback: Any, logs: Any = None) -> bool: ...
    def fit_ended(self, model: Any) -> None: ...
    def initial_counters(self, model: Any, steps_per_epoch: int | None) -> tuple[int, int]: ...
    def set_backup_position(self, model: Any, *, epoch: int | None = None, step: int | None = None) -> None: ...
    def write_backup(self, callback: Any, epoch: int, batch: int = 0) -> None: ...
    def current_epoch(self, callback: Any) -> int: ...
    def is_improvement(self, callback: Any, monitor_value: Any, reference_value: Any) -> bool: ...


@runtime_checkable
class Backend(Protocol):
    """A model family: how to build, feed, train, save and load its models."""

    name: str
    keras_internals: KerasInternals
    keras: Any  # the Keras module its models use (tf_keras, or Keras 3): callbacks, losses and metrics come from it

    # -- environment
    def import_libraries(self) -> None:
        """Import the family's libraries now (``tfslm`` calls it with native start-up logs silenced)."""

    # -- models and tokenizers
    def build_model(self, model_cfg: Any, labels: Any, *, train_texts: Iterable[str] | None = None,
                    task: Any = None, tokenizer: Any = None) -> tuple[Any, Any]:
        """``(model, tokenizer)`` for a ``model`` config section: a checkpoint with a fresh head, or a new model."""

    def build_tokenizer(self, model_cfg: Any, *, train_texts: Iterable[str] | None = None) -> Any:
        """The tokenizer :meth:`build_model` would return, without the model."""

    def load_tokenizer(self, path: str | os.PathLike) -> Any:
        """A tokenizer saved in a local directory."""

    def save_pretrained(self, model: Any, tokenizer: Any, path: str | os.PathLike) -> Path:
        """Save model and tokenizer into ``path`` (atomically: a crash never leaves half a model)."""

    def load_pretrained(self, path: str | os.PathLike) -> tuple[Any, Any]:
        """Load ``(model, tokenizer)`` written by :meth:`save_pretrained`."""

    def text_classification_pipeline(self, model_dir: str | os.PathLike, **kwargs: Any) -> Any:
        """The family's own text-classification pipeline over a saved model directory."""

    # -- feeding and calling a model
    def input_names(self, model: Any, tokenizer: Any = None) -> list[str]:
        """The features ``model`` takes (from ``input_ids``, ``attention_mask``, ``token_type_ids``)."""

    def ensure_built(self, model: Any) -> Any:
        """Build ``model``'s variables (a call on dummy inputs) if they are not yet; returns it."""

    def prepare_fit(self, model: Any, train_dataset: Any) -> None:
        """Just before ``model.fit(train_dataset)``: the family's workarounds for upstream bugs in ``fit``, if any."""

    def output_dense(self, model: Any) -> Any:
        """The head's output ``Dense`` (one unit per output), or None when the model has none."""

    def set_output_bias(self, model: Any, values: Any) -> bool:
        """Set the head's output bias (one value per output); False when the model has no such layer."""

    def logits(self, output: Any) -> Any:
        """The logits tensor of a model call's output."""

    def forward_fn(self, model: Any) -> Callable[[dict], Any]:
        """One traced inference function ``features -> logits`` per model, reused across calls."""

    def prepare_tf_dataset(self, model: Any, dataset: Any, tokenizer: Any, *, batch_size: int,
                           shuffle: bool = False) -> Any:
        """A tokenized ``datasets.Dataset`` as a ``tf.data.Dataset``, each batch padded by the family's collator."""

    # -- training
    def create_optimizer(self, *, learning_rate: float, total_steps: int, warmup_steps: int,
                         weight_decay: float, schedule: str) -> tuple[Any, Any]:
        """``(optimizer, learning-rate schedule)``: warmup, then ``schedule`` (linear, polynomial, cosine, constant)."""

    def float32_copy(self, model: Any) -> Any:
        """A float32-policy twin of ``model`` with the same weights."""

    def max_length_limit(self, config: Any, tokenizer: Any = None) -> int | None:
        """The longest sequence a model config (and tokenizer) can take, or None."""


def missing_methods(backend: Any, names: Sequence[str] | None = None) -> list[str]:
    """The :class:`Backend` members ``backend`` lacks (for a registry check and tests)."""
    wanted = names or [n for n in dir(Backend) if not n.startswith("_")] + ["name", "keras_internals", "keras"]
    return sorted({n for n in wanted if not hasattr(backend, n)})
