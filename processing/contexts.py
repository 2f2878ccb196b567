"""Bridging contexts: image-derived text, stored as JSONL and looked up by image id.

One line per image::

    {"image_id": "17_06_12483.jpg", "context": "a crowd at a music festival", "generator": "BLIP-2", "source": "..."}

`ContextStore` reads such files; `ContextWriter` appends to one, a line at a time, so that a
killed writer loses at most the line it was writing and a rerun resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

CONTEXT_FIELDS = ("image_id", "context", "generator", "source")
MISSING_CONTEXT_POLICIES = ("error", "empty")


class MissingContextError(KeyError):
    """Raised when images have no context in the store and the policy is ``"error"``."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def read_context_lines(path: str | os.PathLike) -> Iterable[tuple[int, dict]]:
    """Yield ``(line number, record)`` for every complete line of a context file.

    A last line without its newline is a write cut short: it is skipped with a warning (the
    writer redoes it). Any other line that is not a JSON object with ``image_id`` and
    ``context`` is an error that names the file and the line.
    """
    with open(path, encoding="utf-8") as handle:
        lines = handle.readlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if not line.endswith("\n") and number == len(lines):
            logger.warning("%s:%d: incomplete last line (a write was interrupted); ignoring it.", path, number)
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not valid JSON ({error.msg}); expected one object per line.") from None
        if not isinstance(record, dict) or not isinstance(record.get("image_id"), str) or "context" not in record:
            raise ValueError(
                f"{path}:{number}: expected an object with string 'image_id' and 'context' "
                f"(fields {', '.join(CONTEXT_FIELDS)})."
            )
        yield number, record


class ContextStore:
    """Contexts of images, by image id, from one or more JSONL files.

    Later files override earlier ones for the same id.

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
            for _, record in read_context_lines(path):
                self.records[record["image_id"]] = record

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
        self._handle = open(self.path, "a", encoding="utf-8")

    def _drop_torn_tail(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as handle:
                handle.truncate(keep)

    def write(self, image_id: str, context: str, generator: str, source: str = "") -> None:
        record = {"image_id": image_id, "context": context, "generator": generator, "source": source}
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.done.add(image_id)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "ContextWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
