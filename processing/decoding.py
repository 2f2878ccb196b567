"""The one decoder: model outputs -> entities and relations.

Decoding has two stages so that the `Trainer` can gather tensors between them:

1. `predictions_from_logits` (tensors, on the model's device): the Viterbi tags or the argmax
   grid with the probability of each choice, or for a given pair (MNRE) the probability mass
   of every label between the two spans.
2. `structures_from_predictions` (NumPy, per example): entities ``{"start", "end", "type",
   "score"}`` (word indices, end exclusive), relations ``{"head", "tail", "type", "score"}``
   (indices into the entities), or the relation of the given pair ``{"relation", "score"}``.

`decode` runs both; `merge_windows` joins the structures of the overlapping windows of a long
text. The metrics, ``run_mie.py --do_predict`` and the pipeline all read predictions here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .wordpair import IGNORE, cross_cells, decode_grid, mre_relation_from_sums


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


def relation_mass(probabilities: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
    """Per-label sums of ``P^final`` ``(B, W, W, C)`` over the cells between each example's head and
    tail ``spans`` ``(B, 4)`` (rows: the earlier span), plus a last column that is 1 when the head
    comes first: ``(B, C + 1)``."""
    positions = torch.arange(probabilities.shape[1], device=probabilities.device)
    head_start, head_end, tail_start, tail_end = spans.unbind(-1)
    forward = head_start < tail_start
    first_start = torch.where(forward, head_start, tail_start)
    first_end = torch.where(forward, head_end, tail_end)
    second_start = torch.where(forward, tail_start, head_start)
    second_end = torch.where(forward, tail_end, head_end)
    rows = (positions >= first_start[:, None]) & (positions < first_end[:, None])
    columns = (positions >= second_start[:, None]) & (positions < second_end[:, None])
    cells = (rows[:, :, None] & columns[:, None, :]).to(probabilities.dtype)
    mass = torch.einsum("bij,bijc->bc", cells, probabilities)
    return torch.cat([mass, forward[:, None].to(mass.dtype)], dim=-1)


@torch.no_grad()
def predictions_from_logits(
    model, logits: torch.Tensor, word_mask: torch.Tensor, spans: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Stage 1: ``{"ids", "scores"}`` or, with the given ``spans`` of relation extraction, ``{"relation_mass"}``.

    Args:
        model: a Shap-CA task model (its `decode` gives the Viterbi tags or the argmax grid).
        logits: ``(B, W, T)`` CRF emissions or ``(B, W, W, C)`` word-pair logits.
        word_mask: ``(B, W)``, True on words (``word_index >= 0``).
        spans: ``(B, 4)`` head start, head end, tail start, tail end (MNRE: the pair to classify).

    Returns:
        ``ids`` (``(B, W)`` tags or ``(B, W, W)`` grid labels, -100 on padding) with ``scores``, the
        probability of each chosen label (softmax over the last axis of ``logits``); or
        ``relation_mass`` ``(B, C + 1)`` (see `relation_mass`).
    """
    probabilities = logits.float().softmax(-1)
    if spans is not None:
        return {"relation_mass": relation_mass(probabilities, spans.to(logits.device))}
    ids = model.decode(logits, word_mask)
    scores = probabilities.gather(-1, ids.clamp(min=0)[..., None]).squeeze(-1).masked_fill(ids < 0, 0.0)
    return {"ids": ids, "scores": scores}


def _mean_score(scores: np.ndarray | None, rows, columns) -> float | None:
    if scores is None:
        return None
    block = scores[rows, columns]
    return round(float(block.mean()), 4) if block.size else None


