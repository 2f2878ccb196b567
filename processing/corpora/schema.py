"""The library's schema for examples, and the general reader of data written in it: JSON Lines
files, or any `datasets` dataset (a folder, a Hub id, an export of `processing.corpora.hub`)
whose splits have the schema's columns. The named corpora map their release files onto the
same columns.

One example per row (one JSON object per line of a file)::

    {"id": "p1", "words": ["Tim", "Cook", "unveils", "the", "iPhone"], "image": "images/p1.jpg",
     "context": "a man on a stage holding a phone",
     "entities": [{"start": 0, "end": 2, "type": "PER"}, {"start": 4, "end": 5, "type": "PRODUCT"}]}

- ``id`` (optional; ``<split>-<row>`` when absent), ``words`` (a non-empty list of strings);
- ``image``: a path, relative to the file's folder (a dataset's: to ``image_dir`` or the dataset's
  folder) or absolute, or an image itself (a `datasets.Image` column); or ``image_id``: the name of
  a file in ``image_dir``, as the corpora name their images; neither: no image;
- ``context`` (optional): the bridging context; without it, ``context_files`` give it by image id
  (``image_id``, else the image file's name);
- named entities (``ner``): ``ner_tags`` (BIO tags, one per word) or ``entities`` (word spans
  ``start``, ``end`` exclusive, and ``type``);
- the relation of a given pair (``mre``): ``head`` and ``tail`` (word spans) and ``relation`` (a
  name; ``"None"`` or null for no relation);
- entities and relations (``mjere``): ``entities`` as above and ``relations`` (``head`` and
  ``tail`` indices into ``entities``, ``type``).

The labels are those of the training split, sorted (``"None"`` first among relations), unless
they are given; a label of another split that they do not hold is an error naming the row.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import datasets
from datasets.builder import Key

from ..context_store import ContextStore
from ..input_files import FileFormatError, check_image_id, check_text, check_words, read_text_lines
from ..tasks import Task
from ..wordpair import MRE_NO_RELATION
from .base import (
    COMMON_FEATURES,
    SPLITS,
    CorpusLabels,
    MIEBuilder,
    MIEBuilderConfig,
    MissingImageError,
    bio_labels,
    check_span,
    task_features,
)

logger = logging.getLogger(__name__)

# The columns that say each task, for a row or a dataset that does not say its task.
TASK_COLUMNS = {Task.MRE: ("head", "tail", "relation"), Task.MJERE: ("relations",), Task.NER: ("ner_tags",)}


class SchemaError(FileFormatError):
    """A row that is not in the library's schema: names the file and line and what was expected."""


class DatasetRowError(SchemaError):
    """A row of a `datasets` dataset that is not in the schema: names the dataset, split and row."""

    def __init__(self, where: str, row: int, problem: str):
        ValueError.__init__(self, f"{where}, row {row}: {problem}")


def infer_task(columns: Iterable[str]) -> Task | None:
    """The task that a row's (or a dataset's) columns say: ``head``/``tail``/``relation`` -> mre,
    ``relations`` -> mjere, ``ner_tags`` or ``entities`` alone -> ner; None if they say none."""
    columns = set(columns)
    for task, names in TASK_COLUMNS.items():
        if columns.issuperset(names):
            return task
    return Task.NER if "entities" in columns else None


# -- one row ------------------------------------------------------------------------------------


def _span(where, line, value, num_words: int, what: str, error) -> dict:
    if not isinstance(value, dict) or not {"start", "end"} <= set(value):
        raise error(where, line, f'{what} is {value!r}; expected a word span {{"start": 0, "end": 2}} (end exclusive).')
    check_span(where, line, value["start"], value["end"], num_words, what, error)
    return {"start": value["start"], "end": value["end"]}


def _label(where, line, value, what: str, error) -> str:
    if not isinstance(value, str) or not value.strip():
        raise error(where, line, f"{what} is {value!r}; expected a label name (a non-empty string).")
    check_text(where, line, value, what, error)
    return value


