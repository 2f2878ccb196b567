"""Transitional: the scores of the paper's Table 1 now live in the `evaluate` modules of ``metrics/``.

``ner_scores``, ``mre_scores`` and ``mjere_scores`` keep their old signatures for ``run_mie.py``
until it calls ``metrics.load_metric`` itself; then this file goes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


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


def _load_metric(task: str):
    # Imported when scoring, so that importing bio_entities needs no `metrics` folder on the path.
    from metrics import load_metric

    return load_metric(task)


def ner_scores(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> dict[str, float]:
    """Entity-level scores of BIO tags, from ``metrics/mner``."""
    return _load_metric("ner").compute(predictions=pred_tags, references=gold_tags)


def mre_scores(gold: Sequence[str], pred: Sequence[str]) -> dict[str, float]:
    """Relation scores over the labels other than ``None``, and accuracy, from ``metrics/mre``."""
    return _load_metric("mre").compute(predictions=pred, references=gold)


def mjere_scores(
    gold: Sequence[tuple[Sequence[Mapping], Sequence[Mapping]]],
    pred: Sequence[tuple[Sequence[Mapping], Sequence[Mapping]]],
) -> dict[str, float]:
    """Triple and entity scores of ``(entities, relations)`` pairs, from ``metrics/mjere``."""

    def structures(pairs):
        return [{"entities": list(entities), "relations": list(relations)} for entities, relations in pairs]

    return _load_metric("mjere").compute(predictions=structures(pred), references=structures(gold))
