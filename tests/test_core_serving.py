"""export.tokenizer_ops: core -- raw-text serving with core TensorFlow ops only.

A tiny BERT is exported with the core-ops WordPiece (truncating and chunked);
``saved_model_cli run`` and a process that imports only ``tensorflow`` call it
with tensorflow-text made unimportable, the graph's ops are checked against
those a plain TensorFlow registers, and the outputs are compared with
``tfslm.Predictor``. The 686 shared essays check the ids with the MiniLM vocabulary.
"""

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
from transformers import BertConfig, BertTokenizerFast, TFBertForSequenceClassification  # noqa: E402

from conftest import ESSAYS, MINILM, needs_essays, needs_minilm  # noqa: E402
from tfslm.data.labels import LabelSpace  # noqa: E402
from tfslm.serving import saved_model as saved_model_module  # noqa: E402
from tfslm.serving.predictor import Predictor  # noqa: E402
from tfslm.serving.saved_model import export_saved_model  # noqa: E402
from tfslm.serving.wordpiece_core import CoreWordpiece  # noqa: E402
from tfslm.serving.wordpiece_graph import _PROBES, build_in_graph_tokenizer  # noqa: E402

MAX_LENGTH, STRIDE = 32, 8
LABELS = ["baixo", "médio", "alto"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TEXTS = [
    "",
    "Olá, MUNDO! A educação é a base; São Paulo e Brasília.",
    "1º lugar, 2ª vez, acento agudo ´ solto, trema ¨ e lingüiça, pé-de-moleque.",
    "Emoji 😀🎉 no meio🙂do texto; símbolos € ° © … “aspas” — fim [MASK] e [SEP].",
    "中文 e 한국어 e ΟΔΟΣ, " + "palavra" * 20 + " " + "x" * 120,
    " ".join(["a educação transforma a sociedade brasileira"] * 12),
]


def _corpus(n: int = 120) -> list[str]:
    rng = random.Random(3)
    words = ["educação", "governo", "sociedade", "jovem", "saúde", "população", "Brasil", "escola", "ação", "não",
             "promove", "garante", "políticas", "públicas", "coração", "inclusão", "hoje", "sempre", "razão"]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 30))) + rng.choice([".", "!", "?"]) for _ in range(n)]


@pytest.fixture(scope="module")
def tokenizer():
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=None)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.train_from_iterator(_corpus() + TEXTS, trainer=trainers.WordPieceTrainer(
        vocab_size=300, special_tokens=SPECIALS, show_progress=False))
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    backend.decoder = decoders.WordPiece()
    return BertTokenizerFast(tokenizer_object=backend, do_lower_case=True, unk_token="[UNK]", sep_token="[SEP]",
                             pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")


# ------------------------------------------------------------- the WordPiece step alone
def test_core_wordpiece_greedy_longest_match():
    wp = CoreWordpiece(["[UNK]", "un", "##aff", "##able", "u", "##n", "x", "é", "##é"], unknown_token="[UNK]",
                       max_chars_per_word=100)
    got = wp.tokenize(tf.ragged.constant([["unaffable", "xyz", "x"], [], ["unn", "éé", ""]])).to_list()
    # "unn": un + ##n (longest first); "xyz": no piece for "y" -> the whole word is [UNK]; "" has no pieces.
    assert got == [[[1, 2, 3], [0], [6]], [], [[1, 5], [7, 8], []]]


def test_core_wordpiece_matches_transformers_on_random_words():
    rng = random.Random(0)
    alphabet = "abcdeéçã"
    vocab = ["[UNK]", *alphabet, *(f"##{c}" for c in alphabet)]
    vocab += sorted({"".join(rng.choice(alphabet) for _ in range(rng.randint(2, 5))) for _ in range(60)})
    vocab += sorted({"##" + "".join(rng.choice(alphabet) for _ in range(rng.randint(2, 5))) for _ in range(60)})
    vocab.remove("##ç")  # some words then have no full match
    vocab = list(dict.fromkeys(vocab))
    reference = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100))
    words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14))) for _ in range(400)]
    got = CoreWordpiece(vocab, unknown_token="[UNK]").tokenize(tf.constant(words)).to_list()
    expected = [reference.encode([w], is_pretokenized=True, add_special_tokens=False).ids for w in words]
    assert got == expected
    assert [0] in expected and any(len(e) > 2 for e in expected)


