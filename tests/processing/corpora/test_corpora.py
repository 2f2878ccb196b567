"""Corpus builders on hand-written fixtures, their errors, export, and (when present) the real files."""

import json
import logging
import random

import datasets
import pytest
from helpers import (
    SHARED_DATA,
    needs_shared_data,
    write_contexts,
    write_jmere,
    write_mnre,
    write_twitter,
)
from huggingface_hub import DatasetCard

from processing.context_store import ContextFormatError, ContextStore
from processing.corpora import CorpusFormatError, load_corpus, load_named
from processing.corpora.base import CACHE_CHECKSUMS
from processing.corpora.hub import export_corpus


def test_twitter_columns_images_and_contexts(tmp_path):
    data = write_twitter(tmp_path / "tw")
    images = tmp_path / "images"
    images.mkdir()
    (images / "100.jpg").write_bytes(b"not checked here")
    contexts = write_contexts(tmp_path / "ctx.jsonl", ["100.jpg", "101.jpg", "200.jpg", "300.jpg", "301.jpg"])
    corpus = load_corpus(
        "twitter2017",
        data,
        image_dir=images,
        missing_image="skip",
        context_files=[contexts],
        cache_dir=tmp_path / "cache",
    )
    assert {split: len(part) for split, part in corpus.items()} == {"train": 2, "validation": 1, "test": 2}
    first = corpus["train"][0]
    assert first["words"] == ["Messi", "scores", "in", "Barcelona"]
    names = corpus["train"].features["ner_tags"].feature.names
    assert [names[t] for t in first["ner_tags"]] == ["B-PER", "O", "O", "B-LOC"]
    assert first["image_id"] == "100.jpg" and first["image"] == str(images / "100.jpg")
    assert corpus["train"][1]["image"] is None  # no file for 101.jpg
    assert first["context"] == "a picture for 100.jpg"
    assert corpus["test"][0]["ner_tags"] and names[corpus["test"][0]["ner_tags"][0]] == "B-MISC"


