"""From what the Trainer gathers to scores and records: the decoded structures, a pure
`compute_metrics` (the task's `evaluate` module), the choice on dev of how MNRE decides a given
pair, and the prediction records written next to a run."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from transformers import EvalPrediction

from modeling_shapca.heads import IGNORE_INDEX
from processing.decoding import bio_entities, given_pair_shares, structures_from_predictions
from processing.tasks import TASKS
from processing.wordpair import mre_decide, mre_relation_weights
from shapca_metrics import load_metric


def decoded_structures(
    predictions, id2label: dict, task: str, none_weight: float = 1.0, relation_weights: dict | None = None
) -> list[dict]:
    """Structures from the arrays `MIETrainer.prediction_step` gathers (see `processing.decoding`);
    ``none_weight``, ``relation_weights``: how a given pair (MNRE) is decided
    (`processing.wordpair.mre_decide`)."""
    if TASKS[task].given_pair:
        return structures_from_predictions(
            {"relation_mass": predictions}, id2label, "word_pair", none_weight=none_weight,
            relation_weights=relation_weights,
        )  # fmt: skip
    ids, scores = predictions
    return structures_from_predictions({"ids": ids, "scores": scores}, id2label, TASKS[task].head)


# The decisions of a given pair tried on dev by `select_mre_decision`: weights of `None` around 1
# (the paper's argmax), prior exponents from 0 (the paper's rule) to 1 (shares divided by priors).
NONE_WEIGHTS = tuple(round(0.05 * step, 2) for step in range(1, 41))
PRIOR_EXPONENTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)


def select_mre_decision(
    prediction: EvalPrediction,
    id2label: dict,
    relation_names: Sequence[str],
    none_weights: Sequence[float] = NONE_WEIGHTS,
    prior_exponents: Sequence[float] = (0.0,),
    relation_counts: dict | None = None,
) -> dict[tuple[float, float], float]:
    """Dev F1 of the given-pair decision (MNRE) for every ``(none weight, prior exponent)``, best
    first (see `choose_mre_decision`), from the gathered predictions of dev."""
    shares = given_pair_shares(prediction.predictions, id2label)  # unrounded: as the decision reads them
    gold = [relation_names[int(i)] for i in prediction.label_ids]
    return choose_mre_decision(shares, gold, relation_names, none_weights, prior_exponents, relation_counts)


def choose_mre_decision(
    shares: Sequence[dict],
    gold: Sequence[str],
    relation_names: Sequence[str],
    none_weights: Sequence[float] = NONE_WEIGHTS,
    prior_exponents: Sequence[float] = (0.0,),
    relation_counts: dict | None = None,
) -> dict[tuple[float, float], float]:
    """F1 of every ``(none weight, prior exponent)`` decision (`processing.wordpair.mre_decide`) of
    the pairs whose answers have the ``shares`` (each a record's ``label_scores``) against their
    ``gold`` relations, best first; ties go to the None weight nearest 1 (the paper's rule), then to
    the smallest exponent.
    ``relation_counts``: the training pairs of each relation (the priors; needed for an exponent above 0)."""
    metric = load_metric(TASKS["mre"].metric)
    f1 = {}
    for exponent in prior_exponents:
        weights = mre_relation_weights(relation_counts, relation_names, exponent)
        for none_weight in none_weights:
            found = [mre_decide(answers, none_weight, weights) for answers in shares]
            f1[(none_weight, exponent)] = metric.compute(predictions=found, references=list(gold))["f1"]
    return dict(sorted(f1.items(), key=lambda item: (-item[1], abs(item[0][0] - 1.0), item[0][1])))


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
    relation_weights: dict | None = None,
) -> dict:
    """The task's scores (an `evaluate` module in ``shapca_metrics/``) of the gathered predictions.

    ``label_ids`` are the gold tags of every word (NER), the gold relation ids (MRE, over ``relation_names``) or
    the gold ``(entities, relations)`` arrays (joint extraction); ``predictions`` are what
    `MIETrainer.prediction_step` returns. ``none_weight``, ``relation_weights``: see `decoded_structures`.
    """
    id2label = {int(key): value for key, value in id2label.items()}
    structures = decoded_structures(prediction.predictions, id2label, task, none_weight, relation_weights)
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
