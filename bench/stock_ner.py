"""The stock recipe on the same data, for `bench/real_mner.sh`: transformers'
`AutoModelForTokenClassification` on the same encoder, text + context as the second segment,
labels on the first sub-token of each word, the `Trainer` with the same batch size, epochs,
learning rate schedule and per-epoch dev evaluation as the Shap-CA run.

    python bench/stock_ner.py --encoder PATH --data ../shared/data --output_dir runs/real_mner/stock

Writes ``all_results.json`` (``test_f1``, ``eval_f1``, ``train_samples_per_second``...) like run_mie.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    Trainer,
    set_seed,
)

from modeling_shapca.heads import IGNORE_INDEX
from processing.corpora import load_corpus
from shapca_metrics import load_metric
from shapca_training.experiments.stock import encode_tagged, stock_training_arguments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--output_dir", type=Path, required=True)
    parser.add_argument("--epochs", type=float, default=6)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    set_seed(args.seed)

    corpus = load_corpus(
        "twitter2017", args.data / "twitter2017", context_files=[args.data / "contexts" / "twitter2017.blip2.jsonl"]
    )
    labels = corpus["train"].features["ner_tags"].feature.names
    tokenizer = AutoTokenizer.from_pretrained(args.encoder)

    def encode(batch):
        return encode_tagged(tokenizer, batch["words"], batch["context"], batch["ner_tags"])

    columns = corpus["train"].column_names
    prepared = {split: part.map(encode, batched=True, remove_columns=columns) for split, part in corpus.items()}
    metric = load_metric("mner")

    def compute_metrics(prediction):
        predicted = np.argmax(prediction.predictions, axis=-1)
        gold = [[labels[t] for t in row if t != IGNORE_INDEX] for row in prediction.label_ids]
        pred = [
            [labels[p] for p, t in zip(ps, row) if t != IGNORE_INDEX]
            for ps, row in zip(predicted, prediction.label_ids)
        ]
        return metric.compute(predictions=pred, references=gold)

    model = AutoModelForTokenClassification.from_pretrained(
        args.encoder,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={l: i for i, l in enumerate(labels)},
    )
    training_args = stock_training_arguments(args, args.output_dir, save_strategy="no")
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=prepared["train"],
        eval_dataset=prepared["validation"],
        data_collator=DataCollatorForTokenClassification(tokenizer),
        compute_metrics=compute_metrics,
    )
    results = dict(trainer.train().metrics)
    results.update(trainer.evaluate(prepared["validation"], metric_key_prefix="eval"))
    results.update(trainer.evaluate(prepared["test"], metric_key_prefix="test"))
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "all_results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