def _entities(where, line, value, num_words: int, error) -> list[dict]:
    if not isinstance(value, list):
        raise error(where, line, f"'entities' is {value!r}; expected a list of {{start, end, type}}.")
    entities = []
    for index, entity in enumerate(value):
        span = _span(where, line, entity, num_words, f"entity {index}", error)
        entities.append({**span, "type": _label(where, line, entity.get("type"), f"entity {index}'s type", error)})
    return entities


def bio_tags(where, line, entities: list[dict], num_words: int, error) -> list[str]:
    """BIO tags from entity spans; spans that overlap are an error (BIO tags cannot hold them)."""
    tags = ["O"] * num_words
    for entity in sorted(entities, key=lambda entity: entity["start"]):
        if any(tag != "O" for tag in tags[entity["start"] : entity["end"]]):
            raise error(where, line, f"entity [{entity['start']}, {entity['end']}) overlaps another; "
                        "named entities (BIO tags) cannot overlap.")  # fmt: skip
        tags[entity["start"] : entity["end"]] = [f"I-{entity['type']}"] * (entity["end"] - entity["start"])
        tags[entity["start"]] = f"B-{entity['type']}"
    return tags


def _ner_tags(where, line, value, num_words: int, error) -> list[str]:
    if not isinstance(value, list) or len(value) != num_words:
        count = f"{len(value)} tags" if isinstance(value, list) else repr(value)
        raise error(where, line, f"'ner_tags' is {count} for {num_words} words; expected one BIO tag per word.")
    for index, tag in enumerate(value):
        if not isinstance(tag, str) or not (tag == "O" or (tag[:2] in ("B-", "I-") and len(tag) > 2)):
            raise error(where, line, f"tag {index} is {tag!r}; expected O, B-TYPE or I-TYPE.")
    return list(value)


def parse_row(where, line: int, row, task: Task, error=SchemaError) -> dict:
    """One row -> ``{"words", "context", <the task's columns>}``, checked, with labels as names;
    ``where`` and ``line`` say where the row is in the error (`SchemaError` by default)."""
    if not isinstance(row, dict):
        raise error(where, line, f"expected a JSON object with 'words', got {type(row).__name__}.")
    words = row.get("words")
    check_words(where, line, words, error)
    example = {"words": words, "context": row.get("context")}
    if example["context"] is not None:
        check_text(where, line, example["context"], "'context'", error)
    # The columns a row of each task needs (any one of each group).
    needed = {Task.NER: [("ner_tags", "entities")], Task.MRE: [("head",), ("tail",)], Task.MJERE: [("entities",)]}
    for group in needed[task]:
        if all(row.get(name) is None for name in group):
            wanted = " or ".join(f"'{name}'" for name in group)
            raise error(where, line, f"a {task} row needs {wanted} (see the schema: README, 'Your own data').")
    if task == Task.NER:
        if row.get("ner_tags") is not None:
            example["ner_tags"] = _ner_tags(where, line, row["ner_tags"], len(words), error)
        else:
            entities = _entities(where, line, row["entities"], len(words), error)
            example["ner_tags"] = bio_tags(where, line, entities, len(words), error)
    elif task == Task.MRE:
        example["head"] = _span(where, line, row["head"], len(words), "'head'", error)
        example["tail"] = _span(where, line, row["tail"], len(words), "'tail'", error)
        if example["head"] == example["tail"]:
            raise error(where, line, "head and tail are the same span; a relation needs two entities.")
        relation = row.get("relation")
        example["relation"] = (
            MRE_NO_RELATION if relation is None else _label(where, line, relation, "'relation'", error)
        )
    else:
        entities = _entities(where, line, row["entities"], len(words), error)
        relations = row.get("relations") or []
        if not isinstance(relations, list):
            raise error(where, line, f"'relations' is {relations!r}; expected a list of {{head, tail, type}}.")
        checked = []
        for index, relation in enumerate(relations):
            ends = (relation.get("head"), relation.get("tail")) if isinstance(relation, dict) else (None, None)
            if not all(isinstance(end, int) and 0 <= end < len(entities) for end in ends) or ends[0] == ends[1]:
                raise error(where, line, f"relation {index} is {relation!r}; expected 'head' and 'tail', two "
                            f"different indices into the {len(entities)} entities, and a 'type'.")  # fmt: skip
            checked.append({"head": ends[0], "tail": ends[1],
                            "type": _label(where, line, relation.get("type"), f"relation {index}'s type", error)})  # fmt: skip
        example["entities"], example["relations"] = entities, checked
    return example


