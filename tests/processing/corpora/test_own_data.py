"""A user's own data: JSON Lines files and `datasets` folders in the library's schema, their labels
and errors, the round trip through an export, and a corpus added as one file
(`processing.corpora.schema`, `processing.corpora.hub`, `run_mie.py --train_file/--dataset_name`)."""

import json
import textwrap

import datasets
import pytest
from helpers import load_script
from PIL import Image

run_mie = load_script("run_mie.py")
from processing import corpora
from processing.corpora import MissingImageError, SchemaError, load_files, load_named, load_schema_dataset
from processing.corpora.hub import export_corpus
from processing.corpora.schema import DatasetRowError

TINY = ["--text_config", json.dumps({"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 32, "max_position_embeddings": 64}), "--vision_model", "test_resnet",
        "--image_size", "32", "--fusion_num_heads", "2", "--head_hidden_size", "16", "--feature_embedding_size", "8",
        "--pos_tagger", "none", "--max_length", "40", "--num_train_epochs", "1", "--per_device_train_batch_size", "8",
        "--report_to", "none", "--disable_tqdm", "true", "--save_strategy", "no", "--eval_strategy", "no",
        "--load_best_model_at_end", "false", "--use_cpu", "true", "--do_train", "true", "--do_eval", "true"]  # fmt: skip


def write_rows(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def ner_row(words, entities, **extra):
    return {"words": words, "entities": [dict(zip(("start", "end", "type"), e)) for e in entities], **extra}


def test_labels_come_from_the_training_file_sorted_and_dev_may_not_add_one(tmp_path):
    train = write_rows(tmp_path / "train.jsonl", [
        ner_row(["Acme", "Phone", "rocks"], [(0, 2, "PRODUCT")]),
        {"words": ["Ada", "at", "Acme"], "ner_tags": ["B-PER", "O", "B-ORG"]},
    ])  # fmt: skip
    dev = write_rows(tmp_path / "dev.jsonl", [ner_row(["Ada"], [(0, 1, "PER")]), ner_row(["Pong"], [(0, 1, "GAME")])])
    with pytest.raises(SchemaError, match=r"dev\.jsonl:2: entity type 'GAME' is not among the labels of the training "
                       r"split: \['ORG', 'PER', 'PRODUCT'\]"):  # fmt: skip
        load_files({"train": train, "validation": dev}, cache_dir=tmp_path / "cache")
    # Given labels keep their order, and dev may use one that training lacks.
    data = load_files({"train": train, "validation": dev}, labels={"entities": ["PRODUCT", "PER", "ORG", "GAME"]},
                      cache_dir=tmp_path / "cache")  # fmt: skip
    assert data.task == "ner" and data.labels.entity_types == ("PRODUCT", "PER", "ORG", "GAME")
    tags = data.splits["train"].features["ner_tags"].feature
    assert [tags.int2str(i) for i in data.splits["train"][0]["ner_tags"]] == ["B-PRODUCT", "I-PRODUCT", "O"]
    assert data.splits["validation"][1]["id"] == "validation-1" and data.name.endswith("train.jsonl")


@pytest.mark.parametrize(
    "row, message",
    [
        ({"words": ["a", "b"], "ner_tags": ["O"]}, r"train\.jsonl:2: 'ner_tags' is 1 tags for 2 words"),
        ({"words": ["a", "b"], "ner_tags": ["O", "X-PER"]}, r"train\.jsonl:2: tag 1 is 'X-PER'; expected O, B-TYPE"),
        ({"words": ["a", "b"]}, r"train\.jsonl:2: a ner row needs 'ner_tags' or 'entities'"),
        (ner_row(["a", "b"], [(1, 3, "PER")]), r"train\.jsonl:2: entity 0 span \[1, 3\) is not inside"),
        (ner_row(["a", "b", "c"], [(0, 2, "PER"), (1, 3, "ORG")]), r"train\.jsonl:2: entity \[1, 3\) overlaps"),
        ({"words": "a b", "ner_tags": []}, r"train\.jsonl:2: the words are a str"),
        ("not an object", r"train\.jsonl:2: expected a JSON object with 'words'"),
        (None, r"train\.jsonl:2: expected a JSON object with 'words', got NoneType"),
    ],
)
def test_a_bad_row_names_the_file_the_line_and_what_was_expected(tmp_path, row, message):
    train = write_rows(tmp_path / "train.jsonl", [ner_row(["ok"], [(0, 1, "PER")]), row])
    with pytest.raises(SchemaError, match=message):
        load_files({"train": train}, task="ner", cache_dir=tmp_path / "cache")


def test_an_empty_file_is_an_error(tmp_path):
    write_rows(tmp_path / "dev.jsonl", [])
    train = write_rows(tmp_path / "train.jsonl", [ner_row(["Ada"], [(0, 1, "PER")])])
    with pytest.raises(SchemaError, match=r"dev\.jsonl:1: the file holds no example"):
        load_files({"train": train, "validation": tmp_path / "dev.jsonl"}, cache_dir=tmp_path / "cache")


def test_relation_rows_are_checked_and_none_comes_first(tmp_path):
    words = ["Ada", "founded", "Acme"]
    mre = write_rows(tmp_path / "mre.jsonl", [
        {"words": words, "head": {"start": 2, "end": 3}, "tail": {"start": 0, "end": 1}, "relation": "founded_by"},
        {"words": words, "head": {"start": 0, "end": 1}, "tail": {"start": 2, "end": 3}, "relation": None},
    ])  # fmt: skip
    data = load_files({"train": mre}, cache_dir=tmp_path / "cache")  # the task from the columns
    assert data.task == "mre" and data.labels.relation_types == ("None", "founded_by")
    assert data.splits["train"].features["relation"].names == ["None", "founded_by"]
    bad = write_rows(tmp_path / "bad.jsonl", [{"words": words, "entities": [{"start": 0, "end": 1, "type": "PER"}],
                                               "relations": [{"head": 0, "tail": 0, "type": "x"}]}])  # fmt: skip
    with pytest.raises(SchemaError, match=r"bad\.jsonl:1: relation 0 .* two different indices into the 1 entities"):
        load_files({"train": bad}, cache_dir=tmp_path / "cache")


def test_images_relative_to_the_file_and_a_missing_one_named(tmp_path):
    Image.new("RGB", (8, 8), "red").save(tmp_path / "a.png")
    rows = [ner_row(["Ada"], [(0, 1, "PER")], image="a.png"), ner_row(["Bo"], [(0, 1, "PER")], image="gone.png")]
    train = write_rows(tmp_path / "data" / "train.jsonl", rows)
    rows[0]["image"] = "../a.png"
    train = write_rows(tmp_path / "data" / "train.jsonl", rows)
    with pytest.raises(MissingImageError, match=r"train\.jsonl:2: .*gone\.png.*--missing_image skip"):
        load_files({"train": train}, cache_dir=tmp_path / "cache")
    data = load_files({"train": train}, missing_image="skip", cache_dir=tmp_path / "cache")
    assert data.splits["train"]["image"] == [str(tmp_path / "data" / "../a.png"), None]
    # A text-only model reads no image: nothing to check.
    assert load_files({"train": train}, read_images=False, cache_dir=tmp_path / "cache").splits["train"]["image"] == [
        None,
        None,
    ]


def test_the_cache_sees_an_edit_that_keeps_size_and_time(tmp_path):
    import os

    train = write_rows(tmp_path / "train.jsonl", [ner_row(["Ada"], [(0, 1, "PER")])])
    first = load_files({"train": train}, cache_dir=tmp_path / "cache")
    stat = os.stat(train)
    train.write_text(train.read_text().replace("Ada", "Bob"), encoding="utf-8")
    os.utime(train, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as cp -p or rsync -a leave it
    second = load_files({"train": train}, cache_dir=tmp_path / "cache")
    assert first.splits["train"]["words"] == [["Ada"]] and second.splits["train"]["words"] == [["Bob"]]


def test_a_datasets_folder_in_the_schema_loads_and_its_rows_are_checked(tmp_path):
    rows = [{"words": ["Ada", "rocks"], "ner_tags": ["B-PER", "O"], "context": "a face"},
            {"words": ["x"], "ner_tags": ["B-GAME"], "context": None}]  # fmt: skip
    datasets.Dataset.from_list(rows[:1]).to_json(tmp_path / "ds" / "train.jsonl")
    datasets.Dataset.from_list([rows[1]]).to_json(tmp_path / "ds" / "dev.jsonl")
    with pytest.raises(DatasetRowError, match=r"split validation, row 0: entity type 'GAME' is not among"):
        load_schema_dataset(str(tmp_path / "ds"), cache_dir=tmp_path / "cache")
    data = load_schema_dataset(str(tmp_path / "ds"), labels={"entities": ["PER", "GAME"]}, cache_dir=tmp_path / "cache")
    assert sorted(data.splits) == ["train", "validation"] and data.splits["train"][0]["context"] == "a face"


def test_an_export_carries_the_pixels_and_leaves_empty_splits_and_old_files_out(tmp_path):
    Image.new("RGB", (8, 8), (10, 200, 30)).save(tmp_path / "g.png")
    train = write_rows(tmp_path / "train.jsonl", [ner_row(["Ada"], [(0, 1, "PER")], image="g.png")])
    data = load_files({"train": train}, cache_dir=tmp_path / "cache")
    data.splits["test"] = data.splits["train"].select([])
    out = tmp_path / "export"
    (out / "data").mkdir(parents=True)
    (out / "data" / "validation.parquet").write_text("an earlier export's split")
    export_corpus(data, out, source="posts of ours", licence="CC BY 4.0")
    assert sorted(path.name for path in (out / "data").iterdir()) == ["train.parquet"]
    (tmp_path / "g.png").unlink()  # the pixels travel in the Parquet file
    back = load_schema_dataset(str(out), cache_dir=tmp_path / "cache")
    assert isinstance(back.splits["train"].features["image"], datasets.Image)
    assert back.splits["train"][0]["image"].getpixel((3, 3)) == (10, 200, 30)
    assert back.source == "posts of ours" and back.licence == "CC BY 4.0" and back.labels == data.labels


@pytest.mark.parametrize("flavour", ["ner", "word_pair", "mre"])
def test_a_corpus_and_its_export_train_to_the_same_predictions(tmp_path, flavour):
    """load_corpus -> export_corpus -> run_mie --dataset_name gives what --corpus gives, to the digit."""
    sizes = {"train_size": 40, "validation_size": 8, "test_size": 8}
    cache = tmp_path / "cache"
    export_corpus(load_named("demo", cache_dir=cache, flavour=flavour, **sizes), tmp_path / "export")
    demo = ["--corpus", "demo", "--demo_flavour", flavour, *(f"--demo_{k}={v}" for k, v in sizes.items())]
    results = {}
    for name, source in (("corpus", demo), ("export", ["--dataset_name", str(tmp_path / "export")])):
        out = tmp_path / name
        results[name] = run_mie.main([*source, *TINY, "--cache_dir", str(cache), "--output_dir", str(out)])
        results[name]["predictions"] = (out / "predictions_test.jsonl").read_text()
        results[name]["labels"] = json.loads((out / "config.json").read_text())["id2label"]
    assert results["corpus"]["test_f1"] == results["export"]["test_f1"]
    assert results["corpus"]["test_loss"] == results["export"]["test_loss"]
    assert results["corpus"]["predictions"] == results["export"]["predictions"]
    assert results["corpus"]["labels"] == results["export"]["labels"]


TOY_CORPUS = '''
"""A toy corpus: one post per line, ``word/TAG`` tokens."""
from processing.corpora.base import CorpusFormatError, CorpusLabels, MIEBuilder, bio_labels
from processing.input_files import read_text_lines
from processing.tasks import Task


class Toy(MIEBuilder):
    NAME = "toy"
    TASK = Task.NER
    LABELS = CorpusLabels(entity_types=("GAME",))
    SOURCE = "written by hand for a test"
    LICENCE = "CC0"
    SPLIT_FILES = {"train": ("train.txt",), "validation": ("dev.txt",), "test": ("test.txt",)}

    def read_file(self, path):
        for number, line in read_text_lines(path, CorpusFormatError):
            words, tags = zip(*(token.rsplit("/", 1) for token in line.split()))
            if not set(tags) <= set(bio_labels(self.LABELS.entity_types)):
                raise CorpusFormatError(path, number, f"unknown tag in {tags}")
            yield number, {"words": list(words), "ner_tags": list(tags), "image_id": f"{number}.png"}
'''


def test_a_corpus_is_one_file_and_trains_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setattr(corpora, "REGISTRY", dict(corpora.REGISTRY))  # the toy stays out of the other tests
    module = tmp_path / "toy_corpus.py"
    module.write_text(textwrap.dedent(TOY_CORPUS), encoding="utf-8")
    data_dir = tmp_path / "toy"
    data_dir.mkdir()
    for name in ("train.txt", "dev.txt", "test.txt"):
        (data_dir / name).write_text("we/O play/O Pong/B-GAME\nPong/B-GAME Deluxe/I-GAME is/O out/O\n")
    out = tmp_path / "run"
    results = run_mie.main(["--corpus", str(module), "--data_dir", str(data_dir), "--use_image", "false", *TINY,
                            "--cache_dir", str(tmp_path / "cache"), "--output_dir", str(out)])  # fmt: skip
    assert "test_f1" in results
    assert json.loads((out / "config.json").read_text())["id2label"] == {"0": "O", "1": "B-GAME", "2": "I-GAME"}
    card = (out / "README.md").read_text()
    assert "trained on **toy**" in card and "source: written by hand for a test" in card and "licence: CC0" in card


def test_a_file_a_corpus_module_reads_that_is_not_there_is_named_not_wrapped(tmp_path, monkeypatch):
    """`datasets` wraps what a builder raises while it writes the splits; a missing file is the
    user's to mend, so it comes back as itself (one line from run_mie.py), naming the file."""
    from processing.input_files import InputFileNotFoundError

    monkeypatch.setattr(corpora, "REGISTRY", dict(corpora.REGISTRY))
    module = tmp_path / "toy_corpus.py"
    reads_a_side_file = TOY_CORPUS.replace("read_text_lines(path,", 'read_text_lines(path.parent / "tags.txt",')
    module.write_text(textwrap.dedent(reads_a_side_file), encoding="utf-8")
    data_dir = tmp_path / "toy"
    data_dir.mkdir()
    for name in ("train.txt", "dev.txt", "test.txt"):
        (data_dir / name).write_text("we/O play/O Pong/B-GAME\n")
    with pytest.raises(InputFileNotFoundError, match=r"tags\.txt does not exist"):
        corpora.load_corpus(str(module), data_dir, cache_dir=str(tmp_path / "cache"))
