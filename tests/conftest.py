"""Shared fixtures: tiny Shap-CA models built from configs (no download) and random inputs."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from modeling_shapca import ShapCAConfig

NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
GRID_LABELS = ["none", "PER", "LOC", "works_for", "lives_in"]

TINY_TEXT = {
    "model_type": "bert",
    "vocab_size": 120,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 48,
    "max_position_embeddings": 64,
}
TINY_VISION = {"architecture": "test_resnet"}


def tiny_config(task: str = "ner", **overrides) -> ShapCAConfig:
    labels = NER_LABELS if task == "ner" else GRID_LABELS
    settings = dict(
        text_config=dict(TINY_TEXT),
        vision_config=dict(TINY_VISION),
        task=task,
        fusion_num_heads=4,
        feature_embedding_size=8,
        head_hidden_size=16,
        max_words=32,
        id2label=dict(enumerate(labels)),
    )
    settings.update(overrides)
    return ShapCAConfig(**settings)


def random_inputs(
    batch: int = 3,
    words: int = 5,
    context: int = 4,
    vocab: int = 120,
    image_size: int = 64,
    seed: int = 0,
    with_image: bool = True,
) -> dict[str, torch.Tensor]:
    """A batch laid out as the processor lays it out: [CLS] words [SEP] context [SEP], one token per word."""
    generator = torch.Generator().manual_seed(seed)
    length = words + context + 3
    input_ids = torch.randint(5, vocab, (batch, length), generator=generator)
    input_ids[:, 0], input_ids[:, words + 1], input_ids[:, -1] = 1, 2, 2
    token_type_ids = torch.zeros(batch, length, dtype=torch.long)
    token_type_ids[:, words + 2 :] = 1
    context_mask = torch.zeros(batch, length, dtype=torch.long)
    context_mask[:, words + 2 : words + 2 + context] = 1
    inputs = {
        "input_ids": input_ids,
        "attention_mask": torch.ones(batch, length, dtype=torch.long),
        "token_type_ids": token_type_ids,
        "context_mask": context_mask,
        "word_index": torch.arange(1, words + 1).repeat(batch, 1),
        "pos_ids": torch.randint(2, 19, (batch, words), generator=generator),
    }
    if with_image:
        inputs["pixel_values"] = torch.randn(batch, 3, image_size, image_size, generator=generator)
        inputs["image_mask"] = torch.ones(batch, dtype=torch.long)
    return inputs


@pytest.fixture
def ner_config() -> ShapCAConfig:
    return tiny_config("ner")


@pytest.fixture
def pair_config() -> ShapCAConfig:
    return tiny_config("word_pair")
