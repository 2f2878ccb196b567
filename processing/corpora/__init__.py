"""Corpora behind one entry point: the named ones, a user's JSON Lines files, and `datasets`
datasets (folders, Hub ids) in the library's schema (`processing.corpora.schema`).

    >>> from processing.corpora import load_corpus, load_files, load_schema_dataset
    >>> corpus = load_corpus("twitter2017", "data/twitter2017", context_files=["data/contexts/twitter2017.blip2.jsonl"])
    >>> mine = load_files({"train": "mine/train.jsonl", "validation": "mine/dev.jsonl"}, task="ner")
    >>> exported = load_schema_dataset("exports/twitter2017")
    >>> mine.task, mine.labels.entity_types, mine.splits["train"][0]["words"]

A named corpus is one module of this folder: a builder class that declares its ``NAME``, task,
labels, source and licence (`base.NamedCorpus`) and maps its release files onto the schema. The
modules are found when this package is imported; a corpus in a file of one's own is found with
`register_corpus` or by giving the file's path as its name (``--corpus my_corpus.py``).
`datasets` no longer runs loading scripts, so each corpus is a `GeneratorBasedBuilder`
subclass used directly; the result is cached by `datasets` like any prepared dataset.
`processing.corpora.hub` exports any of them for the Hub.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import os
import pkgutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import datasets

from ..context_store import ContextStore, MissingContextError
from ..images import check_missing_image_policy
from ..input_files import FileFormatError, InputFileNotFoundError
from ..tasks import Task
from ..wordpair import MRE_NO_RELATION
from .base import (
    UNKNOWN_LICENCE,
    CorpusFormatError,
    CorpusLabels,
    MIEBuilder,
    MIEData,
    MissingImageError,
    NamedCorpus,
    cache_damage,
    fingerprint_files,
)
from .jmere import JMERE_ENTITY_TYPES, JMERE_RELATIONS
from .mnre import MNRE_RELATIONS
from .schema import (
    SchemaError,
    SchemaFiles,
    dataset_in_schema,
    dataset_labels,
    file_labels,
    file_task,
    infer_task,
    schema_splits,
)

logger = logging.getLogger(__name__)

# The named corpora by name: every `NamedCorpus` with a NAME in a module of this folder, and
# those registered later.
REGISTRY: dict[str, type[NamedCorpus]] = {}


def register_corpus(corpus_class: type[NamedCorpus]) -> type[NamedCorpus]:
    """Make a corpus class loadable by its ``NAME`` (`load_corpus`, ``run_mie.py --corpus``); a decorator too."""
    if not (inspect.isclass(corpus_class) and issubclass(corpus_class, NamedCorpus) and corpus_class.NAME):
        raise TypeError(f"{corpus_class!r} is not a corpus: a subclass of NamedCorpus (e.g. MIEBuilder) with a NAME.")
    known = REGISTRY.get(corpus_class.NAME)
    if known is not None and known.__qualname__ != corpus_class.__qualname__:
        raise ValueError(f"Two corpora are called {corpus_class.NAME!r}: {known} and {corpus_class}; rename one.")
    REGISTRY[corpus_class.NAME] = corpus_class
    return corpus_class


def corpora_of_module(module) -> list[type[NamedCorpus]]:
    """The corpus classes a module defines (not those it imports)."""
    return [
        value for value in vars(module).values()
        if inspect.isclass(value) and issubclass(value, NamedCorpus) and value.NAME
        and value.__module__ == module.__name__
    ]  # fmt: skip


for _module in pkgutil.iter_modules(__path__):
    for _corpus in corpora_of_module(importlib.import_module(f"{__name__}.{_module.name}")):
        register_corpus(_corpus)


def corpus_from_file(path: str | os.PathLike) -> type[NamedCorpus]:
    """The one corpus that a Python file of one's own defines, imported and registered."""
    path = Path(path)
    if not path.is_file():
        raise InputFileNotFoundError(
            f"No corpus module {path}: give the path of a .py file that defines a corpus class."
        )
    name = f"shapca_user_corpus_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # datasets pickles the builder's config: its module must be importable
    spec.loader.exec_module(module)
    found = corpora_of_module(module)
    if len(found) != 1:
        raise ValueError(
            f"{path} defines {len(found)} corpora ({[c.NAME for c in found]}); a corpus file defines exactly one "
            "class with a NAME (a subclass of processing.corpora.base.MIEBuilder)."
        )
    return register_corpus(found[0])