def row_labels(example: dict, task: Task) -> tuple[set[str], set[str]]:
    """The entity types and relation types that one parsed row uses."""
    if task == Task.NER:
        return {tag[2:] for tag in example["ner_tags"] if tag != "O"}, set()
    if task == Task.MRE:
        return set(), {example["relation"]}
    return {entity["type"] for entity in example["entities"]}, {relation["type"] for relation in example["relations"]}


def sorted_labels(entity_types: Iterable[str], relation_types: Iterable[str], task: Task) -> CorpusLabels:
    """Label sets in the recorded order: sorted, with ``"None"`` first among a given pair's relations."""
    relations = sorted(set(relation_types) - {MRE_NO_RELATION})
    if task == Task.MRE:
        relations = [MRE_NO_RELATION, *relations]
    return CorpusLabels(tuple(sorted(set(entity_types))), tuple(relations))


def check_row_labels(where, line, example: dict, task: Task, labels: CorpusLabels, given: bool, error=SchemaError):
    """Raise ``error`` when the row uses a label that ``labels`` do not hold."""
    entity_types, relation_types = row_labels(example, task)
    for found, known, what in ((entity_types, labels.entity_types, "entity type"),
                               (relation_types, labels.relation_types, "relation")):  # fmt: skip
        unknown = sorted(found - set(known))
        if unknown:
            origin = "the labels given (--labels)" if given else "the labels of the training split"
            hint = (
                "add it to --labels"
                if given
                else "add an example of it to the training data, or give every label with --labels"
            )
            raise error(where, line, f"{what} {unknown[0]!r} is not among {origin}: {list(known)}; {hint}.")


def encode_labels(example: dict, task: Task, labels: CorpusLabels) -> dict:
    """Tags and a given pair's relation as ids of the label order (the `datasets.ClassLabel`s)."""
    if task == Task.NER:
        tag_ids = {tag: index for index, tag in enumerate(bio_labels(labels.entity_types))}
        example["ner_tags"] = [tag_ids[tag] for tag in example["ner_tags"]]
    elif task == Task.MRE:
        example["relation"] = labels.relation_types.index(example["relation"])
    return example


def schema_features(task: Task, labels: CorpusLabels, image: datasets.features.FeatureType | None = None):
    """The columns of data in the schema: the common ones (``image`` a path, or an image feature) and the task's."""
    return datasets.Features({**COMMON_FEATURES, **({"image": image} if image else {}), **task_features(task, labels)})


# -- JSON Lines files ---------------------------------------------------------------------------


def read_jsonl_rows(path: str | os.PathLike) -> Iterator[tuple[int, object]]:
    """``(line number, decoded JSON value)`` for each non-blank line of a JSON Lines file."""
    for number, line in read_text_lines(path, SchemaError):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            raise SchemaError(
                path, number, f"not a JSON object ({error.msg}); expected one example per line."
            ) from None
        except RecursionError:
            raise SchemaError(path, number, "not a JSON object (nested too deeply).") from None


def file_task(path: str | os.PathLike) -> Task:
    """The task that the first row of a JSON Lines file says (see `infer_task`)."""
    for number, row in read_jsonl_rows(path):
        task = infer_task(row) if isinstance(row, dict) else None
        if task is None:
            raise SchemaError(path, number, "cannot tell the task from this row: it has none of 'ner_tags', "
                              "'entities', 'head'/'tail'/'relation', 'relations'; pass --task ner, mre or mjere.")  # fmt: skip
        return task
    raise SchemaError(path, 1, "the file holds no example.")