@pytest.mark.parametrize("ops", ["core", "tf_text"])
def test_probes_match_python_tokenizer(tokenizer, ops):
    if ops == "tf_text":
        pytest.importorskip("tensorflow_text", reason="tensorflow-text has no wheel for this platform")
    module = build_in_graph_tokenizer(tokenizer, MAX_LENGTH, ops=ops)  # runs the export's own probe check
    assert module.ops == ops
    ids, mask = (t.numpy() for t in module(tf.constant(list(_PROBES) + TEXTS)))
    for row, text in enumerate(list(_PROBES) + TEXTS):
        assert ids[row][: mask[row].sum()].tolist() == tokenizer(text, truncation=True, max_length=MAX_LENGTH)["input_ids"]


def test_auto_falls_back_to_tf_text_when_core_fails_parity(tokenizer, monkeypatch):
    pytest.importorskip("tensorflow_text", reason="tensorflow-text has no wheel for this platform")
    real = saved_model_module.build_in_graph_tokenizer

    def core_breaks(tok, max_length, *, ops):
        if ops == "core":
            raise saved_model_module.UnsupportedTokenizerError("the in-graph tokenizer differs on probe 'x'")
        return real(tok, max_length, ops=ops)

    monkeypatch.setattr(saved_model_module, "build_in_graph_tokenizer", core_breaks)
    module, note = saved_model_module._text_tokenizer(tokenizer, MAX_LENGTH, None, None, "auto")
    assert module.ops == "tf_text" and "auto chose tf_text" in note and "differs on probe" in note
    module, note = saved_model_module._text_tokenizer(tokenizer, MAX_LENGTH, None, None, "core")
    assert module is None and "raw-text signature left out" in note


def test_tokenizer_ops_is_validated(tmp_path):
    from conftest import tiny_config_dict
    from tfslm.config import config_from_dict
    from tfslm.errors import ConfigError

    base = tiny_config_dict(tmp_path, tmp_path / "x.csv")

    with pytest.raises(ConfigError, match=r"export.tokenizer_ops: got 'tf-text'.*tf_text \(the closest\)"):
        config_from_dict({**base, "export": {"tokenizer_ops": "tf-text"}})
    assert config_from_dict({**base, "export": {"tokenizer_ops": "core"}}).export.tokenizer_ops == "core"
    with pytest.raises(ValueError, match="tokenizer_ops must be one of auto, core, tf_text"):
        export_saved_model(None, None, ["a"], 8, "/nonexistent/x", tokenizer_ops="fast")


# ------------------------------------------------------------- stock tools, no tensorflow_text
_CONSUMER = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
try:
    import tensorflow_text  # noqa: F401
except ImportError:
    blocked = True
else:
    blocked = False
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

