"""What the tests build their inputs from: tiny Shap-CA configs (no download), random inputs,
hand-written files in the corpora's formats, a tiny tokenizer and image processor, and the
scripts loaded as modules (``run_mie.py`` and ``scripts/``: they are not an installed package)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from modeling_shapca import MODEL_FOR_HEAD, ShapCAConfig

ROOT = Path(__file__).resolve().parents[1]  # the repository

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


def tiny_config(head: str = "crf", **overrides) -> ShapCAConfig:
    labels = NER_LABELS if head == "crf" else GRID_LABELS
    settings = {
        "text_config": dict(TINY_TEXT),
        "vision_config": dict(TINY_VISION),
        "fusion_num_heads": 4,
        "feature_embedding_size": 8,
        "head_hidden_size": 16,
        "max_words": 32,
        "id2label": dict(enumerate(labels)),
    }
    settings.update(overrides)
    return MODEL_FOR_HEAD[head].config_class(**settings)


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


def build_model(config: ShapCAConfig):
    """The task model of a config, seeded, in eval mode."""
    torch.manual_seed(0)
    return MODEL_FOR_HEAD[config.head](config).eval()


# -- data fixtures, written by hand in the formats of the real corpora -------------------------

SHARED_DATA = ROOT.parent / "shared" / "data"
needs_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not present")

TWITTER_SPLITS = {
    "train.txt": "IMGID:100\nMessi\tB-PER\nscores\tO\nin\tO\nBarcelona\tB-LOC\n\nIMGID:101\nRT\tO\n@nasa\tO\n:\tO\nNASA\tB-ORG\nlaunch\tO\n",
    "valid.txt": "IMGID:200\nNew\tB-LOC\nYork\tI-LOC\nrocks\tO\n\n",
    "test.txt": "IMGID:300\nSuper\tB-MISC\nBowl\tI-MISC\n\nIMGID:301\nhi\tO\n",
}
MNRE_LINES = {
    "mnre_train.txt": [
        "{'token': ['Anna', 'joins', 'Acme', 'Corp'], 'h': {'name': 'Anna', 'pos': [0, 1]}, 't': {'name': 'Acme Corp', 'pos': [2, 4]}, 'img_id': 'a1.jpg', 'relation': '/per/org/member_of'}",
        "{'token': ['Anna', 'joins', 'Acme', 'Corp'], 'h': {'name': 'Acme Corp', 'pos': [2, 4]}, 't': {'name': 'Anna', 'pos': [0, 1]}, 'img_id': 'a1.jpg', 'relation': 'None'}",
    ],
    "mnre_val .txt": [
        "{'token': ['Paris', 'holds', 'Expo'], 'h': {'name': 'Expo', 'pos': [2, 3]}, 't': {'name': 'Paris', 'pos': [0, 1]}, 'img_id': 'b1.jpg', 'relation': '/misc/loc/held_on'}",
    ],
    "mnre_test.txt": [
        "{'token': ['Bo', 'and', 'Cy', 'wed'], 'h': {'name': 'Bo', 'pos': [0, 1]}, 't': {'name': 'Cy', 'pos': [2, 3]}, 'img_id': 'c1.jpg', 'relation': '/per/per/couple'}",
    ],
}


def jmere_item(words, image_id, pairs):
    return {
        "token": words,
        "img_id": image_id,
        "label_list": [
            [
                {
                    "beg_ent": {"name": " ".join(words[h[0] : h[1]]), "pos": list(h), "tags": ht},
                    "sec_ent": {"name": " ".join(words[t[0] : t[1]]), "pos": list(t), "tags": tt},
                    "relation": relation,
                }
            ]
            for h, ht, t, tt, relation in pairs
        ],
    }


JMERE_SPLITS = {
    "train.json": [
        jmere_item(
            ["Anna", "Lee", "joins", "Acme", "in", "Oslo"],
            "j1.jpg",
            [((0, 2), "per", (3, 4), "org", "member_of"), ((3, 4), "org", (5, 6), "loc", "locate_at")],
        ),
        jmere_item(["Expo", "opens", "in", "Rome"], "j2.jpg", [((0, 1), "misc", (3, 4), "loc", "held_on")]),
    ],
    "val.json": [jmere_item(["Bo", "weds", "Cy"], "j3.jpg", [((2, 3), "per", (0, 1), "per", "couple")])],
    "test.json": [jmere_item(["Di", "visits", "Rome"], "j4.jpg", [((0, 1), "per", (2, 3), "loc", "present_in")])],
}


def write_twitter(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in TWITTER_SPLITS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def write_mnre(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in MNRE_LINES.items():
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def write_jmere(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name, items in JMERE_SPLITS.items():
        (folder / name).write_text(json.dumps(items), encoding="utf-8")
    return folder


def write_contexts(path, image_ids, skip=()):
    with open(path, "w", encoding="utf-8") as handle:
        for image_id in image_ids:
            if image_id not in skip:
                record = {
                    "image_id": image_id,
                    "context": f"a picture for {image_id}",
                    "generator": "test",
                    "source": "hand",
                }
                handle.write(json.dumps(record) + "\n")
    return path


TOKENIZER_WORDS = [
    "the",
    "a",
    "an",
    "of",
    "in",
    "on",
    "at",
    "and",
    "with",
    "for",
    "to",
    "is",
    "was",
    "photo",
    "picture",
    "cat",
    "dog",
    "man",
    "woman",
    "city",
    "logo",
    "messi",
    "scores",
    "barcelona",
    "nasa",
    "launch",
    "new",
    "york",
    "rocks",
    "super",
    "bowl",
    "hi",
    "rt",
    "anna",
    "joins",
    "acme",
    "corp",
    "paris",
    "holds",
    "expo",
    "bo",
    "cy",
    "wed",
    "di",
    "visits",
    "rome",
    "lee",
    "oslo",
    "opens",
    "weds",
]


def make_tokenizer():
    from transformers import BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TOKENIZER_WORDS, "##s", "##ing", "##er", "@", ":", "!", "#"]
    vocab += [f"w{i}" for i in range(TINY_TEXT["vocab_size"] - len(vocab))]
    return BertTokenizer(vocab={word: i for i, word in enumerate(vocab)}, do_lower_case=True)


def make_image_processor(size: int = 64):
    import timm
    from transformers import TimmWrapperImageProcessor

    pretrained_cfg = dict(timm.create_model(TINY_VISION["architecture"]).pretrained_cfg, input_size=(3, size, size))
    return TimmWrapperImageProcessor(pretrained_cfg=pretrained_cfg, architecture=TINY_VISION["architecture"])


# -- demo checkpoints, trained once per session --------------------------------------------------

# Training without evaluations or intermediate checkpoints: the fixtures need the weights, not the scores.
DEMO_CHECKPOINT_TRAINING = ["--demo_validation_size", "16", "--demo_test_size", "16", "--report_to", "none",
                            "--do_eval", "false", "--save_strategy", "no", "--eval_strategy", "no",
                            "--load_best_model_at_end", "false", "--disable_tqdm", "true"]  # fmt: skip


def load_script(path: str):
    """The script at ``path`` (relative to the repository) as a module, loaded once per session
    under its file name (``run_mie``, ``run_grid``...), so that tests can call its functions."""
    name = Path(path).stem
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def train_demo_checkpoint(folder: Path, config: str, posts: int, epochs: int) -> Path:
    run_mie = load_script("run_mie.py")
    out = folder / "checkpoint"
    run_mie.main([str(ROOT / "configs" / config), "--output_dir", str(out), "--cache_dir", str(folder / "cache"),
                  "--demo_train_size", str(posts), "--num_train_epochs", str(epochs),
                  *DEMO_CHECKPOINT_TRAINING])  # fmt: skip
    return out
