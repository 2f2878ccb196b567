"""The word-pair grid codec (the paper's section 3.6)."""

import ast
import itertools
import json

import numpy as np
import pytest
import torch
from helpers import SHARED_DATA, needs_shared_data

from processing.corpora.jmere import JMERE_ENTITY_TYPES, JMERE_RELATIONS, parse_jmere_example
from processing.corpora.mnre import MNRE_RELATIONS
from processing.decoding import relation_mass, structures_from_predictions
from processing.wordpair import (
    MRE_ENTITY,
    decode_grid,
    encode_grid,
    grid_label_names,
)

LABELS = grid_label_names(["PER", "ORG"], ["member_of", "peer"])
LABEL2ID = {label: i for i, label in enumerate(LABELS)}
ID2LABEL = dict(enumerate(LABELS))


def test_labels():
    assert LABELS == ["none", "PER", "ORG", "member_of", "peer", "member_of^-1", "peer^-1"]
    assert "None" not in grid_label_names([MRE_ENTITY], MNRE_RELATIONS)


def test_encode_by_hand():
    # "Anna Lee joins Acme": PER [0, 2), ORG [3, 4), Anna Lee member_of Acme
    entities = [{"start": 0, "end": 2, "type": "PER"}, {"start": 3, "end": 4, "type": "ORG"}]
    relations = [{"head": 0, "tail": 1, "type": "member_of"}]
    grid = encode_grid(4, entities, relations, LABEL2ID)
    n, p, o, m = 0, LABEL2ID["PER"], LABEL2ID["ORG"], LABEL2ID["member_of"]
    assert grid == [
        [p, p, n, m],
        [-100, p, n, m],
        [-100, -100, n, n],
        [-100, -100, -100, o],
    ]
    assert decode_grid(grid, ID2LABEL) == (entities, relations)


def test_relation_direction_survives():
    entities = [{"start": 0, "end": 1, "type": "ORG"}, {"start": 2, "end": 3, "type": "PER"}]
    relations = [{"head": 1, "tail": 0, "type": "member_of"}]  # the head comes second
    grid = encode_grid(3, entities, relations, LABEL2ID)
    assert grid[0][2] == LABEL2ID["member_of^-1"]
    assert decode_grid(grid, ID2LABEL) == (entities, relations)


def test_adjacent_entities_of_one_type_stay_two():
    entities = [{"start": 0, "end": 2, "type": "PER"}, {"start": 2, "end": 3, "type": "PER"}]
    relations = [{"head": 0, "tail": 1, "type": "peer"}]
    assert decode_grid(encode_grid(3, entities, relations, LABEL2ID), ID2LABEL) == (entities, relations)
    # Without the relation the joining cell is "none": still two entities.
    assert decode_grid(encode_grid(3, entities, [], LABEL2ID), ID2LABEL) == (entities, [])


def test_decode_takes_the_majority_relation():
    entities = [{"start": 0, "end": 2, "type": "PER"}, {"start": 2, "end": 4, "type": "PER"}]
    grid = np.array(encode_grid(4, entities, [{"head": 0, "tail": 1, "type": "peer"}], LABEL2ID))
    grid[0, 2] = LABEL2ID["member_of"]  # one vote against three
    assert decode_grid(grid, ID2LABEL)[1] == [{"head": 0, "tail": 1, "type": "peer"}]


def test_encode_rejects_spans_outside():
    with pytest.raises(ValueError, match="outside the sentence"):
        encode_grid(2, [{"start": 1, "end": 3, "type": "PER"}], [], LABEL2ID)


def test_mre_relation_sums_cross_cells_in_the_head_direction():
    labels = grid_label_names([MRE_ENTITY], ["/per/org/member_of"])
    id2label = dict(enumerate(labels))
    probabilities = np.zeros((3, 3, len(labels)))
    probabilities[..., 0] = 1.0  # none everywhere
    probabilities[0, 2] = [0.3, 0.0, 0.1, 0.6]  # none, entity, member_of, member_of^-1
    # Two examples: the head follows the tail (member_of is read from the reversed label, 0.6 >
    # none 0.3), then the other way round (only the forward label counts, 0.1 < none 0.3).
    spans = torch.tensor([[2, 3, 0, 1], [0, 1, 2, 3]])
    mass = relation_mass(torch.tensor(probabilities)[None].expand(2, -1, -1, -1), spans)
    first, second = structures_from_predictions({"relation_mass": mass}, id2label, "word_pair", [])
    assert first["relation"] == "/per/org/member_of" and first["score"] == pytest.approx(0.6)  # share of the mass
    assert second["relation"] == "None"
    # Every answer's share, in the head's direction (the reversed label for the first example).
    assert first["label_scores"] == {"None": 0.3, "/per/org/member_of": 0.6}
    assert second["label_scores"] == {"None": 0.3, "/per/org/member_of": 0.1}
    # A lighter None lets the forward relation win; the score stays the share of the unweighted mass.
    _, lighter = structures_from_predictions({"relation_mass": mass}, id2label, "word_pair", [], none_weight=0.3)
    assert lighter["relation"] == "/per/org/member_of" and lighter["score"] == pytest.approx(0.1 / 1.0)
    _, heavier = structures_from_predictions({"relation_mass": mass}, id2label, "word_pair", [], none_weight=0.34)
    assert heavier["relation"] == "None" and heavier["score"] == pytest.approx(0.3)