def corpus_class(name: str) -> type[NamedCorpus]:
    """The corpus called ``name``, or the one defined in the file ``name`` (a path ending in .py)."""
    if name in REGISTRY:
        return REGISTRY[name]
    if name.endswith(".py"):
        return corpus_from_file(name)
    raise ValueError(
        f"Unknown corpus {name!r}; choose one of {sorted(REGISTRY)}, give the path of a corpus module (.py), "
        "or train on your own files (--train_file ...) or a dataset (--dataset_name ...)."
    )


def _download_and_prepare(builder, **options) -> None:
    try:
        builder.download_and_prepare(**options)
    except datasets.exceptions.DatasetGenerationError as error:
        # datasets wraps what a builder raises; ours already names the file, line and problem.
        if isinstance(
            error.__cause__, (FileFormatError, InputFileNotFoundError, MissingContextError, MissingImageError)
        ):
            raise error.__cause__ from None
        raise


def _prepare(builder) -> datasets.DatasetDict:
    """Build the corpus, or reuse its cache if that reads back as it was written (`cache_damage`):
    `datasets` reuses a cache folder without reading it, so a damaged file would otherwise fail deep
    in pyarrow, or change rows without a word. A cache that does not is built again."""
    _download_and_prepare(builder)
    damage = cache_damage(builder.cache_dir)
    if damage is not None:
        logger.warning("Rebuilding the corpus cache %s: %s.", builder.cache_dir, damage)
        _download_and_prepare(builder, download_mode=datasets.DownloadMode.FORCE_REDOWNLOAD)
    return builder.as_dataset()


def open_corpus(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    image_dir: str | os.PathLike | None = None,
    missing_image: str = "error",
    context_files: Sequence[str | os.PathLike] = (),
    missing_context: str = "error",
    cache_dir: str | os.PathLike | None = None,
    **options,
):
    """The builder of a named corpus, not yet prepared: its ``task`` and ``corpus_labels()`` are known."""
    corpus = corpus_class(name)
    cache_dir = str(cache_dir) if cache_dir is not None else None
    if corpus.NAME == "demo":  # generated: no files to read, its own images and contexts
        if context_files:
            raise TypeError("The demo corpus carries its own contexts: leave context_files out.")
        return corpus.create(cache_dir=cache_dir, image_dir=image_dir, **options)
    return corpus.create(
        cache_dir=cache_dir,
        data_dir=data_dir,
        image_dir=image_dir,
        missing_image=missing_image,
        context_files=context_files,
        missing_context=missing_context,
        **options,
    )


def load_corpus(name: str, data_dir: str | os.PathLike | None = None, **options) -> datasets.DatasetDict:
    """Build (or read from the cache) one named corpus with splits ``train``, ``validation``, ``test``.

    Args:
        name: ``twitter2015``, ``twitter2017``, ``mnre``, ``jmere``, ``demo``, another registered
            corpus, or the path of a corpus module (.py).
        data_dir: folder of the corpus files (not used by ``demo``).
        image_dir: folder of the images, which must exist; the ``image`` column is the path of each image
            (None without an image_dir). For ``demo``, where the generated images are written. The
            examples without an image are counted and logged per split (`log_image_coverage`).
        missing_image: ``"error"`` (default) or ``"skip"`` (no image for that example) for images named by
            the corpus but not in image_dir.
        context_files: JSONL context files; the ``context`` column is None without them.
        missing_context: ``"error"`` (default) or ``"empty"`` for images without a context.
        cache_dir: the `datasets` cache folder.
        options: the corpus's own; for ``demo``: ``flavour`` (``"ner"``, ``"word_pair"`` or ``"mre"``),
            ``seed``, ``train_size``, ``validation_size``, ``test_size``.
    """
    return load_named(name, data_dir, **options).splits