job = json.load(open(sys.argv[1], encoding="utf-8"))
result = {"blocked": blocked}
for name, path in job["paths"].items():
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString(open(os.path.join(path, "saved_model.pb"), "rb").read())
    graph = proto.meta_graphs[0].graph_def
    ops = {node.op for node in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
    functions = {f.signature.name for f in graph.library.function}
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serving_default"](text=tf.constant(job["texts"]))
    result[name] = {
        "ops": sorted(ops),
        "unregistered": sorted(op for op in ops - functions if op_def_registry.get(op) is None),
        "probabilities": out["probabilities"].numpy().tolist(),
        "label": [s.decode("utf-8") for s in out["label"].numpy()],
        "tokenize": loaded.signatures["tokenize"](text=tf.constant(job["texts"]))["input_ids"].numpy().tolist(),
    }
    if "tokenize_windows" in loaded.signatures:
        result[name]["doc_index"] = loaded.signatures["tokenize_windows"](text=tf.constant(job["texts"]))["doc_index"].numpy().tolist()
result["modules"] = sorted(m for m in ("tensorflow_text", "transformers", "tfslm") if m in sys.modules)
json.dump(result, open(sys.argv[2], "w"))
"""


def _blocked_env(tmp_path: Path) -> dict:
    """An environment whose Python cannot import tensorflow_text (nor tfslm from the worktree)."""
    blocker = tmp_path / "blocker" / "tensorflow_text"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("tensorflow_text is blocked by the test")\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(blocker.parent)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


@pytest.fixture(scope="module")
def core_exports(tmp_path_factory, tokenizer):
    """A tiny (untrained, seeded) BERT exported with core ops, truncating and chunked."""
    tf.keras.utils.set_random_seed(0)
    model = TFBertForSequenceClassification(BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, num_labels=3))
    root = tmp_path_factory.mktemp("core_export")
    out = {"model": model}
    for name, stride in (("truncate", None), ("chunk", STRIDE)):
        out[name] = export_saved_model(model, tokenizer, LABELS, MAX_LENGTH, root / name, chunk_stride=stride, tokenizer_ops="core")
    return out


@pytest.mark.slow
def test_core_export_info(core_exports):
    info = core_exports["truncate"]
    assert info["tokenizer_ops"] == "core" and info["consumer_imports"] == [] and info["note"] is None
    assert "core" in info["in_graph_tokenizer"]
    recorded = json.loads((Path(info["path"]) / "assets.extra" / "tfslm_export.json").read_text(encoding="utf-8"))
    assert recorded["tokenizer_ops"] == "core"
    assert "tokenize_windows" in core_exports["chunk"]["signatures"]


@pytest.mark.slow
def test_tf_only_process_serves_core_export(core_exports, tokenizer, tmp_path):
    from tfslm.data.cleaning import clean_text

    texts = [clean_text(t) for t in TEXTS + _corpus(20)]  # Predictor cleans its texts first
    job = {"paths": {n: core_exports[n]["path"] for n in ("truncate", "chunk")}, "texts": texts}
    (tmp_path / "job.json").write_text(json.dumps(job), encoding="utf-8")
    (tmp_path / "consumer.py").write_text(_CONSUMER, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(tmp_path / "consumer.py"), str(tmp_path / "job.json"), str(tmp_path / "out.json")],
                          cwd=tmp_path, env=_blocked_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert got["blocked"] is True and got["modules"] == []
    for name, stride in (("truncate", None), ("chunk", STRIDE)):
        assert got[name]["unregistered"] == [], got[name]["unregistered"]
        assert "LookupTableFindV2" in got[name]["ops"] and not [op for op in got[name]["ops"] if "Wordpiece" in op]
        predictor = Predictor(core_exports["model"], tokenizer, LabelSpace(tuple(LABELS)), MAX_LENGTH, chunk_stride=stride)
        expected = predictor.predict_proba(texts)
        assert np.abs(np.array(got[name]["probabilities"]) - expected).max() < 1e-5
        assert got[name]["label"] == predictor.predict(texts)
    assert max(np.bincount(got["chunk"]["doc_index"])) > 1, "some text should need several windows"


@pytest.mark.slow
def test_saved_model_cli_runs_core_export_with_raw_text(core_exports, tmp_path):
    path = core_exports["truncate"]["path"]
    cli = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    exprs = "text=['Olá, mundo! A educação é a base.', 'xyz']"
    proc = subprocess.run([*cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def", "serving_default",
                           "--input_exprs", exprs], env=_blocked_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "probabilities" in proc.stdout and "label" in proc.stdout, proc.stdout[-2000:]


# ------------------------------------------------------------- parity on the shared essays
def _essays() -> list[str]:
    with open(ESSAYS, encoding="utf-8", newline="") as handle:
        return ["\n".join(ast.literal_eval(row["essay"])) for row in csv.DictReader(handle)]


@pytest.mark.slow
@needs_minilm
@needs_essays
def test_core_ids_equal_python_on_all_shared_essays():
    from transformers import AutoTokenizer

    from tfslm.inputs.chunking import chunk_encode

    tok = AutoTokenizer.from_pretrained(str(MINILM))
    texts = _essays()
    assert len(texts) == 686
    module = build_in_graph_tokenizer(tok, 512, ops="core")
    ids, mask = (t.numpy() for t in module(tf.constant(texts)))
    expected = tok(texts, truncation=True, max_length=512)["input_ids"]
    bad = [i for i, e in enumerate(expected) if ids[i][: mask[i].sum()].tolist() != e]
    assert not bad, f"{len(bad)} essays differ, e.g. {bad[:5]}"
    window_module = build_in_graph_tokenizer(tok, 128, ops="core")
    window_ids, window_mask, doc_index = (t.numpy() for t in window_module.windows(tf.constant(texts), 32))
    enc, docs = chunk_encode(texts, tok, max_length=128, stride=32)
    assert doc_index.tolist() == docs.tolist()
    bad = [r for r, e in enumerate(enc["input_ids"]) if window_ids[r][: window_mask[r].sum()].tolist() != list(e)]
    assert not bad, f"{len(bad)} windows differ, e.g. {bad[:5]}"


def test_card_says_core_tokenizer_ops(tmp_path):
    from test_card import _make_run

    from tfslm.publish.card import write_model_card

    info = {"signatures": ["serving_default", "serve_tokens", "tokenize"], "in_graph_tokenizer": "tfslm.CoreWordpiece",
            "consumer_imports": [], "tokenizer_ops": "core", "labels": ["negative", "neutral", "positive"],
            "max_length": 96, "note": None}
    body = write_model_card(_make_run(tmp_path, export_info=info)).read_text(encoding="utf-8")
    assert "needs TensorFlow, not tfslm or transformers. Tokenizer ops: `core` (core TensorFlow only" in body
    assert "import tensorflow_text" not in body
