"""tfslm: fine-tune small language models as text classifiers and scorers with TensorFlow/Keras.

One straight path, each step a public function returning plain TF/Keras/datasets objects:

    import tfslm
    cfg = tfslm.load_config("configs/quickstart.yaml")
    data = tfslm.load_data(cfg.data)                       # DatasetDict + LabelSpace
    model, tokenizer = tfslm.build_model(cfg.model, data.labels, train_texts=data["train"]["text"])
    train_ds, val_ds = tfslm.to_tf_datasets(data, model, tokenizer, batch_size=16)
    # or inputs = tfslm.build_inputs(data, model, tokenizer, batch_size=16): the datasets with
    # steps per epoch, padding statistics and (long_text="chunk") the window-to-document index
    tfslm.compile_model(model, cfg.training, steps_per_epoch=len(train_ds))
    # several devices: dist = tfslm.resolve_strategy(cfg.training) first; build and compile under dist.scope()
    model.fit(train_ds, epochs=3,  # no validation_data: the callbacks score val_ds (val_loss too)
              callbacks=tfslm.default_callbacks("runs/mine", val_ds, data.labels, cfg.training))
"""

from tfslm import _env  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)

from tfslm._version import __version__  # noqa: E402

from tfslm.config import Config, DataConfig, ModelConfig, TrainingConfig, load_config  # noqa: E402
from tfslm.data.loading import TextData, load_data  # noqa: E402
from tfslm.data.readers import read_table, register_format  # noqa: E402
from tfslm.errors import ClusterError, ConfigError, DataError, ModelError, RemoteError, RunDirError, UserError  # noqa: E402
from tfslm.run_dir import RunDir  # noqa: E402
from tfslm.data.labels import LabelSpace  # noqa: E402
from tfslm.tasks.base import Task  # noqa: E402
from tfslm.tasks.metrics import accuracy, macro_f1, mean_absolute_error, quadratic_weighted_kappa  # noqa: E402

_LAZY = {
    # Heavy imports (TensorFlow, transformers) wait until first use.
    "build_model": ("backends.hf_tf", "build_model"),
    "save_pretrained": ("backends.hf_tf", "save_pretrained"),
    "text_classification_pipeline": ("backends.hf_tf", "text_classification_pipeline"),
    "get_backend": ("backends", "get_backend"),
    "use_backend": ("backends", "use_backend"),
    "Backend": ("backends.base", "Backend"),
    "build_inputs": ("inputs.pipeline", "build_inputs"),
    "InputData": ("inputs.input_data", "InputData"),
    "InputStatistics": ("inputs.input_data", "InputStatistics"),
    "to_tf_datasets": ("inputs.pipeline", "to_tf_datasets"),
    "to_tf_dataset": ("inputs.pipeline", "to_tf_dataset"),
    "prepare_tfrecords": ("inputs.tfrecord_writer", "prepare"),
    "load_prepared": ("inputs.tfrecord_reader", "load_prepared"),
    "PreparedData": ("inputs.tfrecord_reader", "PreparedData"),
    "tfrecord_dataset": ("inputs.tfrecord_reader", "tfrecord_dataset"),
    "compile_model": ("training.optimizer", "compile_model"),
    "DocumentModel": ("training.documents", "DocumentModel"),
    "create_optimizer_for": ("training.optimizer", "create_optimizer_for"),
    "default_callbacks": ("training.callbacks", "default_callbacks"),
    "ValidationMetrics": ("training.callbacks", "ValidationMetrics"),
    "TrainingBackup": ("training.backup", "TrainingBackup"),
    "evaluate_model": ("training.evaluation", "evaluate_model"),
    "fit_baseline": ("training.baseline", "fit_baseline"),
    "resolve_strategy": ("training.distribute", "resolve_strategy"),
    "Distribution": ("training.distribute", "Distribution"),
    "resolve_performance": ("training.performance", "resolve_performance"),
    "Performance": ("training.performance", "Performance"),
    "TrainingInterrupted": ("training.interrupt", "TrainingInterrupted"),
    "train": ("training.fit", "train"),
    "TrainResult": ("training.fit", "TrainResult"),
    "cross_validate": ("training.cross_validation", "cross_validate"),
    "zero_shot": ("training.zero_shot", "zero_shot"),
    "CVResult": ("training.cross_validation", "CVResult"),
    "Predictor": ("serving.predictor", "Predictor"),
    "predict_file": ("serving.predictor", "predict_file"),
    "evaluate_file": ("serving.predictor", "evaluate_file"),
    "export_saved_model": ("serving.saved_model", "export_saved_model"),
    "export_run": ("serving.saved_model", "export_run"),
    "write_model_card": ("publish.card", "write_model_card"),
    "push_run": ("publish.hub", "push_run"),
    "write_report": ("publish.report", "write_report"),
}

__all__ = [
    "__version__",
    "Config", "DataConfig", "ModelConfig", "TrainingConfig", "load_config",
    "TextData", "load_data", "read_table", "register_format", "LabelSpace", "Task", "RunDir",
    "accuracy", "macro_f1", "mean_absolute_error", "quadratic_weighted_kappa",
    "UserError", "ConfigError", "DataError", "ModelError", "RunDirError", "RemoteError", "ClusterError",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        value = getattr(importlib.import_module(f"tfslm.{module_name}"), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tfslm' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
