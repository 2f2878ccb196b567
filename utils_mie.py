"""What `run_mie.py` builds and reads: label schemas, the processor and the model, prepared
splits, the metrics (a pure `compute_metrics`) and the prediction records."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import socket
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer, BertTokenizer, EvalPrediction

from modeling_shapca import MODEL_FOR_TASK
from processing import ShapCAProcessor
from processing.contexts import read_context_lines
from processing.corpora import JMERE_ENTITY_TYPES, JMERE_RELATIONS, MNRE_RELATIONS
from processing.corpora.demo import PAIR_RELATIONS
from processing.decoding import IGNORE, bio_entities, structures_from_predictions
from processing.tasks import TASKS
from processing.wordpair import MRE_ENTITY, MRE_NO_RELATION, encode_grid, grid_label_names, unencodable_items
from shapca_metrics import load_metric

logger = logging.getLogger(__name__)
# The libraries whose version is recorded with every result (see `run_environment`).
ENVIRONMENT_PACKAGES = ("torch", "transformers", "datasets", "accelerate", "timm", "numpy", "tokenizers")

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
    model_class = MODEL_FOR_TASK[TASKS[task].head]
    if model_args.model_name_or_path:
        return model_class.from_pretrained(model_args.model_name_or_path)
    settings = dict(
        model_args.config_settings(model_class.config_class),
        id2label=dict(enumerate(labels)),
        max_words=max(512, processor.max_length),
    )
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


def data_summary(data_args, model_args, prepared: dict, processor: ShapCAProcessor) -> dict:
    """What a run read, for its model card: the corpus, each split's examples and how many had a
    context, where the contexts came from, the processor's settings and the trained checkpoint
    the run started from or scored (``model_name_or_path``)."""
    return {
        "corpus": data_args.corpus,
        "data_dir": data_args.data_dir,
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
    if task == "mre":
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
    if task == "ner":
        model_id = tag_id_map(dataset.features["ner_tags"].feature.names, list(label2id), label_map or {})
    else:
        structures = grid_structures(dataset, task, label2id)

    def add_columns(batch, indices):
        batch["pos_ids"] = processor.tag(batch["words"])
        if task == "ner":
            batch["labels"] = [[model_id[tag] for tag in tags] for tags in batch["ner_tags"]]
            batch["gold_tags"] = batch["labels"]
        else:
            batch["labels"] = [
                encode_grid(len(words), *structures[i], label2id) for words, i in zip(batch["words"], indices)
            ]
        if task == "mre":
            batch["gold_relation"] = batch["relation"]
        elif task != "ner":
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


# -- metrics and records ------------------------------------------------------------------------


def decoded_structures(predictions, id2label: dict, task: str, none_weight: float = 1.0) -> list[dict]:
    """Structures from the arrays `MIETrainer.prediction_step` gathers (see `processing.decoding`);
    ``none_weight``: the weight of ``None`` in the decision of a given pair (MNRE)."""
    if task == "mre":
        return structures_from_predictions({"relation_mass": predictions}, id2label, "word_pair", [], none_weight)
    ids, scores = predictions
    return structures_from_predictions({"ids": ids, "scores": scores}, id2label, TASKS[task].head)


# The weights of `None` tried by `select_none_weight`: 1 (the paper's argmax) and around it.
NONE_WEIGHTS = tuple(round(0.05 * step, 2) for step in range(1, 41))


def select_none_weight(prediction: EvalPrediction, id2label: dict, relation_names: Sequence[str]) -> dict[float, float]:
    """Dev F1 of the given-pair decision (MNRE) for each weight of ``None`` in `NONE_WEIGHTS`, best first
    (ties go to the weight nearest 1, the paper's rule)."""
    f1 = {
        weight: compute_metrics(
            prediction, task="mre", id2label=id2label, relation_names=relation_names, none_weight=weight
        )["f1"]
        for weight in NONE_WEIGHTS
    }
    return dict(sorted(f1.items(), key=lambda item: (-item[1], abs(item[0] - 1.0))))


def _rows(array: np.ndarray) -> list[list[int]]:
    """A padded ``(B, N, 3)`` array -> the rows of each example that are not padding."""
    return [[list(map(int, row)) for row in example if row[0] != IGNORE] for example in array]


def compute_metrics(
    prediction: EvalPrediction,
    *,
    task: str,
    id2label: dict,
    relation_names: Sequence[str] = (),
    none_weight: float = 1.0,
) -> dict:
    """The task's scores (an `evaluate` module in ``shapca_metrics/``) of the gathered predictions.

    ``label_ids`` are the gold tags of every word (NER), the gold relation ids (MRE, over ``relation_names``) or
    the gold ``(entities, relations)`` arrays (joint extraction); ``predictions`` are what
    `MIETrainer.prediction_step` returns. ``none_weight``: see `decoded_structures`.
    """
    id2label = {int(key): value for key, value in id2label.items()}
    structures = decoded_structures(prediction.predictions, id2label, task, none_weight)
    metric = load_metric(TASKS[task].metric)
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
    return metric.compute(predictions=[metric_structure(s) for s in structures], references=gold)


def metric_structure(structure: dict) -> dict:
    """A decoded joint structure in the metric's features: the decoder's scores (and anything else
    it attaches) are not part of what is scored."""
    return {
        "entities": [{key: entity[key] for key in ("start", "end", "type")} for entity in structure["entities"]],
        "relations": [{key: relation[key] for key in ("head", "tail", "type")} for relation in structure["relations"]],
    }


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
            record.update(
                head=row["head"], tail=row["tail"], gold=relation, pred=found["relation"], score=found["score"]
            )
        else:
            record.update(gold={"entities": row["entities"], "relations": row["relations"]}, pred=found)
        records.append(record)
    return records


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the whole new one, never a
    part: write a temporary file beside it, flush it to disk, then rename it over ``path``."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def write_jsonl(path: Path, records) -> None:
    write_text_atomic(path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))


