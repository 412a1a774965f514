from pathlib import Path

import pytest
import yaml

from tfslm.config import apply_overrides, config_from_dict, load_config, resolve_path
from tfslm.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _minimal(**data):
    return {"data": {"train_file": "t.csv", **data}, "model": {"architecture": "bert"}}


def test_shipped_configs_load():
    for path in sorted((REPO / "configs").glob("*.yaml")):
        cfg = load_config(path)
        assert cfg.run_name


def test_quickstart_defaults_and_run_dir():
    cfg = load_config(REPO / "configs" / "quickstart.yaml")
    assert cfg.model.architecture == "bert" and cfg.model.checkpoint is None
    assert cfg.data.labels == ["negative", "neutral", "positive"]
    assert cfg.run_dir == Path("runs") / "quickstart"
    assert resolve_path(cfg.data.train_file).is_file()


def test_overrides_are_parsed_as_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_minimal()))
    cfg = load_config(path, ["training.epochs=3", "model.max_length=256", "data.labels=[a, b]", "training.learning_rate=2e-5", "run_name=x"])
    assert cfg.training.epochs == 3 and cfg.model.max_length == 256
    assert cfg.data.labels == ["a", "b"] and cfg.training.learning_rate == pytest.approx(2e-5)
    assert cfg.run_name == "x"


def test_run_name_defaults_to_file_stem(tmp_path):
    path = tmp_path / "my-exp.yaml"
    path.write_text(yaml.safe_dump(_minimal()))
    assert load_config(path).run_name == "my-exp"


def test_numeric_labels_become_names():
    cfg = config_from_dict(_minimal(labels=[0, 40, 80.0]))
    assert cfg.data.labels == ["0", "40", "80"]


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({**_minimal(), "trainig": {}}, "unknown top-level key 'trainig'; valid keys: data, model, training"),
        ({**_minimal(), "training": {"epoch": 3}}, "unknown key training.epoch; valid keys in 'training': epochs"),
        ({**_minimal(), "training": {"epochs": "three"}}, "training.epochs: expected an integer, got 'three'"),
        ({**_minimal(), "training": {"epochs": 0}}, "training.epochs: expected an integer >= 1"),
        ({**_minimal(), "training": {"schedule": "cosin"}}, "training.schedule: got 'cosin', expected one of: linear, cosine, polynomial, constant"),
        ({**_minimal(), "training": {"batch_size": True}}, "training.batch_size: expected an integer"),
        (_minimal(validation_split=1.5), "data.validation_split: expected a fraction"),
        (_minimal(on_bad_rows="drop"), "data.on_bad_rows: got 'drop', expected one of: error, skip"),
        (_minimal(labels=["a"]), "data.labels: expected at least 2"),
        (_minimal(labels=["a", "a", "b"]), "duplicate label names ['a']"),
        ({"data": {"train_file": "t.csv"}}, "set exactly one of model.checkpoint"),
        ({"model": {"architecture": "bert"}}, "data.train_file: required"),
        ({**_minimal(), "model": {"architecture": "gpt9"}}, "model.architecture: got 'gpt9', expected one of: bert, distilbert, electra"),
        ({**_minimal(), "model": {"architecture": "bert", "hidden_size": 30, "num_heads": 4}}, "must be a multiple of model.num_heads"),
        (_minimal(encoding="utf-99"), "data.encoding: unknown encoding 'utf-99'"),
    ],
)
def test_bad_values_name_the_key(values, fragment):
    with pytest.raises(ConfigError) as info:
        config_from_dict(values)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides({}, ["training.epochs"])
    with pytest.raises(ConfigError, match="unknown key"):
        apply_overrides({}, ["nosection.key=1"])


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  train_file: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(scalar)


def test_a_key_defined_twice_is_an_error_naming_both_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("data:\n  train_file: a.csv\nmodel:\n  architecture: bert\ndata:\n  label_column: y\n")
    with pytest.raises(ConfigError, match=r"'data' is defined twice \(lines 1 and 5\)"):
        load_config(path)
    nested = tmp_path / "nested.yaml"
    nested.write_text("data:\n  train_file: a.csv\n  train_file: b.csv\nmodel:\n  architecture: bert\n")
    with pytest.raises(ConfigError, match=r"'train_file' is defined twice \(lines 2 and 3\)"):
        load_config(nested)


def test_quiet_misconfigurations_are_caught():
    base = {"data": {"train_file": "t.csv"}, "model": {"architecture": "bert"}}
    bad_step = {**base, "data": {"train_file": "t.csv", "score_range": [0, 1000], "score_step": 30}, "model": {"architecture": "bert", "problem_type": "regression"}}
    with pytest.raises(ConfigError, match=r"data.score_step: 30 does not divide data.score_range 0..1000 .*e.g. 25"):
        config_from_dict(bad_step)
    good_step = {**bad_step, "data": {**bad_step["data"], "score_step": 40}}
    assert config_from_dict(good_step).data.score_step == 40
    same = {**base, "data": {"train_file": "t.csv", "validation_file": "./t.csv"}}
    with pytest.raises(ConfigError, match="data.validation_file: .* is data.train_file too"):
        config_from_dict(same)
