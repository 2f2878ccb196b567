"""The generated demo corpus (processing/corpora/demo.py)."""

import time
from collections import defaultdict

from PIL import Image

from processing.corpora import load_corpus


def test_demo_ner_is_deterministic_fast_and_image_decided(tmp_path):
    start = time.perf_counter()
    corpus = load_corpus("demo", cache_dir=tmp_path / "a", train_size=1400, validation_size=300, test_size=300)
    assert time.perf_counter() - start < 10.0  # 2,000 examples with their images
    again = load_corpus("demo", cache_dir=tmp_path / "b")
    assert corpus["train"][:50] != {} and corpus["train"]["words"] == again["train"]["words"]
    assert corpus["test"]["ner_tags"] == again["test"]["ner_tags"]

    # The same sentence comes with different labels: the text alone does not decide.
    labels_by_sentence = defaultdict(set)
    for words, tags in zip(corpus["train"]["words"], corpus["train"]["ner_tags"]):
        labels_by_sentence[" ".join(words)].add(tuple(tags))
    assert sum(len(labels) > 1 for labels in labels_by_sentence.values()) > 50

    row = corpus["train"][0]
    assert Image.open(row["image"]).size == (64, 64)
    assert row["context"] and row["image_id"].endswith(".png")


def test_demo_seed_changes_the_data(tmp_path):
    first = load_corpus("demo", cache_dir=tmp_path, seed=0, train_size=20, validation_size=5, test_size=5)
    second = load_corpus("demo", cache_dir=tmp_path, seed=1, train_size=20, validation_size=5, test_size=5)
    assert first["train"]["words"] != second["train"]["words"]


def test_demo_word_pair_flavour(tmp_path):
    corpus = load_corpus(
        "demo", cache_dir=tmp_path, flavour="word_pair", train_size=200, validation_size=5, test_size=5
    )
    relations = {r["type"] for row in corpus["train"]["relations"] for r in row}
    assert relations == {"couple", "peer", "siblings"}
    heads_second = sum(row[0]["head"] == 1 for row in corpus["train"]["relations"])
    assert 0 < heads_second < 200
    for row in corpus["train"]:
        for entity in row["entities"]:
            assert entity["type"] == "PER" and 0 <= entity["start"] < entity["end"] <= len(row["words"])
