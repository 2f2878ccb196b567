#!/usr/bin/env python
"""Why a context counted: the Shapley values of a trained model's contrastive games, as heatmaps.

    python scripts/shapley_heatmap.py --model_name_or_path runs/grid_demo/alpha=0.2,seed=1 --out runs/heatmap
    python scripts/shapley_heatmap.py --model_name_or_path runs/t17 --corpus twitter2017 --data_dir data/twitter2017 \\
        --context_files data/contexts/twitter2017.blip2.jsonl --num_examples 28 --out runs/heatmap_t17

A batch of ``--num_examples`` examples of a corpus split plays the games of the paper's section 3.4: in
the game of text ``j`` the contexts of the batch are the players, and ``[j, i]`` is the Shapley
value of context ``i`` (row sums: the utility of all contexts together). A model that aligned
well gives each text's own context (the diagonal) the largest value. With images, the
context-image games are drawn too. Batches of at most 12 examples (``MAX_EXACT_PLAYERS``) get exact values; larger ones
the estimate of the paper's Algorithm 1 (one random order, ``--seed``); the figures say which.

Writes ``shapley_context_text.png`` (and ``shapley_context_image.png``) and
``shapley_values.json`` (the numbers, NaN as null) into ``--out``. The data settings are read from
``--config`` (a run_mie.py config; by default ``run_config.json`` of a scripts/run_grid.py run), then from the
flags below. Needs matplotlib: ``pip install -e ".[sweep]"``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import torch
from transformers import AutoConfig, AutoProcessor

from modeling_shapca import MODEL_FOR_HEAD
from modeling_shapca.shapley import MAX_EXACT_PLAYERS
from processing import ShapCADataCollator
from processing.corpora import MIEData
from shapca_training.arguments import DataArguments, parse_arguments
from shapca_training.data import load_run_data
from shapca_training.experiments.grid import CONFIG_FILE
from shapca_training.experiments.plots import heatmap_figure

logger = logging.getLogger("shapley_heatmap")
# The run_mie.py flags that say which data a run read: the checkpoint's config gives them, flags override.
DATA_FLAGS = ("corpus", "data_dir", "image_dir", "context_files", "missing_context", "cache_dir", "missing_image",
              "use_context", "demo_flavour", "demo_seed", "demo_train_size", "demo_validation_size",
              "demo_test_size")  # fmt: skip
LABEL_LENGTH = 28


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True, help="A trained Shap-CA checkpoint.")
    parser.add_argument("--out", required=True, help="Folder of the figures and the JSON.")
    parser.add_argument(
        "--config", help=f"A run_mie.py config with the data settings (default: <checkpoint>/{CONFIG_FILE})."
    )
    parser.add_argument("--split", default="test", help="train, validation or test (default).")
    parser.add_argument("--num_examples", type=int, default=8, help="Examples in the batch, the players (default 8).")
    parser.add_argument("--start", type=int, default=0, help="Index of the first example in the split.")
    parser.add_argument("--method", default="auto", choices=["auto", "exact", "cyclic"],
                        help=f"exact, cyclic (Algorithm 1), or auto: exact up to {MAX_EXACT_PLAYERS} examples.")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="Seed of Algorithm 1's random order.")
    parser.add_argument("--labels", default="text", choices=["text", "index"],
                        help="Label rows and columns with the start of each text and context (default), or only "
                        "with the example's index in the split, for a figure that must not show corpus text.")  # fmt: skip
    for key in DATA_FLAGS:
        parser.add_argument(f"--{key}", nargs="+" if key == "context_files" else None, help="As run_mie.py's.")
    return parser.parse_args(argv)


def read_data(args: argparse.Namespace) -> tuple[MIEData, DataArguments]:
    """The data the checkpoint's run read (its config, parsed as run_mie.py parses it), with the
    data flags given here on top; and those data settings."""
    path = Path(args.config) if args.config else Path(args.model_name_or_path) / CONFIG_FILE
    argv = [str(path)] if path.is_file() else []
    for key in DATA_FLAGS:
        value = getattr(args, key)
        if value is not None:
            argv += [f"--{key}", *(value if isinstance(value, list) else [value])]
    model_args, data_args, _ = parse_arguments(argv)
    if not data_args.use_context:
        raise ValueError("These settings read no context (use_context false): there is no context game to show.")
    return load_run_data(data_args, model_args), data_args


def select_examples(data: MIEData, split: str, start: int, count: int) -> list[dict]:
    rows = data.splits[split]
    if start + count > len(rows):
        raise ValueError(
            f"The {split} split has {len(rows)} examples; --start {start} --num_examples {count} is past it."
        )
    return [rows[index] for index in range(start, start + count)]


def short(text: str | None, index: int) -> str:
    text = " ".join((text or "(none)").split())
    return f"{index}. {text if len(text) <= LABEL_LENGTH else text[: LABEL_LENGTH - 1] + '…'}"


def as_json(values: torch.Tensor | None) -> list | None:
    if values is None:
        return None
    return [[None if math.isnan(v) else round(v, 6) for v in row] for row in values.tolist()]


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    data, data_args = read_data(args)
    examples = select_examples(data, args.split, args.start, args.num_examples)
    config = AutoConfig.from_pretrained(args.model_name_or_path)
    model = MODEL_FOR_HEAD[config.head].from_pretrained(args.model_name_or_path).eval()
    processor = AutoProcessor.from_pretrained(args.model_name_or_path)
    collator = ShapCADataCollator(processor, data_args.missing_image, use_images=config.use_image)
    batch = collator([{key: row.get(key) for key in ("words", "context", "image")} for row in examples])
    torch.manual_seed(args.seed)
    with torch.no_grad():
        output = model(**batch, output_shapley_values=True, shapley_method=args.method)

    method = output.shapley_method
    how = "exact Shapley values" if method == "exact" else f"Algorithm 1 estimate (one random order, seed {args.seed})"
    subtitle = f"{how}, {len(examples)} examples of {data.name} {args.split}, tau {config.tau}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.labels == "index":
        indices = [f"{args.split} #{args.start + i}" for i in range(len(examples))]
        contexts, texts, images = indices, indices, indices
    else:
        contexts = [short(row["context"], i) for i, row in enumerate(examples)]
        texts = [short(" ".join(row["words"]), i) for i, row in enumerate(examples)]
        images = [short(row.get("image_id") or row.get("image"), i) for i, row in enumerate(examples)]
    games = {"context_text": ("Text (game)", texts)}
    if output.shapley_context_image is not None:
        games["context_image"] = ("Image (game)", images)
    record = {
        "checkpoint": args.model_name_or_path,
        "split": args.split,
        "method": method,
        "tau": config.tau,
        "examples": [
            {
                "index": args.start + i,
                "id": row.get("id"),
                "words": row["words"],
                "context": row["context"],
                "image": row.get("image"),
            }
            for i, row in enumerate(examples)
        ],
    }
    for game, (row_title, row_labels) in games.items():
        values = getattr(output, f"shapley_{game}")
        title = (
            f"{game.replace('_', '-')} games: value of each context for each {row_title.split()[0].lower()}\n{subtitle}"
        )
        heatmap_figure(
            values.numpy(), row_labels, contexts, title, row_title, "Context (player)", out / f"shapley_{game}.png"
        )
        record[game] = {"rows": row_title.split()[0].lower() + "s", "columns": "contexts", "values": as_json(values)}
    (out / "shapley_values.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    logger.info("Wrote %s (%s) to %s", ", ".join(f"shapley_{game}.png" for game in games), method, out)
    return record


if __name__ == "__main__":
    logging.basicConfig(format="%(message)s", level=logging.INFO)
    main()
