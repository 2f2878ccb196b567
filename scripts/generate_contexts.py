#!/usr/bin/env python
"""Make bridging contexts for a folder of images (or a corpus) with an image-text-to-text model.

    python scripts/generate_contexts.py --images data/twitter2017_images --out contexts/twitter2017.llava.jsonl
    accelerate launch scripts/generate_contexts.py --images data/mnre_images --out contexts/mnre.llava-next.jsonl --model llava-hf/llava-v1.6-mistral-7b-hf
    python scripts/generate_contexts.py --corpus twitter2017 --data_dir data/twitter2017 --image_dir data/twitter2017_images --out ctx.jsonl

Resumable: run the same command again after an interruption and only the missing images are done.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from processing.context_generation import DEFAULT_GENERATOR, DEFAULT_PROMPT, generate_contexts
from processing.images import MISSING_IMAGE_POLICIES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", nargs="+", help="A folder of images, or image files.")
    source.add_argument("--corpus", help="A corpus name of load_corpus (with --data_dir and --image_dir).")
    parser.add_argument("--data_dir")
    parser.add_argument("--image_dir")
    parser.add_argument(
        "--missing_image", default="error", choices=MISSING_IMAGE_POLICIES, help="With --corpus: for images not there."
    )
    parser.add_argument("--out", required=True, help="The JSONL file to append to.")
    parser.add_argument("--model", default=DEFAULT_GENERATOR, help="Hub id or folder of an image-text-to-text model.")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max_new_tokens", type=int, default=96)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if args.corpus:
        from processing.corpora import load_corpus

        images = load_corpus(args.corpus, args.data_dir, image_dir=args.image_dir, missing_image=args.missing_image)
    else:
        single_folder = len(args.images) == 1 and Path(args.images[0]).is_dir()
        images = args.images[0] if single_folder else args.images
    counts = generate_contexts(
        images,
        args.out,
        model_name_or_path=args.model,
        prompt=args.prompt,
        temperature=args.temperature,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    print(json.dumps({key: value for key, value in counts.items() if key != "failed_paths"}))
    return counts


if __name__ == "__main__":
    main()
