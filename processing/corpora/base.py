"""What every corpus shares: what it declares (name, task, labels, source, licence), the common
columns, images, contexts, file errors, the cache key of its files and the checksums of its cache."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import datasets
from datasets.builder import Key

from ..context_store import ContextStore
from ..images import check_missing_image_policy
from ..input_files import FileFormatError, InputFileNotFoundError
from ..tasks import Task

SPLITS = {"train": datasets.Split.TRAIN, "validation": datasets.Split.VALIDATION, "test": datasets.Split.TEST}

COMMON_FEATURES = {
    "id": datasets.Value("string"),
    "words": datasets.Sequence(datasets.Value("string")),
    "image_id": datasets.Value("string"),
    "image": datasets.Value("string"),
    "context": datasets.Value("string"),
}
SPAN = {"start": datasets.Value("int32"), "end": datasets.Value("int32")}
ENTITIES = datasets.List({**SPAN, "type": datasets.Value("string")})
RELATIONS = datasets.List(
    {"head": datasets.Value("int32"), "tail": datasets.Value("int32"), "type": datasets.Value("string")}
)


UNKNOWN_LICENCE = "unknown: not given by whoever made or exported the data; ask them before you share it"


@dataclass(frozen=True)
class CorpusLabels:
    """The label sets of a corpus, in their recorded order (the order of the model's label ids).

    Attributes:
        entity_types: the entity types (named entities; joint extraction), e.g. ``("PER", "LOC")``.
        relation_types: the relation types (relation extraction with ``"None"`` among them for a pair
            without relation; joint extraction without it).
    """

    entity_types: tuple[str, ...] = ()
    relation_types: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, list[str]]:
        return {"entities": list(self.entity_types), "relations": list(self.relation_types)}


def bio_labels(entity_types: Sequence[str]) -> list[str]:
    """The BIO tags of entity types: ``O``, then ``B-`` and ``I-`` of each type in order."""
    return ["O", *(f"{prefix}-{entity}" for entity in entity_types for prefix in ("B", "I"))]


def task_features(task: Task, labels: CorpusLabels) -> dict:
    """The columns of a task beside the common ones: ``ner_tags`` (BIO tags of the entity types);
    ``head``, ``tail`` and ``relation`` (one of the relation types); or ``entities`` and
    ``relations`` (types as strings). Tags and relations are `datasets.ClassLabel`s, so that
    their order travels with the data (an export read back keeps it)."""
    if task == Task.NER:
        return {"ner_tags": datasets.Sequence(datasets.ClassLabel(names=bio_labels(labels.entity_types)))}
    if task == Task.MRE:
        return {"head": SPAN, "tail": SPAN, "relation": datasets.ClassLabel(names=list(labels.relation_types))}
    return {"entities": ENTITIES, "relations": RELATIONS}


@dataclass
class MIEData:
    """Data for a run, whatever its origin: the splits in the schema's columns and what they are.

    Attributes:
        splits: ``train``, ``validation``, ``test`` (those that were given).
        task: the task the rows are written for.
        labels: the label sets, in the order of the model's label ids.
        name: what the data is called (a corpus name, a dataset id or folder, the training file).
        source: where it comes from, for cards.
        licence: under which terms, for cards.
    """

    splits: datasets.DatasetDict
    task: Task
    labels: CorpusLabels
    name: str
    source: str
    licence: str


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
        source_fingerprint: a hash of the source files' contents (and of image_dir's listing), so that
            the cache is rebuilt when they change (see `fingerprint_files`).
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
            raise InputFileNotFoundError(
                f"The image folder {self.image_dir} (image_dir, --image_dir) does not exist or is not a folder. "
                "Pass the folder that holds the corpus images, or leave image_dir out to read the corpus "
                "without images."
            )


def fingerprint_files(paths: Sequence[str | os.PathLike]) -> str:
    """A short hash of what the files hold, so that a corpus cache is rebuilt when one changes.

    A file counts by its path and its content (an edit that keeps the size and the modification
    time, as ``cp -p`` or ``rsync -a`` leave it, still counts); a folder (the image folder) by the
    names, sizes and times of its files, which it would take too long to read; a missing path as
    missing.
    """
    digest = hashlib.sha256()
    for path in sorted(str(p) for p in paths):
        digest.update(f"{path}\0".encode())
        if os.path.isfile(path):
            hash_file(digest, path)
        elif os.path.isdir(path):
            for entry in sorted(os.scandir(path), key=lambda entry: entry.name):
                stat = entry.stat()
                digest.update(f"{entry.name}|{stat.st_size}|{stat.st_mtime_ns}\0".encode())
        else:
            digest.update(b"missing\0")
    return digest.hexdigest()[:16]


# The checksums of a prepared corpus's files, written into its cache folder beside them.
CACHE_CHECKSUMS = "shapca_checksums.json"


def hash_file(digest, path: str | os.PathLike):
    """``digest`` updated with the content of the file at ``path``, read a megabyte at a time."""
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest


def file_sha256(path: str | os.PathLike) -> str:
    return hash_file(hashlib.sha256(), path).hexdigest()


def record_cache_checksums(folder: str | os.PathLike) -> None:
    """Write the SHA-256 of every file of a prepared corpus folder (the split ``.arrow`` files,
    ``dataset_info.json``) into ``CACHE_CHECKSUMS`` there, for `cache_damage` to compare."""
    folder = Path(folder)
    checksums = {
        path.name: file_sha256(path)
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != CACHE_CHECKSUMS
    }
    (folder / CACHE_CHECKSUMS).write_text(json.dumps(checksums, indent=1) + "\n", encoding="utf-8")


def cache_damage(folder: str | os.PathLike) -> str | None:
    """What is wrong with a corpus cache folder, or None when every file recorded by
    `record_cache_checksums` is there with the content it was written with.

    Files written there later (the ``cache-*.arrow`` of `datasets.Dataset.map`) are not checked; a
    folder without the record (written by an older version of this library) is reported, hence
    rebuilt once.
    """
    record = Path(folder) / CACHE_CHECKSUMS
    try:
        checksums = json.loads(record.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"it has no {CACHE_CHECKSUMS} to check it against"
    except (OSError, ValueError) as error:
        return f"its {CACHE_CHECKSUMS} does not read ({error})"
    if not isinstance(checksums, dict) or not checksums:
        return f"its {CACHE_CHECKSUMS} records no file"
    for name, checksum in checksums.items():
        path = Path(folder) / name
        if not path.is_file():
            return f"{name} is missing"
        if file_sha256(path) != checksum:
            return f"{name} is not what was written (its checksum differs)"
    return None


class NamedCorpus:
    """What a named corpus declares, for `processing.corpora` to find it by its name.

    A builder class with a ``NAME`` in a module of ``processing/corpora/`` (or registered with
    `processing.corpora.register_corpus`, or in a file given as ``--corpus path/to/corpus.py``) is
    a corpus: nothing else needs an edit.

    Attributes:
        NAME: what ``--corpus`` and `load_corpus` call it.
        TASK: its task (a corpus whose task depends on its options overrides `task`).
        LABELS: its label sets, in the model's order (or override `corpus_labels`).
        SOURCE: where it comes from, for its dataset and model cards.
        LICENCE: under which terms it may be used.
    """

    NAME: ClassVar[str | None] = None
    TASK: ClassVar[Task]
    LABELS: ClassVar[CorpusLabels] = CorpusLabels()
    SOURCE: ClassVar[str] = "unknown"
    LICENCE: ClassVar[str] = UNKNOWN_LICENCE

    @property
    def task(self) -> Task:
        return self.TASK

    def corpus_labels(self) -> CorpusLabels:
        return self.LABELS

    @classmethod
    def create(cls, *, cache_dir: str | None, **options) -> datasets.GeneratorBasedBuilder:
        """The builder for `load_corpus`'s options (data_dir, image_dir, missing_image,
        context_files, missing_context, and the corpus's own)."""
        raise NotImplementedError

    def _save_info(self):
        # `datasets.DatasetBuilder` writes its info last, into the folder that is then moved into
        # place: the checksums are written with the files they check (`processing.corpora._prepare`
        # compares them whenever the cache is reused). NamedCorpus comes before the builder class
        # in every corpus's bases, so this runs first and calls the builder's own.
        super()._save_info()
        record_cache_checksums(self._output_dir)


class MIEBuilder(NamedCorpus, datasets.GeneratorBasedBuilder):
    """Base builder of a corpus read from release files: subclasses name their split files, their
    features and how to read a file.

    Subclasses define ``SPLIT_FILES`` (split -> file names to try, in order), ``task_features()``
    and ``read_file(path) -> iterator of (line number, example without the common columns)``.
    """

    BUILDER_CONFIG_CLASS = MIEBuilderConfig
    SPLIT_FILES: ClassVar[dict[str, tuple[str, ...]]] = {}
    CITATION = ""
    DESCRIPTION = ""

    @classmethod
    def create(
        cls,
        *,
        cache_dir: str | None,
        data_dir: str | os.PathLike | None = None,
        image_dir: str | os.PathLike | None = None,
        missing_image: str = "error",
        context_files: Sequence[str | os.PathLike] = (),
        missing_context: str = "error",
        **options,
    ) -> MIEBuilder:
        if options:
            raise TypeError(f"Unexpected options for {cls.NAME}: {sorted(options)}.")
        if data_dir is None or not Path(data_dir).is_dir():
            raise InputFileNotFoundError(
                f"data_dir (--data_dir) must be the folder of the {cls.NAME} files, got {data_dir!r}."
            )
        sources = [Path(data_dir) / name for names in cls.SPLIT_FILES.values() for name in names]
        return cls(
            cache_dir=cache_dir,
            data_dir=str(data_dir),
            image_dir=str(image_dir) if image_dir else None,
            missing_image=missing_image,
            context_files=tuple(str(path) for path in context_files),
            missing_context=missing_context,
            # image_dir's listing changes when images are added or removed.
            source_fingerprint=fingerprint_files([*sources, *context_files, *([image_dir] if image_dir else [])]),
        )

    def task_features(self) -> dict:
        return task_features(self.task, self.corpus_labels())

    def read_file(self, path: Path):
        raise NotImplementedError

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=self.DESCRIPTION,
            citation=self.CITATION,
            license=self.LICENCE,
            features=datasets.Features({**COMMON_FEATURES, **self.task_features()}),
        )

    def split_path(self, split: str) -> Path:
        data_dir = Path(self.config.data_dir or ".")
        for name in self.SPLIT_FILES[split]:
            if (data_dir / name).is_file():
                return data_dir / name
        raise InputFileNotFoundError(
            f"No {split} file for {self.NAME} in {data_dir} (--data_dir): "
            f"expected one of {list(self.SPLIT_FILES[split])}."
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


def check_span(path, line: int, start, end, num_words: int, what: str, error=CorpusFormatError) -> None:
    """Raise ``error`` unless ``[start, end)`` is a non-empty span inside the sentence."""
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= num_words):
        raise error(path, line, f"{what} span [{start}, {end}) is not inside the sentence of {num_words} words.")
