"""The multimodal pipelines on the session's demo checkpoints (conftest.py), and on the real MNRE images."""

import json
import math

import numpy as np
import pytest
import torch
from helpers import SHARED_DATA, load_script
from PIL import Image
from transformers import pipeline

import processing  # noqa: F401  (registers the tasks)

run_mie = load_script("run_mie.py")
from processing.decoding import join_windows
from processing.pipeline_shapca import examples_from_inputs, join_words, split_words


def red_disc(path=None):
    image = Image.new("RGB", (64, 64), (200, 200, 200))
    from PIL import ImageDraw

    ImageDraw.Draw(image).ellipse((20, 20, 44, 44), fill=(220, 50, 60))
    if path is not None:
        image.save(path)
    return image


def test_split_words_keeps_offsets():
    text = "  so proud\tof  Jordan "
    words, offsets = split_words(text)
    assert words == ["so", "proud", "of", "Jordan"]
    assert [text[a:b] for a, b in offsets] == words
    joined, spans = join_words(["New", "York"])
    assert joined == "New York" and spans == [(0, 3), (4, 8)]


@pytest.mark.parametrize("separator", ["\u200b", "\u2060", "\ufeff", "\u200b\u200b", " \ufeff"])
def test_zero_width_separators_split_words(separator):
    """A zero-width space (or word joiner, or BOM) between words is no white space, but it separates them."""
    text = f"\ufeffso{separator}proud of{separator}Jordan{separator}"
    words, offsets = split_words(text)
    assert words == ["so", "proud", "of", "Jordan"]
    assert [text[a:b] for a, b in offsets] == words
    # The joiners of emoji sequences and scripts hold their word together.
    family, persian = "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    assert split_words(f"our {family} {persian}")[0] == ["our", family, persian]


def test_a_zero_width_space_between_words_finds_the_entity(ner_checkpoint):
    nlp = pipeline("multimodal-ner", model=str(ner_checkpoint))
    text = "so\u200bproud\u200bof\u200bJordan\u200bright\u200bnow"  # one "word" to str.split()
    entities = nlp(text, image=red_disc(), context="a portrait of a man")
    assert [(e["word"], text[e["start"] : e["end"]]) for e in entities if e["word"] == "Jordan"] == [("Jordan",) * 2]
    assert entities == nlp(text.replace("\u200b", " "), image=red_disc(), context="a portrait of a man")


def test_ner_pipeline_gives_character_offsets(ner_checkpoint, tmp_path):
    nlp = pipeline("multimodal-ner", model=str(ner_checkpoint))
    text = "so proud of   Jordan right now"
    entities = nlp(text, image=red_disc(), context="a portrait of a man with short hair")
    assert entities, "the demo model finds the name"
    for entity in entities:
        assert text[entity["start"] : entity["end"]] == entity["word"]
        assert set(entity) == {"entity_group", "word", "start", "end", "score"} and 0 < entity["score"] <= 1
    assert any(e["word"] == "Jordan" for e in entities)

    # Words, an image path and batched inputs.
    path = tmp_path / "disc.png"
    red_disc(path)
    batch = nlp([{"text": "new pics from Austin :", "image": str(path)}, {"words": ["hi", "Eden"]}])
    assert len(batch) == 2 and all(isinstance(result, list) for result in batch)


def context_text(nlp, text, image=None, context=None) -> str:
    """The context the model reads for one input (decoded from the processor's context tokens)."""
    (example,), _ = examples_from_inputs(text, image, context)
    inputs = nlp.encode(example)
    ids = inputs["input_ids"][0][inputs["context_mask"][0].bool()]
    return nlp.processor.tokenizer.decode(ids)


def test_context_comes_from_the_store(ner_checkpoint, tmp_path):
    path = tmp_path / "pic.png"
    red_disc(path)
    store = tmp_path / "contexts.jsonl"
    store.write_text(
        json.dumps({"image_id": "pic.png", "context": "a green logo", "generator": "t", "source": "t"}) + "\n"
    )
    nlp = pipeline("multimodal-ner", model=str(ner_checkpoint), context_store=str(store))
    assert context_text(nlp, "hi Jordan", image=str(path)) == "a green logo"
    assert context_text(nlp, "hi Jordan", image=str(path), context="a man") == "a man"
    assert context_text(nlp, "hi Jordan", image=red_disc()) == ""  # no file name, no store entry
    assert nlp.resolve_context(None, None, "pic.png") == ("a green logo", "store")
    assert nlp.resolve_context("given", None, "pic.png") == ("given", "given")
    assert nlp.resolve_context(None, None, "other.png") == (None, "none")


