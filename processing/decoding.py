"""From model outputs to entities and relations, for every reader of predictions.

The heads' own ``decode`` methods give label ids (Viterbi tags, argmax grids); this module turns
logits into ids with their probabilities, and ids into structures.

Decoding has two stages so that the `Trainer` can gather tensors between them:

1. `predictions_from_logits` (tensors, on the model's device): the Viterbi tags or the argmax
   grid with the probability of each choice, or for a given pair (MNRE) the probability mass
   of every label between the two spans.
2. `structures_from_predictions` (NumPy, per example): entities ``{"start", "end", "type",
   "score"}`` (word indices, end exclusive), relations ``{"head", "tail", "type", "score"}``
   (indices into the entities), or the relation of the given pair ``{"relation", "score"}``.

`decode` runs both; `join_windows`, between the two stages, joins the predictions of the
overlapping windows of a long text into one row per example. The metrics, ``run_mie.py --do_predict`` and the pipeline all read predictions here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .wordpair import (
    IGNORE_INDEX,
    REVERSED,
    cross_cells,
    decode_grid,
    mre_candidate_shares,
    mre_decide,
    mre_relation_weights,
    relation_label_names,
)


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


def relation_mass(probabilities: torch.Tensor, spans: torch.Tensor, cells: str = "spans") -> torch.Tensor:
    """Per-label sums of ``P^final`` ``(B, W, W, C)`` over the cells between each example's head and
    tail ``spans`` ``(B, 4)`` (rows: the earlier span), plus a last column that is 1 when the head
    comes first: ``(B, C + 1)``. ``cells="first_words"`` sums the one cell between the spans' first
    words instead (`ShapCAWordPairConfig.mre_decision_cells`)."""
    positions = torch.arange(probabilities.shape[1], device=probabilities.device)
    head_start, head_end, tail_start, tail_end = spans.unbind(-1)
    forward = head_start < tail_start
    first_start = torch.where(forward, head_start, tail_start)
    first_end = torch.where(forward, head_end, tail_end)
    second_start = torch.where(forward, tail_start, head_start)
    second_end = torch.where(forward, tail_end, head_end)
    if cells == "first_words":
        first_end, second_end = first_start + 1, second_start + 1
    rows = (positions >= first_start[:, None]) & (positions < first_end[:, None])
    columns = (positions >= second_start[:, None]) & (positions < second_end[:, None])
    block = (rows[:, :, None] & columns[:, None, :]).to(probabilities.dtype)
    mass = torch.einsum("bij,bijc->bc", block, probabilities)
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
        cells = getattr(model.config, "mre_decision_cells", "spans")
        return {"relation_mass": relation_mass(probabilities, spans.to(logits.device), cells)}
    ids = model.decode(logits, word_mask)
    scores = probabilities.gather(-1, ids.clamp(min=0)[..., None]).squeeze(-1).masked_fill(ids < 0, 0.0)
    return {"ids": ids, "scores": scores}


def given_pair_shares(relation_mass, id2label: Mapping[int, str]) -> list[dict[str, float]]:
    """Every answer's share (`processing.wordpair.mre_candidate_shares`), unrounded, for each row of
    ``relation_mass`` ``(B, C + 1)`` (see `relation_mass`): what the decision of a given pair reads."""
    id2label = {int(key): value for key, value in id2label.items()}
    return [mre_candidate_shares(mass[:-1], bool(mass[-1]), id2label) for mass in np.asarray(relation_mass)]


def _mean_score(scores: np.ndarray | None, rows, columns) -> float | None:
    if scores is None:
        return None
    block = scores[rows, columns]
    return round(float(block.mean()), 4) if block.size else None


def structures_from_predictions(
    predictions: Mapping[str, np.ndarray],
    id2label: Mapping[int, str],
    head: str,
    num_words: Sequence[int] | None = None,
    none_weight: float = 1.0,
    relation_weights: Mapping[str, float] | None = None,
) -> list[dict]:
    """Stage 2: the structures of each example from the arrays of `predictions_from_logits`.

    Args:
        predictions: ``ids`` (and optionally ``scores``), or ``relation_mass`` (per-label sums, then a
            last column that is 1 when the head precedes the tail: see `relation_mass`), as NumPy
            arrays or tensors.
        id2label: the model's ``config.id2label``.
        head: the model's ``config.head``: ``"crf"`` (BIO tags) or ``"word_pair"`` (grids).
        num_words: the number of words of each example read by the model (the rest is padding); by
            default the positions whose ``ids`` (the grid's diagonal) are not -100.
        none_weight, relation_weights: how a given pair is decided (see
            `processing.wordpair.mre_decide`; `mre_decision_settings` reads them from a config).

    Returns:
        One dict per example: ``{"entities": [...]}`` (NER), ``{"entities": [...], "relations": [...]}``
        (word pairs) or ``{"relation", "score", "label_scores"}`` (a given pair; ``label_scores``: the
        share of every answer, see `processing.wordpair.mre_candidate_shares`). Scores are the mean probability of
        the labels that make the structure (tags of an entity; grid cells of an entity block, or
        between the spans of a relation).
    """
    id2label = {int(key): value for key, value in id2label.items()}
    arrays = {
        key: np.asarray(value.cpu() if isinstance(value, torch.Tensor) else value) for key, value in predictions.items()
    }
    if "relation_mass" in arrays:
        results = []
        for shares in given_pair_shares(arrays["relation_mass"], id2label):
            relation = mre_decide(shares, none_weight, relation_weights)
            label_scores = {answer: round(share, 6) for answer, share in shares.items()}
            results.append({"relation": relation, "score": round(shares[relation], 4), "label_scores": label_scores})
        return results
    ids, scores = arrays["ids"], arrays.get("scores")
    if num_words is None:
        num_words = ((ids if ids.ndim == 2 else np.diagonal(ids, axis1=1, axis2=2)) >= 0).sum(-1).tolist()
    results = []
    for row, size in enumerate(num_words):
        row_scores = None if scores is None else scores[row]
        if head == "crf":
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
            entity["score"] = (
                None if block is None else round(float(block.sum() / np.triu(np.ones_like(block)).sum()), 4)
            )
        for relation in relations:
            rows, columns, _ = cross_cells(entities[relation["head"]], entities[relation["tail"]])
            relation["score"] = _mean_score(row_scores, rows, columns)
        results.append({"entities": entities, "relations": relations})
    return results


def mre_decision_settings(config) -> dict:
    """How a word-pair config decides a given pair: ``{"none_weight", "relation_weights"}`` for
    `structures_from_predictions`, the relation weights from its training counts and prior exponent
    (`processing.wordpair.mre_relation_weights`; None when the exponent is 0, the paper's rule)."""
    labels = {int(key): value for key, value in config.id2label.items()}.values()
    relations = [label for label in relation_label_names(labels) if not label.endswith(REVERSED)]
    counts, exponent = getattr(config, "mre_relation_counts", None), getattr(config, "mre_prior_exponent", 0.0)
    weights = mre_relation_weights(counts, relations, exponent)
    return {"none_weight": getattr(config, "mre_none_weight", 1.0), "relation_weights": weights}


def decode(
    model,
    logits: torch.Tensor,
    word_mask: torch.Tensor,
    spans: torch.Tensor | None = None,
    windows: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> list[dict]:
    """Both stages: a batch's logits -> the structures of each example (see `structures_from_predictions`).

    ``windows``: the processor's ``overflow_to_sample_mapping`` and ``word_offset`` when the rows are
    windows of long texts; their predictions are joined (`join_windows`) before stage 2.
    """
    if windows is not None and spans is not None:
        raise ValueError("A given pair (spans) is read whole: encode it without return_overflowing_tokens.")
    predictions = predictions_from_logits(model, logits, word_mask, spans)
    if spans is not None:
        settings = mre_decision_settings(model.config)
        return structures_from_predictions(predictions, model.config.id2label, "word_pair", **settings)
    if windows is not None:
        return structures_from_predictions(
            join_windows(predictions, *windows), model.config.id2label, model.config.head
        )
    num_words = word_mask.sum(-1).tolist()
    return structures_from_predictions(predictions, model.config.id2label, model.config.head, num_words)


def join_windows(
    predictions: Mapping[str, torch.Tensor], sample_mapping: torch.Tensor, word_offset: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Join the predictions of the overlapping windows of long texts into one row per example, in
    the example's word indices (stage 1 output in, stage 1 output out).

    Each word is taken from the window in which it is farthest from a window edge (most context on
    both sides, as transformers' token-classification pipeline chooses with ``stride``); a grid cell
    ``(i, j)`` from the window that holds both words with the largest smaller margin of the two
    (its diagonal, an entity's own cells, follows the word rule). A cell no window holds (words
    further apart than a window) is ``-100``: no label there, hence no relation across it.

    Args:
        predictions: ``ids`` ``(R, W)`` or ``(R, W, W)`` with ``scores`` of the same shape, one row
            per window (-100 on padding); or ``relation_mass`` ``(R, C + 1)`` (a given pair is never
            split: its example's first window is kept).
        sample_mapping: ``(R,)`` the example of each window, examples in order from 0.
        word_offset: ``(R,)`` the example's index of each window's first word.

    Returns:
        The same keys, one row per example: ``(E, N)`` or ``(E, N, N)`` with ``N`` the most words
        any example reaches.
    """
    examples = int(sample_mapping.max()) + 1 if len(sample_mapping) else 0
    if "relation_mass" in predictions:
        device = sample_mapping.device
        first = torch.zeros(examples, dtype=torch.long, device=device).scatter_reduce(
            0, sample_mapping, torch.arange(len(sample_mapping), device=device), reduce="amin", include_self=False
        )
        return {"relation_mass": predictions["relation_mass"][first]}
    ids = predictions["ids"]
    valid = (ids if ids.dim() == 2 else ids.diagonal(dim1=1, dim2=2)) >= 0  # (R, W): the window's words
    words_read = valid.sum(-1)
    width = int((word_offset + words_read).max()) if len(ids) else 0
    if ids.dim() == 2:
        return _join_tag_rows(predictions, sample_mapping, word_offset, valid, examples, width)
    # Each window's words placed at their example positions: (R, N), -1 where the window has none.
    positions = torch.arange(ids.shape[1], device=ids.device)
    margin = torch.minimum(positions, words_read[:, None] - 1 - positions).masked_fill(~valid, -1)
    target = (word_offset[:, None] + positions).masked_fill(~valid, width)  # `width`: a discarded column
    placed_margin = torch.full((len(ids), width + 1), -1, dtype=margin.dtype, device=ids.device)
    placed_margin.scatter_(1, target, margin)
    placed_margin = placed_margin[:, :width]
    if ids.dim() == 3:  # a cell's margin is the smaller of its two words'
        placed_margin = torch.minimum(placed_margin[:, :, None], placed_margin[:, None, :])
    # Per example, the window with the largest margin at each position (ties: the earlier window).
    window_margin = torch.full((examples, *placed_margin.shape[1:]), -1, dtype=margin.dtype, device=ids.device)
    window_margin.scatter_reduce_(0, _expand_like(sample_mapping, placed_margin), placed_margin, reduce="amax")
    rows = torch.arange(len(ids), device=ids.device)
    chosen = torch.where(
        (placed_margin >= 0) & (placed_margin == window_margin[sample_mapping]), _expand_like(rows, placed_margin),
        len(ids),
    )  # fmt: skip
    owner = torch.full_like(window_margin, len(ids)).scatter_reduce_(
        0, _expand_like(sample_mapping, chosen), chosen, reduce="amin"
    )  # (E, N...): the window each position is read from, len(ids) where none
    joined = {}
    for key, value in predictions.items():
        fill = IGNORE_INDEX if key == "ids" else 0
        placed = _place(value, word_offset, valid, width, fill)  # (R + 1, N...) with a last all-`fill` row
        joined[key] = placed[(owner, *_position_grid(placed.shape[1:], len(owner), ids.device))]
    return joined


def _join_tag_rows(predictions, sample_mapping, word_offset, valid, examples: int, width: int) -> dict:
    """`join_windows` for tag rows ``(R, W)``, in memory linear in the words the windows read (a
    long text's windows placed in rows as long as the text would take windows x words)."""
    row, position = valid.nonzero(as_tuple=True)  # every word a window read, in order
    words_read = valid.sum(-1)
    margin = torch.minimum(position, words_read[row] - 1 - position)
    target = sample_mapping[row] * width + word_offset[row] + position  # (example, word), flattened
    device, windows = valid.device, len(valid)
    best = torch.full((examples * width,), -1, dtype=margin.dtype, device=device)
    best.scatter_reduce_(0, target, margin, reduce="amax")
    candidate = torch.where(margin == best[target], row, windows)
    owner = torch.full((examples * width,), windows, dtype=row.dtype, device=device)
    owner.scatter_reduce_(0, target, candidate, reduce="amin")  # ties: the earlier window
    chosen = row == owner[target]
    joined = {}
    for key, value in predictions.items():
        out = value.new_full((examples * width,), IGNORE_INDEX if key == "ids" else 0)
        out[target[chosen]] = value[row[chosen], position[chosen]]
        joined[key] = out.view(examples, width)
    return joined


def _expand_like(index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return index.view(-1, *([1] * (like.dim() - 1))).expand_as(like)


def _position_grid(shape, examples: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Broadcastable position indices for gathering ``(E, *shape)`` from ``(R, *shape)``."""
    grids = torch.meshgrid(*(torch.arange(size, device=device) for size in shape), indexing="ij")
    return tuple(grid.expand(examples, *shape) for grid in grids)


def _place(value: torch.Tensor, word_offset: torch.Tensor, valid: torch.Tensor, width: int, fill) -> torch.Tensor:
    """Window rows ``(R, W...)`` shifted to example positions ``(R + 1, N...)`` (the last row all ``fill``)."""
    windows, size = value.shape[:2]
    out = torch.full((windows + 1, *([width + 1] * (value.dim() - 1))), fill, dtype=value.dtype, device=value.device)
    target = (word_offset[:, None] + torch.arange(size, device=value.device)).masked_fill(~valid, width)
    rows = torch.arange(windows, device=value.device)[:, None]
    if value.dim() == 2:
        out[rows, target] = value
    else:
        out[rows[:, :, None], target[:, :, None], target[:, None, :]] = value
    return out[(slice(None), *[slice(0, width)] * (value.dim() - 1))]


__all__ = [
    "bio_entities",
    "decode",
    "join_windows",
    "predictions_from_logits",
    "relation_mass",
    "structures_from_predictions",
]
