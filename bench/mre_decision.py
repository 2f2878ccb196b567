"""How a given pair (MNRE) is decided, tried on a run's own predictions: rules chosen on dev,
scored once on test. Reads the ``predictions_{validation,test}.jsonl`` that ``run_mie.py`` writes
(each record's ``label_scores``: every answer's share of ``P^final`` between the two spans) and
the training file's relation counts; the model is not run again.

    python bench/mre_decision.py runs/mnre_seeds/seed=1 runs/mnre_seeds/seed=2 --data_dir ../shared/data/mnre

The rules, each the argmax of weighted shares (``None``'s share times ``w``; a relation's share
times ``prior ** -t``, its share of the training pairs that have a relation, to the power ``-t``):

- ``argmax``: w = 1, t = 0 (the paper's rule);
- ``None weight``: w chosen on dev, t = 0 (``run_mie.py --select_mre_none_weight true``);
- ``prior``: w = 1, t chosen on dev (logit adjustment for the long tail, Menon et al. 2021);
- ``None weight + prior``: both chosen on dev.

Ties on dev go to the rule nearest the paper's (w near 1, then t near 0). One table per run, then
the mean over the runs.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import Counter
from pathlib import Path

NO_RELATION = "None"
NONE_WEIGHTS = tuple(round(0.05 * step, 2) for step in range(1, 41))
PRIOR_EXPONENTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)
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
            f"{path} has no label_scores (written by an older run_mie.py): predict again with "
            f"python run_mie.py {path.parent}/run_config.json --model_name_or_path {path.parent} --do_train false "
            "--output_dir <folder>"
        )
    return records


def relation_priors(counts: Counter) -> dict[str, float]:
    """Each relation's share of the training pairs that have one."""
    related = {relation: count for relation, count in counts.items() if relation != NO_RELATION}
    total = sum(related.values())
    return {relation: count / total for relation, count in related.items()}


def decide(record: dict, none_weight: float, exponent: float, priors: dict[str, float]) -> str:
    smallest = min(priors.values())  # a relation never seen in training counts as the rarest
    weighted = {
        answer: share * (none_weight if answer == NO_RELATION else priors.get(answer, smallest) ** -exponent)
        for answer, share in record["label_scores"].items()
    }
    return max(weighted, key=weighted.get)


def scores(records: list[dict], predictions: list[str]) -> tuple[float, float, float]:
    """Micro P/R/F1 over the relations (``None`` is no prediction), as the mre metric counts them."""
    predicted = sum(p != NO_RELATION for p in predictions)
    gold = sum(r["gold"] != NO_RELATION for r in records)
    correct = sum(p == r["gold"] != NO_RELATION for p, r in zip(predictions, records))
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def choose(dev: list[dict], weights, exponents, priors) -> tuple[float, float, float]:
    """The (w, t) with the best dev F1, ties to the nearest to (1, 0); returns (w, t, dev F1)."""
    tried = [
        (scores(dev, [decide(r, w, t, priors) for r in dev])[2], w, t) for w in weights for t in exponents
    ]  # fmt: skip
    f1, w, t = max(tried, key=lambda item: (item[0], -abs(item[1] - 1.0), -item[2]))
    return w, t, f1


def evaluate_run(run: Path, priors: dict[str, float]) -> dict[str, dict]:
    dev = read_records(run / "predictions_validation.jsonl")
    test = read_records(run / "predictions_test.jsonl")
    rows = {}
    for rule, (weights, exponents) in RULES.items():
        w, t, dev_f1 = choose(dev, weights, exponents, priors)
        p, r, f1 = scores(test, [decide(record, w, t, priors) for record in test])
        rows[rule] = {"w": w, "t": t, "dev_f1": dev_f1, "test_p": p, "test_r": r, "test_f1": f1}
    return rows


def print_table(title: str, rows: dict[str, dict]) -> None:
    print(f"\n{title}\n| rule | w | t | dev F1 | test P | test R | test F1 |\n|---|---|---|---|---|---|---|")
    for rule, row in rows.items():
        print(f"| {rule} | {row['w']} | {row['t']} | {100 * row['dev_f1']:.2f} | {100 * row['test_p']:.2f} | "
              f"{100 * row['test_r']:.2f} | {100 * row['test_f1']:.2f} |")  # fmt: skip


def training_counts(data_dir: str) -> Counter:
    from processing.corpora import load_corpus

    train = load_corpus("mnre", data_dir)["train"]
    names = train.features["relation"].names
    return Counter(names[index] for index in train["relation"])


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="Folders of finished MNRE runs (run_mie.py --output_dir).")
    parser.add_argument("--data_dir", required=True, help="The MNRE folder the runs trained on (its training file).")
    args = parser.parse_args(argv)
    priors = relation_priors(training_counts(args.data_dir))
    per_run = {str(run): evaluate_run(run, priors) for run in args.runs}
    for run, rows in per_run.items():
        print_table(run, rows)
    if len(per_run) > 1:
        mean = {
            rule: {key: (statistics.mean(rows[rule][key] for rows in per_run.values()) if key != "w" and key != "t"
                         else "chosen") for key in per_run[next(iter(per_run))][rule]}
            for rule in RULES
        }  # fmt: skip
        print_table(f"mean over {len(per_run)} runs", mean)
        spread = {rule: statistics.stdev(rows[rule]["test_f1"] for rows in per_run.values()) for rule in RULES}
        print("\ntest F1 standard deviation over the runs: " + ", ".join(
            f"{rule} {100 * value:.2f}" for rule, value in spread.items() if math.isfinite(value)))  # fmt: skip
    return per_run


if __name__ == "__main__":
    main()
