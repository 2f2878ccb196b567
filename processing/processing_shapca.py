"""`ShapCAProcessor`: words, context and image -> the inputs of the Shap-CA models.

Word-level input, token-level output (like `LayoutLMv3Processor`): the encoder reads
``[CLS] words [SEP] context [SEP]``; ``word_index`` points at the first sub-token of each
word, so the model predicts one label per word whatever the tokenizer does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from transformers import BatchFeature, ProcessorMixin

from .pos import pos_ids as tag_ids

logger = logging.getLogger(__name__)

IGNORE = -100


def _is_batch(words) -> bool:
    return len(words) > 0 and not isinstance(words[0], str)


class ShapCAProcessor(ProcessorMixin):
    r"""
    Turns word lists (with an optional context and image each) into model inputs.

    Args:
        image_processor: the image processor of the vision backbone (`TimmWrapperImageProcessor`
            or any `AutoImageProcessor`).
        tokenizer: a fast BERT-family tokenizer.
        max_length (`int`, defaults to 128): the longest token sequence; the context is cut first.
        image_size (`int`, *optional*): side of the blank image of examples without an image
            (defaults to what the image processor produces).
        pos_tagger (`str`, defaults to `"en_core_web_sm"`): the spaCy model the checkpoint was trained
            with (`"none"` for none); kept so that inference tags words the same way.

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

    # -- text ---------------------------------------------------------------------------------

    def token_counts(self, word_lists: Sequence[Sequence[str]]) -> list[list[int]]:
        """How many sub-tokens each word gives on its own (0 for words the tokenizer drops)."""
        if not any(word_lists):
            return [[] for _ in word_lists]
        encoded = self.tokenizer(
            [list(words) if words else [""] for words in word_lists], is_split_into_words=True, add_special_tokens=False
        )
        counts = []
        for index, words in enumerate(word_lists):
            count = [0] * len(words)
            for word_id in encoded.word_ids(index):
                if word_id is not None and word_id < len(words):
                    count[word_id] += 1
            counts.append(count)
        return counts

    def fit_words(
        self, words: Sequence[Sequence[str]], context: Sequence[str | None] | None = None
    ) -> tuple[list[list[str]], list[list[str]], list[int]]:
        """Prepare the two segments within ``max_length``.

        Words that give no sub-token (an emoji variation selector, a zero-width joiner...) are
        replaced by the unknown token, so every word keeps a position. The context is cut first;
        if the words alone are too long, the words past the budget are dropped.

        Returns:
            ``(text words, context words, number of words kept)`` per example.
        """
        text = [list(w) for w in words]
        contexts = [(c or "").split() for c in (context or [None] * len(text))]
        counts = self.token_counts(text)
        unk = self.tokenizer.unk_token
        for example, count in zip(text, counts):
            for position, n in enumerate(count):
                if n == 0:
                    example[position] = unk
                    count[position] = 1
        budget = self.max_length - self.tokenizer.num_special_tokens_to_add(pair=True)
        kept_words, kept_context = [], []
        for example, count, context_words, context_count in zip(text, counts, contexts, self.token_counts(contexts)):
            used = np.cumsum(count) if count else np.zeros(0)
            keep = int((used <= budget).sum())
            left = budget - (int(used[keep - 1]) if keep else 0)
            context_used = np.cumsum(context_count) if context_count else np.zeros(0)
            kept_words.append(example[:keep])
            kept_context.append(context_words[: int((context_used <= left).sum())])
        return kept_words, kept_context, [len(w) for w in kept_words]

    def count_truncated(self, words: Sequence[Sequence[str]], context: Sequence[str | None] | None = None) -> int:
        """How many examples would lose words to ``max_length`` (the context is cut first)."""
        _, _, kept = self.fit_words(words, context)
        return sum(k < len(w) for k, w in zip(kept, words))

    # -- images -------------------------------------------------------------------------------

    def _pixel_values(self, images: Sequence) -> tuple[torch.Tensor, torch.Tensor]:
        present = [image for image in images if image is not None]
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
        return_tensors: str | None = "pt",
    ) -> BatchFeature:
        """
        Args:
            words: a word list, or a batch of word lists.
            context: the context string of each example (None or "" for none).
            images: a PIL image (or None) per example. None for the whole batch gives no
                ``pixel_values`` (text-only models).
            pos: universal POS tags per word, as ids or tag strings (default: unknown).
            word_labels: a tag id per word (CRF models).
            grid_labels: a ``W x W`` grid of label ids per example (word-pair models).
            return_tensors: ``"pt"`` (only PyTorch tensors are produced).

        Returns:
            `BatchFeature` with ``input_ids``, ``attention_mask``, ``token_type_ids``,
            ``word_index``, ``context_mask``, ``pos_ids``, ``image_mask`` and ``pixel_values`` (when
            images are given) and ``labels`` (when labels are given).
        """
        if return_tensors not in ("pt", None):
            raise ValueError(f"ShapCAProcessor returns PyTorch tensors only, got return_tensors={return_tensors!r}.")
        if not _is_batch(words):
            words = [words]
            context = None if context is None else [context]
            images = None if images is None else [images]
            pos = None if pos is None else [pos]
            word_labels = None if word_labels is None else [word_labels]
            grid_labels = None if grid_labels is None else [grid_labels]
        batch = len(words)
        if isinstance(context, str):
            raise ValueError("For a batch of word lists, give one context per example (a list of strings).")
        for name, value in (("context", context), ("images", images), ("pos", pos), ("word_labels", word_labels)):
            if value is not None and len(value) != batch:
                raise ValueError(f"{name} has {len(value)} entries for {batch} examples.")

        text, context_words, kept = self.fit_words(words, context)
        truncated = sum(k < len(w) for k, w in zip(kept, words))
        if truncated:
            logger.warning(
                "%d of %d examples are longer than max_length=%d tokens: their last words were dropped. "
                "Raise max_length, or use the pipeline, which reads long texts in windows.",
                truncated,
                batch,
                self.max_length,
            )
        has_context = any(context_words)
        encoded = self.tokenizer(
            text,
            context_words if has_context else None,
            is_split_into_words=True,
            padding=True,
            return_tensors="pt",
        )
        num_words = max(kept, default=0) or 1
        word_index = torch.full((batch, num_words), -1, dtype=torch.long)
        context_mask = torch.zeros_like(encoded["input_ids"])
        for row in range(batch):
            sequence_ids = encoded.sequence_ids(row)
            seen = set()
            for position, (word_id, segment) in enumerate(zip(encoded.word_ids(row), sequence_ids)):
                if segment == 0 and word_id is not None and word_id not in seen:
                    seen.add(word_id)
                    word_index[row, word_id] = position
                elif segment == 1 and word_id is not None:
                    context_mask[row, position] = 1

        data = {
            "input_ids": encoded["input_ids"],
            "attention_mask": encoded["attention_mask"],
            "word_index": word_index,
            "context_mask": context_mask,
        }
        if "token_type_ids" in encoded:
            data["token_type_ids"] = encoded["token_type_ids"]
        data["pos_ids"] = self._pad_words(
            [tag_ids(p) if p and isinstance(p[0], str) else list(p) for p in pos]
            if pos is not None
            else [[1] * k for k in kept],
            kept,
            num_words,
            pad=0,
        )
        if images is not None:
            pixel_values, image_mask = self._pixel_values(images)
            data["image_mask"] = image_mask
            data["pixel_values"] = pixel_values
        if word_labels is not None:
            data["labels"] = self._pad_words(word_labels, kept, num_words, pad=IGNORE)
        elif grid_labels is not None:
            labels = torch.full((batch, num_words, num_words), IGNORE, dtype=torch.long)
            for row, (grid, k) in enumerate(zip(grid_labels, kept)):
                labels[row, :k, :k] = torch.as_tensor(np.asarray(grid, dtype=np.int64)[:k, :k])
            data["labels"] = labels
        return BatchFeature(data=data, tensor_type="pt")

    def to_dict(self) -> dict:
        output = super().to_dict()
        # A timm image processor saves its settings as `data_config` but is rebuilt from
        # `pretrained_cfg`; store them under that name too so the processor reloads.
        image_processor = output.get("image_processor")
        if isinstance(image_processor, dict) and "data_config" in image_processor:
            image_processor.setdefault("pretrained_cfg", dict(image_processor["data_config"]))
        return output

    @staticmethod
    def _pad_words(values, kept: list[int], width: int, pad: int) -> torch.Tensor:
        out = torch.full((len(kept), width), pad, dtype=torch.long)
        for row, (value, k) in enumerate(zip(values, kept)):
            out[row, :k] = torch.as_tensor(list(value)[:k], dtype=torch.long)
        return out

    @property
    def model_input_names(self) -> list[str]:
        return [
            "input_ids",
            "attention_mask",
            "token_type_ids",
            "word_index",
            "context_mask",
            "pixel_values",
            "image_mask",
            "pos_ids",
        ]
