#!/usr/bin/env python
"""The course notebook's training code (sections 02-04), as written, timed: what a notebook user waits for.

Cells in the notebook's order and with its Portuguese names; cells that only
display something (``dados_redacoes``, ``.features``, ``.to_pandas()``, the
one-text tokenize/decode demo) are left out, they do not change what trains.
Changes, each marked ``# CHANGE``: ``max_length=L`` in ``funcao_tokenizadora``
(the notebook truncates at the checkpoint's 512); a callback that only records
each epoch's wall time; ``from_pt=True`` only when the checkpoint has no
tf_model.h5 (from_pt needs torch, absent here: benchmark_runs.py converts the
weights once, untimed); the batch size and epochs come from the command line. The checkpoint is a local all-MiniLM-L6-v2
(the notebook's Geotrend/distilbert-base-pt-cased is not available offline).

Never imports tfslm. Run with TF_USE_LEGACY_KERAS=1 (TF 2.21 + transformers 4.57
need tf-keras), as scripts/benchmark_runs.py does:

    TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=2 python scripts/seed_notebook.py \
        --csv /tmp/cell/redacoes.csv --checkpoint ../shared/models/all-MiniLM-L6-v2 --max-length 256 --epochs 3

Prints one line ``RESULT {json}``: epoch_seconds (wall seconds per epoch, Keras'
validation pass included), epoch_end_unix, evaluate_seconds, process_seconds,
peak_rss_mb.
"""

from __future__ import annotations

import time

PROCESS_START = time.time()

import argparse
import json
import os
import resource
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--csv", required=True, help="redacoes.csv: columns essay, score (the 11 bands 0..10)")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--max-length", type=int, required=True)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16, help="the notebook's 16; smaller only for smoke tests")
    args = parser.parse_args()

    # ---- 02. Preparando dados de texto
    from datasets import load_dataset

    dados_redacoes = load_dataset('csv', data_files=args.csv)

    treino_teste = dados_redacoes['train'].train_test_split(test_size=0.2, shuffle=False)

    from datasets import DatasetDict

    dados_redacoes = DatasetDict({
        'treino': treino_teste['train'],
        'teste': treino_teste['test']
    })

    checkpoint_modelo = args.checkpoint  # CHANGE: the notebook's 'Geotrend/distilbert-base-pt-cased' is not offline

    from transformers import AutoTokenizer

    tokenizador = AutoTokenizer.from_pretrained(checkpoint_modelo)

    def funcao_tokenizadora(dados_texto):
        # CHANGE: max_length=L added (the notebook has truncation=True only, i.e. the model's 512).
        return tokenizador(dados_texto['essay'], truncation=True, max_length=args.max_length)

    dataset_tokenizado = dados_redacoes.map(funcao_tokenizadora, batched=True, remove_columns=['essay'])

    # ---- 03. Ajustando dados para o modelo
    from datasets import ClassLabel

    scores = ClassLabel(names=[str(i) for i in range(11)])

    def mapear_labels(dados):
        dados['label'] = scores.str2int(str(dados['score']))
        return dados

    dataset_tokenizado = dataset_tokenizado.map(mapear_labels, remove_columns='score')

    dataset_tokenizado = dataset_tokenizado.cast_column('label', scores)

    from transformers import TFAutoModelForSequenceClassification

    id2label = {i: str(i) for i in range(11)}
    label2id = {v: k for k, v in id2label.items()}

    modelo = TFAutoModelForSequenceClassification.from_pretrained(
        checkpoint_modelo,
        num_labels = dataset_tokenizado['treino'].features['label'].num_classes,
        id2label=id2label,
        label2id=label2id,
        # CHANGE: the notebook's from_pt=True, unless the checkpoint has TF weights. from_pt needs torch, which
        # the tfslm venv lacks, so benchmark_runs.py converts the safetensors to tf_model.h5 first (not timed).
        from_pt=not os.path.exists(os.path.join(checkpoint_modelo, 'tf_model.h5'))
    )

    dados_treino = modelo.prepare_tf_dataset(
        dataset_tokenizado['treino'],
        shuffle=True,
        batch_size=args.batch_size,  # the notebook: 16
        tokenizer=tokenizador
    )

    dados_validacao = modelo.prepare_tf_dataset(
        dataset_tokenizado['teste'],
        shuffle=False,
        batch_size=args.batch_size,  # the notebook: 16
        tokenizer=tokenizador
    )

    # ---- 04. Transferindo o aprendizado para um modelo
    from transformers import create_optimizer

    batch_size = args.batch_size  # the notebook: 16
    epocas = args.epochs  # the notebook: 2
    batches_por_epoca = len(dataset_tokenizado['treino']) // batch_size
    total_passos_treino = int(batches_por_epoca * epocas)
    taxa_aprendizado = 2e-5

    otimizador, scheduler = create_optimizer(  # noqa: RUF059  (the notebook's names)
        init_lr=taxa_aprendizado,
        num_warmup_steps=0,
        num_train_steps=total_passos_treino
    )

    modelo.compile(optimizer=otimizador)

    cronometro = epoch_timer()  # CHANGE: records epoch wall times only
    modelo.fit(dados_treino, validation_data=dados_validacao, epochs=epocas, callbacks=[cronometro])

    inicio = time.time()
    resultados_avaliacao = modelo.evaluate(dados_validacao)
    print(f"Loss: {resultados_avaliacao}")
    evaluate_seconds = time.time() - inicio

    print("RESULT " + json.dumps({
        "epoch_seconds": [round(t, 3) for t in cronometro.seconds],
        "epoch_end_unix": [round(t, 3) for t in cronometro.ends],
        "evaluate_seconds": round(evaluate_seconds, 3),
        "train_rows": len(dataset_tokenizado['treino']),
        "validation_rows": len(dataset_tokenizado['teste']),
        "validation_loss": resultados_avaliacao,
        "precision": modelo.dtype_policy.name if hasattr(modelo, "dtype_policy") else "float32",
        "tfslm_imported": "tfslm" in sys.modules,  # must stay false: the notebook knows nothing of tfslm
        "process_seconds": round(time.time() - PROCESS_START, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }), flush=True)


def epoch_timer():
    """A Keras callback that records each epoch's wall time (begin -> end, Keras' validation pass included)."""
    import tensorflow as tf  # tf.keras is tf-keras under TF_USE_LEGACY_KERAS=1

    class EpochTimer(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.ends = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self._begin = time.time()

        def on_epoch_end(self, epoch, logs=None):
            now = time.time()
            self.seconds.append(now - self._begin)
            self.ends.append(now)

    return EpochTimer()


if __name__ == "__main__":
    main()
