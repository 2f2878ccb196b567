"""Shared fixtures: tiny configs, a tiny processor, and the two demo checkpoints trained once per
test session. What they are built from lives in ``helpers.py``."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from helpers import make_image_processor, make_tokenizer, tiny_config, train_demo_checkpoint

from modeling_shapca import ShapCAConfig


@pytest.fixture
def ner_config() -> ShapCAConfig:
    return tiny_config("crf")


@pytest.fixture
def pair_config() -> ShapCAConfig:
    return tiny_config("word_pair")


@pytest.fixture
def processor():
    from processing import ShapCAProcessor

    return ShapCAProcessor(make_image_processor(), make_tokenizer(), max_length=24)


@pytest.fixture(scope="session")
def ner_checkpoint(tmp_path_factory) -> Path:
    """A CRF checkpoint of `configs/demo.json` that finds the demo's names (6 epochs on 1,400 posts:
    fewer steps leave it short of that), written by run_mie.py. Shared by every test file that
    reads one: a test must not write into it."""
    return train_demo_checkpoint(tmp_path_factory.mktemp("ner-checkpoint"), "demo.json", posts=1400, epochs=6)


@pytest.fixture(scope="session")
def pair_checkpoint(tmp_path_factory) -> Path:
    """A word-pair checkpoint of `configs/demo_wordpair.json` (one epoch on 280 posts: the tests
    that read it check the form of its answers, not their quality), written by run_mie.py. Shared
    like `ner_checkpoint`: a test must not write into it."""
    return train_demo_checkpoint(tmp_path_factory.mktemp("pair-checkpoint"), "demo_wordpair.json", posts=280, epochs=1)
