"""Batches for the Trainer: rows of a prepared corpus -> padded model inputs.

A row holds ``words``, ``context``, ``image`` (a path or None), optionally ``pos_ids``,
``labels`` (a tag id per word, or a ``W x W`` grid) and, for relation extraction, the
``head`` and ``tail`` spans (passed on as ``spans``, ``(B, 4)``). Tokenising and loading the images
happen here, per batch, so the prepared dataset stays small and images are never copied
into it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from .images import ImageReadError, check_missing_image_policy, load_image
from .wordpair import IGNORE_INDEX

logger = logging.getLogger(__name__)


@dataclass
class ShapCADataCollator:
    """Pads a list of rows into one batch with the processor.

    Args:
        processor: a `ShapCAProcessor`.
        missing_image: ``"error"`` raises on an image path that cannot be read; ``"skip"`` treats
            the example as having no image (``image_mask`` 0) and logs it.
        use_images: False ignores the ``image`` column (text-only models).
        return_overflowing_tokens: read long texts in overlapping windows, one row each (see the
            processor; `MIETrainer` evaluates so). A given pair (MNRE) is never split: its spans
            are the example's.
    """

    processor: Any
    missing_image: str = "error"
    use_images: bool = True
    return_overflowing_tokens: bool = False

    def __post_init__(self):
        check_missing_image_policy(self.missing_image)

    def load(self, path: str | None) -> Image.Image | None:
        if path is None:
            return None
        try:  # checked for the processor's resize here, on the file's header: named, and under the policy
            return load_image(path, self.processor.image_processor)
        except ImageReadError as error:
            if self.missing_image == "error":
                raise ImageReadError(f"{error} Or pass missing_image='skip' to use no image for it.") from error
            logger.warning("%s Using no image for this example (missing_image='skip').", error)
            return None

    def __call__(self, rows: list[dict]):
        labels = [row["labels"] for row in rows] if "labels" in rows[0] else None
        grid = labels is not None and len(labels[0]) > 0 and isinstance(labels[0][0], (list, tuple))
        images = None
        if self.use_images:
            images = [self.load(row.get("image")) for row in rows]
        batch = self.processor(
            [row["words"] for row in rows],
            context=[row.get("context") for row in rows],
            images=images,
            pos=[row["pos_ids"] for row in rows] if "pos_ids" in rows[0] else None,
            word_labels=None if grid else labels,
            grid_labels=labels if grid else None,
            return_overflowing_tokens=self.return_overflowing_tokens and "head" not in rows[0],
        )
        if "head" in rows[0]:  # relation extraction: the given pair, for decoding
            batch["spans"] = torch.tensor(
                [[r["head"]["start"], r["head"]["end"], r["tail"]["start"], r["tail"]["end"]] for r in rows]
            )
        for key in rows[0]:
            if key.startswith("gold_"):  # gold structures for the metrics (see shapca_training.data.prepare_split)
                batch[key] = pad_structures([row[key] for row in rows], row_size=None if key == "gold_tags" else 3)
        return batch


def pad_structures(values: list, row_size: int | None = 3) -> torch.Tensor:
    """One integer per example -> ``(B,)``; a list per example, of integers (``row_size`` None) or of
    ``[a, b, c]`` rows -> ``(B, N)`` or ``(B, N, 3)`` padded with -100 (at least one entry, so
    that batches concatenate)."""
    if not isinstance(values[0], (list, tuple)):
        return torch.tensor(values, dtype=torch.long)
    width = max(1, max(len(rows) for rows in values))
    out = torch.full((len(values), width, *([row_size] if row_size else [])), IGNORE_INDEX, dtype=torch.long)
    for index, rows in enumerate(values):
        if rows:
            out[index, : len(rows)] = torch.tensor(rows, dtype=torch.long)
    return out
