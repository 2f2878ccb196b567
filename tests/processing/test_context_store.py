"""ContextStore lookups and the resumable writer."""

import json
import logging

import pytest

from processing.context_store import ContextStore, MissingContextError
from processing.context_writer import ContextWriter


def write_lines(path, lines):
    path.write_text("".join(lines), encoding="utf-8")
    return path


def record(image_id, context="ctx"):
    return json.dumps({"image_id": image_id, "context": context, "generator": "g", "source": "s"}) + "\n"


def test_lookup_and_later_files_win(tmp_path):
    first = write_lines(tmp_path / "a.jsonl", [record("1.jpg", "old"), record("2.jpg", "two")])
    second = write_lines(tmp_path / "b.jsonl", [record("1.jpg", "new")])
    store = ContextStore([first, second])
    assert store.lookup(["1.jpg", "2.jpg"]) == ["new", "two"]
    assert "2.jpg" in store and len(store) == 2 and store.get("3.jpg") is None


def test_missing_ids_raise_with_count_and_first_ten(tmp_path):
    store = ContextStore([write_lines(tmp_path / "a.jsonl", [record("1.jpg")])])
    missing = [f"m{i:02d}.jpg" for i in range(12)]
    with pytest.raises(MissingContextError) as error:
        store.lookup(["1.jpg", *missing])
    message = str(error.value)
    assert message.startswith("12 image ids have no context")
    assert "m09.jpg" in message and "m10.jpg" not in message


def test_missing_ids_empty_policy_logs(tmp_path, caplog):
    store = ContextStore([write_lines(tmp_path / "a.jsonl", [record("1.jpg")])], missing_context="empty")
    with caplog.at_level(logging.WARNING):
        assert store.lookup(["1.jpg", "x.jpg", "y.jpg"]) == ["ctx", "", ""]
    assert "2 image ids have no context" in caplog.text


def test_bad_lines_name_file_and_line(tmp_path):
    bad = write_lines(tmp_path / "bad.jsonl", [record("1.jpg"), "{not json}\n"])
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):
        ContextStore([bad])
    wrong = write_lines(tmp_path / "wrong.jsonl", [json.dumps({"id": 1}) + "\n"])
    with pytest.raises(ValueError, match=r"wrong.jsonl:1: expected an object with string 'image_id'"):
        ContextStore([wrong])
    with pytest.raises(ValueError, match="missing_context must be one of"):
        ContextStore([], missing_context="skip")


def test_torn_last_line_is_ignored_by_the_store_and_cut_by_the_writer(tmp_path):
    path = write_lines(tmp_path / "c.jsonl", [record("1.jpg"), record("2.jpg")[:20]])
    assert ContextStore([path]).lookup(["1.jpg"]) == ["ctx"]
    with ContextWriter(path) as writer:
        assert writer.done == {"1.jpg"}
        writer.write("2.jpg", "redone", "g")
    lines = path.read_text().splitlines()
    assert [json.loads(line)["image_id"] for line in lines] == ["1.jpg", "2.jpg"]


def test_writer_resumes(tmp_path):
    path = tmp_path / "out" / "c.jsonl"
    with ContextWriter(path) as writer:
        writer.write("a.jpg", "first", "g", "s")
    with ContextWriter(path) as writer:
        assert writer.done == {"a.jpg"}
        writer.write("b.jpg", "second", "g")
    assert ContextStore([path]).lookup(["a.jpg", "b.jpg"]) == ["first", "second"]
