"""Bridging contexts made by an image-text-to-text model of transformers (LLaVA-1.5 as in the
paper, LLaVA-NeXT, BLIP-2, Qwen-VL...): `ContextGenerator` describes images, `generate_contexts`
describes a folder, a list or a corpus into a JSONL file (through `ContextWriter`)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .images import ImageReadError, load_image

logger = logging.getLogger(__name__)

from .context_store import read_context_lines
from .context_writer import ContextWriter

DEFAULT_GENERATOR = "llava-hf/llava-1.5-7b-hf"
DEFAULT_PROMPT = (
    "Describe this image in one or two sentences: who or what is shown, where, and any visible text, "
    "logos or well-known people or places."
)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")


def image_items(images) -> list[tuple[str, str]]:
    """``(image id, path)`` pairs from a folder, a list of paths, or a corpus of `load_corpus`.

    The id is the file name, as the corpora name their images. A corpus contributes each of its
    images once (rows without an image file are skipped).
    """
    if isinstance(images, (str, os.PathLike)) and Path(images).is_dir():
        paths = sorted(p for p in Path(images).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return [(p.name, str(p)) for p in paths]
    import datasets

    if isinstance(images, (datasets.Dataset, datasets.DatasetDict)):
        parts = list(images.values()) if isinstance(images, datasets.DatasetDict) else [images]
        found = {}
        for part in parts:
            for image_id, path in zip(part["image_id"], part["image"]):
                if path is not None:
                    found.setdefault(image_id, path)
        return sorted(found.items())
    return [(Path(p).name, str(p)) for p in images]


def _open_images(batch, failures: list):
    opened = []
    for image_id, path in batch:
        try:
            opened.append((image_id, load_image(path)))
        except ImageReadError as error:
            logger.warning("%s Skipping it.", error)
            failures.append(path)
    return opened


class ContextGenerator:
    """An image-text-to-text model that describes images: ``generator(images) -> list of texts``.

    Loads `AutoProcessor` and `AutoModelForImageTextToText` once, prompts with the model's chat
    template and samples at ``temperature`` (greedy at 0). Seed with `transformers.set_seed`.
    """

    def __init__(
        self,
        model_name_or_path: str = DEFAULT_GENERATOR,
        prompt: str = DEFAULT_PROMPT,
        temperature: float = 1.0,
        max_new_tokens: int = 96,
        device=None,
    ):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.name = str(model_name_or_path)
        self.processor = AutoProcessor.from_pretrained(model_name_or_path)
        self.model = AutoModelForImageTextToText.from_pretrained(model_name_or_path).eval()
        if device is not None:
            self.model.to(device)
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.tokenizer.padding_side = "left"  # generation continues each prompt at the right edge
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        self.text_prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        self.generation = {"max_new_tokens": max_new_tokens, "do_sample": temperature > 0}
        if temperature > 0:
            self.generation["temperature"] = temperature

    def __call__(self, images: list) -> list[str]:
        import torch

        inputs = self.processor(
            images=list(images), text=[self.text_prompt] * len(images), return_tensors="pt", padding=True
        ).to(self.model.device)
        with torch.no_grad():
            output = self.model.generate(**inputs, **self.generation)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        return [text.strip() for text in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]


def generate_contexts(
    images,
    out_path: str | os.PathLike,
    model_name_or_path: str = DEFAULT_GENERATOR,
    prompt: str = DEFAULT_PROMPT,
    temperature: float = 1.0,
    max_new_tokens: int = 96,
    batch_size: int = 8,
    seed: int = 0,
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """Describe images with an image-text-to-text model and append the contexts to ``out_path``.

    Uses `AutoProcessor` and `AutoModelForImageTextToText`, the model's chat template, and
    samples at ``temperature`` (greedy at 0) with ``seed``. Images already in the output are
    skipped, so a killed run started again ends with every image done once. An image that does
    not open is reported and skipped. Under ``accelerate launch`` each process takes its share
    of the images and writes its own shard, merged into ``out_path`` at the end.

    Returns:
        counts: ``{"written": ..., "skipped_done": ..., "failed": ..., "failed_paths": [...]}``.
    """
    import torch
    from accelerate import PartialState
    from tqdm.auto import tqdm
    from transformers import set_seed

    # Without a GPU, processes started by `accelerate launch` meet over gloo on the CPU.
    state = PartialState(cpu=not torch.cuda.is_available())
    out_path = Path(out_path)

    def shard(index: int) -> Path:
        return out_path.with_name(f"{out_path.stem}.shard{index}.jsonl")

    if state.is_main_process:
        ContextWriter(out_path).close()  # creates the file and cuts a torn last line
    state.wait_for_everyone()
    done = {record["image_id"] for _, record in read_context_lines(out_path)}
    for index in range(state.num_processes):  # shards of an interrupted multi-process run
        if shard(index).exists():
            done |= {record["image_id"] for _, record in read_context_lines(shard(index))}
    everything = image_items(images)
    items = [item for item in everything if item[0] not in done]
    shard_path = out_path if state.num_processes == 1 else shard(state.process_index)
    describe = ContextGenerator(model_name_or_path, prompt, temperature, max_new_tokens, device=device or state.device)
    set_seed(seed + state.process_index)

    failures: list[str] = []
    written = 0
    with state.split_between_processes(items) as mine, ContextWriter(shard_path) as writer:
        batches = [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]
        bar = tqdm(total=len(mine), desc="contexts", disable=not progress or not state.is_local_main_process)
        for batch in batches:
            opened = _open_images([item for item in batch if item[0] not in writer.done], failures)
            if opened:
                texts = describe([image for _, image in opened])
                for (image_id, _), text in zip(opened, texts):
                    writer.write(image_id, text, str(model_name_or_path), "generate_contexts",
                                 prompt=prompt, temperature=temperature)  # fmt: skip
                    written += 1
            bar.update(len(batch))
        bar.close()
    state.wait_for_everyone()
    if state.num_processes > 1 and state.is_main_process:
        with ContextWriter(out_path) as merged:
            for index in range(state.num_processes):
                for _, record in read_context_lines(shard(index)):
                    if record["image_id"] not in merged.done:
                        merged.write(**record)
                shard(index).unlink()
    if failures:
        logger.warning("%d images could not be read and were skipped.", len(failures))
    skipped = len(everything) - len(items)
    return {"written": written, "skipped_done": skipped, "failed": len(failures), "failed_paths": failures}
