"""tfslm: fine-tune small language models as text classifiers and scorers with TensorFlow/Keras.

One straight path, each step a public function returning plain TF/Keras/datasets objects:

    import tfslm
    cfg = tfslm.load_config("configs/quickstart.yaml")
    data = tfslm.load_data(cfg.data)                       # DatasetDict + LabelSpace
    model, tokenizer = tfslm.build_model(cfg.model, data.labels, train_texts=data["train"]["text"])
    train_ds, val_ds = tfslm.to_tf_datasets(data, model, tokenizer, batch_size=16)
    tfslm.compile_model(model, cfg.training, steps_per_epoch=len(train_ds))
    # several devices: dist = tfslm.resolve_strategy(cfg.training) first; build and compile under dist.scope()
    model.fit(train_ds, validation_data=val_ds, epochs=3,
              callbacks=tfslm.default_callbacks("runs/mine", val_ds, data.labels, cfg.training))
"""

from . import _env  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)

__version__ = "0.1.0"

from .config import Config, DataConfig, ModelConfig, TrainingConfig, load_config  # noqa: E402
from .data import TextData, load_data, read_table  # noqa: E402
from .errors import ConfigError, DataError, ModelError, RemoteError, RunDirError, UserError  # noqa: E402
from .labels import LabelSpace  # noqa: E402
from .tasks import Task  # noqa: E402
from .metrics import accuracy, macro_f1, mean_absolute_error, quadratic_weighted_kappa  # noqa: E402

_LAZY = {
    # Heavy imports (TensorFlow, transformers) wait until first use.
    "build_model": ("modeling", "build_model"),
    "save_pretrained": ("modeling", "save_pretrained"),
    "text_classification_pipeline": ("modeling", "text_classification_pipeline"),
    "to_tf_datasets": ("pipeline", "to_tf_datasets"),
    "to_tf_dataset": ("pipeline", "to_tf_dataset"),
    "prepare_tfrecords": ("tfrecords", "prepare"),
    "load_prepared": ("tfrecords", "load_prepared"),
    "tfrecord_dataset": ("tfrecords", "tfrecord_dataset"),
    "compile_model": ("optim", "compile_model"),
    "create_optimizer_for": ("optim", "create_optimizer_for"),
    "default_callbacks": ("callbacks", "default_callbacks"),
    "ValidationMetrics": ("callbacks", "ValidationMetrics"),
    "TrainingBackup": ("resume", "TrainingBackup"),
    "evaluate_model": ("evaluation", "evaluate_model"),
    "resolve_strategy": ("distribute", "resolve_strategy"),
    "train": ("trainer", "train"),
    "TrainResult": ("trainer", "TrainResult"),
    "Predictor": ("predict", "Predictor"),
    "predict_file": ("predict", "predict_file"),
    "evaluate_file": ("predict", "evaluate_file"),
    "export_saved_model": ("export", "export_saved_model"),
    "write_model_card": ("card", "write_model_card"),
    "push_run": ("hub", "push_run"),
    "write_report": ("report", "write_report"),
}

__all__ = [
    "__version__",
    "Config", "DataConfig", "ModelConfig", "TrainingConfig", "load_config",
    "TextData", "load_data", "read_table", "LabelSpace", "Task",
    "accuracy", "macro_f1", "mean_absolute_error", "quadratic_weighted_kappa",
    "UserError", "ConfigError", "DataError", "ModelError", "RunDirError", "RemoteError",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module_name}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tfslm' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
