"""What `run_mie.py` builds and reads: label schemas, the processor and the model, prepared
splits, the metrics (a pure `compute_metrics`) and the prediction records."""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer, BertTokenizer, EvalPrediction

from metrics import load_metric
from modeling_shapca import MODEL_FOR_TASK
from processing import ShapCAProcessor
from processing.corpora import JMERE_ENTITY_TYPES, JMERE_RELATIONS, MNRE_RELATIONS
from processing.corpora.demo import PAIR_RELATIONS
from processing.decoding import IGNORE, bio_entities, structures_from_predictions
from processing.wordpair import MRE_ENTITY, encode_grid, grid_label_names

# -- labels, processor, model -----------------------------------------------------------------


def label_names(corpus, corpus_name: str, task: str) -> list[str]:
    """The model's labels: BIO tags (NER) or the word-pair grid labels."""
    if task == "ner":
        return list(corpus["train"].features["ner_tags"].feature.names)
    if task == "mre":
        return grid_label_names([MRE_ENTITY], MNRE_RELATIONS)
    if corpus_name == "demo":
        return grid_label_names(["PER"], PAIR_RELATIONS)
    return grid_label_names(JMERE_ENTITY_TYPES, JMERE_RELATIONS)


# Entity types that mean the same across corpora (Twitter-2015 OTHER, Twitter-2017 MISC).
BUILTIN_TYPE_MAP = {"OTHER": "MISC", "MISC": "OTHER"}


def parse_label_map(pairs: Sequence[str]) -> dict[str, str]:
    """``["A=B", ...]`` (``--label_map``) -> ``{A: B}``: the corpus's entity type A is the model's B."""
    mapping = {}
    for pair in pairs:
        source, separator, target = pair.partition("=")
        if not separator or not source or not target:
            raise ValueError(f"--label_map takes CORPUS_TYPE=MODEL_TYPE pairs, got {pair!r}.")
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
        raise ValueError(
            f"The corpus's labels {missing} have no counterpart among the model's labels {list(model_labels)}: "
            "map their entity types with --label_map CORPUS_TYPE=MODEL_TYPE (e.g. --label_map ORG=PER)."
        )
    return mapping


def corpus_tokenizer(corpus) -> BertTokenizer:
    """A word-level tokenizer over the lower-cased words and context words of the training split."""
    words = set()
    for row in corpus["train"]:
        words.update(word.lower() for word in row["words"])
        words.update((row["context"] or "").lower().split())
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(words)]
    return BertTokenizer(vocab={word: i for i, word in enumerate(vocabulary)}, do_lower_case=True)


def image_processor_for(model_args):
    if os.path.isdir(model_args.vision_model) or "/" in model_args.vision_model:
        return AutoImageProcessor.from_pretrained(model_args.vision_model)
    import timm
    from transformers import TimmWrapperImageProcessor

    pretrained_cfg = timm.models.get_pretrained_cfg(model_args.vision_model).to_dict()
    if model_args.image_size:
        pretrained_cfg["input_size"] = (3, model_args.image_size, model_args.image_size)
    return TimmWrapperImageProcessor(pretrained_cfg=pretrained_cfg, architecture=model_args.vision_model)


def build_processor(model_args, data_args, corpus) -> ShapCAProcessor:
    if model_args.model_name_or_path:
        processor = AutoProcessor.from_pretrained(model_args.model_name_or_path)
        processor.max_length = data_args.max_length
        return processor
    if model_args.text_model_name_or_path:
        tokenizer = AutoTokenizer.from_pretrained(model_args.text_model_name_or_path)
    elif model_args.text_config:
        tokenizer = corpus_tokenizer(corpus)
    else:
        raise ValueError("Give --text_model_name_or_path (a pretrained encoder) or --text_config (random init).")
    return ShapCAProcessor(
        image_processor_for(model_args), tokenizer, max_length=data_args.max_length, pos_tagger=data_args.pos_tagger
    )


