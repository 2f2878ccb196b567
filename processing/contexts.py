"""Bridging contexts: image-derived text, made by an image-text-to-text model, stored as JSONL
and looked up by image id.

One line per image::

    {"image_id": "17_06_12483.jpg", "context": "a crowd at a music festival", "generator": "BLIP-2", "source": "..."}

`ContextStore` reads such files; `ContextWriter` appends to one, a line at a time, so that a
killed writer loses at most the line it was writing and a rerun resumes where it stopped;
`generate_contexts` makes them with any image-text-to-text model of transformers (LLaVA-1.5
as in the paper, LLaVA-NeXT, BLIP-2, Qwen-VL...).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from .images import ImageReadError, load_image
from .input_files import FileFormatError, check_image_id, check_text, read_text_lines

logger = logging.getLogger(__name__)

CONTEXT_FIELDS = ("image_id", "context", "generator", "source")
MISSING_CONTEXT_POLICIES = ("error", "empty")


class ContextFormatError(FileFormatError):
    """A line of a context file that is not what the format says, with file, line and expectation."""


class MissingContextError(KeyError):
    """Raised when images have no context in the store and the policy is ``"error"``."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def read_context_lines(path: str | os.PathLike) -> Iterable[tuple[int, dict]]:
    """Yield ``(line number, record)`` for every complete line of a context file.

    A last line without its newline is a write cut short: it is skipped with a warning (the
    writer redoes it). Any other line that is not a JSON object with ``image_id`` and
    ``context`` is a `ContextFormatError` that names the file and the line.
    """
    for number, line in read_text_lines(path, ContextFormatError):
        if not line.strip():
            continue
        if not line.endswith("\n"):  # only the last line can lack its newline
            logger.warning("%s:%d: incomplete last line (a write was interrupted); ignoring it.", path, number)
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ContextFormatError(
                path, number, f"not valid JSON ({error.msg}); expected one object per line."
            ) from None
        except RecursionError:
            raise ContextFormatError(
                path, number, "JSON nested too deeply to read; expected one object per line."
            ) from None
        if not isinstance(record, dict) or not isinstance(record.get("image_id"), str) or "context" not in record:
            raise ContextFormatError(
                path,
                number,
                f"expected an object with string 'image_id' and 'context' (fields {', '.join(CONTEXT_FIELDS)}).",
            )
        if not isinstance(record["context"], str):
            raise ContextFormatError(
                path,
                number,
                f"'context' is a {type(record['context']).__name__} ({record['context']!r}); "
                "expected a string, the text that describes the image.",
            )
        check_text(path, number, record["context"], "'context'", ContextFormatError)
        check_image_id(path, number, record["image_id"], ContextFormatError)
        yield number, record


class ContextStore:
    """Contexts of images, by image id, from one or more JSONL files.

    Later files override earlier ones for the same id. Within one file, a later line overrides
    an earlier one; when their contexts differ a warning names the file and both lines.

    Args:
        paths: context files.
        missing_context: ``"error"`` raises on unknown ids (with how many and the first 10);
            ``"empty"`` gives ``""`` and logs how many were missing.
    """

    def __init__(self, paths: Iterable[str | os.PathLike] = (), missing_context: str = "error"):
        if missing_context not in MISSING_CONTEXT_POLICIES:
            raise ValueError(f"missing_context must be one of {MISSING_CONTEXT_POLICIES}, got {missing_context!r}.")
        self.missing_context = missing_context
        self.paths = [Path(path) for path in paths]
        self.records: dict[str, dict] = {}
        for path in self.paths:
            if not path.exists():
                raise FileNotFoundError(f"Context file {path} does not exist.")
            line_of: dict[str, int] = {}
            for number, record in read_context_lines(path):
                image_id = record["image_id"]
                if image_id in line_of and self.records[image_id]["context"] != record["context"]:
                    logger.warning(
                        "%s: image id %r has different contexts on lines %d and %d; using line %d.",
                        path, image_id, line_of[image_id], number, number,
                    )  # fmt: skip
                line_of[image_id] = number
                self.records[image_id] = record

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, image_id: str) -> bool:
        return image_id in self.records

    def get(self, image_id: str) -> str | None:
        """The context of one image, or None if it has none."""
        record = self.records.get(image_id)
        return None if record is None else record["context"]

    def lookup(self, image_ids: Iterable[str]) -> list[str]:
        """Contexts for many ids, applying the missing-context policy once for all of them."""
        image_ids = list(image_ids)
        missing = sorted({image_id for image_id in image_ids if image_id not in self.records})
        if missing:
            if self.missing_context == "error":
                raise MissingContextError(
                    f"{len(missing)} image ids have no context in {[str(p) for p in self.paths]}; "
                    f"first ones: {missing[:10]}. Generate them (scripts/generate_contexts.py) or pass "
                    "missing_context='empty' to use an empty context."
                )
            logger.warning("%d image ids have no context; using an empty context for them.", len(missing))
        return [self.get(image_id) or "" for image_id in image_ids]


class ContextWriter:
    """Appends context records to a JSONL file, flushing (and syncing) every line.

    Ids already complete in the file are in `done`; a torn last line left by a killed run is
    cut off when the writer opens, so the file stays one object per line.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.done: set[str] = set()
        if self.path.exists():
            self._drop_torn_tail()
            self.done = {record["image_id"] for _, record in read_context_lines(self.path)}
        # Open for the writer's lifetime (closed by close() or the with block), not one call.
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def _drop_torn_tail(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as handle:
                handle.truncate(keep)

    def write(self, image_id: str, context: str, generator: str, source: str = "", **extra) -> None:
        """Append one record (``extra`` fields, e.g. the prompt, are stored beside the four standard ones)."""
        record = {"image_id": image_id, "context": context, "generator": generator, "source": source, **extra}
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.done.add(image_id)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
