"""Saving, loading and the Auto classes of a model in this process. Loading as remote code, in a
fresh process without the library, is tested once, on run_mie.py's checkpoints: ``tests/test_checkpoint_anywhere.py``."""

import json
import os

import pytest
import torch
from helpers import build_model, random_inputs, tiny_config
from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification

from modeling_shapca import ShapCAConfig, ShapCAForTokenClassification, ShapCAModel


def build(head):
    return build_model(tiny_config(head))


@pytest.mark.parametrize("head", ["crf", "word_pair"])
def test_save_and_load_give_identical_outputs(tmp_path, head):
    model = build(head)
    inputs = random_inputs()
    model.save_pretrained(tmp_path)
    files = set(os.listdir(tmp_path))
    assert "model.safetensors" in files and not any(name.endswith(".bin") for name in files)
    loaded = type(model).from_pretrained(tmp_path).eval()
    with torch.no_grad():
        logits = loaded(**inputs).logits
        torch.testing.assert_close(logits, model(**inputs).logits)
    assert loaded.config.id2label == model.config.id2label
    word_mask = inputs["word_index"] >= 0
    assert torch.equal(loaded.decode(logits, word_mask), model.decode(logits, word_mask))
    if head == "crf":  # the BIO constraints are rebuilt on load (they are not stored weights)
        assert torch.equal(loaded.head.allowed, model.head.allowed)
        assert torch.equal(loaded.head.allowed_start, model.head.allowed_start)
        assert not loaded.head.allowed_start.all()


def test_config_round_trip_through_auto_config(tmp_path):
    config = tiny_config("word_pair", tau=0.05, alignment_players="direct", use_image=False)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, ShapCAConfig)
    for field in ("tau", "alignment_players", "use_image", "head", "fusion_hidden_size", "id2label"):
        assert getattr(loaded, field) == getattr(config, field)
    assert loaded.text_config.hidden_size == 32 and loaded.vision_config.architecture == "test_resnet"


def test_auto_classes_pick_shapca(tmp_path):
    build("crf").save_pretrained(tmp_path)
    assert type(AutoModelForTokenClassification.from_pretrained(tmp_path)) is ShapCAForTokenClassification
    base = AutoModel.from_pretrained(tmp_path)
    assert type(base) is ShapCAModel
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_shapca.ShapCAConfig",
        "AutoModel": "modeling_shapca.ShapCAModel",
        "AutoModelForTokenClassification": "modeling_shapca.ShapCAForTokenClassification",
    }
    for name in ("configuration_shapca.py", "modeling_shapca.py", "fusion.py", "heads.py", "shapley.py"):
        assert (tmp_path / name).exists(), name


def test_from_encoders_starts_from_pretrained_weights(tmp_path):
    from helpers import TINY_TEXT
    from transformers import BertConfig, BertModel, TimmWrapperConfig, TimmWrapperModel

    torch.manual_seed(1)
    text = BertModel(BertConfig(**{k: v for k, v in TINY_TEXT.items() if k != "model_type"}))
    vision = TimmWrapperModel(TimmWrapperConfig(architecture="test_resnet"))
    text.save_pretrained(tmp_path / "text")
    vision.save_pretrained(tmp_path / "vision")

    model = ShapCAForTokenClassification.from_encoders(
        str(tmp_path / "text"), str(tmp_path / "vision"), id2label={0: "O", 1: "B-PER", 2: "I-PER"}, fusion_num_heads=4
    )
    torch.testing.assert_close(
        model.shapca.text_model.embeddings.word_embeddings.weight, text.embeddings.word_embeddings.weight
    )
    first_conv = next(model.shapca.vision_model.parameters())
    torch.testing.assert_close(first_conv, next(vision.parameters()))
    assert model.shapca.text_model.pooler is None
    assert model.config.text_config.hidden_size == 32
    with torch.no_grad():
        assert torch.isfinite(model.eval()(**random_inputs()).logits).all()

    text_only = ShapCAModel.from_encoders(str(tmp_path / "text"), use_image=False, fusion_num_heads=4)
    assert not hasattr(text_only, "vision_model")
