"""From what the Trainer gathers to scores and records: the decoded structures, a pure
`compute_metrics` (the task's `evaluate` module), the choice of MNRE's None weight on dev, and
the prediction records written next to a run."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from transformers import EvalPrediction

from modeling_shapca.heads import IGNORE_INDEX
from processing.decoding import bio_entities, structures_from_predictions
from processing.tasks import TASKS
from shapca_metrics import load_metric


def decoded_structures(predictions, id2label: dict, task: str, none_weight: float = 1.0) -> list[dict]:
    """Structures from the arrays `MIETrainer.prediction_step` gathers (see `processing.decoding`);
    ``none_weight``: the weight of ``None`` in the decision of a given pair (MNRE)."""
    if TASKS[task].given_pair:
        return structures_from_predictions(
            {"relation_mass": predictions}, id2label, "word_pair", none_weight=none_weight
        )
    ids, scores = predictions
    return structures_from_predictions({"ids": ids, "scores": scores}, id2label, TASKS[task].head)


# The weights of `None` tried by `select_none_weight`: 1 (the paper's argmax) and around it.
NONE_WEIGHTS = tuple(round(0.05 * step, 2) for step in range(1, 41))


def select_none_weight(prediction: EvalPrediction, id2label: dict, relation_names: Sequence[str]) -> dict[float, float]:
    """Dev F1 of the given-pair decision (MNRE) for each weight of ``None`` in `NONE_WEIGHTS`, best first
    (ties go to the weight nearest 1, the paper's rule)."""
    f1 = {
        weight: compute_metrics(
            prediction, task="mre", id2label=id2label, relation_names=relation_names, none_weight=weight
        )["f1"]
        for weight in NONE_WEIGHTS
    }
    return dict(sorted(f1.items(), key=lambda item: (-item[1], abs(item[0] - 1.0))))


def _rows(array: np.ndarray) -> list[list[int]]:
    """A padded ``(B, N, 3)`` array -> the rows of each example that are not padding."""
    return [[list(map(int, row)) for row in example if row[0] != IGNORE_INDEX] for example in array]


def compute_metrics(
    prediction: EvalPrediction,
    *,
    task: str,
    id2label: dict,
    relation_names: Sequence[str] = (),
    none_weight: float = 1.0,
) -> dict:
    """The task's scores (an `evaluate` module in ``shapca_metrics/``) of the gathered predictions.

    ``label_ids`` are the gold tags of every word (NER), the gold relation ids (MRE, over ``relation_names``) or
    the gold ``(entities, relations)`` arrays (joint extraction); ``predictions`` are what
    `MIETrainer.prediction_step` returns. ``none_weight``: see `decoded_structures`.
    """
    id2label = {int(key): value for key, value in id2label.items()}
    structures = decoded_structures(prediction.predictions, id2label, task, none_weight)
    metric = load_metric(TASKS[task].metric)
    if TASKS[task].tagged:
        gold = [[id2label[int(t)] for t in row if t != IGNORE_INDEX] for row in prediction.label_ids]
        pred = [tags_from_entities(s["entities"], len(g)) for s, g in zip(structures, gold)]
        return metric.compute(predictions=pred, references=gold)
    if TASKS[task].given_pair:
        gold = [relation_names[int(i)] for i in prediction.label_ids]
        return metric.compute(predictions=[s["relation"] for s in structures], references=gold)
    gold_entities, gold_relations = prediction.label_ids
    gold = [
        {"entities": [{"start": s, "end": e, "type": id2label[t]} for s, e, t in entities],
         "relations": [{"head": h, "tail": t, "type": id2label[r]} for h, t, r in relations]}
        for entities, relations in zip(_rows(gold_entities), _rows(gold_relations))
    ]  # fmt: skip
    return metric.compute(predictions=[metric_structure(s) for s in structures], references=gold)


def metric_structure(structure: dict) -> dict:
    """A decoded joint structure in the metric's features: the decoder's scores (and anything else
    it attaches) are not part of what is scored."""
    return {
        "entities": [{key: entity[key] for key in ("start", "end", "type")} for entity in structure["entities"]],
        "relations": [{key: relation[key] for key in ("head", "tail", "type")} for relation in structure["relations"]],
    }


def tags_from_entities(entities: Sequence[dict], num_words: int) -> list[str]:
    """BIO tags of ``num_words`` words from entity spans (words the model did not read are ``O``)."""
    tags = ["O"] * num_words
    for entity in entities:
        for position in range(entity["start"], min(entity["end"], num_words)):
            tags[position] = ("B-" if position == entity["start"] else "I-") + entity["type"]
    return tags


def prediction_records(dataset, structures: list[dict], task: str, id2label: dict) -> list[dict]:
    """One JSON record per example of a prepared split: its id, words, gold and predicted structures
    (NER gold in the model's labels, as scored)."""
    records = []
    for row, found in zip(dataset, structures):
        record = {"id": row["id"], "words": row["words"]}
        if TASKS[task].tagged:
            record.update(gold=bio_entities([id2label[tag] for tag in row["labels"]]), pred=found["entities"])
        elif TASKS[task].given_pair:
            relation = dataset.features["relation"].names[row["relation"]]
            record.update(head=row["head"], tail=row["tail"], gold=relation, pred=found["relation"],
                          score=found["score"], label_scores=found["label_scores"])  # fmt: skip
        else:
            record.update(gold={"entities": row["entities"], "relations": row["relations"]}, pred=found)
        records.append(record)
    return records