def file_labels(path: str | os.PathLike, task: Task) -> CorpusLabels:
    """The labels of a (training) JSON Lines file, in the recorded order (`sorted_labels`); its rows are checked."""
    entity_types, relation_types = set(), set()
    for number, row in read_jsonl_rows(path):
        entities, relations = row_labels(parse_row(path, number, row, task), task)
        entity_types |= entities
        relation_types |= relations
    return sorted_labels(entity_types, relation_types, task)


@dataclass
class SchemaFilesConfig(MIEBuilderConfig):
    """Attributes (beside `MIEBuilderConfig`'s): ``task``; ``files``, ``(split, path)`` pairs;
    ``entity_types`` and ``relation_types``, the label order; ``labels_given``, whether they were
    given rather than read from the training file (for the error of an unknown label); ``read_images``,
    False to leave images out (a text-only model)."""

    task: str = "ner"
    files: tuple[tuple[str, str], ...] = ()
    entity_types: tuple[str, ...] = ()
    relation_types: tuple[str, ...] = ()
    labels_given: bool = False
    read_images: bool = True


class SchemaFiles(MIEBuilder):
    """JSON Lines files in the library's schema, as a `datasets` builder (cached like a corpus)."""

    BUILDER_CONFIG_CLASS = SchemaFilesConfig

    @property
    def task(self) -> Task:
        return Task(self.config.task)

    def corpus_labels(self) -> CorpusLabels:
        return CorpusLabels(tuple(self.config.entity_types), tuple(self.config.relation_types))

    def _split_generators(self, dl_manager):
        self.context_store = (
            ContextStore(self.config.context_files, self.config.missing_context) if self.config.context_files else None
        )
        return [
            datasets.SplitGenerator(name=SPLITS[split], gen_kwargs={"path": Path(path), "split": split})
            for split, path in self.config.files
        ]

    def _generate_examples(self, path: Path, split: str):
        task, labels = self.task, self.corpus_labels()
        examples, image_ids, images, missing = [], [], [], []
        for number, row in read_jsonl_rows(path):
            example = parse_row(path, number, row, task)
            check_row_labels(path, number, example, task, labels, self.config.labels_given)
            image, image_id = row_image(path, number, row, path.parent, self.config.image_dir)
            if image is not None and not self.config.read_images:
                image = None
            elif image is not None and not os.path.isfile(image):
                missing.append(f"{path}:{number}: {image}")
                image = None
            example["id"] = str(row["id"]) if row.get("id") is not None else f"{split}-{len(examples)}"
            examples.append(encode_labels(example, task, labels))
            image_ids.append(image_id)
            images.append(image)
        if not examples:  # datasets cannot read an empty split back
            raise SchemaError(path, 1, "the file holds no example; give a file with at least one row, or leave it out.")
        report_missing_images(missing, self.config.missing_image, path)
        contexts = self.contexts(examples, image_ids)
        for index, (example, image_id, image, context) in enumerate(zip(examples, image_ids, images, contexts)):
            example.update(image_id=image_id, image=image, context=context)
            yield Key(0, index), example

    def contexts(self, examples: list[dict], image_ids: list[str | None]) -> list[str | None]:
        """Each row's own context, else its image's in the context files (the missing-context policy
        applies to those looked up)."""
        wanted = [image_id for example, image_id in zip(examples, image_ids)
                  if example["context"] is None and image_id is not None]  # fmt: skip
        if self.context_store is None or not wanted:
            return [example["context"] for example in examples]
        found = dict(zip(wanted, self.context_store.lookup(wanted)))
        return [example["context"] if example["context"] is not None else found.get(image_id)
                for example, image_id in zip(examples, image_ids)]  # fmt: skip


