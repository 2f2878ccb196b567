"""Context generation with a tiny, randomly initialised LLaVA built here (no download)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT
from PIL import Image

from processing.context_generation import generate_contexts, image_items
from processing.context_store import ContextStore


def build_tiny_llava(folder: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    words = ["<pad>", "<s>", "</s>", "<unk>", "<image>", "USER:", "ASSISTANT:", "a", "photo", "of", "the",
             "image", "describe", "red", "blue", "cat", "dog", "man", "city", "in", "with", "and", "."]  # fmt: skip
    backend = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )  # fmt: skip
    template = (
        "{% for m in messages %}{{ m['role'].upper() }}: {% for c in m['content'] %}"
        "{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }} {% endif %}{% endfor %}{% endfor %}"
        "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
    )
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}),
        tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default", chat_template=template,
        num_additional_image_tokens=1,
    )  # fmt: skip
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                              image_size=16, patch_size=8, projection_dim=16)  # fmt: skip
    text = LlamaConfig(vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                       pad_token_id=0, bos_token_id=1, eos_token_id=2)  # fmt: skip
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=4, image_seq_length=4)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory):
    return build_tiny_llava(tmp_path_factory.mktemp("llava") / "tiny-llava")


def make_images(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.new("RGB", (24 + index, 20), (index * 40 % 256, 90, 200)).save(folder / f"img{index:03d}.png")
    return folder


def test_generate_then_resume(tmp_path, tiny_llava):
    images = make_images(tmp_path / "images", 3)
    (images / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "contexts.jsonl"
    counts = generate_contexts(images, out, model_name_or_path=str(tiny_llava), prompt="describe the image .",
                               max_new_tokens=5, batch_size=2, progress=False)  # fmt: skip
    assert counts["written"] == 3 and counts["failed"] == 1
    assert counts["failed_paths"] == [str(images / "broken.jpg")]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["image_id"] for r in records) == ["img000.png", "img001.png", "img002.png"]
    for record in records:
        assert record["generator"] == str(tiny_llava) and record["prompt"] == "describe the image ."
        assert record["temperature"] == 1.0 and isinstance(record["context"], str)
    assert (
        ContextStore([out]).lookup(["img001.png"])[0]
        == records[[r["image_id"] for r in records].index("img001.png")]["context"]
    )

    again = generate_contexts(images, out, model_name_or_path=str(tiny_llava), max_new_tokens=5, progress=False)
    assert again["written"] == 0 and again["skipped_done"] == 3
    assert len(out.read_text().splitlines()) == 3


def test_same_seed_same_contexts(tmp_path, tiny_llava):
    images = make_images(tmp_path / "images", 2)
    first = tmp_path / "a.jsonl"
    second = tmp_path / "b.jsonl"
    for out in (first, second):
        generate_contexts(images, out, model_name_or_path=str(tiny_llava), max_new_tokens=6, seed=7, progress=False)
    assert first.read_text() == second.read_text()


def test_image_items_from_a_corpus_and_paths(tmp_path):
    import datasets

    part = datasets.Dataset.from_dict(
        {"image_id": ["a.jpg", "b.jpg", "a.jpg"], "image": ["/x/a.jpg", None, "/x/a.jpg"]}
    )
    assert image_items(datasets.DatasetDict(train=part)) == [("a.jpg", "/x/a.jpg")]
    assert image_items(["/y/c.png"]) == [("c.png", "/y/c.png")]


KILLABLE = """
import sys
from processing.context_generation import generate_contexts
generate_contexts(sys.argv[1], sys.argv[2], model_name_or_path=sys.argv[3], max_new_tokens=40, batch_size=1,
                  temperature=1.0, progress=False)
"""


def test_killed_run_resumes_without_duplicates_or_torn_lines(tmp_path, tiny_llava):
    images = make_images(tmp_path / "images", 40)
    out = tmp_path / "contexts.jsonl"
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-c", KILLABLE, str(images), str(out), str(tiny_llava)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 3):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = out.read_text().splitlines()
    assert 3 <= len(partial) < 40, "the run was not interrupted midway"
    with open(out, "a") as handle:
        handle.write('{"image_id": "img0')  # what a kill during a write leaves behind
    generate_contexts(images, out, model_name_or_path=str(tiny_llava), max_new_tokens=3, progress=False)
    ids = [json.loads(line)["image_id"] for line in out.read_text().splitlines()]
    assert sorted(ids) == [f"img{i:03d}.png" for i in range(40)]
    assert out.read_text().endswith("\n")


@pytest.mark.slow
def test_two_processes_write_shards_and_merge(tmp_path, tiny_llava):
    images = make_images(tmp_path / "images", 6)
    out = tmp_path / "contexts.jsonl"
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", str(ROOT / "scripts" / "generate_contexts.py"),
        "--images", str(images), "--out", str(out), "--model", str(tiny_llava), "--max_new_tokens", "4",
        "--batch_size", "2",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    ids = [json.loads(line)["image_id"] for line in out.read_text().splitlines()]
    assert sorted(ids) == [f"img{i:03d}.png" for i in range(6)]
    assert not list(tmp_path.glob("contexts.shard*.jsonl"))  # merged and removed