def test_twitter2015_labels_differ_from_twitter2017(tmp_path):
    data = write_twitter(tmp_path / "tw")
    with pytest.raises(CorpusFormatError, match=r"test.txt:\d+: unknown tag 'B-MISC'"):
        load_corpus("twitter2015", data, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize(
    "bad, message",
    [
        ("IMGID:1\nword-without-tag\n", r"train.txt:2: expected 'word<TAB>tag'"),
        ("IMGID:1\nhello\tB-FOO\n", r"train.txt:2: unknown tag 'B-FOO'"),
        ("hello\tO\n", r"train.txt:1: expected a line 'IMGID:<id>'"),
    ],
)
def test_twitter_errors_name_file_line_and_expectation(tmp_path, bad, message):
    data = write_twitter(tmp_path / "tw")
    (data / "train.txt").write_text(bad, encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=message):
        load_corpus("twitter2017", data, cache_dir=tmp_path / "cache")


def test_missing_context_policies(tmp_path):
    data = write_twitter(tmp_path / "tw")
    ids = ["100.jpg", "101.jpg", "200.jpg", "300.jpg", "301.jpg"]
    contexts = write_contexts(tmp_path / "ctx.jsonl", ids, skip={"101.jpg"})
    with pytest.raises(KeyError, match=r"1 image ids have no context.*101.jpg"):
        load_corpus("twitter2017", data, context_files=[contexts], cache_dir=tmp_path / "cache")
    corpus = load_corpus(
        "twitter2017", data, context_files=[contexts], missing_context="empty", cache_dir=tmp_path / "cache"
    )
    assert corpus["train"][1]["context"] == ""


def test_changed_source_files_rebuild_the_cache(tmp_path):
    data = write_twitter(tmp_path / "tw")
    first = load_corpus("twitter2017", data, cache_dir=tmp_path / "cache")
    (data / "test.txt").write_text("IMGID:9\nhello\tO\n", encoding="utf-8")
    second = load_corpus("twitter2017", data, cache_dir=tmp_path / "cache")
    assert len(first["test"]) == 2 and len(second["test"]) == 1


def scramble(arrow):
    """4 KB of random bytes over the file, from its 300th byte on."""
    content = arrow.read_bytes()
    arrow.write_bytes(content[:300] + random.Random(0).randbytes(4096) + content[300 + 4096 :])


def rename_messi(arrow):
    """One word of a row changed, the file still valid: the rows read back, wrong."""
    content = arrow.read_bytes()
    assert content.count(b"Messi") == 1
    arrow.write_bytes(content.replace(b"Messi", b"Massi"))


def drop_record(arrow):
    """A cache written before the checksums were: it cannot be checked."""
    (arrow.parent / CACHE_CHECKSUMS).unlink()


@pytest.mark.parametrize(
    "damage, reason",
    [
        (scramble, "twitter-train.arrow is not what was written"),
        (rename_messi, "twitter-train.arrow is not what was written"),
        (drop_record, f"it has no {CACHE_CHECKSUMS}"),
    ],
)
def test_a_damaged_cache_is_rebuilt_with_a_warning(tmp_path, caplog, damage, reason):
    data = write_twitter(tmp_path / "tw")
    expected = load_corpus("twitter2017", data, cache_dir=tmp_path / "cache")["train"].to_list()
    (arrow,) = (tmp_path / "cache").rglob("twitter-train.arrow")
    damage(arrow)
    with caplog.at_level(logging.WARNING, logger="processing.corpora"):
        again = load_corpus("twitter2017", data, cache_dir=tmp_path / "cache")
    assert again["train"].to_list() == expected
    assert f"Rebuilding the corpus cache {arrow.parent}: {reason}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="processing.corpora"):
        load_corpus("twitter2017", data, cache_dir=tmp_path / "cache")  # the rebuilt cache is reused as it is
    assert "Rebuilding" not in caplog.text


def test_mnre_reads_literals_and_the_spaced_dev_file(tmp_path):
    corpus = load_corpus("mnre", write_mnre(tmp_path / "mnre"), cache_dir=tmp_path / "cache")
    assert {split: len(part) for split, part in corpus.items()} == {"train": 2, "validation": 1, "test": 1}
    row = corpus["train"][0]
    relations = corpus["train"].features["relation"].names
    assert len(relations) == 23
    assert row["head"] == {"start": 0, "end": 1} and row["tail"] == {"start": 2, "end": 4}
    assert relations[row["relation"]] == "/per/org/member_of"
    assert relations[corpus["train"][1]["relation"]] == "None"


@pytest.mark.parametrize(
    "line, message",
    [("{'token': 'Bo and Cy wed', 'h': {'pos': [0, 1]}, 't': {'pos': [2, 3]}, 'img_id': 'x', 'relation': 'None'}",
      "the words are a str"),
     ("{'token': [], 'h': {'pos': [0, 1]}, 't': {'pos': [2, 3]}, 'img_id': 'x', 'relation': 'None'}",
      "the words are an empty list"),
     ("{'token': ['Bo', 'and', 'Cy'], 'h': {'pos': [0, 1, 2]}, 't': {'pos': [2, 3]}, 'img_id': 'x', 'relation': 'None'}",
      r"head pos is \[0, 1, 2\]; expected \[start, end\]"),
     ("{'token': ['Bo', 'and', 'Cy'], 'h': {'pos': [1]}, 't': {'pos': [2, 3]}, 'img_id': 'x', 'relation': 'None'}",
      r"head pos is \[1\]"),
     ("{'token': ['Bo', 'and', 'Cy'], 'h': {'pos': [0, 1]}, 't': {'pos': 3}, 'img_id': 'x', 'relation': 'None'}",
      "tail pos is 3"),
     ("{'token': ['Bo', 'and', 'Cy'], 'h': {'pos': [0, 1]}, 't': {'pos': [0, 1]}, 'img_id': 'x', 'relation': 'None'}",
      r"head and tail are the same span \[0, 1\]"),
     ("{'token': ['Bo', '\\ud800', 'Cy'], 'h': {'pos': [0, 1]}, 't': {'pos': [2, 3]}, 'img_id': 'x', 'relation': 'None'}",
      "word 1 holds a lone surrogate"),
     ("{'token': " + "[" * 5000 + "]" * 5000 + "}", "expected a dict literal")],
)  # fmt: skip
def test_mnre_malformed_lines_name_file_line_and_field(tmp_path, line, message):
    data = write_mnre(tmp_path / "mnre")
    (data / "mnre_test.txt").write_text("\n" + line + "\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=f"mnre_test.txt:2: .*{message}"):
        load_corpus("mnre", data, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize(
    "line, message",
    [
        (
            "{'token': ['a'], 'h': {'pos': [0, 2]}, 't': {'pos': [0, 1]}, 'img_id': 'x', 'relation': 'None'}",
            "head span",
        ),
        (
            "{'token': ['a', 'b'], 'h': {'pos': [0, 1]}, 't': {'pos': [1, 2]}, 'img_id': 'x', 'relation': '/x/y'}",
            "unknown relation",
        ),
        ("{'token': ['a'], 'img_id': 'x'", "expected a dict literal"),
    ],
)
def test_mnre_errors(tmp_path, line, message):
    data = write_mnre(tmp_path / "mnre")
    (data / "mnre_test.txt").write_text("\n" + line + "\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=f"mnre_test.txt:2: .*{message}"):
        load_corpus("mnre", data, cache_dir=tmp_path / "cache")


def test_jmere_entities_and_relations(tmp_path):
    corpus = load_corpus("jmere", write_jmere(tmp_path / "jmere"), cache_dir=tmp_path / "cache")
    row = corpus["train"][0]
    assert row["entities"] == [
        {"start": 0, "end": 2, "type": "PER"},
        {"start": 3, "end": 4, "type": "ORG"},
        {"start": 5, "end": 6, "type": "LOC"},
    ]
    assert row["relations"] == [
        {"head": 0, "tail": 1, "type": "member_of"},
        {"head": 1, "tail": 2, "type": "locate_at"},
    ]
    # Head after tail keeps its direction.
    assert corpus["validation"][0]["relations"] == [{"head": 1, "tail": 0, "type": "couple"}]


def test_jmere_errors(tmp_path):
    data = write_jmere(tmp_path / "jmere")
    items = json.loads((data / "test.json").read_text())
    items[0]["label_list"][0][0]["beg_ent"]["tags"] = "animal"
    (data / "test.json").write_text(json.dumps(items))
    with pytest.raises(CorpusFormatError, match="test.json item:1: unknown entity type 'animal'"):
        load_corpus("jmere", data, cache_dir=tmp_path / "cache")
    (data / "test.json").write_text("[{")
    with pytest.raises(CorpusFormatError, match="test.json:1: not valid JSON"):
        load_corpus("jmere", data, cache_dir=tmp_path / "cache2")


def jmere_case(change):
    def edit(items):
        change(items[0])
        return json.dumps(items)

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [(jmere_case(lambda item: item.update(token=[])), "item:1: the words are an empty list"),
     (jmere_case(lambda item: item["label_list"][0][0]["beg_ent"].update(pos=[0, 1, 2])),
      r"item:1: beg_ent pos is \[0, 1, 2\]; expected \[start, end\]"),
     (jmere_case(lambda item: item["label_list"][0][0]["sec_ent"].pop("tags")), "item:1: sec_ent has no tags"),
     (jmere_case(lambda item: item["label_list"][0][0].update(sec_ent=dict(item["label_list"][0][0]["beg_ent"]))),
      r"item:1: a present_in relation from span \[0, 1\] to itself"),
     (lambda items: "[" * 100000 + "]" * 100000, "test.json:1: JSON nested too deeply")],
)  # fmt: skip
def test_jmere_malformed_items_name_file_item_and_field(tmp_path, edit, message):
    data = write_jmere(tmp_path / "jmere")
    (data / "test.json").write_text(edit(json.loads((data / "test.json").read_text())))
    with pytest.raises(CorpusFormatError, match=message):
        load_corpus("jmere", data, cache_dir=tmp_path / "cache")


def test_a_lone_surrogate_in_a_context_line_names_the_file_and_line(tmp_path):
    contexts = write_contexts(tmp_path / "contexts.jsonl", ["j1.jpg", "j2.jpg", "j3.jpg", "j4.jpg"])
    lines = contexts.read_text().splitlines()
    lines[1] = lines[1].replace("a picture", "a \\ud800 picture")
    contexts.write_text("\n".join(lines) + "\n")
    with pytest.raises(ContextFormatError, match=r"contexts.jsonl:2: 'context' holds a lone surrogate"):
        load_corpus("jmere", write_jmere(tmp_path / "jmere"), context_files=[contexts], cache_dir=tmp_path / "cache")


def test_unknown_corpus_and_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="Unknown corpus 'conll'"):
        load_corpus("conll", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"data_dir \(--data_dir\) must be the folder of the twitter2015 files"):
        load_corpus("twitter2015", tmp_path / "nowhere")


def test_export_writes_parquet_and_a_card_that_loads_back(tmp_path):
    data = load_named("twitter2017", write_twitter(tmp_path / "tw"), cache_dir=tmp_path / "cache")
    corpus = data.splits
    out = export_corpus(data, tmp_path / "export")
    card = DatasetCard.load(out / "README.md")
    assert card.data.pretty_name == "twitter2017" and "class_label" in str(card)
    assert [(s["name"], s["num_examples"]) for s in card.data.dataset_info["splits"]] == [
        (split, len(part)) for split, part in corpus.items()
    ]
    assert "Source: UMT release" in card.text and "Licence: research use only; the tweets" in card.text
    assert card.data.shapca["task"] == "ner" and card.data.shapca["labels"]["entities"] == ["PER", "LOC", "ORG", "MISC"]
    # The splits alone say nothing of their origin: the card says so, not a benchmark's licence.
    bare = DatasetCard.load(export_corpus(corpus, tmp_path / "bare", name="mine") / "README.md")
    assert "Source: unknown." in bare.text and "Licence: unknown: not given" in bare.text
    assert "Twitter" not in bare.text and bare.data.license == "unknown"
    assert "| train | 2 |" in card.text and "`ner_tags`" in card.text
    reloaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache2"))
    assert reloaded["train"]["words"] == corpus["train"]["words"]
    assert reloaded["train"].features["ner_tags"].feature.names == corpus["train"].features["ner_tags"].feature.names


REAL = {
    "twitter2015": ("twitter2015.blip2.jsonl", (4000, 1000, 3257)),
    "twitter2017": ("twitter2017.blip2.jsonl", (3373, 723, 723)),
    "mnre": ("mnre.llava-next.jsonl", (12247, 1624, 1614)),
    "jmere": ("mnre.llava-next.jsonl", (3618, 496, 475)),
}


@needs_shared_data
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_row_counts_and_context_coverage(tmp_path, name):
    context_file, counts = REAL[name]
    corpus = load_corpus(
        name,
        SHARED_DATA / name,
        context_files=[SHARED_DATA / "contexts" / context_file],
        cache_dir=tmp_path / "cache",
    )
    assert tuple(len(corpus[split]) for split in ("train", "validation", "test")) == counts
    store = ContextStore([SHARED_DATA / "contexts" / context_file])
    for part in corpus.values():
        assert all(image_id in store for image_id in part["image_id"])
        assert all(context is not None for context in part["context"])  # a few real captions are empty
