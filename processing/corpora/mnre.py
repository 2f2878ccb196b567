"""MNRE v2 (multimodal relation extraction): one Python dict literal per line, one line per entity pair.

``{'token': [...], 'h': {'name', 'pos': [start, end]}, 't': {...}, 'img_id': 'x.jpg', 'relation': '/per/org/member_of'}``
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import ClassVar

from ..input_files import check_image_id, check_words, read_text_lines
from ..tasks import Task
from .base import CorpusFormatError, CorpusLabels, MIEBuilder, read_pos

MNRE_RELATIONS = (
    "None",
    "/loc/loc/contain",
    "/misc/loc/held_on",
    "/misc/misc/part_of",
    "/org/loc/locate_at",
    "/org/org/alternate_names",
    "/org/org/subsidiary",
    "/per/loc/place_of_birth",
    "/per/loc/place_of_residence",
    "/per/misc/awarded",
    "/per/misc/nationality",
    "/per/misc/present_in",
    "/per/misc/race",
    "/per/misc/religion",
    "/per/org/member_of",
    "/per/per/alternate_names",
    "/per/per/alumi",
    "/per/per/charges",
    "/per/per/couple",
    "/per/per/neighbor",
    "/per/per/parent",
    "/per/per/peer",
    "/per/per/siblings",
)


def join_surrogate_pairs(text: str) -> str:
    """``"\\ud83d\\ude00"`` (a pair of surrogate halves) -> ``"😀"``; a lone half stays as it is."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")


def read_mnre(path: Path):
    """Yield ``(line number, {"words", "head", "tail", "relation", "image_id"})`` per line."""
    for number, line in read_text_lines(path, CorpusFormatError):
        if not line.strip():
            continue
        try:
            record = ast.literal_eval(line)
            words, head, tail = record["token"], record["h"]["pos"], record["t"]["pos"]
            relation, image_id = record["relation"], record["img_id"]
        except (ValueError, SyntaxError, KeyError, TypeError, RecursionError, MemoryError) as error:
            raise CorpusFormatError(
                path, number, f"expected a dict literal with token, h.pos, t.pos, img_id, relation ({error!r})."
            ) from None
        if isinstance(words, list):  # a Python literal leaves "\\ud83d\\ude00" as two halves: join each pair
            words = [join_surrogate_pairs(word) if isinstance(word, str) else word for word in words]
        check_words(path, number, words, CorpusFormatError)
        check_image_id(path, number, image_id, CorpusFormatError)
        if relation not in MNRE_RELATIONS:
            raise CorpusFormatError(path, number, f"unknown relation {relation!r}; expected one of {MNRE_RELATIONS}.")
        head, tail = read_pos(path, number, head, len(words), "head"), read_pos(path, number, tail, len(words), "tail")
        if head == tail:
            raise CorpusFormatError(
                path, number, f"head and tail are the same span {list(head)}; a relation needs two entities."
            )
        yield (
            number,
            {
                "words": words,
                "head": {"start": head[0], "end": head[1]},
                "tail": {"start": tail[0], "end": tail[1]},
                "relation": relation,
                "image_id": image_id,
            },
        )


class MNRE(MIEBuilder):
    NAME = "mnre"
    TASK = Task.MRE
    LABELS = CorpusLabels(relation_types=MNRE_RELATIONS)
    SOURCE = "MNRE v2 release (Zheng et al., ICME 2021)"
    LICENCE = "research use only; the posts and images are subject to Twitter's terms and the corpus authors' licence"
    # The dev file was published as "mnre_val .txt", with a space.
    SPLIT_FILES: ClassVar = {
        "train": ("mnre_train.txt",),
        "validation": ("mnre_val.txt", "mnre_val .txt"),
        "test": ("mnre_test.txt",),
    }
    DESCRIPTION = (
        "MNRE v2 multimodal relation extraction: a sentence, a head and a tail span, an image, one of 23 relations."
    )
    CITATION = "Zheng et al., MNRE: A Challenge Multimodal Dataset for Neural Relation Extraction with Visual Evidence in Social Media Posts, ICME 2021."

    def read_file(self, path: Path):
        return read_mnre(path)
