"""Where a relation run's test errors are: by type, and for each miss whether the entities or the
relation went wrong. Reads the ``predictions_test.jsonl`` that ``run_mie.py`` writes.

    python bench/relation_errors.py runs/real_mnre/shapca-seed1/predictions_test.jsonl
    python bench/relation_errors.py runs/real_jmere/shapca-seed1/predictions_test.jsonl

MNRE (a given pair): P/R/F1 of each relation, then the pairs by gold and prediction:
a relation called ``None`` (missed), ``None`` called a relation (false alarm), or another relation.
JMERE: P/R/F1 of each entity type and each relation type; each gold entity missed is a wrong type
on the right span, a wrong boundary (overlaps a predicted entity) or not found; each gold triple
missed has an entity not found exactly, or both entities right and the relation missing, of
another type or the wrong way round.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter


def scores(gold: Counter, predicted: Counter, correct: Counter, keys) -> list[tuple]:
    rows = []
    for key in sorted(keys, key=lambda k: -gold[k]):
        p = correct[key] / predicted[key] if predicted[key] else 0.0
        r = correct[key] / gold[key] if gold[key] else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        rows.append((key, gold[key], predicted[key], correct[key], p, r, f1))
    return rows


def print_scores(title: str, rows: list[tuple]) -> None:
    print(f"\n{title}\n| type | gold | predicted | correct | P | R | F1 |\n|---|---|---|---|---|---|---|")
    for key, gold, predicted, correct, p, r, f1 in rows:
        print(f"| {key} | {gold} | {predicted} | {correct} | {100 * p:.1f} | {100 * r:.1f} | {100 * f1:.1f} |")


def print_counts(title: str, counts: Counter) -> None:
    total = sum(counts.values())
    print(f"\n{title} ({total})")
    for key, count in counts.most_common():
        print(f"- {key}: {count} ({100 * count / total:.1f}%)")


def given_pairs(records: list[dict]) -> None:
    gold, predicted, correct, outcomes = Counter(), Counter(), Counter(), Counter()
    for record in records:
        g, p = record["gold"], record["pred"]
        gold[g] += g != "None"
        predicted[p] += p != "None"
        correct[g] += g == p != "None"
        if g != p:
            outcomes["a relation called None (missed)" if p == "None" else
                     "None called a relation (false alarm)" if g == "None" else "another relation"] += 1  # fmt: skip
    print_scores(
        "Relations of the given pairs", scores(gold, predicted, correct, (set(gold) | set(predicted)) - {"None"})
    )
    print_counts("Wrong pairs", outcomes)


def span(entity: dict) -> tuple[int, int]:
    return entity["start"], entity["end"]


def triples(structure: dict) -> set[tuple]:
    entities = structure["entities"]
    return {
        (span(entities[r["head"]]), entities[r["head"]]["type"], span(entities[r["tail"]]), entities[r["tail"]]["type"],
         r["type"])
        for r in structure["relations"]
    }  # fmt: skip


def joint(records: list[dict]) -> None:
    counts = {kind: (Counter(), Counter(), Counter()) for kind in ("entities", "triples")}
    entity_misses, triple_misses = Counter(), Counter()
    for record in records:
        gold, pred = record["gold"], record["pred"]
        gold_entities = {(span(e), e["type"]) for e in gold["entities"]}
        pred_entities = {(span(e), e["type"]) for e in pred["entities"]}
        pred_types = dict(pred_entities)
        for (g, p, c), gold_set, pred_set, type_of in (
            (counts["entities"], gold_entities, pred_entities, lambda item: item[1]),
            (counts["triples"], triples(gold), triples(pred), lambda item: item[4]),
        ):
            g.update(map(type_of, gold_set))
            p.update(map(type_of, pred_set))
            c.update(map(type_of, gold_set & pred_set))
        for entity_span, entity_type in gold_entities - pred_entities:
            if entity_span in pred_types:
                entity_misses[f"right span, type {pred_types[entity_span]} for {entity_type}"] += 1
            elif any(s < entity_span[1] and entity_span[0] < e for s, e in pred_types):
                entity_misses["wrong boundary (overlaps a predicted entity)"] += 1
            else:
                entity_misses["not found"] += 1
        predicted_triples = triples(pred)
        for head, head_type, tail, tail_type, relation in triples(gold) - predicted_triples:
            if (head, head_type) not in pred_entities or (tail, tail_type) not in pred_entities:
                triple_misses["an entity not found exactly (span and type)"] += 1
            elif any(t[:4] == (head, head_type, tail, tail_type) for t in predicted_triples):
                triple_misses["entities right, another relation"] += 1
            elif any(t[:4] == (tail, tail_type, head, head_type) for t in predicted_triples):
                triple_misses["entities right, the wrong way round"] += 1
            else:
                triple_misses["entities right, no relation predicted"] += 1
    for kind, (g, p, c) in counts.items():
        print_scores(f"{kind.capitalize()} by type", scores(g, p, c, set(g) | set(p)))
    print_counts("Gold entities missed", entity_misses)
    print_counts("Gold triples missed", triple_misses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", help="predictions_test.jsonl of an MNRE or JMERE run")
    args = parser.parse_args()
    with open(args.predictions, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    if not records:
        raise SystemExit(f"{args.predictions} holds no predictions.")
    (given_pairs if isinstance(records[0]["gold"], str) else joint)(records)


if __name__ == "__main__":
    main()