def test_context_from_a_generator(ner_checkpoint):
    calls = []

    def describe(images):
        calls.append(len(images))
        return ["a portrait of a man"]

    nlp = pipeline("multimodal-ner", model=str(ner_checkpoint), context_generator=describe)
    assert context_text(nlp, "so proud of Jordan", image=red_disc()) == "a portrait of a man"
    assert calls == [1]
    nlp("so proud of Jordan", image=red_disc(), context="given")  # a given context wins
    assert calls == [1]


def test_long_text_is_read_in_windows(ner_checkpoint):
    nlp = pipeline("multimodal-ner", model=str(ner_checkpoint))
    words = " ".join(["so proud of Jordan ,"] * 40)  # 200 words, far over max_length 48
    (example,), _ = examples_from_inputs(words, red_disc(), "a portrait of a man")
    inputs = nlp.encode(example)
    offsets, kept = inputs["word_offset"].tolist(), (inputs["word_index"] >= 0).sum(-1).tolist()
    assert len(offsets) > 1 and offsets[0] == 0 and offsets[-1] + kept[-1] == 200
    assert all(b < a + size for a, size, b in zip(offsets, kept, offsets[1:]))  # windows overlap
    entities = nlp(words, image=red_disc(), context="a portrait of a man")
    assert all(words[e["start"] : e["end"]] == e["word"] for e in entities)
    assert sum(e["word"] == "Jordan" for e in entities) == 40  # every window's Jordan, once each


class RowCounter:
    """Counts the rows of every batch the model reads."""

    def __init__(self, model):
        self.rows = []
        self.hook = model.register_forward_hook(self.count, with_kwargs=True)

    def count(self, module, args, kwargs, output):
        self.rows.append(len(kwargs["input_ids"]))


def test_a_long_text_goes_through_the_model_batch_size_windows_at_a_time(ner_checkpoint):
    """Memory stays flat whatever a text's length: its windows go through the model `batch_size`
    rows at a time (they all went in one batch: 50,000 words took 3.4 GB), with the same result."""
    nlp = pipeline("multimodal-ner", model=str(ner_checkpoint))
    text = " ".join(["so proud of Jordan ,"] * 600)  # 3,000 words
    (example,), _ = examples_from_inputs(text, None, "a portrait of a man")
    windows = len(nlp.encode(example)["word_offset"])
    counter = RowCounter(nlp.model)
    entities = nlp(text, context="a portrait of a man", batch_size=8)
    assert windows > 100 and sum(counter.rows) == windows
    assert max(counter.rows) == 8 and len(counter.rows) == math.ceil(windows / 8)
    assert all(text[e["start"] : e["end"]] == e["word"] for e in entities)
    assert sum(e["word"] == "Jordan" for e in entities) == 600
    # With the windows of other texts in its batches, and all in one batch: the same entities.
    counter.rows.clear()
    texts = ["Jordan", text, "so proud of Austin"]
    batch = nlp([{"text": t, "context": "a portrait of a man"} for t in texts], batch_size=windows + 2)
    assert counter.rows == [windows + 2] and batch[1] == entities


def test_the_tag_join_picks_what_the_grid_join_picks_on_its_diagonal():
    """`join_windows` joins tag rows in memory linear in the words read, and grids by placing every
    window in a text-wide grid; both follow one rule (each word from the window where it is farthest
    from an edge, ties to the earlier window): the tags it picks are the grid join's diagonal."""
    generator = torch.Generator().manual_seed(0)

    def draw(low, high):
        return int(torch.randint(low, high + 1, (1,), generator=generator))

    for _ in range(100):
        size = draw(1, 8)
        mapping, offsets, counts = [], [], []
        for example in range(2):  # two texts in one batch of windows
            words, start = draw(1, 30), 0
            while True:  # windows of 1 to `size` words, each overlapping or meeting the one before
                mapping.append(example)
                offsets.append(start)
                counts.append(min(draw(1, size), words - start))
                if start + counts[-1] >= words:
                    break
                start += draw(1, counts[-1])
        width = size + draw(0, 2)  # the batch's padding
        ids = torch.full((len(offsets), width), -100)
        scores = torch.zeros(len(offsets), width)
        for row, count in enumerate(counts):
            ids[row, :count] = torch.randint(0, 5, (count,), generator=generator)
            scores[row, :count] = torch.rand(count, generator=generator)
        grid_ids, grid_scores = torch.full((len(offsets), width, width), -100), torch.zeros(len(offsets), width, width)
        grid_ids.diagonal(dim1=1, dim2=2).copy_(ids)
        grid_scores.diagonal(dim1=1, dim2=2).copy_(scores)
        mapping, offsets = torch.tensor(mapping), torch.tensor(offsets)
        grids = join_windows({"ids": grid_ids, "scores": grid_scores}, mapping, offsets)
        joined = join_windows({"ids": ids, "scores": scores}, mapping, offsets)
        assert torch.equal(joined["ids"], grids["ids"].diagonal(dim1=1, dim2=2))
        assert torch.equal(joined["scores"], grids["scores"].diagonal(dim1=1, dim2=2))