def row_image(
    where, line, row: dict, base_dir: Path, image_dir: str | None, error=SchemaError
) -> tuple[str | None, str | None]:
    """A row's image path and image id: ``image`` (relative to ``base_dir`` or absolute; its id is the
    file name), or ``image_id`` in ``image_dir`` (no path without an image_dir, as for the corpora)."""
    if row.get("image") is not None:
        image = row["image"]
        if not isinstance(image, str) or not image:
            raise error(where, line, f"'image' is {image!r}; expected the path of an image file.")
        path = Path(image) if Path(image).is_absolute() else base_dir / image
        return str(path), row.get("image_id") or path.name
    image_id = row.get("image_id")
    if image_id is None:
        return None, None
    check_image_id(where, line, image_id, error)
    return (str(Path(image_dir) / image_id) if image_dir else None), image_id


def report_missing_images(missing: list[str], missing_image: str, where) -> None:
    """Raise `MissingImageError` for images that are not there (policy ``"error"``) or log them (``"skip"``)."""
    if not missing:
        return
    if missing_image == "error":
        raise MissingImageError(
            f"{len(missing)} images named in {where} are not there; first ones: {missing[:5]}. Put them there, "
            "or pass missing_image='skip' (--missing_image skip) to read those examples without an image."
        )
    logger.warning("%s: %d images are not there; those examples have no image (missing_image='skip').",
                   where, len(missing))  # fmt: skip


# -- datasets -------------------------------------------------------------------------------------


def column_labels(dataset: datasets.Dataset, task: Task) -> CorpusLabels | None:
    """The label order that a dataset's own `ClassLabel` columns record (``ner_tags``, ``relation``), if any."""
    features = dataset.features
    if task == Task.NER and isinstance(getattr(features.get("ner_tags"), "feature", None), datasets.ClassLabel):
        tags = features["ner_tags"].feature.names
        return CorpusLabels(tuple(dict.fromkeys(tag[2:] for tag in tags if tag != "O")))
    if task == Task.MRE and isinstance(features.get("relation"), datasets.ClassLabel):
        return CorpusLabels(relation_types=tuple(features["relation"].names))
    return None


def dataset_labels(dataset: datasets.Dataset, task: Task, where: str) -> CorpusLabels:
    """The labels of a (training) split: its `ClassLabel` order, else every row's labels sorted."""
    recorded = column_labels(dataset, task)
    if recorded is not None:
        return recorded
    entity_types, relation_types = set(), set()
    for index, row in enumerate(rows_as_names(dataset, task)):
        entities, relations = row_labels(parse_row(where, index, row, task, DatasetRowError), task)
        entity_types |= entities
        relation_types |= relations
    return sorted_labels(entity_types, relation_types, task)


def rows_as_names(dataset: datasets.Dataset, task: Task) -> Iterator[dict]:
    """The rows without their images, tags and relations as names (a `ClassLabel` column gives ids)."""
    names = label_names_of(dataset.features, task)
    columns = [name for name in dataset.column_names if name != "image"]
    for row in dataset.select_columns(columns):
        yield names(row)


def label_names_of(features: datasets.Features, task: Task) -> Callable[[dict], dict]:
    """A function that turns a row's `ClassLabel` ids (``ner_tags``, ``relation``) into their names."""
    tags = getattr(features.get("ner_tags"), "feature", None)
    relation = features.get("relation")

    def names(row) -> dict:
        row = dict(row)  # datasets gives a lazy mapping
        if task == Task.NER and isinstance(tags, datasets.ClassLabel) and row.get("ner_tags") is not None:
            row["ner_tags"] = [tags.int2str(tag) for tag in row["ner_tags"]]
        if task == Task.MRE and isinstance(relation, datasets.ClassLabel) and row.get("relation") is not None:
            row["relation"] = relation.int2str(row["relation"])
        return row

    return names


# Split names that datasets on the Hub use for the dev split.
VALIDATION_NAMES = ("validation", "dev", "valid", "val")