def build_model(model_args, labels: list[str], task: str, processor: ShapCAProcessor):
    model_class = MODEL_FOR_TASK["ner" if task == "ner" else "word_pair"]
    if model_args.model_name_or_path:
        return model_class.from_pretrained(model_args.model_name_or_path)
    settings = dict(model_args.config_switches(), id2label=dict(enumerate(labels)), max_words=max(512, processor.max_length))
    vision_is_checkpoint = os.path.isdir(model_args.vision_model) or "/" in model_args.vision_model
    vision_name = None
    if model_args.use_image and (vision_is_checkpoint or model_args.vision_pretrained):
        vision_name = model_args.vision_model if vision_is_checkpoint else f"timm/{model_args.vision_model}"
    else:
        settings["vision_config"] = {"architecture": model_args.vision_model}
    if model_args.text_config:
        text_config = dict(json.loads(model_args.text_config), vocab_size=len(processor.tokenizer))
        text_config.setdefault("model_type", "bert")
        if vision_name is not None:
            raise ValueError("A pretrained vision backbone with a random text encoder is not supported; drop one.")
        return model_class(model_class.config_class(text_config=text_config, **settings))
    return model_class.from_encoders(model_args.text_model_name_or_path, vision_name, **settings)


# -- data ---------------------------------------------------------------------------------------


def mre_structures(head: dict, tail: dict, relation: str) -> tuple[list[dict], list[dict]]:
    """The given pair as grid entities and (unless ``None``) one relation."""
    entities = sorted(
        [dict(head, type=MRE_ENTITY, role="head"), dict(tail, type=MRE_ENTITY, role="tail")], key=lambda e: e["start"]
    )
    head_index = 0 if entities[0]["role"] == "head" else 1
    plain = [{"start": e["start"], "end": e["end"], "type": e["type"]} for e in entities]
    if relation == "None":
        return plain, []
    return plain, [{"head": head_index, "tail": 1 - head_index, "type": relation}]


def prepare_split(
    dataset, task: str, label2id: dict, processor: ShapCAProcessor, use_context: bool, label_map: dict | None = None
):
    """Add ``pos_ids`` (the processor's tagger), ``labels`` (tag ids or grids) and the gold structures
    the metrics read (``gold_entities`` ``[start, end, type id]``, ``gold_relations`` ``[head, tail,
    type id]``, or ``gold_relation`` for a given pair); drop the context if asked. NER tags are
    read in the model's label ids (``label_map``: see `tag_id_map`)."""
    if task == "ner":
        model_id = tag_id_map(dataset.features["ner_tags"].feature.names, list(label2id), label_map or {})

    def add_columns(batch):
        batch["pos_ids"] = processor.tag(batch["words"])
        if task == "ner":
            batch["labels"] = [[model_id[tag] for tag in tags] for tags in batch["ner_tags"]]
        elif task == "mre":
            relations = dataset.features["relation"].names
            batch["labels"] = [
                encode_grid(len(words), *mre_structures(head, tail, relations[relation]), label2id)
                for words, head, tail, relation in zip(batch["words"], batch["head"], batch["tail"], batch["relation"])
            ]
            batch["gold_relation"] = batch["relation"]
        else:
            batch["labels"] = [
                encode_grid(len(words), entities, relations, label2id)
                for words, entities, relations in zip(batch["words"], batch["entities"], batch["relations"])
            ]
            batch["gold_entities"] = [[[e["start"], e["end"], label2id[e["type"]]] for e in es] for es in batch["entities"]]
            batch["gold_relations"] = [
                [[r["head"], r["tail"], label2id[r["type"]]] for r in rs] for rs in batch["relations"]
            ]
        if not use_context:
            batch["context"] = [None] * len(batch["words"])
        return batch

    return dataset.map(add_columns, batched=True, desc="POS tags and labels")


# -- metrics and records ------------------------------------------------------------------------


