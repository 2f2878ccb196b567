"""`ShapCAProcessor`: words, context and image -> every input of the Shap-CA models.

Word-level input, token-level output (like `LayoutLMv3Processor`): the encoder reads
``[CLS] words [SEP] context [SEP]``; ``word_index`` points at the first sub-token of each
word, so the model predicts one label per word whatever the tokenizer does. The processor
also tags the words with the POS tagger the checkpoint was trained with (through its cache
on disk), opens the images it is given as paths, and reads a text longer than the window in
overlapping windows when asked.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from transformers import BatchFeature, ProcessorMixin

from .decoding import decode
from .images import load_image
from .pos import get_tagger, pos_ids
from .wordpair import IGNORE_INDEX

logger = logging.getLogger(__name__)
_AUTO_IMAGE_LOGGER = "transformers.models.auto.image_processing_auto"


@contextmanager
def _without_warning(logger_name: str, start: str):
    """Drop the records of ``logger_name`` whose message starts with ``start`` while the block runs."""
    dropper = logging.Filter()
    dropper.filter = lambda record: not record.getMessage().startswith(start)
    target = logging.getLogger(logger_name)
    target.addFilter(dropper)
    try:
        yield
    finally:
        target.removeFilter(dropper)


def _as_batch(words) -> tuple[list[list[str]], bool]:
    """A text, a word list or a batch of word lists -> ``(batch of word lists, was it a batch)``."""
    if isinstance(words, str):
        return [words.split()], False
    words = list(words)
    if all(isinstance(word, str) for word in words):
        return [words], False
    if all(isinstance(example, (list, tuple)) for example in words):
        return [list(example) for example in words], True
    raise TypeError(
        "ShapCAProcessor reads a text (str), one word list (list of str) or a batch of word lists "
        f"(list of lists of str); got {type(words[0]).__name__} items."
    )


class ShapCAProcessor(ProcessorMixin):
    r"""
    Turns word lists (with an optional context and image each) into model inputs.

    Args:
        image_processor: the image processor of the vision backbone (`TimmWrapperImageProcessor`
            or any `AutoImageProcessor`).
        tokenizer: a fast tokenizer of the text encoder.
        max_length (`int`, defaults to 128): the longest token sequence; the context is cut first.
        image_size (`int`, *optional*): side of the blank image of examples without an image
            (defaults to what the image processor produces).
        pos_tagger (`str`, defaults to `"en_core_web_sm"`): the spaCy model the checkpoint was trained
            with (`"none"`: every word gets the unknown tag); the processor tags words with it.
        stride (`int`, defaults to 16): with ``return_overflowing_tokens=True``, how many text tokens
            consecutive windows of a long text share at most.

    Example:

    ```python
    >>> inputs = processor(
    ...     [["Kobe", "Bryant", "at", "Staples", "Center"]],
    ...     context=["a basketball player dunking"],
    ...     images=[image],
    ...     word_labels=[[1, 2, 0, 3, 4]],
    ... )
    >>> model(**inputs).loss
    ```
    """

    def __init__(
        self,
        image_processor=None,
        tokenizer=None,
        max_length: int = 128,
        image_size: int | None = None,
        pos_tagger: str = "en_core_web_sm",
        stride: int = 16,
    ):
        if tokenizer is None or image_processor is None:
            raise ValueError(
                "ShapCAProcessor needs a tokenizer and an image processor (a text-only model still "
                "keeps one in its checkpoint; it is only used when images are passed)."
            )
        super().__init__(image_processor, tokenizer)
        self.max_length = max_length
        self.image_size = image_size
        self.pos_tagger = pos_tagger
        self.stride = stride

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        # transformers asks every image processor for a torchvision variant first and, finding none
        # for the timm wrapper's (it only has the PIL one), warns on every load that "torchvision
        # backend is not available" although it is. That warning is wrong here: leave it out.
        folder = Path(str(pretrained_model_name_or_path))
        if folder.is_dir() and not (folder / (kwargs.get("subfolder") or "") / "processor_config.json").is_file():
            raise OSError(
                f"{folder} has no processor_config.json: it holds a model without its processor (tokenizer, "
                "image processor, POS tagger, max_length). Save the processor with the model, as run_mie.py "
                "does, or copy processor_config.json and the tokenizer files from the run it came from."
            )
        with _without_warning(_AUTO_IMAGE_LOGGER, "Requested torchvision backend is not available"):
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    # -- text ---------------------------------------------------------------------------------

    def tag(self, words: Sequence[Sequence[str]]) -> list[list[int]]:
        """POS tag ids of each word list, with the tagger the checkpoint was trained with."""
        return [pos_ids(tags) for tags in get_tagger(self.pos_tagger)(words)]

    @cached_property
    def _layout(self) -> dict[str, list[int]]:
        """Where the tokenizer puts its special tokens around a text and a context, and the
        segment ids: read once from the tokenizer's own encoding of a probe pair."""
        probe = self.tokenizer(["a"], ["a"], is_split_into_words=True, return_token_type_ids=True)
        segments, ids, types = probe.sequence_ids(0), probe["input_ids"], probe["token_type_ids"]
        text = [i for i, s in enumerate(segments) if s == 0]
        context = [i for i, s in enumerate(segments) if s == 1]
        single = self.tokenizer(["a"], is_split_into_words=True)
        single_segments = single.sequence_ids(0)
        single_text = [i for i, s in enumerate(single_segments) if s == 0]
        return {
            "prefix": ids[: text[0]],
            "middle": ids[text[-1] + 1 : context[0]],
            "suffix": ids[context[-1] + 1 :],
            "single_suffix": single["input_ids"][single_text[-1] + 1 :],
            "text_type": [types[text[0]]],
            "context_type": [types[context[0]]],
        }

    def _word_tokens(self, word_lists: list[list[str]]) -> list[list[list[int]]]:
        """Token ids of every word, from one tokenizer call over all the word lists; a word that
        gives no token (an emoji variation selector, a zero-width joiner...) is read as the
        unknown token, so that every word keeps a position."""
        encoded = self.tokenizer(word_lists, is_split_into_words=True, add_special_tokens=False)
        unknown = self.tokenizer.unk_token_id
        tokens = []
        for row, words in enumerate(word_lists):
            per_word = [[] for _ in words]
            for token, word in zip(encoded["input_ids"][row], encoded.word_ids(row)):
                if word is not None:
                    per_word[word].append(token)
            tokens.append([ids or [unknown] for ids in per_word])
        return tokens

    def _windows(self, counts: list[int], budget: int, overflow: bool) -> list[tuple[int, int]]:
        """Word ranges whose tokens fit ``budget``: one range (the words that fit) without overflow,
        else consecutive ranges sharing at most ``stride`` tokens, covering every word."""
        ranges, start = [], 0
        while True:
            end, used = start, 0
            while end < len(counts) and (end == start or used + counts[end] <= budget):
                used += counts[end]
                end += 1
            ranges.append((start, end))
            if end >= len(counts) or not overflow:
                return ranges
            # The next window starts early enough to share up to `stride` tokens (at most half a
            # window, so that every window moves on by at least half).
            shared, next_start, overlap = 0, end, min(self.stride, budget // 2)
            while next_start - 1 > start and shared + counts[next_start - 1] <= overlap:
                next_start -= 1
                shared += counts[next_start]
            start = next_start

    # -- images -------------------------------------------------------------------------------

    def _pixel_values(self, images: Sequence) -> tuple[torch.Tensor, torch.Tensor]:
        # Every image goes through the one loader, whatever its form: 16-bit, grayscale, arrays, paths.
        present = [load_image(image, self.image_processor) for image in images if image is not None]
        image_mask = torch.tensor([image is not None for image in images], dtype=torch.long)
        if present:
            pixels = self.image_processor(present, return_tensors="pt")["pixel_values"]
            shape = pixels.shape[1:]
        else:
            size = self.image_size or self._default_image_size()
            pixels, shape = torch.zeros(0, 3, size, size), (3, size, size)
        values = torch.zeros(len(images), *shape, dtype=pixels.dtype)
        values[image_mask.bool()] = pixels
        return values, image_mask

    def _default_image_size(self) -> int:
        config = getattr(self.image_processor, "data_config", None) or {}
        if "input_size" in config:
            return int(config["input_size"][-1])
        size = getattr(self.image_processor, "crop_size", None) or getattr(self.image_processor, "size", None) or {}
        return int(size.get("height") or size.get("shortest_edge") or 224)

    # -- everything ---------------------------------------------------------------------------

    def __call__(
        self,
        words,
        context=None,
        images=None,
        pos=None,
        word_labels=None,
        grid_labels=None,
        return_overflowing_tokens: bool = False,
        return_tensors: str | None = "pt",
    ) -> BatchFeature:
        """
        Args:
            words: a text (split on white space), a word list, or a batch of word lists.
            context: the context string of each example (None or "" for none).
            images: a PIL image (or None) per example. None for the whole batch gives no
                ``pixel_values`` (text-only models).
            pos: POS tag ids (or universal tag strings) per word; by default the processor tags the
                words with its ``pos_tagger``.
            word_labels: a tag id per word (CRF models).
            grid_labels: a ``W x W`` grid of label ids per example (word-pair models).
            return_overflowing_tokens: read a text longer than ``max_length`` in overlapping windows
                (one model row each; see ``stride``) instead of dropping its last words. Adds
                ``overflow_to_sample_mapping`` (the example of each row) and ``word_offset`` (the
                example's index of the row's first word). Labels are cut to each window's words.
            return_tensors: ``"pt"`` (only PyTorch tensors are produced).

        Returns:
            `BatchFeature` with ``input_ids``, ``attention_mask``, ``token_type_ids`` (when the
            tokenizer has them), ``word_index``, ``context_mask``, ``pos_ids``, ``image_mask`` and
            ``pixel_values`` (when images are given) and ``labels`` (when labels are given).
        """
        if return_tensors not in ("pt", None):
            raise ValueError(f"ShapCAProcessor returns PyTorch tensors only, got return_tensors={return_tensors!r}.")
        words, is_batch = _as_batch(words)
        if not is_batch:
            context = None if context is None else [context]
            # One example's image: the image itself, or a list holding it (`images=[image]`).
            if isinstance(images, (list, tuple)) and len(images) != 1:
                raise ValueError(f"One example takes one image, got {len(images)}.")
            images = None if images is None else list(images) if isinstance(images, (list, tuple)) else [images]
            pos, word_labels, grid_labels = (
                [value] if value is not None else None for value in (pos, word_labels, grid_labels)
            )
        batch = len(words)
        if isinstance(context, str):
            # A value error: one string where the batch needs one per example (the type is right).
            raise ValueError("For a batch of word lists, give one context per example (a list of strings).")  # noqa: TRY004
        for name, value in (("context", context), ("images", images), ("pos", pos), ("word_labels", word_labels)):
            if value is not None and len(value) != batch:
                raise ValueError(f"{name} has {len(value)} entries for {batch} examples.")
        if pos is None:
            pos = self.tag(words)
        pos = [pos_ids(tags) if tags and isinstance(tags[0], str) else list(tags) for tags in pos]
        contexts = [(text or "").split() for text in (context or [None] * batch)]

        # One tokenizer call for the words and the contexts of the whole batch.
        tokens = self._word_tokens(words + contexts)
        text_tokens, context_tokens = tokens[:batch], tokens[batch:]
        layout = self._layout
        pair_specials = len(layout["prefix"]) + len(layout["middle"]) + len(layout["suffix"])
        single_specials = len(layout["prefix"]) + len(layout["single_suffix"])

        rows, sample_mapping, word_offset, truncated = [], [], [], 0
        for example in range(batch):
            # An example's tokens depend on its own text and context only, never on the other
            # examples of the batch: batching never changes what the model reads.
            has_context = bool(contexts[example])
            budget = self.max_length - (pair_specials if has_context else single_specials)
            counts = [len(ids) for ids in text_tokens[example]]
            context_count = sum(len(ids) for ids in context_tokens[example])
            overflow = return_overflowing_tokens and sum(counts) > budget
            # A long text read in windows keeps half of each window for the context.
            text_budget = budget // 2 if overflow and context_count else budget
            for start, end in self._windows(counts, text_budget, overflow):
                truncated += not overflow and end < len(counts)
                rows.append(self._row(text_tokens[example][start:end], context_tokens[example], budget))
                sample_mapping.append(example)
                word_offset.append(start)
        if truncated:
            logger.warning(
                "%d of %d examples are longer than max_length=%d tokens: their last words were dropped. "
                "Raise max_length, or pass return_overflowing_tokens=True (the pipeline does) to read them "
                "in windows.",
                truncated,
                batch,
                self.max_length,
            )

        data = self._pad_rows(rows)
        kept = [len(row["word_index"]) for row in rows]  # each row's words: a window's share of a long text
        data["pos_ids"] = self._pad_words(
            [pos[example][offset : offset + k] for example, offset, k in zip(sample_mapping, word_offset, kept)],
            kept,
            pad=0,
        )
        if images is not None:
            data["pixel_values"], data["image_mask"] = self._pixel_values([images[i] for i in sample_mapping])
        # Labels, like the POS tags, are cut to each row's words (a window's, with overflow).
        if word_labels is not None:
            data["labels"] = self._pad_words(
                [
                    word_labels[example][offset : offset + k]
                    for example, offset, k in zip(sample_mapping, word_offset, kept)
                ],
                kept,
                IGNORE_INDEX,
            )
        elif grid_labels is not None:
            width = data["word_index"].shape[1]
            labels = torch.full((len(rows), width, width), IGNORE_INDEX, dtype=torch.long)
            for row, (example, offset, k) in enumerate(zip(sample_mapping, word_offset, kept)):
                grid = np.asarray(grid_labels[example], dtype=np.int64)[offset : offset + k, offset : offset + k]
                labels[row, :k, :k] = torch.as_tensor(grid)
            data["labels"] = labels
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = torch.tensor(sample_mapping, dtype=torch.long)
            data["word_offset"] = torch.tensor(word_offset, dtype=torch.long)
        return BatchFeature(data=data, tensor_type="pt")

    def lengths(self, words: Sequence[Sequence[str]], context: Sequence[str | None] | None = None) -> list[int]:
        """The number of tokens of each example's model row, as `__call__` builds it (text cut to
        ``max_length``): the ``length`` column by which the Trainer's ``group_by_length`` batches
        examples of similar size together, so that batches carry less padding."""
        pos = [[0] * len(example) for example in words]  # tags do not change the tokens
        return self(list(words), context=context, pos=pos)["attention_mask"].sum(-1).tolist()

    def _row(self, words: list[list[int]], context: list[list[int]], budget: int) -> dict:
        """The token ids, segment ids, first-token positions of the words and context positions of
        one model row. Words past ``budget`` are cut (a word longer than the whole window keeps its
        first tokens); the context keeps the whole words that fit in what the text leaves."""
        layout = self._layout
        text, word_index = [], []
        for ids in words:  # they fit `budget` (`_windows`), but for a lone word longer than it
            word_index.append(len(layout["prefix"]) + len(text))
            text += ids[: budget - len(text)]
        context_ids = []
        for ids in context:
            if len(text) + len(context_ids) + len(ids) > budget:
                break
            context_ids += ids
        if not context_ids:  # no context, or none of it fits: one segment, as the tokenizer encodes it
            input_ids = layout["prefix"] + text + layout["single_suffix"]
            types = layout["text_type"] * len(input_ids)
            context_mask = [0] * len(input_ids)
        else:
            head = layout["prefix"] + text + layout["middle"]
            tail = context_ids + layout["suffix"]
            input_ids = head + tail
            types = layout["text_type"] * len(head) + layout["context_type"] * len(tail)
            context_mask = [0] * len(head) + [1] * len(context_ids) + [0] * len(layout["suffix"])
        return {"input_ids": input_ids, "token_type_ids": types, "context_mask": context_mask, "word_index": word_index}

    def _pad_rows(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        length = max(len(row["input_ids"]) for row in rows)
        width = max(1, max(len(row["word_index"]) for row in rows))
        pad_id = self.tokenizer.pad_token_id
        data = {
            "input_ids": torch.full((len(rows), length), pad_id, dtype=torch.long),
            "attention_mask": torch.zeros(len(rows), length, dtype=torch.long),
            "token_type_ids": torch.zeros(len(rows), length, dtype=torch.long),
            "context_mask": torch.zeros(len(rows), length, dtype=torch.long),
            "word_index": torch.full((len(rows), width), -1, dtype=torch.long),
        }
        for index, row in enumerate(rows):
            size = len(row["input_ids"])
            data["input_ids"][index, :size] = torch.tensor(row["input_ids"])
            data["attention_mask"][index, :size] = 1
            data["token_type_ids"][index, :size] = torch.tensor(row["token_type_ids"])
            data["context_mask"][index, :size] = torch.tensor(row["context_mask"])
            data["word_index"][index, : len(row["word_index"])] = torch.tensor(row["word_index"], dtype=torch.long)
        if "token_type_ids" not in self.tokenizer.model_input_names:
            del data["token_type_ids"]
        return data

    @staticmethod
    def _pad_words(values, kept: list[int], pad: int) -> torch.Tensor:
        out = torch.full((len(kept), max(1, max(kept, default=1))), pad, dtype=torch.long)
        for row, (value, k) in enumerate(zip(values, kept)):
            out[row, :k] = torch.as_tensor(list(value)[:k], dtype=torch.long)
        return out

    # -- outputs ------------------------------------------------------------------------------

    def post_process(self, model, outputs, inputs, spans=None) -> list[dict]:
        """The model's outputs -> entities and relations of each example, in its word indices.

        Args:
            model: the task model that produced ``outputs``.
            outputs: its output (or the logits tensor).
            inputs: what this processor returned for the batch (windows are joined back).
            spans: ``(B, 4)`` the given head and tail spans, for relation extraction (MNRE).

        Returns:
            One dict per example (see `processing.decoding.structures_from_predictions`):
            ``{"entities": [{"start", "end", "type", "score"}, ...]}`` and for word-pair models
            ``"relations": [{"head", "tail", "type", "score"}, ...]`` (indices into the entities); with
            ``spans``, ``{"relation", "score", "label_scores"}`` (every answer's share).
        """
        logits = getattr(outputs, "logits", outputs)
        windows = None
        if "overflow_to_sample_mapping" in inputs:
            windows = (inputs["overflow_to_sample_mapping"].to(logits.device), inputs["word_offset"].to(logits.device))
        return decode(model, logits, inputs["word_index"] >= 0, spans, windows)

    def to_dict(self) -> dict:
        output = super().to_dict()
        # A timm image processor saves its settings as `data_config` but is rebuilt from
        # `pretrained_cfg`; store them under that name too so the processor reloads.
        image_processor = output.get("image_processor")
        if isinstance(image_processor, dict) and "data_config" in image_processor:
            image_processor.setdefault("pretrained_cfg", dict(image_processor["data_config"]))
        return output

    @property
    def model_input_names(self) -> list[str]:
        # The model's `ShapCAInputs` (this file travels with checkpoints on its own, so it does
        # not import the model's code; a test keeps the two lists equal).
        return [
            "input_ids",
            "attention_mask",
            "word_index",
            "context_mask",
            "token_type_ids",
            "pixel_values",
            "image_mask",
            "pos_ids",
        ]


# `save_pretrained` copies this file (and what it imports) next to the processor's config and
# names it in `auto_map`, so `AutoProcessor.from_pretrained(checkpoint, trust_remote_code=True)`
# loads it without this library.
ShapCAProcessor.register_for_auto_class()
