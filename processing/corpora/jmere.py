"""JMERE (joint multimodal entity-relation extraction), in the JSON release of EEGA.

A JSON list of ``{'token': [...], 'img_id': ..., 'label_list': [[{'beg_ent': {'tags', 'pos', 'name'},
'sec_ent': {...}, 'relation': 'couple'}], ...]}``. Entities are collected from the relations,
each span once, and sorted by position; relations point into that list.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from ..input_files import check_image_id, check_words, read_text_lines
from ..tasks import Task
from .base import CorpusFormatError, CorpusLabels, MIEBuilder, read_pos

JMERE_ENTITY_TYPES = ("PER", "ORG", "LOC", "MISC")
JMERE_RELATIONS = (
    "alternate_names", "alumi", "awarded", "charges", "contain", "couple", "held_on", "locate_at",
    "member_of", "nationality", "neighbor", "parent", "part_of", "peer", "place_of_birth",
    "place_of_residence", "present_in", "race", "religion", "siblings", "subsidiary",
)  # fmt: skip


def parse_jmere_example(path, number: int, record: dict) -> dict:
    """One JSON item -> ``{"words", "entities", "relations", "image_id"}``."""
    try:
        words, image_id, groups = record["token"], record["img_id"], record["label_list"]
        pairs = [pair for group in groups for pair in group]
        spans = [(pair["beg_ent"], pair["sec_ent"], pair["relation"]) for pair in pairs]
    except (KeyError, TypeError) as error:
        raise CorpusFormatError(
            path, number, f"expected token, img_id and label_list of beg_ent/sec_ent/relation ({error!r})."
        ) from None
    check_words(path, number, words, CorpusFormatError)
    check_image_id(path, number, image_id, CorpusFormatError)

    index: dict[tuple[int, int], dict] = {}
    triples = []
    for head, tail, relation in spans:
        if relation not in JMERE_RELATIONS:
            raise CorpusFormatError(path, number, f"unknown relation {relation!r}; expected one of {JMERE_RELATIONS}.")
        ends = []
        for entity, role in ((head, "beg_ent"), (tail, "sec_ent")):
            missing = [key for key in ("pos", "tags") if not isinstance(entity, dict) or key not in entity]
            if missing:
                raise CorpusFormatError(
                    path, number, f"{role} has no {' and no '.join(missing)}; expected pos and tags."
                )
            start, end = read_pos(path, number, entity["pos"], len(words), role)
            entity_type = str(entity["tags"]).upper()
            if entity_type not in JMERE_ENTITY_TYPES:
                raise CorpusFormatError(
                    path, number, f"unknown entity type {entity['tags']!r}; expected one of {JMERE_ENTITY_TYPES}."
                )
            known = index.setdefault((start, end), {"start": start, "end": end, "type": entity_type})
            if known["type"] != entity_type:
                raise CorpusFormatError(
                    path, number, f"span [{start}, {end}) has two types: {known['type']} and {entity_type}."
                )
            ends.append((start, end))
        if ends[0] == ends[1]:
            raise CorpusFormatError(
                path,
                number,
                f"a {relation} relation from span {list(ends[0])} to itself; a relation needs two entities.",
            )
        triples.append((*ends, relation))

    entities = sorted(index.values(), key=lambda entity: (entity["start"], entity["end"]))
    position = {(entity["start"], entity["end"]): i for i, entity in enumerate(entities)}
    relations = sorted(
        {(position[head], position[tail], relation) for head, tail, relation in triples},
        key=lambda triple: (triple[0], triple[1]),
    )
    return {
        "words": words,
        "entities": entities,
        "relations": [{"head": h, "tail": t, "type": r} for h, t, r in relations],
        "image_id": image_id,
    }


def read_jmere(path: Path):
    """Yield ``(item number, example)`` for each item of a JMERE JSON file (numbers count from 1)."""
    text = "".join(line for _, line in read_text_lines(path, CorpusFormatError))
    try:
        records = json.loads(text)
    except json.JSONDecodeError as error:
        raise CorpusFormatError(
            path, error.lineno, f"not valid JSON ({error.msg}); expected a list of examples."
        ) from None
    except RecursionError:
        raise CorpusFormatError(path, 1, "JSON nested too deeply to read; expected a list of examples.") from None
    if not isinstance(records, list):
        raise CorpusFormatError(path, 1, "expected a JSON list of examples.")
    for number, record in enumerate(records, start=1):
        yield number, parse_jmere_example(f"{path} item", number, record)


class JMERE(MIEBuilder):
    NAME = "jmere"
    TASK = Task.MJERE
    LABELS = CorpusLabels(entity_types=JMERE_ENTITY_TYPES, relation_types=JMERE_RELATIONS)
    SOURCE = "rebuilt from MNRE v2 with the conversion published with EEGA (Yuan et al., AAAI 2023)"
    LICENCE = "research use only; the posts and images are subject to Twitter's terms and the corpus authors' licence"
    SPLIT_FILES: ClassVar = {"train": ("train.json",), "validation": ("val.json", "dev.json"), "test": ("test.json",)}
    DESCRIPTION = (
        "JMERE joint multimodal entity-relation extraction: typed entity spans and typed relations between them."
    )
    CITATION = "Yuan et al., Joint Multimodal Entity-Relation Extraction Based on Edge-Enhanced Graph Alignment Network and Word-Pair Relation Tagging, AAAI 2023."

    def read_file(self, path: Path):
        return read_jmere(path)