def load_named(name: str, data_dir: str | os.PathLike | None = None, **options) -> MIEData:
    """`load_corpus`, with what the corpus declares (task, labels, source, licence)."""
    builder = open_corpus(name, data_dir, **options)
    corpus = _prepare(builder)
    if options.get("image_dir") is not None:
        log_image_coverage(corpus)
    return MIEData(corpus, builder.task, builder.corpus_labels(), builder.NAME, builder.SOURCE, builder.LICENCE)


def given_labels(labels: CorpusLabels | Mapping | None, task: Task) -> CorpusLabels | None:
    """Labels given by the user (``{"entities": [...], "relations": [...]}`` or `CorpusLabels`), checked
    against the task; a given pair's relations get ``"None"`` first if it is not among them."""
    if labels is None or isinstance(labels, CorpusLabels):
        given = labels
    else:
        unknown = set(labels) - {"entities", "relations"}
        if unknown:
            raise ValueError(f"Labels are given as entities=... and relations=...; unknown kind(s) {sorted(unknown)}.")
        given = CorpusLabels(tuple(labels.get("entities", ())), tuple(labels.get("relations", ())))
    if given is None:
        return None
    needs = {Task.NER: ("entities",), Task.MRE: ("relations",), Task.MJERE: ("entities", "relations")}[task]
    for kind in needs:
        if not given.as_dict()[kind]:
            raise ValueError(f"A {task} task needs its {kind} among the labels given (--labels {kind}=A,B,...).")
    if task == Task.MRE and MRE_NO_RELATION not in given.relation_types:
        given = CorpusLabels(relation_types=(MRE_NO_RELATION, *given.relation_types))
    return given


