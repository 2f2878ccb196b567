"""How a given pair (MNRE) is decided, tried on finished runs' own predictions: each rule chosen on
dev, scored once on test, the model not run again. Reads the ``predictions_{validation,test}.jsonl``
that ``run_mie.py`` writes (each record's ``label_scores``: every answer's share of ``P^final``
between the two spans, to 6 decimals) and the training pairs of each relation (the run's ``config.json``, else
the training file of ``--data_dir``).

    python bench/mre_decision.py runs/mnre_seeds/seed=1 runs/mnre_seeds/seed=2

The rules are those ``run_mie.py`` can choose on dev (`shapca_training.scoring.select_mre_decision`),
the argmax of weighted shares (`processing.wordpair.mre_decide`: ``None``'s share times ``w``, a
relation's times its training prior to the power ``-t``, normalised over the relations, see
`processing.wordpair.mre_relation_weights`):

- ``argmax``: w = 1, t = 0 (the paper's rule);
- ``None weight``: w chosen on dev, t = 0 (``--select_mre_none_weight true``);
- ``prior``: w = 1, t chosen on dev (``--select_mre_prior_exponent true``);
- ``None weight + prior``: both chosen on dev (both flags).

One table per run, then the mean over the runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter
from pathlib import Path

from processing.wordpair import mre_decide, mre_relation_weights
from shapca_metrics import load_metric
from shapca_training.data import relation_counts as relation_counts_of
from shapca_training.scoring import NONE_WEIGHTS, PRIOR_EXPONENTS, choose_mre_decision

RULES = {
    "argmax": ((1.0,), (0.0,)),
    "None weight": (NONE_WEIGHTS, (0.0,)),
    "prior": ((1.0,), PRIOR_EXPONENTS),
    "None weight + prior": (NONE_WEIGHTS, PRIOR_EXPONENTS),
}


def read_records(path: Path) -> list[dict]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if records and "label_scores" not in records[0]:
        raise SystemExit(
            f"{path} has no label_scores (written by an older run_mie.py): predict dev and test again with the "
            "run's model (its folder, if the weights were kept) and its data flags: python run_mie.py --model_name_or_path "
            f"{path.parent} --do_train false --do_eval true --output_dir <folder> <the run's data flags>"
        )
    return records


def relation_counts(run: Path, data_dir: str | None) -> Counter:
    """The training pairs of each relation: the run's ``mre_relation_counts``, else the training file."""
    config = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else {}
    if config.get("mre_relation_counts"):
        return Counter(config["mre_relation_counts"])
    if data_dir is None:
        raise SystemExit(
            f"{run}/config.json has no mre_relation_counts: give --data_dir, the MNRE folder it trained on."
        )
    from processing.corpora import load_corpus

    return Counter(relation_counts_of(load_corpus("mnre", data_dir)["train"]))


def evaluate_run(run: Path, counts: Counter) -> dict[str, dict]:
    """Each rule's choice on dev and its test scores."""
    dev = read_records(run / "predictions_validation.jsonl")
    test = read_records(run / "predictions_test.jsonl")
    names = sorted({answer for record in dev for answer in record["label_scores"]})
    metric = load_metric("mre")
    rows = {}
    for rule, (weights, exponents) in RULES.items():
        dev_f1 = choose_mre_decision(
            [r["label_scores"] for r in dev], [r["gold"] for r in dev], names, weights, exponents, counts
        )
        (w, t), best = next(iter(dev_f1.items()))
        relation_weights = mre_relation_weights(counts, names, t)
        found = [mre_decide(record["label_scores"], w, relation_weights) for record in test]
        scores = metric.compute(predictions=found, references=[record["gold"] for record in test])
        rows[rule] = {"w": w, "t": t, "dev_f1": best, **{f"test_{k}": scores[k] for k in ("precision", "recall", "f1")}}
    return rows


def print_table(title: str, rows: dict[str, dict]) -> None:
    print(f"\n{title}\n| rule | w | t | dev F1 | test P | test R | test F1 |\n|---|---|---|---|---|---|---|")
    for rule, row in rows.items():
        scores = " | ".join(f"{100 * row[key]:.2f}" for key in ("dev_f1", "test_precision", "test_recall", "test_f1"))
        print(f"| {rule} | {row['w']} | {row['t']} | {scores} |")


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="Folders of finished MNRE runs (run_mie.py --output_dir).")
    parser.add_argument("--data_dir", help="The MNRE folder the runs trained on, for runs whose config has no counts.")
    args = parser.parse_args(argv)
    per_run = {str(run): evaluate_run(run, relation_counts(run, args.data_dir)) for run in args.runs}
    for run, rows in per_run.items():
        print_table(run, rows)
    if len(per_run) > 1:
        keys = ("dev_f1", "test_precision", "test_recall", "test_f1")
        mean = {
            rule: {"w": "chosen", "t": "chosen", **{key: statistics.mean(r[rule][key] for r in per_run.values()) for key in keys}}
            for rule in RULES
        }  # fmt: skip
        print_table(f"mean over {len(per_run)} runs", mean)
        spread = ", ".join(
            f"{rule} {100 * statistics.stdev(r[rule]['test_f1'] for r in per_run.values()):.2f}" for rule in RULES
        )
        print(f"\ntest F1 standard deviation over the runs: {spread}")
    return per_run


if __name__ == "__main__":
    main()