def test_mre_decision_from_the_first_words_cell_only():
    labels = grid_label_names([MRE_ENTITY], ["/per/org/member_of"])
    id2label = dict(enumerate(labels))
    probabilities = np.zeros((4, 4, len(labels)))
    probabilities[..., 0] = 1.0  # none everywhere but between the first words (0 and 2)
    probabilities[0, 2] = [0.2, 0.0, 0.8, 0.0]
    spans = torch.tensor([[0, 2, 2, 4]])  # head words 0-1, tail words 2-3
    every_cell = relation_mass(torch.tensor(probabilities)[None], spans)
    first_words = relation_mass(torch.tensor(probabilities)[None], spans, cells="first_words")
    assert every_cell[0, :-1].tolist() == pytest.approx([3.2, 0.0, 0.8, 0.0])  # four cells, one says member_of
    assert first_words[0, :-1].tolist() == pytest.approx([0.2, 0.0, 0.8, 0.0])
    [spanned] = structures_from_predictions({"relation_mass": every_cell}, id2label, "word_pair", [])
    [first] = structures_from_predictions({"relation_mass": first_words}, id2label, "word_pair", [])
    assert (spanned["relation"], first["relation"]) == ("None", "/per/org/member_of")


def overlapping(entities):
    spans = sorted((e["start"], e["end"]) for e in entities)
    return any(a[1] > b[0] for a, b in itertools.pairwise(spans))


@needs_shared_data
def test_round_trip_over_real_jmere():
    labels = grid_label_names(JMERE_ENTITY_TYPES, JMERE_RELATIONS)
    label2id, id2label = {l: i for i, l in enumerate(labels)}, dict(enumerate(labels))
    checked = 0
    for split in ("train", "val", "test"):
        for number, item in enumerate(json.loads((SHARED_DATA / "jmere" / f"{split}.json").read_text()), 1):
            example = parse_jmere_example(split, number, item)
            if overlapping(example["entities"]):
                continue
            grid = encode_grid(len(example["words"]), example["entities"], example["relations"], label2id)
            assert decode_grid(grid, id2label) == (example["entities"], example["relations"]), (split, number)
            checked += 1
    assert checked > 4000


@needs_shared_data
def test_round_trip_over_real_mnre():
    labels = grid_label_names([MRE_ENTITY], MNRE_RELATIONS)
    label2id, id2label = {l: i for i, l in enumerate(labels)}, dict(enumerate(labels))
    checked = 0
    for split in ("train", "val", "test"):
        with open(SHARED_DATA / "mnre" / f"mnre_{split}.txt", encoding="utf-8") as handle:
            for line in handle:
                record = ast.literal_eval(line)
                (hs, he), (ts, te) = record["h"]["pos"], record["t"]["pos"]
                if hs < te and ts < he:
                    continue  # overlapping spans
                entities = sorted(
                    [{"start": hs, "end": he, "type": MRE_ENTITY}, {"start": ts, "end": te, "type": MRE_ENTITY}],
                    key=lambda e: e["start"],
                )
                head = 0 if entities[0]["start"] == hs else 1
                relations = (
                    []
                    if record["relation"] == "None"
                    else [{"head": head, "tail": 1 - head, "type": record["relation"]}]
                )
                grid = encode_grid(len(record["token"]), entities, relations, label2id)
                assert decode_grid(grid, id2label) == (entities, relations)
                checked += 1
    assert checked > 15000


def test_the_grid_ignores_what_the_model_ignores():
    # Written twice (a checkpoint's copy of processing/ imports nothing outside it): one value.
    from modeling_shapca.heads import IGNORE_INDEX as model_ignore
    from processing.wordpair import IGNORE_INDEX as grid_ignore

    assert grid_ignore == model_ignore == -100
