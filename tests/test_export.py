"""tfslm.serving.saved_model: a SavedModel that takes raw strings, checked from a TF-only process."""

from __future__ import annotations

import ast
import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertTokenizerFast,
    DistilBertConfig,
    DistilBertTokenizerFast,
    PreTrainedTokenizerFast,
    TFBertForSequenceClassification,
    TFDistilBertForSequenceClassification,
)

from tfslm.serving.saved_model import UnsupportedTokenizerError, build_in_graph_tokenizer, export_saved_model  # noqa: E402

try:
    import tensorflow_text  # noqa: F401
except Exception:  # wheels exist for Linux x86-64 and macOS arm64 only
    HAS_TF_TEXT = False
else:
    HAS_TF_TEXT = True
needs_tf_text = pytest.mark.skipif(not HAS_TF_TEXT, reason="tensorflow-text is not installed for this platform")

MAX_LENGTH = 48
LABELS = ["baixo", "médio", "alto"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SHARED = Path(__file__).resolve().parents[2] / "shared"
MINILM = SHARED / "models" / "all-MiniLM-L6-v2"
ESSAYS = SHARED / "data" / "essay-br" / "development.csv"

TRICKY = [
    "",
    "Olá, MUNDO! A educação é a base; São Paulo e Brasília.",
    "1º lugar, 2ª vez, acento agudo ´ solto, trema ¨ e lingüiça, pé-de-moleque.",
    "Ação, coração, não, mãe, põe, ÇÃO, ÁÉÍÓÚ âêô àü.",
    "Emoji 😀🎉 no meio🙂do texto, ❤️ e 👍🏽; símbolos € ° © … “aspas” — fim.",
    "e\u0301 decomposto, c\u0327, tabs\tand\nnewlines\r\n e\u00a0nbsp, zero\u200bwidth",
    "中文 e 한국어 e ΟΔΟΣ, texto com [MASK] e [SEP] literais",
    "palavra" * 20 + " fim",
    " ".join(["a educação transforma a sociedade brasileira"] * 30),
]


def _sentences(n: int = 200) -> tuple[list[str], list[int]]:
    rng = random.Random(7)
    subjects = ["A educação", "O governo", "A sociedade", "O jovem", "A saúde pública", "A população", "O Brasil", "A escola"]
    verbs = ["precisa de", "não garante", "promove", "ameaça", "depende da", "valoriza", "critica", "ignora"]
    objects = ["ação conjunta", "informação", "mudanças rápidas", "políticas públicas", "coração aberto", "inclusão"]
    extras = ["no Brasil.", "em São Paulo!", "hoje, amanhã e sempre.", "com razão.", "sem exceção?", "(1º passo)", "à noite;"]
    texts, labels = [], []
    for _ in range(n):
        label = rng.randrange(3)
        words = [rng.choice(subjects), rng.choice(verbs), rng.choice(objects), rng.choice(extras)]
        words.insert(2, ["péssima", "razoável", "ótima"][label])
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


def _wordpiece_backend(texts: list[str]) -> Tokenizer:
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=None)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=300, special_tokens=SPECIALS, show_progress=False)
    backend.train_from_iterator(texts + TRICKY, trainer=trainer)
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    backend.decoder = decoders.WordPiece()
    return backend


