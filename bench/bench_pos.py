"""POS tagging speed on Twitter-2017: all splits (4,819 sentences), first from spaCy, then from the cache.

python bench/bench_pos.py [--data ../shared/data/twitter2017]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from processing.corpora.twitter import Twitter2017, read_conll_tweets
from processing.pos import PosTagger

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "twitter2017"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    labels = Twitter2017.ENTITY_TYPES
    sentences = [
        example["words"]
        for name in ("train.txt", "valid.txt", "test.txt")
        for _, example in read_conll_tweets(args.data / name, ["O", *(f"{p}-{t}" for t in labels for p in "BI")])
    ]
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        tagger = PosTagger(cache_dir=cache)
        first = tagger(sentences, progress=True)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        again = PosTagger(cache_dir=cache)(sentences)
        warm = time.perf_counter() - start
    assert first == again
    print(f"sentences: {len(sentences)}, words: {sum(map(len, sentences))}")
    print(f"first run (spaCy, model load included): {cold:.1f} s")
    print(f"from the cache (new tagger, cache read included): {warm:.2f} s")


if __name__ == "__main__":
    main()
