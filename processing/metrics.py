"""The metrics of the paper's Table 1, on labels and spans (never on tensors)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2

NO_RELATION = "None"


def precision_recall_f1(true_positives: int, predicted: int, gold: int) -> dict[str, float]:
    precision = true_positives / predicted if predicted else 0.0
    recall = true_positives / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def bio_entities(tags: Sequence[str]) -> list[dict]:
    """Entity spans ``{"start", "end", "type"}`` (end exclusive) read from BIO tags.

    An ``I-X`` that does not continue an ``X`` entity starts one, as seqeval's default mode reads it.
    """
    entities = []
    for position, tag in enumerate(tags):
        prefix, _, entity_type = tag.partition("-")
        continues = entities and entities[-1]["end"] == position and entities[-1]["type"] == entity_type
        if prefix == "I" and continues:
            entities[-1]["end"] = position + 1
        elif prefix in ("B", "I"):
            entities.append({"start": position, "end": position + 1, "type": entity_type})
    return entities


def ner_scores(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> dict[str, float]:
    """Entity-level micro precision/recall/F1 (seqeval).

    The plain keys use seqeval's default (CoNLL) mode, which also counts entities that start
    with ``I-``; ``strict_*`` use strict IOB2, which does not. Per-type F1 as ``<TYPE>_f1``.
    """
    if [len(s) for s in gold_tags] != [len(s) for s in pred_tags]:
        raise ValueError("gold_tags and pred_tags must have one tag per word, sentence by sentence.")
    gold, pred = [list(s) for s in gold_tags], [list(s) for s in pred_tags]
    scores = {
        "precision": precision_score(gold, pred, zero_division=0),
        "recall": recall_score(gold, pred, zero_division=0),
        "f1": f1_score(gold, pred, zero_division=0),
        "strict_precision": precision_score(gold, pred, mode="strict", scheme=IOB2, zero_division=0),
        "strict_recall": recall_score(gold, pred, mode="strict", scheme=IOB2, zero_division=0),
        "strict_f1": f1_score(gold, pred, mode="strict", scheme=IOB2, zero_division=0),
    }
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    for entity_type, values in report.items():
        if not entity_type.endswith(" avg"):
            scores[f"{entity_type}_f1"] = values["f1-score"]
    return {key: float(value) for key, value in scores.items()}


def mre_scores(gold: Sequence[str], pred: Sequence[str]) -> dict[str, float]:
    """Micro precision/recall/F1 over the relations other than ``None``, and accuracy."""
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} relations but pred has {len(pred)}.")
    true_positives = sum(g == p and g != NO_RELATION for g, p in zip(gold, pred))
    scores = precision_recall_f1(
        true_positives, sum(p != NO_RELATION for p in pred), sum(g != NO_RELATION for g in gold)
    )
    scores["accuracy"] = sum(g == p for g, p in zip(gold, pred)) / len(gold) if gold else 0.0
    return scores


def _entity_keys(entities: Sequence[Mapping]) -> list[tuple]:
    return [(e["start"], e["end"], e["type"]) for e in entities]


def _triples(entities: Sequence[Mapping], relations: Sequence[Mapping]) -> set[tuple]:
    keys = _entity_keys(entities)
    return {(keys[r["head"]], keys[r["tail"]], r["type"]) for r in relations}


def mjere_scores(
    gold: Sequence[tuple[Sequence[Mapping], Sequence[Mapping]]],
    pred: Sequence[tuple[Sequence[Mapping], Sequence[Mapping]]],
) -> dict[str, float]:
    """Joint triple scores (both spans, both types and the relation right) and entity scores.

    Each item is ``(entities, relations)`` as in the JMERE corpus. Keys: ``precision``,
    ``recall``, ``f1`` (triples, MJERE_j) and ``entity_precision``, ``entity_recall``,
    ``entity_f1`` (MJERE_e).
    """
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} sentences but pred has {len(pred)}.")
    counts = {"triple": [0, 0, 0], "entity": [0, 0, 0]}  # true positives, predicted, gold
    for (gold_entities, gold_relations), (pred_entities, pred_relations) in zip(gold, pred):
        for kind, gold_set, pred_set in (
            ("triple", _triples(gold_entities, gold_relations), _triples(pred_entities, pred_relations)),
            ("entity", set(_entity_keys(gold_entities)), set(_entity_keys(pred_entities))),
        ):
            counts[kind][0] += len(gold_set & pred_set)
            counts[kind][1] += len(pred_set)
            counts[kind][2] += len(gold_set)
    scores = precision_recall_f1(*counts["triple"])
    scores.update({f"entity_{key}": value for key, value in precision_recall_f1(*counts["entity"]).items()})
    return scores
