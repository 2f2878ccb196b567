"""`ContextWriter`: appends bridging contexts to a JSONL file a line at a time, so that a killed
writer loses at most the line it was writing and a rerun resumes where it stopped."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

from .context_store import read_context_lines


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
