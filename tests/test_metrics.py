"""Metrics against hand-counted examples."""

import pytest

from processing.metrics import mjere_scores, mre_scores, ner_scores


def test_ner_default_and_strict_modes():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["I-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["I-ORG", "O"]]
    scores = ner_scores(gold, pred)
    # default mode: gold entities PER, LOC, ORG (the I- start counts); predicted PER, ORG, both right
    assert scores["precision"] == 1.0 and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(0.8)
    # strict IOB2: the ORG that starts with I- is no entity: gold PER, LOC; predicted PER
    assert scores["strict_precision"] == 1.0 and scores["strict_recall"] == 0.5
    assert scores["PER_f1"] == 1.0 and scores["LOC_f1"] == 0.0


def test_ner_rejects_misaligned_input():
    with pytest.raises(ValueError, match="one tag per word"):
        ner_scores([["O", "O"]], [["O"]])


def test_mre_scores_ignore_none_but_accuracy_counts_it():
    gold = ["/per/org/member_of", "None", "/per/per/peer", "None"]
    pred = ["/per/org/member_of", "/per/per/peer", "None", "None"]
    scores = mre_scores(gold, pred)
    assert scores["precision"] == 0.5 and scores["recall"] == 0.5 and scores["f1"] == 0.5
    assert scores["accuracy"] == 0.5


def test_mjere_triples_need_spans_types_and_relation():
    entities = [{"start": 0, "end": 1, "type": "PER"}, {"start": 2, "end": 3, "type": "ORG"}]
    gold = [(entities, [{"head": 0, "tail": 1, "type": "member_of"}])]
    wrong_type = [{"start": 0, "end": 1, "type": "LOC"}, {"start": 2, "end": 3, "type": "ORG"}]
    pred = [(wrong_type, [{"head": 0, "tail": 1, "type": "member_of"}])]
    scores = mjere_scores(gold, pred)
    assert scores["f1"] == 0.0  # the head type is wrong
    assert scores["entity_precision"] == 0.5 and scores["entity_recall"] == 0.5
    assert mjere_scores(gold, gold)["f1"] == 1.0
    reversed_relation = [(entities, [{"head": 1, "tail": 0, "type": "member_of"}])]
    assert mjere_scores(gold, reversed_relation)["f1"] == 0.0


def test_bio_entities():
    from processing.metrics import bio_entities

    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-ORG", "B-ORG", "I-PER"]
    assert bio_entities(tags) == [
        {"start": 0, "end": 2, "type": "PER"},
        {"start": 3, "end": 5, "type": "LOC"},
        {"start": 5, "end": 6, "type": "ORG"},
        {"start": 6, "end": 7, "type": "ORG"},
        {"start": 7, "end": 8, "type": "PER"},
    ]