def _special_kwargs() -> dict:
    return dict(unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")


def _fit(model, tokenizer, texts, labels):
    enc = tokenizer(texts, truncation=True, max_length=MAX_LENGTH, padding=True, return_tensors="np")
    features = {k: enc[k] for k in ("input_ids", "attention_mask")}
    model.compile(optimizer=tf.keras.optimizers.Adam(5e-3))  # transformers' internal loss
    model.fit(dict(features, labels=np.array(labels)), epochs=5, batch_size=16, verbose=0)
    return model


def _keras_probabilities(model, tokenizer, texts):
    enc = tokenizer(texts, truncation=True, max_length=MAX_LENGTH, padding=True, return_tensors="np")
    logits = model({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}, training=False).logits
    return tf.nn.softmax(logits, axis=-1).numpy()


@pytest.fixture(scope="module")
def corpus():
    return _sentences()


@pytest.fixture(scope="module")
def backend(corpus):
    return _wordpiece_backend(corpus[0])


@pytest.fixture(scope="module")
def bert_tokenizer(backend):
    return BertTokenizerFast(tokenizer_object=backend.from_str(backend.to_str()), do_lower_case=True, **_special_kwargs())


@pytest.fixture(scope="module")
def exports(tmp_path_factory, corpus, backend, bert_tokenizer):
    """A tiny BERT and a tiny DistilBERT, trained briefly and exported once for the whole module."""
    texts, labels = corpus
    root = tmp_path_factory.mktemp("export")
    tf.keras.utils.set_random_seed(0)
    bert = TFBertForSequenceClassification(
        BertConfig(
            vocab_size=backend.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=64, num_labels=3,
        )
    )
    _fit(bert, bert_tokenizer, texts, labels)
    distil_tokenizer = DistilBertTokenizerFast(tokenizer_object=backend.from_str(backend.to_str()), do_lower_case=True, **_special_kwargs())
    distil = TFDistilBertForSequenceClassification(
        DistilBertConfig(
            vocab_size=backend.get_vocab_size(), dim=32, n_layers=2, n_heads=2, hidden_dim=64,
            max_position_embeddings=64, num_labels=3,
        )
    )
    _fit(distil, distil_tokenizer, texts, labels)
    out = {}
    for name, model, tokenizer in (("bert", bert, bert_tokenizer), ("distilbert", distil, distil_tokenizer)):
        path = root / name
        info = export_saved_model(model, tokenizer, LABELS, MAX_LENGTH, path, tokenizer_ops="tf_text")
        out[name] = {"model": model, "tokenizer": tokenizer, "path": path, "info": info}
    return out


_CONSUMER = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the WordPiece op
job = json.load(open(sys.argv[1]))
results = {}
for name, spec in job.items():
    loaded = tf.saved_model.load(spec["path"])
    sigs = loaded.signatures
    text = sigs["serving_default"](text=tf.constant(spec["texts"]))
    ids = tf.constant(spec["input_ids"], tf.int32)
    tokens = sigs["serve_tokens"](input_ids=ids, attention_mask=tf.constant(spec["attention_mask"], tf.int32))
    tokenized = sigs["tokenize"](text=tf.constant(spec["texts"]))
    results[name] = {
        "signatures": sorted(sigs.keys()),
        "text": {k: v.numpy().tolist() for k, v in text.items()},
        "tokens": {k: v.numpy().tolist() for k, v in tokens.items()},
        "tokenize": {k: v.numpy().tolist() for k, v in tokenized.items()},
        "dtypes": {k: v.dtype.name for k, v in text.items()},
    }
    results[name]["text"]["label"] = [s.decode("utf-8") for s in results[name]["text"]["label"]]
    results[name]["tokens"]["label"] = [s.decode("utf-8") for s in results[name]["tokens"]["label"]]
results["modules"] = {m: m in sys.modules for m in ("transformers", "tfslm", "torch")}
assert "transformers" not in sys.modules and "tfslm" not in sys.modules, results["modules"]
json.dump(results, open(sys.argv[2], "w"))
"""


@pytest.fixture(scope="module")
def served(exports, corpus, tmp_path_factory):
    """Load both SavedModels in a separate process that imports TensorFlow (and tensorflow_text) only."""
    work = tmp_path_factory.mktemp("consumer")
    texts = TRICKY + corpus[0][:40]
    job = {}
    for name, entry in exports.items():
        enc = entry["tokenizer"](texts, truncation=True, max_length=MAX_LENGTH, padding=True)
        job[name] = {"path": str(entry["path"]), "texts": texts, "input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    (work / "job.json").write_text(json.dumps(job), encoding="utf-8")
    (work / "consumer.py").write_text(_CONSUMER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, str(work / "consumer.py"), str(work / "job.json"), str(work / "out.json")],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return texts, json.loads((work / "out.json").read_text(encoding="utf-8"))


@pytest.mark.slow
@needs_tf_text
def test_export_info(exports):
    info = exports["bert"]["info"]
    assert info["signatures"] == ["serving_default", "serve_tokens", "tokenize"]
    assert info["in_graph_tokenizer"] == "tensorflow_text.FastWordpieceTokenizer"
    assert info["consumer_imports"] == ["tensorflow_text"]
    assert info["note"] is None and info["labels"] == LABELS and info["max_length"] == MAX_LENGTH
    path = exports["bert"]["path"]
    assert (path / "saved_model.pb").is_file()
    assert json.loads((path / "assets.extra" / "tfslm_export.json").read_text(encoding="utf-8"))["labels"] == LABELS
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "temporary directories left behind"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bert", "distilbert"])
@needs_tf_text
def test_raw_text_serving_matches_keras_in_separate_process(exports, served, name):
    texts, results = served
    assert results["modules"]["transformers"] is False and results["modules"]["tfslm"] is False
    got = results[name]
    assert {"serving_default", "serve_tokens", "tokenize"} <= set(got["signatures"])
    assert got["dtypes"] == {"logits": "float32", "probabilities": "float32", "label_id": "int64", "label": "string"}
    entry = exports[name]
    expected = _keras_probabilities(entry["model"], entry["tokenizer"], texts)
    probabilities = np.array(got["text"]["probabilities"])
    assert probabilities.shape == (len(texts), len(LABELS))
    assert got["text"]["label_id"] == expected.argmax(-1).tolist()
    assert np.abs(probabilities - expected).max() < 1e-3
    assert got["text"]["label"] == [LABELS[i] for i in got["text"]["label_id"]]
    assert len(set(got["text"]["label_id"])) > 1, "the trained model should not predict one class for all"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bert", "distilbert"])
@needs_tf_text
def test_exported_tokenize_matches_hf_ids(exports, served, name):
    texts, results = served
    tokenizer = exports[name]["tokenizer"]
    got = results[name]["tokenize"]
    for row, text in enumerate(texts):
        expected = tokenizer(text, truncation=True, max_length=MAX_LENGTH)["input_ids"]
        length = sum(got["attention_mask"][row])
        assert got["input_ids"][row][:length] == expected, text
        assert set(got["input_ids"][row][length:]) <= {tokenizer.pad_token_id}
    long_row = texts.index(TRICKY[-1])
    assert sum(got["attention_mask"][long_row]) == MAX_LENGTH
    assert got["input_ids"][texts.index("")][:2] == [tokenizer.cls_token_id, tokenizer.sep_token_id]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bert", "distilbert"])
@needs_tf_text
def test_serve_tokens_equals_serving_default(served, name):
    _, results = served
    text, tokens = results[name]["text"], results[name]["tokens"]
    assert tokens["label_id"] == text["label_id"]
    assert tokens["label"] == text["label"]
    np.testing.assert_allclose(tokens["logits"], text["logits"], atol=1e-5)


@pytest.mark.slow
@needs_tf_text
def test_saved_model_cli_lists_signatures(exports):
    cli = Path(sys.executable).with_name("saved_model_cli")
    if not cli.exists():
        pytest.skip(f"saved_model_cli is not installed next to {sys.executable}")
    proc = subprocess.run(
        [str(cli), "show", "--all", "--dir", str(exports["bert"]["path"])], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for signature in ("serving_default", "serve_tokens", "tokenize"):
        assert f"signature_def['{signature}']" in proc.stdout
    assert "input_ids" in proc.stdout and "probabilities" in proc.stdout


@pytest.mark.parametrize(
    "options",
    [
        dict(lowercase=True, strip_accents=None),
        dict(lowercase=False, strip_accents=False),
        dict(lowercase=True, strip_accents=False, handle_chinese_chars=False),
        dict(lowercase=False, strip_accents=True, clean_text=False),
    ],
    ids=["uncased", "cased", "keep-accents", "strip-only-unclean"],
)
@needs_tf_text
def test_in_graph_ids_match_hf_on_tricky_strings(backend, options):
    custom = backend.from_str(backend.to_str())
    custom.normalizer = normalizers.BertNormalizer(**options)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=custom, **_special_kwargs())
    texts = TRICKY + ["Control\x00\x07 chars\ufeff and \x0bvertical\x0c feed", "\U0001FAE8 new emoji, İstanbul, ﬁm, Ⅻ, ½"]
    module = build_in_graph_tokenizer(tokenizer, MAX_LENGTH)
    ids, mask = (t.numpy() for t in module(tf.constant(texts)))
    for row, text in enumerate(texts):
        expected = tokenizer(text, truncation=True, max_length=MAX_LENGTH)["input_ids"]
        assert ids[row][: mask[row].sum()].tolist() == expected, text


@pytest.mark.slow
def test_bpe_tokenizer_exports_token_signatures_only(exports, tmp_path):
    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    bpe.train_from_iterator(TRICKY * 5, trainers.BpeTrainer(vocab_size=120, special_tokens=["[UNK]", "[PAD]"], show_progress=False))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="[UNK]", pad_token="[PAD]")
    output = tmp_path / "saved_model"
    output.mkdir()
    (output / "stale.txt").write_text("from an earlier export", encoding="utf-8")
    info = export_saved_model(exports["bert"]["model"], tokenizer, LABELS, MAX_LENGTH, output)
    assert info["signatures"] == ["serving_default", "serve_tokens"]
    assert info["in_graph_tokenizer"] is None and info["consumer_imports"] == []
    assert "BPE" in info["note"] and "\n" not in info["note"]
    assert not (output / "stale.txt").exists(), "the new export must replace the old directory"
    loaded = tf.saved_model.load(str(output))
    enc = tokenizer(["Olá mundo", "educação"], padding=True, return_tensors="np")
    out = loaded.signatures["serving_default"](
        input_ids=tf.constant(enc["input_ids"], tf.int32), attention_mask=tf.constant(enc["attention_mask"], tf.int32)
    )
    assert out["probabilities"].shape == (2, 3) and out["label"].dtype == tf.string


def test_unsupported_tokenizer_raises_with_reason():
    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.train_from_iterator(["abc abd"], trainers.BpeTrainer(vocab_size=30, special_tokens=["[UNK]"], show_progress=False))
    with pytest.raises(UnsupportedTokenizerError, match="BPE"):
        build_in_graph_tokenizer(PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="[UNK]"), 16)


@pytest.mark.slow
def test_fallback_reason_exports_token_signatures_only(exports, tmp_path):
    entry = exports["bert"]
    info = export_saved_model(entry["model"], entry["tokenizer"], LABELS, MAX_LENGTH, tmp_path / "sm", fallback_reason="asked for")
    assert info["signatures"] == ["serving_default", "serve_tokens"] and info["note"] == "asked for"
    assert info["in_graph_tokenizer"] is None


@pytest.mark.slow
def test_bad_arguments_are_value_errors(exports, tmp_path):
    entry = exports["bert"]
    with pytest.raises(ValueError, match="3 labels"):
        export_saved_model(entry["model"], entry["tokenizer"], ["a", "b"], MAX_LENGTH, tmp_path / "x")
    with pytest.raises(ValueError, match="max_position_embeddings=64"):
        export_saved_model(entry["model"], entry["tokenizer"], LABELS, 65, tmp_path / "x")
    with pytest.raises(ValueError, match="positive integer"):
        export_saved_model(entry["model"], entry["tokenizer"], LABELS, 0, tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
@pytest.mark.shared
@needs_tf_text
def test_in_graph_parity_on_shared_essays():
    if not (MINILM / "vocab.txt").is_file() or not (MINILM / "tokenizer.json").is_file():
        pytest.skip(f"{MINILM} (vocab.txt, tokenizer.json) is absent")
    if not ESSAYS.is_file():
        pytest.skip(f"{ESSAYS} is absent")
    csv.field_size_limit(2**31 - 1)
    with open(ESSAYS, encoding="utf-8", newline="") as handle:
        rows = [row for _, row in zip(range(300), csv.DictReader(handle))]
    texts = ["\n\n".join(ast.literal_eval(row["essay"])) for row in rows]
    tokenizer = BertTokenizerFast.from_pretrained(str(MINILM))
    module = build_in_graph_tokenizer(tokenizer, 512)
    ids, mask = (t.numpy() for t in module(tf.constant(texts)))
    matched = sum(
        ids[row][: mask[row].sum()].tolist() == tokenizer(text, truncation=True, max_length=512)["input_ids"]
        for row, text in enumerate(texts)
    )
    print(f"in-graph vs HF tokenizer: {matched}/{len(texts)} essays identical")
    assert matched == len(texts) == 300
