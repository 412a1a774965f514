import sys

import numpy as np
import pytest

from conftest import MINILM, make_rows, needs_minilm
from tfslm.config import ModelConfig
from tfslm.errors import ModelError
from tfslm.data.labels import LabelSpace

LABELS = LabelSpace.infer(["food", "science", "sports"])
TEXTS = [r["text"] for r in make_rows(60)]


def test_wordpiece_tokenizer_trained_on_texts():
    from tfslm.backends.hf_tf import train_wordpiece_tokenizer

    tok = train_wordpiece_tokenizer(TEXTS + ["Café à la crème"], vocab_size=400, lowercase=True)
    ids = tok("Goal! CAFÉ")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.convert_ids_to_tokens(ids)[1:3] == ["goal", "!"]
    assert "cafe" in tok.decode(ids)  # lower-cased, accents stripped as BERT does
    assert tok.pad_token == "[PAD]" and len(tok) <= 400


@pytest.mark.parametrize("architecture", ["bert", "distilbert", "electra"])
def test_from_scratch_architectures(architecture):
    from tfslm.backends.hf_tf import build_model

    cfg = ModelConfig(architecture=architecture, max_length=32, vocab_size=400, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
    model, tok = build_model(cfg, LABELS, train_texts=TEXTS)
    assert model.config.num_labels == 3 and model.config.id2label[2] == "sports"
    enc = tok(TEXTS[:4], padding=True, return_tensors="tf")
    logits = model(dict(enc)).logits
    assert tuple(logits.shape) == (4, 3)


def test_from_scratch_needs_texts():
    from tfslm.backends.hf_tf import build_model

    with pytest.raises(ValueError, match="needs train_texts"):
        build_model(ModelConfig(architecture="bert"), LABELS)


def test_local_tf_checkpoint_roundtrip(tmp_path):
    from tfslm.backends.hf_tf import build_model, load_checkpoint, load_pretrained_dir, save_pretrained

    cfg = ModelConfig(architecture="bert", max_length=32, vocab_size=400, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
    model, tok = build_model(cfg, LABELS, train_texts=TEXTS)
    save_pretrained(model, tok, tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "tf_model.h5").is_file() and (tmp_path / "ckpt" / "vocab.txt").is_file()
    assert not list(tmp_path.glob(".ckpt.*"))  # no temporary sibling left behind
    again, _ = load_pretrained_dir(tmp_path / "ckpt")
    np.testing.assert_allclose(again.get_weights()[0], model.get_weights()[0])
    # As a checkpoint for a new task: body kept, new 2-label head.
    other, _ = load_checkpoint(str(tmp_path / "ckpt"), LabelSpace.infer(["a", "b"]), max_length=32)
    assert other.config.num_labels == 2
    np.testing.assert_allclose(other.bert.embeddings.weights[0].numpy(), model.bert.embeddings.weights[0].numpy())


def test_missing_checkpoint_directory():
    from tfslm.backends.hf_tf import load_checkpoint

    with pytest.raises(ModelError, match="directory './no/such/dir' not found"):
        load_checkpoint("./no/such/dir", LABELS)


def test_hub_id_offline_is_a_clear_error():
    from tfslm.backends.hf_tf import load_checkpoint

    with pytest.raises(ModelError, match="cannot get 'someone/not-cached-model' from the Hub"):
        load_checkpoint("someone/not-cached-model", LABELS)


@pytest.mark.slow
@needs_minilm
def test_pytorch_safetensors_load_without_torch():
    """The real MiniLM checkpoint is PyTorch safetensors; it must load with no torch installed."""
    from safetensors.numpy import load_file

    from tfslm.backends.hf_tf import load_checkpoint

    model, tok = load_checkpoint(str(MINILM), LABELS, max_length=256)
    assert "torch" not in sys.modules
    state = load_file(str(MINILM / "model.safetensors"))
    word = [w for w in model.weights if "word_embeddings" in w.name][0].numpy()
    np.testing.assert_array_equal(word, state["embeddings.word_embeddings.weight"])
    query = [w for w in model.weights if "layer_._0/attention/self/query/kernel" in w.name][0].numpy()
    np.testing.assert_allclose(query, state["encoder.layer.0.attention.self.query.weight"].T)
    assert model.config.id2label == {0: "food", 1: "science", 2: "sports"}
    assert tok("hello")["input_ids"][0] == tok.cls_token_id


@needs_minilm
def test_max_length_above_model_limit():
    from tfslm.backends.hf_tf import load_checkpoint

    with pytest.raises(ModelError, match=r"model.max_length: 1024 exceeds the 512 tokens .* set model.max_length <= 512"):
        load_checkpoint(str(MINILM), LABELS, max_length=1024)


def test_upstream_pipeline_needs_dtype_none(tmp_path):
    """transformers 4.57 bug: pipeline(framework="tf") fails without torch unless dtype=None."""
    pytest.importorskip("transformers")
    try:
        import torch  # noqa: F401

        pytest.skip("torch installed: the upstream bug does not show")
    except ImportError:
        pass
    import transformers

    from tfslm.backends.hf_tf import build_model, save_pretrained, text_classification_pipeline

    cfg = ModelConfig(architecture="bert", max_length=32, vocab_size=400, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
    model, tok = build_model(cfg, LABELS, train_texts=TEXTS)
    save_pretrained(model, tok, tmp_path / "m")
    with pytest.raises(NameError, match="torch"):
        transformers.pipeline("text-classification", model=str(tmp_path / "m"), framework="tf")
    result = text_classification_pipeline(tmp_path / "m")("the coach saw a goal")
    assert result[0]["label"] in LABELS.names


@pytest.mark.slow
@needs_minilm
def test_truncated_or_mismatched_safetensors_are_one_line_user_errors(tmp_path):
    import json
    import shutil

    from tfslm.backends.hf_tf import load_checkpoint

    truncated = tmp_path / "truncated"
    shutil.copytree(MINILM, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:4096])
    with pytest.raises(ModelError, match=r"model.safetensors: not a readable safetensors file .*download the checkpoint again"):
        load_checkpoint(str(truncated), LABELS)

    other = tmp_path / "other-config"
    shutil.copytree(MINILM, other)
    config = json.loads((other / "config.json").read_text())
    config["intermediate_size"] = config["intermediate_size"] * 2  # weights of another model size
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match=r"weights do not match config.json .*; use the config.json that came with these weights"):
        load_checkpoint(str(other), LABELS)


def test_download_faults_are_remote_errors_and_refusals_user_errors():
    import requests
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    from tfslm.backends.hf_tf import _download_error
    from tfslm.errors import RemoteError

    def http_error(cls, status):
        response = requests.Response()
        response.status_code = status
        return cls(f"{status} Client Error", response=response)

    assert isinstance(_download_error("me/m", http_error(HfHubHTTPError, 503)), RemoteError)
    assert isinstance(_download_error("me/m", requests.ConnectionError("refused")), RemoteError)
    refused = _download_error("me/m", http_error(RepositoryNotFoundError, 404))
    assert isinstance(refused, ModelError) and str(refused).endswith("or set model.checkpoint to a local directory")
    long = _download_error("me/m", http_error(HfHubHTTPError, 502).__class__("x " * 500, response=requests.Response()))
    assert str(long).endswith("set model.checkpoint to a local directory")  # the fix survives a long server message


def test_a_vocab_size_below_what_the_texts_need_is_an_error_with_the_figure():
    from tfslm.backends.hf_tf import build_tokenizer
    from tfslm.errors import ConfigError

    with pytest.raises(ConfigError, match=r"model.vocab_size: 100 is below the \d+ tokens .*set model.vocab_size: \d+ or more"):
        build_tokenizer(ModelConfig(architecture="bert", vocab_size=100), train_texts=["Ação e coração", "naïve café"])
