"""What every corpus builder shares: the common columns, images, contexts and file errors."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import datasets
from datasets.builder import Key

from ..context_store import ContextStore
from ..images import check_missing_image_policy
from ..input_files import FileFormatError

SPLITS = {"train": datasets.Split.TRAIN, "validation": datasets.Split.VALIDATION, "test": datasets.Split.TEST}

COMMON_FEATURES = {
    "id": datasets.Value("string"),
    "words": datasets.Sequence(datasets.Value("string")),
    "image_id": datasets.Value("string"),
    "image": datasets.Value("string"),
    "context": datasets.Value("string"),
}
SPAN = {"start": datasets.Value("int32"), "end": datasets.Value("int32")}


class CorpusFormatError(FileFormatError):
    """A line of a corpus file that is not what its format says, with file, line and expectation."""


class MissingImageError(FileNotFoundError):
    """Raised when image files named by a corpus are not in ``image_dir`` and the policy is ``"error"``."""


@dataclass
class MIEBuilderConfig(datasets.BuilderConfig):
    """Options shared by the corpus builders.

    Attributes:
        image_dir: folder of the images, which must exist; the ``image`` column holds the path of each
            image (None without an image_dir).
        missing_image: ``"error"`` or ``"skip"`` (the ``image`` column is None), for images not in image_dir.
        context_files: JSONL files of bridging contexts (see `processing.context_store`).
        missing_context: ``"error"`` or ``"empty"``, for images without a context.
        source_fingerprint: sizes and times of the source files (and of image_dir), so that the cache is
            rebuilt when they change.
    """

    image_dir: str | None = None
    missing_image: str = "error"
    context_files: tuple[str, ...] = ()
    missing_context: str = "error"
    source_fingerprint: str = ""

    def __post_init__(self):
        super().__post_init__()
        check_missing_image_policy(self.missing_image)
        if self.image_dir is not None and not Path(self.image_dir).is_dir():
            raise FileNotFoundError(
                f"The image folder {self.image_dir} (image_dir, --image_dir) does not exist or is not a folder. "
                "Pass the folder that holds the corpus images, or leave image_dir out to read the corpus "
                "without images."
            )


def fingerprint_files(paths) -> str:
    """A short hash of the paths, sizes and modification times of files (missing ones count too)."""
    digest = hashlib.sha1()
    for path in sorted(str(p) for p in paths):
        stat = os.stat(path) if os.path.exists(path) else None
        digest.update(f"{path}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


class MIEBuilder(datasets.GeneratorBasedBuilder):
    """Base builder: subclasses name their split files, their features and how to read a file.

    Subclasses define ``SPLIT_FILES`` (split -> file names to try, in order), ``task_features()``
    and ``read_file(path) -> iterator of (line number, example without the common columns)``.
    """

    BUILDER_CONFIG_CLASS = MIEBuilderConfig
    SPLIT_FILES: ClassVar[dict[str, tuple[str, ...]]] = {}
    CITATION = ""
    DESCRIPTION = ""

    def task_features(self) -> dict:
        raise NotImplementedError

    def read_file(self, path: Path):
        raise NotImplementedError

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=self.DESCRIPTION,
            citation=self.CITATION,
            features=datasets.Features({**COMMON_FEATURES, **self.task_features()}),
        )

    def split_path(self, split: str) -> Path:
        data_dir = Path(self.config.data_dir or ".")
        for name in self.SPLIT_FILES[split]:
            if (data_dir / name).exists():
                return data_dir / name
        raise FileNotFoundError(
            f"No {split} file for {self.name} in {data_dir}: expected one of {list(self.SPLIT_FILES[split])}."
        )

    def _split_generators(self, dl_manager):
        self.context_store = (
            ContextStore(self.config.context_files, self.config.missing_context) if self.config.context_files else None
        )
        return [
            datasets.SplitGenerator(name=SPLITS[split], gen_kwargs={"path": self.split_path(split), "split": split})
            for split in SPLITS
        ]

    def image_paths(self, path: Path, image_ids: list[str]) -> list[str | None]:
        """The path of each image in image_dir; None without an image_dir, or for a missing image under 'skip'."""
        if self.config.image_dir is None:
            return [None] * len(image_ids)
        image_dir = Path(self.config.image_dir)
        found = {image_id: (image_dir / image_id).is_file() for image_id in set(image_ids)}
        missing = sorted(image_id for image_id, is_file in found.items() if not is_file)
        if missing and self.config.missing_image == "error":
            raise MissingImageError(
                f"{len(missing)} images named in {path} are not in {image_dir}; first ones: {missing[:10]}. "
                "Put them there, or pass missing_image='skip' (--missing_image skip) to read those examples "
                "without an image."
            )
        return [str(image_dir / image_id) if found[image_id] else None for image_id in image_ids]

    def _generate_examples(self, path: Path, split: str):
        examples = [example for _, example in self.read_file(path)]
        image_ids = [example["image_id"] for example in examples]
        images = self.image_paths(path, image_ids)
        contexts = self.context_store.lookup(image_ids) if self.context_store is not None else [None] * len(examples)
        for index, (example, image, context) in enumerate(zip(examples, images, contexts)):
            example.update(id=f"{split}-{index}", image=image, context=context)
            yield Key(0, index), example


def read_pos(path, line: int, pos, num_words: int, what: str) -> tuple[int, int]:
    """A ``pos`` field, ``[start, end)`` in word indices, checked: two integers, a span inside the sentence."""
    if not isinstance(pos, (list, tuple)) or len(pos) != 2:
        raise CorpusFormatError(path, line, f"{what} pos is {pos!r}; expected [start, end], two word indices.")
    check_span(path, line, *pos, num_words, what)
    return pos[0], pos[1]


def check_span(path, line: int, start, end, num_words: int, what: str) -> None:
    """Raise a `CorpusFormatError` unless ``[start, end)`` is a non-empty span inside the sentence."""
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= num_words):
        raise CorpusFormatError(
            path, line, f"{what} span [{start}, {end}) is not inside the sentence of {num_words} words."
        )