def test_max_text_words_refuses_a_longer_text_before_any_work(ner_checkpoint):
    nlp = pipeline("multimodal-ner", model=str(ner_checkpoint), max_text_words=10)
    counter = RowCounter(nlp.model)
    text = " ".join(["so proud of Jordan ,"] * 3)  # 15 words
    message = (
        r"The text has 15 words, more than this pipeline's max_text_words=10\. Raise the limit "
        r"\(pipeline\(\.\.\., max_text_words=N\) or nlp\(text, max_text_words=N\); None for no limit\)"
    )
    with pytest.raises(ValueError, match=message):
        nlp(["hi Jordan", text], batch_size=2)
    assert counter.rows == []  # refused before the model read anything
    assert nlp("so proud of Jordan") == pipeline("multimodal-ner", model=str(ner_checkpoint))("so proud of Jordan")
    assert isinstance(nlp(text, max_text_words=None), list)  # a call lifts the pipeline's limit
    assert isinstance(nlp(text, max_text_words=15), list)
    with pytest.raises(ValueError, match=r"The text has 4 words, more than this pipeline's max_text_words=3\."):
        nlp({"words": ["so", "proud", "of", "Jordan"]}, max_text_words=3)
    for bad in (0, -1, 2.5, "10", True):
        with pytest.raises(ValueError, match="max_text_words must be a positive number of words or None"):
            nlp("hi Jordan", max_text_words=bad)


def test_a_pipeline_call_leaves_the_callers_random_stream_alone(ner_checkpoint, pair_checkpoint):
    for task, checkpoint in (("multimodal-ner", ner_checkpoint), ("multimodal-relation-extraction", pair_checkpoint)):
        nlp = pipeline(task, model=str(checkpoint))
        batch = [{"text": f"Austin met Eden in Paris number {i}", "context": "two people"} for i in range(14)]
        state = torch.get_rng_state()
        nlp(batch, batch_size=14)  # more examples than an exact game holds
        assert torch.equal(torch.get_rng_state(), state), task


