"""The four corpora of the paper and the demo corpus, as `datasets` builders behind one entry point.

    >>> from processing.corpora import load_corpus
    >>> corpus = load_corpus("twitter2017", "data/twitter2017", context_files=["data/contexts/twitter2017.blip2.jsonl"])
    >>> corpus["train"][0]["words"]

`datasets` no longer runs loading scripts, so each corpus is a `GeneratorBasedBuilder`
subclass used directly; the result is cached by `datasets` like any prepared dataset. This
module is the registry (names, tasks, `load_corpus`); `processing.corpora.hub` exports a corpus
for the Hub.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import datasets

from ..context_store import MissingContextError
from ..input_files import FileFormatError
from ..tasks import Task
from .base import CorpusFormatError, MIEBuilder, MissingImageError, fingerprint_files
from .demo import Demo
from .jmere import JMERE, JMERE_ENTITY_TYPES, JMERE_RELATIONS
from .mnre import MNRE, MNRE_RELATIONS
from .twitter import Twitter2015, Twitter2017

logger = logging.getLogger(__name__)

BUILDERS: dict[str, type[datasets.GeneratorBasedBuilder]] = {
    "twitter2015": Twitter2015,
    "twitter2017": Twitter2017,
    "mnre": MNRE,
    "jmere": JMERE,
    "demo": Demo,
}
CORPUS_TASKS = {"twitter2015": Task.NER, "twitter2017": Task.NER, "mnre": Task.MRE, "jmere": Task.MJERE}


def check_corpus_name(name: str) -> None:
    """Raise a ValueError listing the corpus names unless ``name`` is one of them."""
    if name not in BUILDERS:
        raise ValueError(f"Unknown corpus {name!r}; choose one of {sorted(BUILDERS)}.")


def corpus_task(name: str, flavour: str = "ner") -> Task:
    """The task of a corpus (the demo follows its flavour)."""
    check_corpus_name(name)
    if name == "demo":
        return Task.NER if flavour == "ner" else Task.MJERE
    return CORPUS_TASKS[name]


def load_corpus(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    image_dir: str | os.PathLike | None = None,
    missing_image: str = "error",
    context_files: Sequence[str | os.PathLike] = (),
    missing_context: str = "error",
    cache_dir: str | os.PathLike | None = None,
    **demo_options,
) -> datasets.DatasetDict:
    """Build (or read from the cache) one corpus with splits ``train``, ``validation``, ``test``.

    Args:
        name: ``twitter2015``, ``twitter2017``, ``mnre``, ``jmere`` or ``demo``.
        data_dir: folder of the corpus files (not used by ``demo``).
        image_dir: folder of the images, which must exist; the ``image`` column is the path of each image
            (None without an image_dir). For ``demo``, where the generated images are written. The
            examples without an image are counted and logged per split (`log_image_coverage`).
        missing_image: ``"error"`` (default) or ``"skip"`` (no image for that example) for images named by
            the corpus but not in image_dir.
        context_files: JSONL context files; the ``context`` column is None without them.
        missing_context: ``"error"`` (default) or ``"empty"`` for images without a context.
        cache_dir: the `datasets` cache folder.
        demo_options: for ``demo`` only: ``flavour`` (``"ner"`` or ``"word_pair"``), ``seed``,
            ``train_size``, ``validation_size``, ``test_size``.
    """
    check_corpus_name(name)
    cache_dir = str(cache_dir) if cache_dir is not None else None
    if name == "demo":
        builder = Demo(cache_dir=cache_dir, image_dir=str(image_dir) if image_dir else None, **demo_options)
    else:
        if demo_options:
            raise TypeError(f"Unexpected options for {name}: {sorted(demo_options)}.")
        if data_dir is None or not Path(data_dir).is_dir():
            raise FileNotFoundError(f"data_dir must be the folder of the {name} files, got {data_dir!r}.")
        builder_class = BUILDERS[name]
        sources = [Path(data_dir) / f for files in builder_class.SPLIT_FILES.values() for f in files]
        builder = builder_class(
            cache_dir=cache_dir,
            data_dir=str(data_dir),
            image_dir=str(image_dir) if image_dir else None,
            missing_image=missing_image,
            context_files=tuple(str(path) for path in context_files),
            missing_context=missing_context,
            # image_dir's time changes when images are added or removed.
            source_fingerprint=fingerprint_files([*sources, *context_files, *([image_dir] if image_dir else [])]),
        )
    try:
        builder.download_and_prepare()
    except datasets.exceptions.DatasetGenerationError as error:
        # datasets wraps what a builder raises; ours already names the file, line and problem.
        if isinstance(error.__cause__, (FileFormatError, MissingContextError, MissingImageError)):
            raise error.__cause__ from None
        raise
    corpus = builder.as_dataset()
    if image_dir is not None:
        log_image_coverage(corpus)
    return corpus


def log_image_coverage(corpus: datasets.DatasetDict) -> dict[str, int]:
    """Log, for every split, how many examples have no image (a warning if any); return those counts by split."""
    without_image = {split: sum(image is None for image in part["image"]) for split, part in corpus.items()}
    for split, count in without_image.items():
        level = logging.WARNING if count else logging.INFO
        logger.log(level, "%s: %d of %d examples have no image.", split, count, len(corpus[split]))
    return without_image


__all__ = [
    "BUILDERS",
    "JMERE_ENTITY_TYPES",
    "JMERE_RELATIONS",
    "MNRE_RELATIONS",
    "CorpusFormatError",
    "MIEBuilder",
    "MissingImageError",
    "check_corpus_name",
    "corpus_task",
    "load_corpus",
    "log_image_coverage",
]