def structures_from_predictions(
    predictions: Mapping[str, np.ndarray], id2label: Mapping[int, str], task: str, num_words: Sequence[int]
) -> list[dict]:
    """Stage 2: the structures of each example from the arrays of `predictions_from_logits`.

    Args:
        predictions: ``ids`` (and optionally ``scores``), or ``relation_mass``, as NumPy arrays or tensors.
        id2label: the model's ``config.id2label``.
        task: ``"ner"`` or ``"word_pair"`` (``config.task``).
        num_words: the number of words of each example read by the model (the rest is padding).

    Returns:
        One dict per example: ``{"entities": [...]}`` (NER), ``{"entities": [...], "relations": [...]}``
        (word pairs) or ``{"relation", "score"}`` (a given pair). Scores are the mean probability of
        the labels that make the structure (tags of an entity; grid cells of an entity block, or
        between the spans of a relation).
    """
    id2label = {int(key): value for key, value in id2label.items()}
    arrays = {key: np.asarray(value.cpu() if isinstance(value, torch.Tensor) else value) for key, value in predictions.items()}
    if "relation_mass" in arrays:
        results = []
        for mass in arrays["relation_mass"]:
            relation, score = mre_relation_from_sums(mass[:-1], bool(mass[-1]), id2label)
            results.append({"relation": relation, "score": round(score, 4)})
        return results
    ids, scores = arrays["ids"], arrays.get("scores")
    results = []
    for row, size in enumerate(num_words):
        row_scores = None if scores is None else scores[row]
        if task == "ner":
            tags = [id2label[int(i)] if i >= 0 else "O" for i in ids[row, :size]]
            entities = bio_entities(tags)
            for entity in entities:
                entity["score"] = _mean_score(row_scores, slice(entity["start"], entity["end"]), None)
            results.append({"entities": entities})
            continue
        entities, relations = decode_grid(ids[row, :size, :size], id2label)
        for entity in entities:
            span = slice(entity["start"], entity["end"])
            block = None if row_scores is None else np.triu(row_scores[span, span])
            entity["score"] = None if block is None else round(float(block.sum() / np.triu(np.ones_like(block)).sum()), 4)
        for relation in relations:
            rows, columns, _ = cross_cells(entities[relation["head"]], entities[relation["tail"]])
            relation["score"] = _mean_score(row_scores, rows, columns)
        results.append({"entities": entities, "relations": relations})
    return results


def decode(model, logits: torch.Tensor, word_mask: torch.Tensor, spans: torch.Tensor | None = None) -> list[dict]:
    """Both stages: a batch's logits -> the structures of each example (see `structures_from_predictions`)."""
    predictions = predictions_from_logits(model, logits, word_mask, spans)
    num_words = word_mask.sum(-1).tolist()
    return structures_from_predictions(predictions, model.config.id2label, model.config.task, num_words)


def merge_windows(
    structures: Sequence[dict], sample_mapping: Sequence[int], word_offset: Sequence[int], window_words: Sequence[int]
) -> list[dict]:
    """Join the structures of overlapping windows into one per example, in the example's word indices.

    Each word belongs to the window in which it is farthest from a window edge (most context on
    both sides, as transformers' token-classification pipeline chooses with ``stride``); an
    entity is taken from the window that owns its first word, a relation from the window that
    owns its head's first word. Entities and relations are sorted by position.
    """
    by_example: dict[int, list[int]] = {}
    for window, example in enumerate(sample_mapping):
        by_example.setdefault(int(example), []).append(window)
    merged = []
    for example in sorted(by_example):
        windows = by_example[example]
        owner: dict[int, tuple[int, int]] = {}  # word -> (margin, window)
        for window in windows:
            start, size = int(word_offset[window]), int(window_words[window])
            for position in range(size):
                margin = min(position, size - 1 - position)
                if start + position not in owner or margin > owner[start + position][0]:
                    owner[start + position] = (margin, window)
        if "relation" in structures[windows[0]]:  # a given pair is never split into windows
            merged.append(dict(structures[windows[0]]))
            continue
        entities: dict[tuple, dict] = {}
        relations: dict[tuple, dict] = {}
        for window in windows:
            start, found = int(word_offset[window]), structures[window]
            shifted = [dict(e, start=e["start"] + start, end=e["end"] + start) for e in found["entities"]]
            for entity in shifted:
                if owner[entity["start"]][1] == window:
                    entities[(entity["start"], entity["end"], entity["type"])] = entity
            for relation in found.get("relations", []):
                head, tail = shifted[relation["head"]], shifted[relation["tail"]]
                if owner[head["start"]][1] != window:
                    continue
                for entity in (head, tail):
                    entities.setdefault((entity["start"], entity["end"], entity["type"]), entity)
                key = (head["start"], head["end"], head["type"], tail["start"], tail["end"], tail["type"])
                relations[key] = dict(relation, head=head, tail=tail)
        ordered = sorted(entities.values(), key=lambda e: (e["start"], e["end"], e["type"]))
        index = {(e["start"], e["end"], e["type"]): i for i, e in enumerate(ordered)}
        result = {"entities": ordered}
        if "relations" in structures[windows[0]]:
            result["relations"] = sorted(
                (
                    dict(
                        relation,
                        head=index[(relation["head"]["start"], relation["head"]["end"], relation["head"]["type"])],
                        tail=index[(relation["tail"]["start"], relation["tail"]["end"], relation["tail"]["type"])],
                    )
                    for relation in relations.values()
                ),
                key=lambda r: (r["head"], r["tail"]),
            )
        merged.append(result)
    return merged


__all__ = [
    "IGNORE",
    "bio_entities",
    "decode",
    "merge_windows",
    "predictions_from_logits",
    "relation_mass",
    "structures_from_predictions",
]