def run_environment(training_args) -> dict:
    """What a run's numbers depend on besides its config and seed: the device, torch's CPU threads
    (they set the order of floating-point sums) and the library versions. Saved in
    ``all_results.json`` under ``"environment"``."""
    device = training_args.device
    return {
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "processes": training_args.world_size,
        "torch_num_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: package_version(name) for name in ENVIRONMENT_PACKAGES},
    }


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_name() -> str:
    """The processor's model name (Linux's /proc/cpuinfo), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def read_results(path: str | os.PathLike) -> dict | None:
    """The results JSON at ``path``, or None when it is missing or not a whole JSON object."""
    try:
        results = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return results if isinstance(results, dict) else None


class OutputDirLock:
    """Holds ``output_dir/.run_mie.lock`` (the owner's process id and host) while a run writes into
    the folder, so that a second run on the same folder is refused instead of mixing two models'
    files. A lock whose process is gone (a killed run) is taken over with a warning."""

    FILE = ".run_mie.lock"

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / self.FILE
        self.owner = f"{os.getpid()} {socket.gethostname()}"

    @staticmethod
    def _alive(owner: str) -> bool:
        pid, _, host = owner.partition(" ")
        if host.strip() != socket.gethostname() or not pid.isdigit():
            return True  # another machine's process (or an unknown format): cannot tell, so in use
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def __enter__(self):
        folder = self.path.parent
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(
                f"--output_dir {folder} is a file, not a folder: give a folder to write the run into."
            )
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(f"--output_dir {folder} cannot be written: give a folder you may write into.")
        while True:
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                owner = self.path.read_text(encoding="utf-8", errors="replace").strip()
                if self._alive(owner):
                    raise RuntimeError(
                        f"{folder} is in use by another run_mie.py (process and host: {owner}, see {self.path}). "
                        "Wait for it to finish or give another --output_dir; if no such run is going on, "
                        f"delete {self.path}."
                    ) from None
                logger.warning("Taking over the lock of %s left by a run that is gone (%s).", folder, owner)
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(self.owner + "\n")
            return self

    def __exit__(self, *exc_info):
        try:
            if self.path.read_text(encoding="utf-8").strip() == self.owner:
                self.path.unlink()
        except FileNotFoundError:
            pass


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
