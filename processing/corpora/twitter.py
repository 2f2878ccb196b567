"""Twitter-2015 and Twitter-2017 (multimodal NER), in the CoNLL-like release of UMT.

A line ``IMGID:<id>`` opens a tweet, one ``word<TAB>tag`` line per word follows, a blank line
ends it. The image is ``<id>.jpg``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from ..input_files import check_image_id, read_text_lines
from ..tasks import Task
from .base import CorpusFormatError, CorpusLabels, MIEBuilder, bio_labels

IMAGE_PREFIX = "IMGID:"


def read_conll_tweets(path: Path, labels: list[str]):
    """Yield ``(line number, {"words", "ner_tags", "image_id"})`` for each tweet of a file."""
    known = set(labels)
    words, tags, image_id, opened_at = [], [], None, 0

    def finish():
        if not words:
            raise CorpusFormatError(path, opened_at, f"tweet {image_id} has no words.")
        return opened_at, {"words": list(words), "ner_tags": list(tags), "image_id": f"{image_id}.jpg"}

    for number, raw in read_text_lines(path, CorpusFormatError):
        line = raw.rstrip("\r\n")
        if line.startswith(IMAGE_PREFIX):
            if image_id is not None:
                yield finish()
            image_id, opened_at, words, tags = line[len(IMAGE_PREFIX) :].strip(), number, [], []
            check_image_id(path, number, f"{image_id}.jpg", CorpusFormatError)
        elif line == "":
            if image_id is not None:
                yield finish()
            image_id, words, tags = None, [], []
        else:
            if image_id is None:
                raise CorpusFormatError(path, number, f"expected a line '{IMAGE_PREFIX}<id>' before the words.")
            word, separator, tag = line.rpartition("\t")
            if not separator:
                raise CorpusFormatError(path, number, "expected 'word<TAB>tag'.")
            if tag not in known:
                raise CorpusFormatError(path, number, f"unknown tag {tag!r}; expected one of {labels}.")
            words.append(word)
            tags.append(tag)
    if image_id is not None:
        yield finish()


class TwitterBuilder(MIEBuilder):
    TASK = Task.NER
    SPLIT_FILES: ClassVar = {"train": ("train.txt",), "validation": ("valid.txt", "dev.txt"), "test": ("test.txt",)}
    SOURCE = "UMT release (Yu et al., ACL 2020)"
    LICENCE = "research use only; the tweets and images are subject to Twitter's terms and the corpus authors' licence"
    CITATION = "Yu et al., Improving Multimodal Named Entity Recognition via Entity Span Detection with Unified Multimodal Transformer, ACL 2020."

    def read_file(self, path: Path):
        return read_conll_tweets(path, bio_labels(self.LABELS.entity_types))


class Twitter2015(TwitterBuilder):
    NAME = "twitter2015"
    LABELS = CorpusLabels(entity_types=("PER", "LOC", "ORG", "OTHER"))
    DESCRIPTION = "Twitter-2015 multimodal NER: tweets with their images, BIO tags over PER, LOC, ORG, OTHER."


class Twitter2017(TwitterBuilder):
    NAME = "twitter2017"
    LABELS = CorpusLabels(entity_types=("PER", "LOC", "ORG", "MISC"))
    DESCRIPTION = "Twitter-2017 multimodal NER: tweets with their images, BIO tags over PER, LOC, ORG, MISC."