def test_relation_pipeline(pair_checkpoint):
    nlp = pipeline("multimodal-relation-extraction", model=str(pair_checkpoint))
    text = "Austin and Savannah spotted together today"
    result = nlp(text, image=red_disc(), context="two people holding hands at a wedding")
    assert set(result) == {"entities", "relations"}
    for entity in result["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["word"]
    for relation in result["relations"]:
        assert set(relation) == {"head", "tail", "relation", "score"}
        assert relation["head"] in result["entities"] and relation["tail"] in result["entities"]


@pytest.mark.skipif(not (SHARED_DATA / "images" / "mnre").is_dir(), reason="../shared/data is not present")
def test_pipeline_on_real_mnre_images(ner_checkpoint):
    nlp = pipeline("multimodal-ner", model=str(ner_checkpoint))
    images = sorted((SHARED_DATA / "images" / "mnre").glob("*.jpg"))[:4]
    for image in images:
        entities = nlp("RT @user : Jordan visits Paris with Austin", image=str(image))
        assert isinstance(entities, list)
        for entity in entities:
            assert 0 <= entity["start"] < entity["end"]


# -- hardening: every input form answered, batching equal to one by one --------------------------


def test_a_bare_word_list_is_refused_and_words_go_in_a_dict(ner_checkpoint):
    nlp = pipeline("multimodal-ner", model=str(ner_checkpoint))
    with pytest.raises(ValueError, match=r"ambiguous.*\{'words': \[\.\.\.\]\}"):
        nlp(["so", "proud", "of", "Jordan"])
    as_words = nlp({"words": ["so", "proud", "of", "Jordan"], "image": red_disc(), "context": "a portrait of a man"})
    assert as_words == nlp("so proud of Jordan", image=red_disc(), context="a portrait of a man")


@pytest.mark.parametrize("bad", [None, 42, 3.5, b"so proud", {"image": "x.png"}, {"text": "a", "words": ["a"]}])
def test_wrong_input_types_name_the_accepted_forms(ner_checkpoint, bad):
    nlp = pipeline("multimodal-ner", model=str(ner_checkpoint))
    with pytest.raises((TypeError, ValueError), match="accepted inputs: a text"):
        nlp(bad)


def test_empty_text_says_so(ner_checkpoint):
    nlp = pipeline("multimodal-ner", model=str(ner_checkpoint))
    with pytest.raises(ValueError, match="no words"):
        nlp("   ")


def test_images_as_arrays_and_bytes(ner_checkpoint, tmp_path):
    nlp = pipeline("multimodal-ner", model=str(ner_checkpoint))
    path = tmp_path / "disc.png"
    picture = red_disc(path)
    expected = nlp("so proud of Jordan", image=picture, context="a man")
    assert nlp("so proud of Jordan", image=np.asarray(picture), context="a man") == expected
    assert nlp("so proud of Jordan", image=path.read_bytes(), context="a man") == expected
    with pytest.raises(TypeError, match="image"):
        nlp("so proud of Jordan", image=42)


@pytest.mark.parametrize("word", ["!" * 300, "\u6211" * 300], ids=["bangs", "chinese"])
def test_a_word_longer_than_the_window_does_not_crash(ner_checkpoint, word):
    nlp = pipeline("multimodal-ner", model=str(ner_checkpoint))
    text = f"so proud of Jordan {word} and Austin"
    entities = nlp(text, image=red_disc(), context="a portrait of a man")
    assert all(text[e["start"] : e["end"]] == e["word"] for e in entities)


def test_batches_give_the_results_of_one_by_one(ner_checkpoint, pair_checkpoint):
    texts = [{"text": "so proud of Jordan", "image": red_disc(), "context": "a portrait of a man"},
             {"text": " ".join(["Austin visits Eden ,"] * 20), "context": "a logo"},
             {"words": ["hi", "Eden"]}, {"text": "new pics from Austin :"}, {"text": "Jordan"}]  # fmt: skip
    for checkpoint, task in ((ner_checkpoint, "multimodal-ner"), (pair_checkpoint, "multimodal-relation-extraction")):
        nlp = pipeline(task, model=str(checkpoint))
        one_by_one = [nlp(text) for text in texts]
        for batch_size in (2, 8):
            assert nlp(texts, batch_size=batch_size) == one_by_one
        assert pipeline(task, model=str(checkpoint), batch_size=2)(texts) == one_by_one


def test_evaluation_scores_every_word_of_a_long_sentence(ner_checkpoint, tmp_path):
    """A test sentence four times longer than the window, one entity in every 5 words: evaluation
    reads it in windows as the pipeline does, and its scores count every gold entity of the file."""
    from helpers import TWITTER_SPLITS

    data = tmp_path / "twitter"
    data.mkdir()
    long_sentence = "".join(
        f"{w}\t{'B-PER' if w == 'Jordan' else 'O'}\n" for w in ["so", "proud", "of", "Jordan", ","] * 40
    )
    for name, text in TWITTER_SPLITS.items():
        (data / name).write_text(f"IMGID:900\n{long_sentence}\n" if name == "test.txt" else text, encoding="utf-8")
    out = tmp_path / "scored"
    results = run_mie.main([
        "--model_name_or_path", str(ner_checkpoint), "--corpus", "twitter2017", "--data_dir", str(data), "--do_eval",
        "--missing_context", "empty", "--missing_image", "skip", "--label_map", "MISC=ORG", "--max_length", "48",
        "--report_to", "none", "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache"),
    ])  # fmt: skip
    (record,) = [json.loads(line) for line in (out / "predictions_test.jsonl").read_text().splitlines()]
    assert len(record["gold"]) == 40  # the file's own gold, all of it
    assert max(entity["start"] for entity in record["pred"]) > 48  # words past the first window were read
    found = {(e["start"], e["end"], e["type"]) for e in record["pred"]}
    correct = sum((e["start"], e["end"], e["type"]) in found for e in record["gold"])
    assert results["test_recall"] == pytest.approx(correct / 40)
    assert results["test_precision"] == pytest.approx(correct / len(record["pred"]))


@pytest.mark.parametrize(
    "inputs, error, message",
    [("so proud of \ud800 Jordan", ValueError, r"The text holds a lone surrogate '\\ud800' at character 13"),
     ({"text": "so proud", "context": "a \udfff man"}, ValueError, "The context holds a lone surrogate"),
     ({"words": ["so", 5, None]}, TypeError, r"'words' must be a non-empty list of non-empty strings \(got \[5, None\]\)"),
     ({"words": ["so", "proud"], "context": 42}, TypeError, "context must be a string, got int"),
     ({"text": "so proud", "context": 42}, TypeError, "context must be a string, got int")],
)  # fmt: skip
def test_inputs_that_are_not_text_are_named(inputs, error, message):
    with pytest.raises(error, match=message):
        examples_from_inputs(inputs)


def test_a_checkpoint_loaded_with_the_other_task_names_the_right_one(ner_checkpoint, pair_checkpoint):
    with pytest.raises(
        ValueError,
        match=r"word-pair tagger \(entities and relations\) checkpoint: load it with pipeline\('multimodal-relation",
    ):
        pipeline("multimodal-ner", model=str(pair_checkpoint))
    with pytest.raises(
        ValueError, match=r"CRF tagger \(named entities\) checkpoint: load it with pipeline\('multimodal-ner'"
    ):
        pipeline("multimodal-relation-extraction", model=str(ner_checkpoint))
