"""The word-pair grid: entities and relations as one label per word pair (the tagging scheme of
Yuan et al. 2023 that the paper's section 3.6 builds on).

The grid covers the upper triangle ``i <= j`` of the words; cells below the diagonal are
``-100``. Labels are ``none``, the entity types and the relation types:

- every cell ``(i, j)`` with both words inside one entity span carries the entity's type;
- every cell between a word of the head and a word of the tail carries the relation,
  at ``(min, max)``;
- all other cells are ``none``.

One triangle cannot say which of the two entities is the head. Relation labels therefore come
in two directions: ``r`` when the head precedes the tail, and ``r^-1`` when it follows it, so
that decoding gives back every relation with its direction (a deliberate addition to the
scheme of EEGA, which would otherwise lose the direction of about a third of the JMERE relations).

For relation extraction (MNRE) the spans carry the label ``entity`` and the cross cells the
relation; MNRE's ``None`` is the grid's ``none``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

NONE = "none"
# The label of what nothing is learnt from: the model's own (`modeling_shapca.heads.IGNORE_INDEX`),
# written again here because a checkpoint's copy of this package imports nothing outside it.
IGNORE_INDEX = -100
REVERSED = "^-1"
MRE_ENTITY = "entity"
MRE_NO_RELATION = "None"


def grid_label_names(entity_types: Iterable[str], relation_types: Iterable[str]) -> list[str]:
    """The grid labels, in id order: ``none``, the entity types, each relation and its reverse."""
    relation_types = [relation for relation in relation_types if relation != MRE_NO_RELATION]
    return [NONE, *entity_types, *relation_types, *(relation + REVERSED for relation in relation_types)]


def relation_label_names(labels: Iterable[str]) -> set[str]:
    """Which labels are relations: those that come with a reverse (and the reverses)."""
    labels = set(labels)
    forward = {label for label in labels if label + REVERSED in labels}
    return forward | {label + REVERSED for label in forward}


def encode_grid(
    num_words: int,
    entities: Sequence[Mapping],
    relations: Sequence[Mapping],
    label2id: Mapping[str, int],
) -> list[list[int]]:
    """Entities ``{"start", "end", "type"}`` (end exclusive) and relations ``{"head", "tail", "type"}``
    (indices into ``entities``) -> a ``num_words x num_words`` grid of label ids."""
    grid = np.full((num_words, num_words), label2id[NONE], dtype=np.int64)
    for entity in entities:
        start, end = entity["start"], entity["end"]
        if not 0 <= start < end <= num_words:
            raise ValueError(f"Entity span [{start}, {end}) is outside the sentence of {num_words} words.")
        grid[start:end, start:end] = label2id[entity["type"]]
    for relation in relations:
        head, tail = entities[relation["head"]], entities[relation["tail"]]
        rows, columns, forward = cross_cells(head, tail)
        grid[rows, columns] = label2id[relation["type"] if forward else relation["type"] + REVERSED]
    grid[np.tril_indices(num_words, k=-1)] = IGNORE_INDEX
    return grid.tolist()


def unencodable_items(
    grid: Sequence[Sequence[int]],
    entities: Sequence[Mapping],
    relations: Sequence[Mapping],
    id2label: Mapping[int, str],
) -> tuple[int, int]:
    """How many of the given entities and relations the grid `encode_grid` made from them does not
    give back (`decode_grid`): overlapping spans, or relations whose cells overlap, share cells, and
    a cell holds one label, that of the item written last (entities in order, then relations).

    Returns ``(entities lost, relations lost)``.
    """
    decoded_entities, decoded_relations = decode_grid(grid, id2label)
    spans = {(e["start"], e["end"], e["type"]) for e in decoded_entities}

    def triple(items, relation):
        head, tail = items[relation["head"]], items[relation["tail"]]
        return (head["start"], head["end"], tail["start"], tail["end"], relation["type"])

    triples = {triple(decoded_entities, relation) for relation in decoded_relations}
    lost_entities = sum((e["start"], e["end"], e["type"]) not in spans for e in entities)
    lost_relations = sum(triple(entities, relation) not in triples for relation in relations)
    return lost_entities, lost_relations


def decode_entities(grid: np.ndarray, entity_ids: set[int], id2label: Mapping[int, str]) -> list[dict]:
    """Entity spans from the diagonal blocks.

    A span starts at a diagonal cell with an entity type and grows while the next diagonal
    cell and the cell joining it to the start carry the same type; two adjacent entities of one
    type stay two (the cell joining them is not that type).
    """
    entities, num_words, start = [], len(grid), 0
    while start < num_words:
        label = grid[start, start]
        if label not in entity_ids:
            start += 1
            continue
        end = start + 1
        while end < num_words and grid[end, end] == label and grid[start, end] == label:
            end += 1
        entities.append({"start": int(start), "end": int(end), "type": id2label[int(label)]})
        start = end
    return entities


def decode_grid(grid: Sequence[Sequence[int]], id2label: Mapping[int, str]) -> tuple[list[dict], list[dict]]:
    """A grid of label ids -> ``(entities, relations)`` in the format `encode_grid` reads.

    Entities are sorted by position; for each pair of entities the relation label with most
    votes among the cells between them (ties: the lower label id) gives the relation and,
    through the ``^-1`` labels, its direction. Relations are sorted by (head, tail).
    """
    grid = np.asarray(grid)
    id2label = {int(key): value for key, value in id2label.items()}
    relation_labels = relation_label_names(id2label.values())
    entity_ids = {i for i, label in id2label.items() if label != NONE and label not in relation_labels}
    relation_ids = {i for i, label in id2label.items() if label in relation_labels}
    entities = decode_entities(grid, entity_ids, id2label)

    relations = []
    for first_index, first in enumerate(entities):
        for second_index in range(first_index + 1, len(entities)):
            second = entities[second_index]
            cells = grid[first["start"] : first["end"], second["start"] : second["end"]].ravel()
            votes = Counter(int(cell) for cell in cells if cell in relation_ids)
            if not votes:
                continue
            label = id2label[min(votes, key=lambda label_id: (-votes[label_id], label_id))]
            if label.endswith(REVERSED):
                relations.append({"head": second_index, "tail": first_index, "type": label[: -len(REVERSED)]})
            else:
                relations.append({"head": first_index, "tail": second_index, "type": label})
    relations.sort(key=lambda relation: (relation["head"], relation["tail"]))
    return entities, relations


def cross_cells(head: Mapping, tail: Mapping) -> tuple[slice, slice, bool]:
    """The block of grid cells between two spans (rows: the earlier span) and whether the head is first."""
    forward = head["start"] < tail["start"]
    first, second = (head, tail) if forward else (tail, head)
    return slice(first["start"], first["end"]), slice(second["start"], second["end"]), forward


def mre_candidate_shares(summed: np.ndarray, forward: bool, id2label: Mapping[int, str]) -> dict[str, float]:
    """The answers for a (head, tail) pair with their share of ``summed``, the per-label sums of
    ``P^final`` over the cells between the two spans (``forward``: the head comes first): MNRE's
    ``None`` (the grid's ``none``) and each relation read in the head's direction. The shares do
    not add up to 1: the other labels (``entity``, the relations read the other way) hold the rest.
    """
    summed = np.asarray(summed, dtype=np.float64)
    total = summed.sum()
    relation_labels = relation_label_names(id2label.values())
    masses = {MRE_NO_RELATION: summed[_label_id(id2label, NONE)]}
    for label_id, label in id2label.items():
        if label in relation_labels and label.endswith(REVERSED) != forward:
            masses[label.removesuffix(REVERSED)] = summed[int(label_id)]
    return {answer: float(mass / total) if total > 0 else 0.0 for answer, mass in masses.items()}


def mre_relation_weights(
    counts: Mapping[str, int] | None, relations: Iterable[str], exponent: float
) -> dict[str, float] | None:
    """The weight of each relation's share in the decision of a given pair, for logit adjustment
    (Menon et al. 2021); None (every weight 1, the paper's rule) when ``exponent`` is 0.

    A relation's prior is ``(count + 1) / (pairs + relations)`` among the training pairs that hold
    a relation (``counts``; a relation never seen gets the smallest). Its weight is its prior to
    the power ``-exponent``, divided by the training pairs' mean of those powers (the sum over
    relations of ``prior ** (1 - exponent)``): the exponent moves decisions from frequent relations
    to rare ones without moving them, on average over the training pairs, away from ``None``
    (whose weight is the other setting). At 1 each share is divided by its prior and by the number
    of relations.
    """
    if not exponent:
        return None
    if not counts:
        raise ValueError(
            "A prior exponent needs the training pairs of each relation (mre_relation_counts in the config), "
            "which run_mie.py counts when it reads a training split; without them the exponent cannot be applied."
        )
    relations = [relation for relation in relations if relation != MRE_NO_RELATION]
    total = sum(counts.get(relation, 0) for relation in relations) + len(relations)
    priors = {relation: (counts.get(relation, 0) + 1) / total for relation in relations}
    mean = sum(prior ** (1 - exponent) for prior in priors.values())
    return {relation: prior**-exponent / mean for relation, prior in priors.items()}


def mre_decide(
    shares: Mapping[str, float], none_weight: float = 1.0, relation_weights: Mapping[str, float] | None = None
) -> str:
    """The answer for a given pair: the argmax of the weighted shares (`mre_candidate_shares`),
    ``None``'s times ``none_weight`` and each relation's times its weight (1 when not given).
    ``none_weight`` 1 and no ``relation_weights`` is the paper's argmax. Ties go to ``None``, then
    to the relation listed first."""
    weights = relation_weights or {}
    weighted = {
        answer: share * (none_weight if answer == MRE_NO_RELATION else weights.get(answer, 1.0))
        for answer, share in shares.items()
    }
    return max(weighted, key=weighted.get)


def _label_id(id2label: Mapping[int, str], label: str) -> int:
    return next(int(key) for key, value in id2label.items() if value == label)
