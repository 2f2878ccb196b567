"""What run_mie builds from a corpus for the word-pair tasks: the grids MNRE sentences are trained
on, the items a grid cannot hold, and the gold that is scored."""

import json
import logging

import pytest
from helpers import write_jmere, write_mnre

from processing.corpora import load_corpus
from processing.corpora.jmere import JMERE
from processing.corpora.mnre import MNRE
from processing.tasks import Task
from processing.wordpair import decode_grid, encode_grid, unencodable_items
from shapca_training.data import model_label_names, one_row_per_sentence, prepare_split


def mnre_line(words, head, tail, relation, image="s1.jpg"):
    return repr({"token": words, "h": {"name": "", "pos": list(head)}, "t": {"name": "", "pos": list(tail)},
                 "img_id": image, "relation": relation})  # fmt: skip


@pytest.fixture
def mnre_corpus(tmp_path):
    """A sentence given with three pairs (two related), and a sentence with one."""
    data = write_mnre(tmp_path / "mnre")
    words = ["Ann", "and", "Bob", "join", "Acme"]
    lines = [
        mnre_line(words, (0, 1), (4, 5), "/per/org/member_of"),
        mnre_line(words, (0, 1), (2, 3), "None"),
        mnre_line(words, (4, 5), (2, 3), "None"),
        mnre_line(words, (2, 3), (4, 5), "/per/org/member_of"),
        mnre_line(["Cy", "weds", "Di"], (2, 3), (0, 1), "/per/per/couple", image="s2.jpg"),
    ]
    (data / "mnre_train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_corpus("mnre", data, cache_dir=tmp_path / "cache")


def test_every_mnre_line_of_a_sentence_is_trained_on_the_grid_of_all_its_pairs(mnre_corpus, processor):
    labels = model_label_names(Task.MRE, MNRE.LABELS)
    label2id = {label: i for i, label in enumerate(labels)}
    id2label = dict(enumerate(labels))
    train = prepare_split(mnre_corpus["train"], "mre", label2id, processor, use_context=True)
    grids = train["labels"]
    assert grids[0] == grids[1] == grids[2] == grids[3] != grids[4]
    entities, relations = decode_grid(grids[1], id2label)  # the line of the unrelated pair (Ann, Bob)
    assert [(e["start"], e["end"]) for e in entities] == [(0, 1), (2, 3), (4, 5)]
    assert relations == [
        {"head": 0, "tail": 2, "type": "/per/org/member_of"},
        {"head": 1, "tail": 2, "type": "/per/org/member_of"},
    ]
    # The tail named first keeps its direction.
    assert decode_grid(grids[4], id2label)[1] == [{"head": 1, "tail": 0, "type": "/per/per/couple"}]
    # Each line keeps its own pair and gold relation for scoring.
    assert [row["gold_relation"] for row in train] == [row["relation"] for row in mnre_corpus["train"]]
    assert train[2]["head"] == {"start": 4, "end": 5}

    sentences = one_row_per_sentence(train)
    assert len(sentences) == 2 and sentences["image_id"] == ["s1.jpg", "s2.jpg"]


def test_overlapping_spans_are_counted_and_scored_from_the_file(tmp_path, processor, caplog):
    data = write_jmere(tmp_path / "jmere")
    item = {
        "token": ["New", "York", "Knicks", "win", "in", "Ohio"],
        "img_id": "j9.jpg",
        "label_list": [[
            {"beg_ent": {"name": "New York Knicks", "pos": [0, 3], "tags": "org"},
             "sec_ent": {"name": "Ohio", "pos": [5, 6], "tags": "loc"}, "relation": "locate_at"},
            {"beg_ent": {"name": "New York", "pos": [0, 2], "tags": "loc"},
             "sec_ent": {"name": "Ohio", "pos": [5, 6], "tags": "loc"}, "relation": "contain"},
        ]],
    }  # fmt: skip
    (data / "test.json").write_text(json.dumps([item]), encoding="utf-8")
    corpus = load_corpus("jmere", data, cache_dir=tmp_path / "cache")
    labels = model_label_names(Task.MJERE, JMERE.LABELS)
    label2id = {label: i for i, label in enumerate(labels)}
    with caplog.at_level(logging.WARNING, logger="shapca_training.data"):
        test = prepare_split(corpus["test"], "mjere", label2id, processor, use_context=True)
    (warning,) = [record.getMessage() for record in caplog.records if "cannot hold" in record.getMessage()]
    assert "test: the word-pair grid cannot hold 1 of 3 entities and 1 of 2 relations" in warning
    assert "keeps the label written last" in warning
    # The gold is the file's: both overlapping entities and both relations are scored.
    row = test[0]
    assert row["gold_entities"] == [[0, 2, label2id["LOC"]], [0, 3, label2id["ORG"]], [5, 6, label2id["LOC"]]]
    assert len(row["gold_relations"]) == 2


def test_unencodable_items_counts_what_the_grid_does_not_give_back():
    label2id = {"none": 0, "PER": 1, "ORG": 2, "member_of": 3, "member_of^-1": 4}
    id2label = {i: label for label, i in label2id.items()}
    entities = [{"start": 0, "end": 2, "type": "PER"}, {"start": 3, "end": 4, "type": "ORG"}]
    relations = [{"head": 0, "tail": 1, "type": "member_of"}]
    grid = encode_grid(5, entities, relations, label2id)
    assert unencodable_items(grid, entities, relations, id2label) == (0, 0)
    nested = [*entities, {"start": 1, "end": 2, "type": "ORG"}]  # inside the PER span
    grid = encode_grid(5, nested, relations, label2id)
    # The nested ORG takes a cell of the PER block: the PER span, and so its relation, are lost.
    assert unencodable_items(grid, nested, relations, id2label) == (1, 1)
