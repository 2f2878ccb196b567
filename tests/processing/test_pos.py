"""POS tags from spaCy on the given words, cached on disk."""

import hashlib
import json
import logging
import subprocess
import sys

import pytest

from processing import pos as pos_module
from processing.pos import PosTagger, pos_ids


def test_one_tag_per_given_word_and_the_cache(tmp_path):
    tagger = PosTagger(cache_dir=tmp_path)
    sentences = [["RT", "@nasa", ":", "Barack", "Obama", "visits", "New", "York"], ["don't", "\ufe0f", ""]]
    tags = tagger(sentences)
    assert [len(t) for t in tags] == [8, 3]  # "don't" is not split into two tokens
    assert tags[0][3:5] == ["PROPN", "PROPN"] and tags[0][5] == "VERB"
    assert all(tag in pos_module.UPOS_TO_ID for sentence in tags for tag in sentence)

    assert PosTagger(cache_dir=tmp_path).cache[PosTagger.key(sentences[0])] == tags[0]


def test_cached_tags_do_not_run_spacy(tmp_path, monkeypatch):
    sentences = [["Paris", "is", "nice"]]
    first = PosTagger(cache_dir=tmp_path)(sentences)
    again = PosTagger(cache_dir=tmp_path)
    monkeypatch.setattr(again, "_tag_and_store", lambda *a, **k: pytest.fail("spaCy ran on cached words"))
    assert again(sentences) == first


def test_none_tagger_warns_and_gives_unknown(caplog):
    with caplog.at_level(logging.WARNING):
        tagger = PosTagger("none")
    assert "unknown POS tag" in caplog.text
    assert tagger([["a", "b"]]) == [["<unk>", "<unk>"]]
    assert pos_ids(["<unk>", "NOUN", "SPACE"]) == [1, 9, 1]


def test_missing_model_says_how_to_install():
    with pytest.raises(OSError, match="python -m spacy download de_core_news_sm"):
        PosTagger("de_core_news_sm")


@pytest.mark.slow
def test_two_processes_write_the_cache_at_once(tmp_path):
    """DDP ranks tag at the same time: every line of the shared cache stays whole."""
    script = (
        "import sys\nfrom processing.pos import PosTagger\n"
        "words = [[f'w{sys.argv[1]}x{i}', 'runs', 'fast'] for i in range(3000)]\n"
        f"PosTagger('en_core_web_sm', cache_dir={str(tmp_path)!r})(words)\n"
    )
    processes = [subprocess.Popen([sys.executable, "-c", script, str(rank)]) for rank in (0, 1)]
    assert [process.wait(timeout=300) for process in processes] == [0, 0]
    (cache,) = tmp_path.glob("*.jsonl")
    lines = cache.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # a torn or interleaved line would not parse
    assert len(records) == 6000 and len({record["key"] for record in records}) == 6000
    reread = PosTagger("en_core_web_sm", cache_dir=tmp_path)
    assert len(reread.cache) == 6000


def test_a_word_holding_the_old_separator_gets_its_own_cache_entry(tmp_path):
    """The key joined the words with "\\x1f": ["Paris\\x1fJordan", ...] and ["Paris", "Jordan", ...]
    shared a line, so the second sentence got the first one's tags (one tag short, or one too many)."""
    joined, split = ["Paris\x1fJordan", "went", "home"], ["Paris", "Jordan", "went", "home"]
    assert PosTagger.key(joined) != PosTagger.key(split)
    for first, second in ((joined, split), (split, joined)):
        cache_dir = tmp_path / str(len(first))
        assert [len(tags) for tags in PosTagger(cache_dir=cache_dir)([first, second])] == [len(first), len(second)]
        assert len(PosTagger(cache_dir=cache_dir)([second])[0]) == len(second)  # read back from the file


def test_cache_lines_that_do_not_fit_their_words_are_not_used(tmp_path, caplog):
    words = ["Paris", "is", "nice"]
    cache_path = PosTagger(cache_dir=tmp_path).cache_path
    old_key = hashlib.sha1("\x1f".join(words).encode("utf-8")).hexdigest()  # the format before the fix
    with open(cache_path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps({"key": old_key, "tags": ["X", "X", "X"]}) + "\n")
        handle.write(json.dumps({"key": PosTagger.key(["Rome"]), "tags": ["NOUN", "VERB"]}) + "\n")  # one too many
        handle.write(json.dumps({"key": PosTagger.key(["Oslo"]), "tags": "PROPN"}) + "\n")  # not a list
    tagger = PosTagger(cache_dir=tmp_path)
    with caplog.at_level(logging.WARNING):
        tags = tagger([words, ["Rome"], ["Oslo"]])
    assert tags[0] != ["X", "X", "X"] and tags[0][0] == "PROPN"  # an old line is never read as a new one
    assert [len(t) for t in tags] == [3, 1, 1]
    assert "1 line(s) of the POS cache" in caplog.text and str(cache_path) in caplog.text
    assert PosTagger(cache_dir=tmp_path)([["Rome"]]) == [tags[1]]  # the line written again replaces it