def decoded_structures(predictions, id2label: dict, task: str) -> list[dict]:
    """Structures from the arrays `MIETrainer.prediction_step` gathers (see `processing.decoding`)."""
    if task == "mre":
        return structures_from_predictions({"relation_mass": predictions}, id2label, "word_pair", [])
    ids, scores = predictions
    diagonal = ids if ids.ndim == 2 else np.diagonal(ids, axis1=1, axis2=2)
    num_words = (diagonal >= 0).sum(-1).tolist()
    return structures_from_predictions({"ids": ids, "scores": scores}, id2label, "ner" if task == "ner" else "word_pair", num_words)


def _rows(array: np.ndarray) -> list[list[int]]:
    """A padded ``(B, N, 3)`` array -> the rows of each example that are not padding."""
    return [[list(map(int, row)) for row in example if row[0] != IGNORE] for example in array]


def compute_metrics(prediction: EvalPrediction, *, task: str, id2label: dict, relation_names: Sequence[str] = ()) -> dict:
    """The task's scores (an `evaluate` module in ``metrics/``) of the gathered predictions.

    ``label_ids`` are the gold tags (NER), the gold relation ids (MRE, over ``relation_names``) or
    the gold ``(entities, relations)`` arrays (joint extraction); ``predictions`` are what
    `MIETrainer.prediction_step` returns.
    """
    id2label = {int(key): value for key, value in id2label.items()}
    structures = decoded_structures(prediction.predictions, id2label, task)
    metric = load_metric(task)
    if task == "ner":
        gold = [[id2label[int(t)] for t in row if t != IGNORE] for row in prediction.label_ids]
        pred = [tags_from_entities(s["entities"], len(g)) for s, g in zip(structures, gold)]
        return metric.compute(predictions=pred, references=gold)
    if task == "mre":
        gold = [relation_names[int(i)] for i in prediction.label_ids]
        return metric.compute(predictions=[s["relation"] for s in structures], references=gold)
    gold_entities, gold_relations = prediction.label_ids
    gold = [
        {"entities": [{"start": s, "end": e, "type": id2label[t]} for s, e, t in entities],
         "relations": [{"head": h, "tail": t, "type": id2label[r]} for h, t, r in relations]}
        for entities, relations in zip(_rows(gold_entities), _rows(gold_relations))
    ]  # fmt: skip
    pred = [{"entities": s["entities"], "relations": s["relations"]} for s in structures]
    return metric.compute(predictions=pred, references=gold)


def tags_from_entities(entities: Sequence[dict], num_words: int) -> list[str]:
    """BIO tags of ``num_words`` words from entity spans (words the model did not read are ``O``)."""
    tags = ["O"] * num_words
    for entity in entities:
        for position in range(entity["start"], min(entity["end"], num_words)):
            tags[position] = ("B-" if position == entity["start"] else "I-") + entity["type"]
    return tags


def prediction_records(dataset, structures: list[dict], task: str, id2label: dict) -> list[dict]:
    """One JSON record per example of a prepared split: its id, words, gold and predicted structures
    (NER gold in the model's labels, as scored)."""
    records = []
    for row, found in zip(dataset, structures):
        record = {"id": row["id"], "words": row["words"]}
        if task == "ner":
            record.update(gold=bio_entities([id2label[tag] for tag in row["labels"]]), pred=found["entities"])
        elif task == "mre":
            relation = dataset.features["relation"].names[row["relation"]]
            record.update(head=row["head"], tail=row["tail"], gold=relation, pred=found["relation"], score=found["score"])
        else:
            record.update(gold={"entities": row["entities"], "relations": row["relations"]}, pred=found)
        records.append(record)
    return records


def write_jsonl(path: Path, records) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def summarise_seeds(runs: dict[int, dict]) -> dict:
    """Mean and standard deviation over seeds of every numeric result."""
    summary = {"seeds": sorted(runs)}
    keys = set.intersection(*(set(r) for r in runs.values()))
    for key in sorted(keys):
        values = [runs[seed][key] for seed in sorted(runs)]
        if all(isinstance(v, (int, float)) for v in values):
            summary[f"{key}_mean"] = statistics.fmean(values)
            summary[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return summary
