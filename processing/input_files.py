"""What every reader of an input file shares: text lines with ``path:line`` errors, and image ids.

The corpus readers (`processing.corpora`), the context reader (`processing.context_store`) and the
reader of new examples (`read_examples_file`) read their files through `read_text_lines` and check the image ids they find with `check_image_id`,
so that a bad byte or a bad id gets the same clear error, naming the file and the line,
whichever file it is in. Each reader passes its own subclass of `FileFormatError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path


class InputFileNotFoundError(FileNotFoundError):
    """An input file or folder, named by a flag, a config or a corpus, that is not there."""


class FileFormatError(ValueError):
    """A line of an input file that is not what its format says, with file, line and expectation."""

    def __init__(self, path: str | os.PathLike, line: int, problem: str):
        super().__init__(f"{path}:{line}: {problem}")


def read_text_lines(path: str | os.PathLike, error: type[FileFormatError]) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, line)`` for each line of a UTF-8 text file, line endings kept.

    A byte-order mark at the start of the file is dropped. Bytes that are not UTF-8 raise
    ``error`` naming the file, the line and the byte.
    """
    if not Path(path).is_file():
        raise InputFileNotFoundError(f"{path} does not exist or is not a file: check the path.")
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as problem:
                raise error(
                    path,
                    number,
                    f"byte 0x{raw[problem.start]:02x} at byte {problem.start + 1} of the line is not UTF-8; "
                    "expected UTF-8 text (re-save the file as UTF-8, e.g. with iconv -f latin1 -t utf-8).",
                ) from None
            yield number, line


def lone_surrogate(text: str) -> str | None:
    """What is wrong with ``text`` if UTF-8 cannot hold it, else None: a JSON escape such as
    ``\\ud800`` alone (half of a surrogate pair) decodes to a string no tokenizer or file can take."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as problem:
        return f"holds a lone surrogate {text[problem.start]!r} at character {problem.start + 1}, which is not text"
    return None


def check_text(path: str | os.PathLike, line: int, text, what: str, error: type[FileFormatError]) -> None:
    """Raise ``error`` unless ``text`` is a string that UTF-8 can hold (see `lone_surrogate`)."""
    if not isinstance(text, str):
        raise error(path, line, f"{what} is a {type(text).__name__} ({text!r}); expected a string.")
    if problem := lone_surrogate(text):
        raise error(path, line, f"{what} {problem}: a \\ud800-\\udfff escape must be half of a pair; fix or remove it.")


def check_words(path: str | os.PathLike, line: int, words, error: type[FileFormatError]) -> None:
    """Raise ``error`` unless ``words`` is a non-empty list of non-empty strings."""
    if not isinstance(words, list) or not words:
        shown = f"a {type(words).__name__}" if not isinstance(words, list) else "an empty list"
        raise error(path, line, f'the words are {shown}; expected a non-empty list of words, e.g. ["so", "proud"].')
    for index, word in enumerate(words):
        check_text(path, line, word, f"word {index}", error)
        if not word:
            raise error(path, line, f"word {index} is empty; expected a non-empty string.")


def check_image_id(path: str | os.PathLike, line: int, image_id, error: type[FileFormatError]) -> None:
    """Raise ``error`` unless ``image_id`` is the name of a file directly inside the image folder.

    An id with a folder in it (``/`` or ``\\``), ``..`` or an absolute path would open a file
    outside the image folder.
    """
    if not isinstance(image_id, str):
        raise error(path, line, f"image id {image_id!r} is not a string; expected an image file name.")
    if image_id in ("", ".", "..") or "/" in image_id or "\\" in image_id or "\0" in image_id:
        raise error(
            path,
            line,
            f"image id {image_id!r} is not a plain file name; expected the name of an image file directly "
            "inside the image folder (no '/', '\\', '..' or absolute path).",
        )


class ExamplesFileError(FileFormatError):
    """A line of a file of new examples (``run_mie.py --predict_file``) that is not an example."""


def read_examples_file(path: str | os.PathLike) -> list[dict]:
    """New examples to predict on: one JSON object per line, ``{"words": [...], "image": path,
    "context": str}``, ``image`` and ``context`` optional; blank lines are skipped. These are the
    rows of the library's schema (`processing.corpora.schema`) without gold: a file with gold
    reads too, its labels left alone.

    ``image`` is a path, absolute or relative to the file's folder, as in a training file.
    """
    rows = []
    for number, line in read_text_lines(path, ExamplesFileError):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ExamplesFileError(path, number, f"not a JSON object ({error.msg}).") from None
        except RecursionError:
            raise ExamplesFileError(path, number, "not a JSON object (nested too deeply).") from None
        if not isinstance(row, dict) or not isinstance(row.get("words"), list):
            raise ExamplesFileError(
                path, number, "expected an object with a 'words' list (and optional image, context)."
            )
        check_words(path, number, row["words"], ExamplesFileError)
        if row.get("context") is not None:
            check_text(path, number, row["context"], "'context'", ExamplesFileError)
        if row.get("image") is not None and not isinstance(row["image"], str):
            raise ExamplesFileError(path, number, f"'image' is a {type(row['image']).__name__}; expected a path.")
        image = row.get("image")
        if image is not None and not os.path.isabs(image):
            image = os.path.join(os.path.dirname(path), image)
        rows.append({"words": row["words"], "image": image, "context": row.get("context")})
    return rows