def load_files(
    files: Mapping[str, str | os.PathLike],
    task: Task | str | None = None,
    labels: CorpusLabels | Mapping | None = None,
    *,
    image_dir: str | os.PathLike | None = None,
    missing_image: str = "error",
    context_files: Sequence[str | os.PathLike] = (),
    missing_context: str = "error",
    read_images: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> MIEData:
    """JSON Lines files in the schema (`processing.corpora.schema`), one per split, as a corpus.

    Args:
        files: split (``train``, ``validation``, ``test``) -> path; at least one.
        task: ``ner``, ``mre`` or ``mjere``; by default the one the first row of the first file says.
        labels: the label sets (``{"entities": [...], "relations": [...]}``); by default those of the
            training file, sorted. A label of another file that they do not hold is an error.
        image_dir: folder of the images that rows name by ``image_id`` (``image`` paths are relative to
            the file's folder).
        read_images: False gives no example an image (a text-only model): nothing is checked.
        The other arguments are `load_corpus`'s.
    """
    unknown = set(files) - {"train", "validation", "test"}
    if not files or unknown:
        raise ValueError(f"Give files for the splits train, validation and test (got {sorted(files)}).")
    for split, path in files.items():
        if not Path(path).is_file():
            raise InputFileNotFoundError(f"The {split} file {path} (--{split}_file) does not exist.")
    if image_dir is not None and not Path(image_dir).is_dir():
        raise InputFileNotFoundError(f"The image folder {image_dir} (--image_dir) does not exist or is not a folder.")
    check_missing_image_policy(missing_image)
    first = files.get("train") or next(iter(files.values()))
    task = Task(task) if task else file_task(first)
    labels_given = labels is not None
    labels = given_labels(labels, task)
    if labels is None:
        if "train" not in files:
            raise ValueError("Without a training file, give the labels (--labels) or a trained checkpoint's.")
        labels = file_labels(files["train"], task)
        logger.info("Labels of %s: %s", files["train"], labels.as_dict())
    ordered = tuple(
        (split, str(Path(files[split]).resolve())) for split in ("train", "validation", "test") if split in files
    )
    builder = SchemaFiles(
        cache_dir=str(cache_dir) if cache_dir is not None else None,
        config_name=f"{task}-files",
        task=str(task),
        files=ordered,
        entity_types=labels.entity_types,
        relation_types=labels.relation_types,
        labels_given=labels_given,
        read_images=read_images,
        image_dir=str(image_dir) if image_dir else None,
        missing_image=missing_image,
        context_files=tuple(str(path) for path in context_files),
        missing_context=missing_context,
        source_fingerprint=fingerprint_files(
            [*(path for _, path in ordered), *context_files, *([image_dir] if image_dir else [])]
        ),
    )
    splits = _prepare(builder)
    if read_images:
        log_image_coverage(splits)
    names = ", ".join(str(files[split]) for split, _ in ordered)
    return MIEData(splits, task, labels, str(first), f"your own files ({names})", UNKNOWN_LICENCE)


def card_metadata(name: str) -> dict:
    """What a dataset card exported by this library records (``shapca``: its task and labels), read
    from a folder's README.md or a Hub dataset's card; empty when there is none."""
    from huggingface_hub import DatasetCard

    readme = Path(name) / "README.md"
    try:
        card = DatasetCard.load(readme if readme.is_file() else name, repo_type="dataset")
    except (OSError, ValueError) as error:  # no card, not reachable (Hub errors are OSErrors), not a card
        logger.debug("No dataset card for %s (%s).", name, error)
        return {}
    return dict(card.data.to_dict().get("shapca") or {})


def load_schema_dataset(
    name: str,
    task: Task | str | None = None,
    labels: CorpusLabels | Mapping | None = None,
    *,
    config_name: str | None = None,
    image_dir: str | os.PathLike | None = None,
    missing_image: str = "error",
    context_files: Sequence[str | os.PathLike] = (),
    missing_context: str = "error",
    read_images: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> MIEData:
    """A `datasets` dataset in the schema (a folder, a Hub id, an export of `processing.corpora.hub`)
    as a corpus: `datasets.load_dataset`, then the rows checked and in the schema's columns.

    The task and the labels are, in this order: those given; those an export's card records; for the
    task, what the columns say (`schema.infer_task`); for the labels, the order of the dataset's
    `ClassLabel` columns, else the training split's labels sorted. The other arguments are `load_files`'.
    """
    check_missing_image_policy(missing_image)
    recorded = card_metadata(name)
    raw = datasets.load_dataset(name, config_name, cache_dir=str(cache_dir) if cache_dir else None)
    splits = schema_splits(raw, name)
    if not splits:
        raise ValueError(f"{name} has no train, validation or test split (it has {sorted(raw)}).")
    first = splits.get("train") or next(iter(splits.values()))
    task = Task(task or recorded.get("task") or infer_task(first.column_names) or "ner")
    labels_given = labels is not None
    labels = given_labels(labels if labels is not None else recorded.get("labels"), task)
    if labels is None:
        if "train" not in splits:
            raise ValueError(f"{name} has no train split: give the labels (--labels) or a trained checkpoint's.")
        labels = dataset_labels(splits["train"], task, f"{name}, split train")
    context_store = ContextStore(context_files, missing_context) if context_files else None
    splits = dataset_in_schema(
        splits,
        name,
        task,
        labels,
        labels_given=labels_given,
        base_dir=Path(name) if Path(name).is_dir() else Path.cwd(),
        image_dir=str(image_dir) if image_dir else None,
        missing_image=missing_image,
        context_store=context_store,
        read_images=read_images,
    )
    if read_images:
        log_image_coverage(splits)
    source = recorded.get("source") or f"the dataset {name}"
    return MIEData(splits, task, labels, name, source, recorded.get("licence") or UNKNOWN_LICENCE)


def examples_without_image(split: datasets.Dataset) -> int:
    """How many examples of a split have no image (read from the column, images left undecoded)."""
    return split.with_format("arrow")["image"].null_count


def log_image_coverage(corpus: datasets.DatasetDict) -> dict[str, int]:
    """Log, for every split, how many examples have no image (a warning if any); return those counts by split."""
    without_image = {split: examples_without_image(part) for split, part in corpus.items()}
    for split, count in without_image.items():
        level = logging.WARNING if count else logging.INFO
        logger.log(level, "%s: %d of %d examples have no image.", split, count, len(corpus[split]))
    return without_image


__all__ = [
    "JMERE_ENTITY_TYPES",
    "JMERE_RELATIONS",
    "MNRE_RELATIONS",
    "REGISTRY",
    "CorpusFormatError",
    "CorpusLabels",
    "MIEBuilder",
    "MIEData",
    "MissingImageError",
    "SchemaError",
    "corpus_class",
    "examples_without_image",
    "load_corpus",
    "load_files",
    "load_named",
    "load_schema_dataset",
    "log_image_coverage",
    "open_corpus",
    "register_corpus",
]