def schema_splits(splits: datasets.DatasetDict, where: str) -> datasets.DatasetDict:
    """The splits under the schema's names: ``train``, ``validation`` (also called dev, valid, val), ``test``."""
    named = {}
    for split, part in splits.items():
        name = "validation" if split in VALIDATION_NAMES else split
        if name not in SPLITS:
            logger.warning("%s: split %r is not train, validation or test: left out.", where, split)
            continue
        if name in named:
            raise ValueError(f"{where} has two dev splits ({sorted(set(splits) & set(VALIDATION_NAMES))}); keep one.")
        named[name] = part
    return datasets.DatasetDict(named)


def normalise_row(
    row: dict,
    index: int,
    *,
    split: str,
    where: str,
    names: Callable[[dict], dict],
    task: Task,
    labels: CorpusLabels,
    labels_given: bool,
    holds_images: bool,
    read_images: bool,
    image_base: Path,
    image_dir: str | None,
    missing_image: str,
    context_store: ContextStore | None,
) -> dict:
    """One row of a dataset -> the schema's columns (see `dataset_in_schema`)."""
    row = names(row)
    example = parse_row(where, index, row, task, DatasetRowError)
    check_row_labels(where, index, example, task, labels, labels_given, DatasetRowError)
    example["id"] = str(row["id"]) if row.get("id") is not None else f"{split}-{index}"
    if holds_images:
        example["image_id"] = row.get("image_id")
        if not read_images:
            example["image"] = None
    else:
        image, example["image_id"] = row_image(where, index, row, image_base, image_dir, DatasetRowError)
        if image is not None and (not read_images or not os.path.isfile(image)):
            if read_images and missing_image == "error":
                raise MissingImageError(
                    f"{where}, row {index}: image {image} is not there. Put it there, or pass "
                    "missing_image='skip' (--missing_image skip) to read such examples without an image."
                )
            image = None
        example["image"] = image
    if example["context"] is None and context_store is not None and example["image_id"] is not None:
        example["context"] = context_store.lookup([example["image_id"]])[0]
    return encode_labels(example, task, labels)


def dataset_in_schema(
    splits: datasets.DatasetDict,
    where: str,
    task: Task,
    labels: CorpusLabels,
    *,
    labels_given: bool = False,
    base_dir: Path,
    image_dir: str | None = None,
    missing_image: str = "error",
    context_store: ContextStore | None = None,
    read_images: bool = True,
) -> datasets.DatasetDict:
    """A `datasets` dataset in the schema -> the columns every corpus has (`schema_features`), rows
    checked as a file's are (errors name the dataset, the split and the row), labels as ids of
    ``labels``. An ``image`` column of images (`datasets.Image`) stays as it is; image paths are
    relative to ``image_dir`` if given, else to ``base_dir``; ``image_id`` names a file in ``image_dir``."""
    out = {}
    for split, part in splits.items():
        holds_images = isinstance(part.features.get("image"), datasets.Image)
        if holds_images:
            part = part.cast_column("image", datasets.Image(decode=False))  # the bytes pass through, undecoded
        options = {
            "split": split,
            "where": f"{where}, split {split}",
            "names": label_names_of(part.features, task),
            "task": task,
            "labels": labels,
            "labels_given": labels_given,
            "holds_images": holds_images,
            "read_images": read_images,
            "image_base": Path(image_dir) if image_dir else base_dir,
            "image_dir": image_dir,
            "missing_image": missing_image,
            "context_store": context_store,
        }
        keep = ["image"] if holds_images and read_images else []
        features = schema_features(task, labels, image=datasets.Image(decode=False) if keep else None)
        part = part.map(
            normalise_row,
            with_indices=True,
            fn_kwargs=options,
            remove_columns=[column for column in part.column_names if column not in keep],
            features=features,
            desc=f"Checking {split}",
        )
        out[split] = part.cast_column("image", datasets.Image()) if keep else part
    return datasets.DatasetDict(out)


__all__ = [
    "DatasetRowError",
    "SchemaError",
    "SchemaFiles",
    "dataset_in_schema",
    "dataset_labels",
    "file_labels",
    "file_task",
    "infer_task",
    "parse_row",
    "sorted_labels",
]
