"""Bridging contexts on disk: image-derived text stored as JSONL and looked up by image id.

One line per image::

    {"image_id": "17_06_12483.jpg", "context": "a crowd at a music festival", "generator": "BLIP-2", "source": "..."}

`read_context_lines` reads and checks such a file line by line; `ContextStore` holds one or more
of them for lookups. `processing.context_writer` writes them, `processing.context_generation`
makes them with an image-text-to-text model.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from .input_files import FileFormatError, InputFileNotFoundError, check_image_id, check_text, read_text_lines

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
                raise InputFileNotFoundError(f"Context file {path} does not exist.")
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
