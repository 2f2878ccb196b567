"""The data side of `run_mie.py`: the run's data (a named corpus, the user's files or a dataset),
the model's labels (BIO tags or word-pair grid labels), the corpus-to-model label map, and the
prepared splits the Trainer reads (POS tags, labels, the gold the metrics score, token lengths),
with what the model card says about them."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from processing import ShapCAProcessor
from processing.context_store import read_context_lines
from processing.corpora import CorpusLabels, MIEData, load_files, load_named, load_schema_dataset
from processing.corpora.base import bio_labels
from processing.tasks import TASKS, Task
from processing.wordpair import (
    MRE_ENTITY,
    MRE_NO_RELATION,
    NONE,
    REVERSED,
    encode_grid,
    grid_label_names,
    unencodable_items,
)
from shapca_training.errors import UsageError

logger = logging.getLogger(__name__)

# -- the run's data ---------------------------------------------------------------------------


def parse_labels(items: Sequence[str]) -> dict[str, list[str]] | None:
    """``--labels``: ``["entities=PER,ORG", "relations=founded_by"]`` (or one JSON object, as a
    config file's ``"labels": {"entities": [...]}`` arrives) -> ``{"entities": [...], "relations": [...]}``."""
    if not items:
        return None
    if len(items) == 1 and items[0].lstrip().startswith("{"):
        labels = json.loads(items[0])
        return {kind: list(names) for kind, names in labels.items()}
    labels = {}
    for item in items:
        kind, separator, names = item.partition("=")
        if not separator or kind not in ("entities", "relations") or not names:
            raise UsageError(
                f"--labels takes entities=A,B,... and relations=X,Y,..., got {item!r} "
                "(e.g. --labels entities=PER,ORG,PRODUCT relations=founded_by)."
            )
        labels[kind] = [name.strip() for name in names.split(",") if name.strip()]
    return labels


def labels_of_model(task: Task, model_labels: Sequence[str]) -> CorpusLabels:
    """The label sets behind a model's labels (the inverse of `model_label_names`): a trained
    checkpoint's labels, for data that has no training split."""
    if task == Task.NER:
        return CorpusLabels(tuple(dict.fromkeys(label[2:] for label in model_labels if label != "O")))
    relations = tuple(label for label in model_labels if label + REVERSED in model_labels)
    if task == Task.MRE:
        return CorpusLabels(relation_types=(MRE_NO_RELATION, *relations))
    entity_types = tuple(label for label in model_labels
                         if label != NONE and label not in relations and not label.endswith(REVERSED))  # fmt: skip
    return CorpusLabels(entity_types, relations)


def load_run_data(data_args, model_args, checkpoint_labels: Sequence[str] | None = None) -> MIEData:
    """The run's data: the user's files (``--train_file``...), a dataset (``--dataset_name``) or a
    named corpus (``--corpus``, the demo when none is given), with its task, labels and origin.

    A text-only model (``--use_image false``) reads no image, so the image folder need not exist.
    Without a training split the labels are those given, else the checkpoint's."""
    read_images = model_args.use_image
    common = {
        "image_dir": data_args.image_dir if read_images else None,
        "missing_image": data_args.missing_image,
        "context_files": data_args.context_files,
        "missing_context": data_args.missing_context,
        "cache_dir": data_args.cache_dir,
    }
    labels = parse_labels(data_args.labels)
    files = data_args.files()
    if files:
        if labels is None and "train" not in files and checkpoint_labels is not None and data_args.task:
            labels = labels_of_model(Task(data_args.task), checkpoint_labels).as_dict()
        return load_files(files, data_args.task, labels, read_images=read_images, **common)
    if data_args.dataset_name:
        return load_schema_dataset(
            data_args.dataset_name, data_args.task, labels, config_name=data_args.dataset_config_name,
            read_images=read_images, **common,
        )  # fmt: skip
    demo = {
        "flavour": data_args.demo_flavour,
        "seed": data_args.demo_seed,
        "train_size": data_args.demo_train_size,
        "validation_size": data_args.demo_validation_size,
        "test_size": data_args.demo_test_size,
    }
    corpus = data_args.corpus or "demo"
    if corpus == "demo":
        common = {"image_dir": common["image_dir"], "cache_dir": data_args.cache_dir, **demo}
    data = load_named(corpus, data_args.data_dir, **common)
    if data_args.task and data_args.task != data.task:
        raise UsageError(f"--task {data_args.task} does not fit {data.name}, a {data.task} corpus: leave --task out.")
    return data


# -- labels -----------------------------------------------------------------------------------


def model_label_names(task: Task, labels: CorpusLabels) -> list[str]:
    """The model's labels: BIO tags of the entity types (NER) or the word-pair grid labels."""
    if task == Task.NER:
        return bio_labels(labels.entity_types)
    if task == Task.MRE:
        return grid_label_names([MRE_ENTITY], labels.relation_types)
    return grid_label_names(labels.entity_types, labels.relation_types)


def check_model_covers(task: Task, labels: CorpusLabels, model_labels: Sequence[str], checkpoint: str) -> None:
    """A trained word-pair checkpoint reads a grid: every label of the data must be one of its labels
    (NER tags are mapped instead, see `tag_id_map`)."""
    if task == Task.NER:
        return
    missing = [label for label in model_label_names(task, labels) if label not in model_labels]
    if missing:
        raise UsageError(
            f"{checkpoint} does not know the labels {missing} of the data (it knows {list(model_labels)}): "
            "train a model from the encoders for these labels, or give data in the checkpoint's labels."
        )


# Entity types that mean the same across corpora (Twitter-2015 OTHER, Twitter-2017 MISC).
BUILTIN_TYPE_MAP = {"OTHER": "MISC", "MISC": "OTHER"}


def parse_label_map(pairs: Sequence[str]) -> dict[str, str]:
    """``["A=B", ...]`` (``--label_map``) -> ``{A: B}``: the corpus's entity type A is the model's B."""
    mapping = {}
    for pair in pairs:
        source, separator, target = pair.partition("=")
        if not separator or not source or not target:
            raise UsageError(f"--label_map takes CORPUS_TYPE=MODEL_TYPE pairs, got {pair!r}.")
        mapping[source] = target
    return mapping


def tag_id_map(corpus_tags: Sequence[str], model_labels: Sequence[str], label_map: dict[str, str]) -> list[int]:
    """The model's id of each corpus tag (cross-corpus evaluation, paper Table 5).

    A tag the model knows keeps its name; otherwise its entity type goes through ``label_map``,
    then the built-in OTHER <-> MISC. Tags with no counterpart are an error that names them.
    """
    model_ids = {label: index for index, label in enumerate(model_labels)}
    mapping, missing = [], []
    for tag in corpus_tags:
        prefix, _, entity_type = tag.partition("-")
        target = label_map.get(entity_type) or BUILTIN_TYPE_MAP.get(entity_type)
        mapped = tag if tag in model_ids else f"{prefix}-{target}" if target else None
        if mapped in model_ids:
            mapping.append(model_ids[mapped])
        else:
            missing.append(tag)
    if missing:
        raise UsageError(
            f"The corpus's labels {missing} have no counterpart among the model's labels {list(model_labels)}: "
            "map their entity types with --label_map CORPUS_TYPE=MODEL_TYPE (e.g. --label_map ORG=PER)."
        )
    return mapping


# -- prepared splits ----------------------------------------------------------------------------


def context_source(context_files: Sequence[str]) -> str:
    """Where a run's contexts came from: the generators named by each context file, or the corpus itself."""
    if not context_files:
        return "given with the corpus"
    sources = []
    for path in context_files:
        first = next(read_context_lines(path), None)
        generator = "unknown generator" if first is None else first[1].get("generator", "unknown generator")
        sources.append(f"{generator} ({Path(path).name})")
    return ", ".join(sources)


def data_summary(data: MIEData, data_args, model_args, prepared: dict, processor: ShapCAProcessor) -> dict:
    """What a run read, for its model card: the data (its name, source and licence: a named corpus,
    the user's files or a dataset, never a benchmark it was dressed as), each split's examples and how many had a
    context, where the contexts came from, the processor's settings and the trained checkpoint
    the run started from or scored (``model_name_or_path``)."""
    return {
        "corpus": data.name,
        "source": data.source,
        "licence": data.licence,
        "data_dir": data_args.data_dir,  # only with --corpus (parse_arguments checks it)
        "examples": {split: len(part) for split, part in prepared.items()},
        "with_context": {split: sum(1 for context in part["context"] if context) for split, part in prepared.items()},
        "context_source": context_source(data_args.context_files),
        "max_length": processor.max_length,
        "pos_tagger": processor.pos_tagger,
        "checkpoint": model_args.model_name_or_path,
    }


def mre_sentence_structures(dataset) -> list[tuple[list[dict], list[dict]]]:
    """The grid structures of each MNRE row: every pair given for the same sentence (same words and
    image) in the split, its spans as ``entity`` and its relation unless ``None``.

    MNRE repeats a sentence once per entity pair, and the model reads the sentence, not the pair:
    a grid of the given pair alone would teach ``none`` on the cells of the sentence's other,
    related pairs. Every row of a sentence therefore gets the grid of all its pairs.
    """
    relation_names = dataset.features["relation"].names
    columns = zip(dataset["words"], dataset["image_id"], dataset["head"], dataset["tail"], dataset["relation"])
    keys, pairs = [], {}
    for words, image_id, head, tail, relation in columns:
        key = (tuple(words), image_id)
        keys.append(key)
        pairs.setdefault(key, []).append(((head["start"], head["end"]), (tail["start"], tail["end"]), relation))
    structures = {}
    for key, sentence_pairs in pairs.items():
        spans = sorted({span for head, tail, _ in sentence_pairs for span in (head, tail)})
        index = {span: i for i, span in enumerate(spans)}
        relations = sorted(
            {(index[head], index[tail], relation_names[relation]) for head, tail, relation in sentence_pairs
             if relation_names[relation] != MRE_NO_RELATION}
        )  # fmt: skip
        structures[key] = (
            [{"start": start, "end": end, "type": MRE_ENTITY} for start, end in spans],
            [{"head": head, "tail": tail, "type": relation} for head, tail, relation in relations],
        )
    return [structures[key] for key in keys]


def relation_counts(dataset) -> dict[str, int]:
    """How many pairs of a given-pair split (MNRE) hold each relation, ``None`` included: the priors
    of the decision's logit adjustment (``mre_relation_counts``)."""
    names = dataset.features["relation"].names
    return dict(Counter(names[index] for index in dataset["relation"]))


def one_row_per_sentence(dataset):
    """The first row of each MNRE sentence: its grid holds all the sentence's pairs (see
    `mre_sentence_structures`), so training on every row would repeat the same example."""
    first = {}
    for row, key in enumerate(zip(map(tuple, dataset["words"]), dataset["image_id"])):
        first.setdefault(key, row)
    logger.info("Relation extraction: %d pairs in %d sentences, one grid per sentence for training.",
                len(dataset), len(first))  # fmt: skip
    return dataset.select(sorted(first.values()))


def grid_structures(dataset, task: str, label2id: dict) -> list[tuple[list[dict], list[dict]]]:
    """The entities and relations each row's grid encodes, with a warning that counts those the grid
    cannot hold (overlapping spans): they still count in the scores, read from the file, as misses."""
    if TASKS[task].given_pair:
        structures = mre_sentence_structures(dataset)
    else:
        structures = list(zip(dataset["entities"], dataset["relations"]))
    id2label = {i: label for label, i in label2id.items()}
    lost_entities = lost_relations = total_entities = total_relations = 0
    counted = set()  # the rows of one MNRE sentence share their structures: count them once
    for words, sentence in zip(dataset["words"], structures):
        if id(sentence) in counted:
            continue
        counted.add(id(sentence))
        entities, relations = sentence
        lost = unencodable_items(encode_grid(len(words), entities, relations, label2id), entities, relations, id2label)
        lost_entities, lost_relations = lost_entities + lost[0], lost_relations + lost[1]
        total_entities, total_relations = total_entities + len(entities), total_relations + len(relations)
    if lost_entities or lost_relations:
        logger.warning(
            "%s: the word-pair grid cannot hold %d of %d entities and %d of %d relations (spans that overlap "
            "share grid cells, and a cell keeps the label written last: entities in order of position, "
            "then relations). They are trained as the grid holds them and scored from the file, as misses.",
            dataset.split or "split", lost_entities, total_entities, lost_relations, total_relations,
        )  # fmt: skip
    return structures


def prepare_split(
    dataset, task: str, label2id: dict, processor: ShapCAProcessor, use_context: bool, label_map: dict | None = None
):
    """Add ``pos_ids`` (the processor's tagger), ``labels`` (tag ids or grids) and the gold structures
    the metrics read (``gold_tags``, every word's tag, ``gold_entities`` ``[start, end, type id]``,
    ``gold_relations`` ``[head, tail, type id]``, or ``gold_relation`` for a given pair) and ``length`` (tokens, for
    ``group_by_length``); drop the context if asked. NER tags are
    read in the model's label ids (``label_map``: see `tag_id_map`). The gold is the file's own,
    never read back from a grid."""
    spec = TASKS[task]
    if spec.tagged:
        model_id = tag_id_map(dataset.features["ner_tags"].feature.names, list(label2id), label_map or {})
    else:
        structures = grid_structures(dataset, task, label2id)

    def add_columns(batch, indices):
        batch["pos_ids"] = processor.tag(batch["words"])
        if spec.tagged:
            batch["labels"] = [[model_id[tag] for tag in tags] for tags in batch["ner_tags"]]
            batch["gold_tags"] = batch["labels"]
        else:
            batch["labels"] = [
                encode_grid(len(words), *structures[i], label2id) for words, i in zip(batch["words"], indices)
            ]
        if spec.given_pair:
            batch["gold_relation"] = batch["relation"]
        elif not spec.tagged:
            batch["gold_entities"] = [
                [[e["start"], e["end"], label2id[e["type"]]] for e in es] for es in batch["entities"]
            ]
            batch["gold_relations"] = [
                [[r["head"], r["tail"], label2id[r["type"]]] for r in rs] for rs in batch["relations"]
            ]
        if not use_context:
            batch["context"] = [None] * len(batch["words"])
        batch["length"] = processor.lengths(batch["words"], batch["context"])
        return batch

    return dataset.map(add_columns, batched=True, with_indices=True, desc="POS tags and labels")
