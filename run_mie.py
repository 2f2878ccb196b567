#!/usr/bin/env python
"""Train, evaluate and predict with Shap-CA on a multimodal information extraction corpus.

    python run_mie.py configs/demo.json                      # the embedded demo, on CPU
    python run_mie.py configs/twitter2017.json --data_dir data/twitter2017 --output_dir runs/t17
    accelerate launch run_mie.py configs/mnre.json           # one GPU or many
    python run_mie.py configs/demo.json --seeds 1,2,3        # mean and standard deviation
    python run_mie.py --model_name_or_path runs/t17 --do_predict --predict_file new.jsonl --output_dir out

A single ``.json`` argument is a config file; flags after it override its values. The task
follows from the corpus: a CRF tagger for Twitter-2015/2017 (and the demo), the word-pair
head for MNRE and JMERE (and the word-pair demo).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from string import Template

import numpy as np
import torch
import transformers
import yaml
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoProcessor,
    AutoTokenizer,
    BertTokenizer,
    EarlyStoppingCallback,
    HfArgumentParser,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers.integrations import is_tensorboard_available

from modeling_shapca import MODEL_FOR_TASK, ShapCAConfig
from processing import ShapCADataCollator, ShapCAProcessor
from processing.contexts import read_context_lines
from processing.corpora import JMERE_ENTITY_TYPES, JMERE_RELATIONS, MNRE_RELATIONS, corpus_task, load_corpus
from processing.corpora.demo import PAIR_RELATIONS
from processing.metrics import bio_entities, mjere_scores, mre_scores, ner_scores
from processing.pos import PosTagger, pos_ids
from processing.wordpair import MRE_ENTITY, decode_grid, encode_grid, grid_label_names, mre_relation_from_sums

logger = logging.getLogger("run_mie")
IGNORE = -100
CARD_TEMPLATE = Path(__file__).resolve().parent / "model_cards" / "shapca.md"
TASK_TITLES = {
    "ner": "multimodal named entity recognition",
    "mre": "multimodal relation extraction",
    "mjere": "joint multimodal entity-relation extraction",
}


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A trained Shap-CA checkpoint to start from (or to predict with)."}
    )
    text_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "BERT-family encoder (Hub id or folder), e.g. google-bert/bert-base-uncased."},
    )
    text_config: str | None = field(
        default=None,
        metadata={
            "help": "JSON of a BERT config: build the text encoder from it, randomly initialised. Without "
            "text_model_name_or_path, a word-level tokenizer is built from the training corpus."
        },
    )
    vision_model: str = field(
        default="resnet152",
        metadata={"help": "A timm architecture (random init unless vision_pretrained) or a backbone Hub id/folder."},
    )
    vision_pretrained: bool = field(default=False, metadata={"help": "Load timm's pretrained weights (needs the Hub)."})
    image_size: int | None = field(
        default=None, metadata={"help": "Side of the input images (default: the backbone's)."}
    )
    use_image: bool = True
    fusion_use_context: bool = True
    fusion_num_heads: int = 12
    head_hidden_size: int = 256
    feature_embedding_size: int = 100
    sentence_pooling: str = "mean"
    alignment_loss: str = "shapley"
    alignment_players: str = "context"
    alignment_global_batch: bool = field(
        default=False, metadata={"help": "Play the Shapley games over the batch of all processes."}
    )
    tau: float = 0.1
    alpha: float = 0.2
    beta: float = 0.4
    wordpair_lambda: float = 1.0
    wordpair_contrastive: bool = True

    def config_switches(self) -> dict:
        names = (
            "use_image fusion_use_context fusion_num_heads head_hidden_size feature_embedding_size sentence_pooling "
            "alignment_loss alignment_players alignment_global_batch tau alpha beta wordpair_lambda wordpair_contrastive"
        ).split()
        return {name: getattr(self, name) for name in names}


@dataclass
class DataArguments:
    corpus: str = field(default="demo", metadata={"help": "twitter2015, twitter2017, mnre, jmere or demo."})
    data_dir: str | None = field(default=None, metadata={"help": "Folder of the corpus files."})
    image_dir: str | None = field(default=None, metadata={"help": "Folder of the images."})
    context_files: list[str] = field(default_factory=list, metadata={"help": "JSONL files of bridging contexts."})
    use_context: bool = field(default=True, metadata={"help": "False drops the contexts (text-only runs)."})
    missing_context: str = field(default="error", metadata={"help": "'error' or 'empty'."})
    missing_image: str = field(default="error", metadata={"help": "'error' or 'skip' for unreadable images."})
    pos_tagger: str = field(default="en_core_web_sm", metadata={"help": "spaCy model for POS tags, or 'none'."})
    max_length: int = field(default=128, metadata={"help": "Longest token sequence (text + context)."})
    demo_flavour: str = field(default="ner", metadata={"help": "Demo corpus: 'ner' or 'word_pair'."})
    demo_seed: int = 0
    demo_train_size: int = 1400
    demo_validation_size: int = 300
    demo_test_size: int = 300
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    predict_file: str | None = field(
        default=None, metadata={"help": "JSONL of new examples ({words, image, context}) for --do_predict."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Cache folder of datasets and POS tags."})


@dataclass
class MIETrainingArguments(TrainingArguments):
    """`TrainingArguments` with the paper's recipe as defaults (SPEC section 6)."""

    output_dir: str | None = field(default="runs/shapca")
    encoder_learning_rate: float = field(default=5e-5, metadata={"help": "Learning rate of the two encoders."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Learning rate of everything else."})
    per_device_train_batch_size: int = 28
    per_device_eval_batch_size: int = 32
    num_train_epochs: float = 30.0
    lr_scheduler_type: str = "cosine"
    warmup_steps: float = 0.05
    eval_strategy: str = "epoch"
    save_strategy: str = "epoch"
    save_total_limit: int | None = 2
    load_best_model_at_end: bool = True
    metric_for_best_model: str | None = "f1"
    early_stopping_patience: int = field(
        default=7, metadata={"help": "Epochs without a better dev F1 before stopping."}
    )
    remove_unused_columns: bool = False
    seeds: str | None = field(
        default=None, metadata={"help": "Comma-separated seeds: one run each, then mean and std."}
    )
    report_to: None | str | list[str] = None

    def __post_init__(self):
        if self.report_to is None:
            self.report_to = "tensorboard" if is_tensorboard_available() else "none"
        super().__post_init__()


# -- arguments ----------------------------------------------------------------------------------


def config_to_flags(config: dict) -> list[str]:
    """A JSON config -> command-line flags, so that later flags override it."""
    flags = []
    for key, value in config.items():
        if value is None:
            continue
        if isinstance(value, list):
            flags += [f"--{key}", *map(str, value)] if value else []
        elif isinstance(value, dict):
            flags += [f"--{key}", json.dumps(value)]
        else:
            flags += [f"--{key}", str(value)]
    return flags


def parse_arguments(argv: list[str] | None = None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith(".json"):
        with open(argv[0], encoding="utf-8") as handle:
            argv = config_to_flags(json.load(handle)) + argv[1:]
    parser = HfArgumentParser((ModelArguments, DataArguments, MIETrainingArguments))
    return parser.parse_args_into_dataclasses(args=argv)


# -- labels, processor, model -----------------------------------------------------------------


def label_names(corpus, data_args: DataArguments, task: str) -> list[str]:
    if task == "ner":
        return list(corpus["train"].features["ner_tags"].feature.names)
    if task == "mre":
        return grid_label_names([MRE_ENTITY], MNRE_RELATIONS)
    if data_args.corpus == "demo":
        return grid_label_names(["PER"], PAIR_RELATIONS)
    return grid_label_names(JMERE_ENTITY_TYPES, JMERE_RELATIONS)


def corpus_tokenizer(corpus) -> BertTokenizer:
    """A word-level tokenizer over the lower-cased words and context words of the training split."""
    words = set()
    for row in corpus["train"]:
        words.update(word.lower() for word in row["words"])
        words.update((row["context"] or "").lower().split())
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(words)]
    return BertTokenizer(vocab={word: i for i, word in enumerate(vocabulary)}, do_lower_case=True)


def image_processor_for(model_args: ModelArguments):
    if os.path.isdir(model_args.vision_model) or "/" in model_args.vision_model:
        return AutoImageProcessor.from_pretrained(model_args.vision_model)
    import timm
    from transformers import TimmWrapperImageProcessor

    pretrained_cfg = timm.models.get_pretrained_cfg(model_args.vision_model).to_dict()
    if model_args.image_size:
        pretrained_cfg["input_size"] = (3, model_args.image_size, model_args.image_size)
    return TimmWrapperImageProcessor(pretrained_cfg=pretrained_cfg, architecture=model_args.vision_model)


def build_processor(model_args: ModelArguments, data_args: DataArguments, corpus) -> ShapCAProcessor:
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


def build_model(model_args: ModelArguments, labels: list[str], task: str, processor: ShapCAProcessor):
    config_task = "ner" if task == "ner" else "word_pair"
    model_class = MODEL_FOR_TASK[config_task]
    if model_args.model_name_or_path:
        return model_class.from_pretrained(model_args.model_name_or_path)
    settings = dict(
        model_args.config_switches(),
        task=config_task,
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
        config = ShapCAConfig(text_config=text_config, **settings)
        if vision_name is None:
            return model_class(config)
        raise ValueError("A pretrained vision backbone with a random text encoder is not supported; drop one.")
    return model_class.from_encoders(model_args.text_model_name_or_path, vision_name, **settings)


# -- data ---------------------------------------------------------------------------------------


def prepare_split(dataset, task: str, label2id: dict, tagger: PosTagger, use_context: bool):
    """Add ``pos_ids`` and ``labels`` (tag ids or grids) to a split; drop the context if asked."""

    def add_columns(batch):
        batch["pos_ids"] = [pos_ids(tags) for tags in tagger(batch["words"])]
        if task == "ner":
            batch["labels"] = batch["ner_tags"]
        elif task == "mre":
            relations = dataset.features["relation"].names
            batch["labels"] = [
                encode_grid(len(words), *mre_structures(head, tail, relations[relation]), label2id)
                for words, head, tail, relation in zip(batch["words"], batch["head"], batch["tail"], batch["relation"])
            ]
        else:
            batch["labels"] = [
                encode_grid(len(words), entities, relations, label2id)
                for words, entities, relations in zip(batch["words"], batch["entities"], batch["relations"])
            ]
        if not use_context:
            batch["context"] = [None] * len(batch["words"])
        return batch

    return dataset.map(add_columns, batched=True, desc="POS tags and labels")


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


# -- trainer ------------------------------------------------------------------------------------


class MIETrainer(Trainer):
    """The Trainer with the paper's two learning rates, logged loss parts and decoded predictions.

    Evaluation returns decoded predictions (Viterbi tags, argmax grids, or for relation
    extraction the per-label probability mass between the given spans), so that metrics are
    computed on what the model would output, never on raw emissions.
    """

    def __init__(self, *args, task: str, metric_computer=None, card_writer=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.task = task
        self.metric_computer = metric_computer
        self.card_writer = card_writer
        self._loss_parts: dict[str, list[float]] = {}

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            model = self.model if model is None else model
            decay = set(self.get_decay_parameter_names(model))
            groups = {}
            for name, parameter in model.named_parameters():
                if not parameter.requires_grad:
                    continue
                encoder = ".text_model." in f".{name}" or ".vision_model." in f".{name}"
                key = (encoder, name in decay)
                groups.setdefault(key, []).append(parameter)
            # The optimizer named by --optim (fused AdamW by default), with one learning rate per group.
            optimizer_class, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
            self.optimizer = optimizer_class(
                [
                    {
                        "params": params,
                        "lr": self.args.encoder_learning_rate if encoder else self.args.learning_rate,
                        "weight_decay": self.args.weight_decay if decays else 0.0,
                    }
                    for (encoder, decays), params in groups.items()
                ],
                **optimizer_kwargs,
            )
        return self.optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = {key: value for key, value in inputs.items() if key != "spans"}
        outputs = model(**inputs)
        for part in ("loss_main", "loss_semantic", "loss_modality"):
            value = getattr(outputs, part, None)
            if value is not None and model.training:
                self._loss_parts.setdefault(part, []).append(float(value.detach()))
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def log(self, logs, start_time=None):
        if "loss" in logs and self._loss_parts:
            logs.update({part: round(sum(v) / len(v), 4) for part, v in self._loss_parts.items()})
            self._loss_parts = {}
        super().log(logs, start_time)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        spans = inputs.pop("spans", None)
        labels = inputs.get("labels")
        with torch.no_grad():
            outputs = model(**inputs)
        loss = outputs.loss.detach() if outputs.loss is not None else None
        if prediction_loss_only:
            return loss, None, None
        word_mask = inputs["word_index"] >= 0
        size = self.metric_computer.width
        if self.task == "mre":
            predictions = relation_mass(outputs.logits.softmax(-1), spans)
            return loss, predictions, spans
        predictions = self.accelerator.unwrap_model(model).decode(outputs.logits, word_mask)
        return loss, pad_to(predictions, size), pad_to(labels, size) if labels is not None else None

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        self.metric_computer.rows = eval_dataset if eval_dataset is not None else self.eval_dataset
        return super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix="test"):
        self.metric_computer.rows = test_dataset
        return super().predict(test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)

    def create_model_card(self, *args, **kwargs):
        if self.card_writer is not None and self.is_world_process_zero():
            self.card_writer()


def pad_to(tensor: torch.Tensor, size: int) -> torch.Tensor:
    """Pad the word axes of ``(B, W)`` or ``(B, W, W)`` to ``size`` with -100 (so batches concatenate)."""
    padding = []
    for _ in range(tensor.dim() - 1):
        padding = [0, size - tensor.shape[-1 - len(padding) // 2]] + padding
    return torch.nn.functional.pad(tensor, padding, value=IGNORE).to(torch.int32)  # gloo gathers no int16


def relation_mass(probabilities: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
    """Per-label sums of ``P^final`` ``(B, W, W, C)`` over the cells between each example's head and
    tail (rows: the earlier span), plus a last column that is 1 when the head comes first."""
    positions = torch.arange(probabilities.shape[1], device=probabilities.device)
    head_start, head_end, tail_start, tail_end = spans.unbind(-1)
    forward = head_start < tail_start
    first_start = torch.where(forward, head_start, tail_start)
    first_end = torch.where(forward, head_end, tail_end)
    second_start = torch.where(forward, tail_start, head_start)
    second_end = torch.where(forward, tail_end, head_end)
    rows = (positions >= first_start[:, None]) & (positions < first_end[:, None])
    columns = (positions >= second_start[:, None]) & (positions < second_end[:, None])
    cells = (rows[:, :, None] & columns[:, None, :]).to(probabilities.dtype)
    mass = torch.einsum("bij,bijc->bc", cells, probabilities)
    return torch.cat([mass, forward[:, None].to(mass.dtype)], dim=-1)


@dataclass
class MetricComputer:
    """Turns decoded predictions of one split into metrics and prediction records.

    ``rows`` is the split being scored (set by the trainer before each evaluation), so gold
    structures come from the corpus itself, not from a re-decoded grid.
    """

    task: str
    labels: list[str]
    width: int
    rows: object = None
    last_records: list = field(default_factory=list)

    def __call__(self, prediction) -> dict[str, float]:
        predictions = np.asarray(prediction.predictions)
        rows = self.rows
        id2label = dict(enumerate(self.labels))
        records = []
        if self.task == "ner":
            names = rows.features["ner_tags"].feature.names
            gold, pred = [], []
            for row, tags in zip(rows, predictions):
                gold_tags = [names[t] for t in row["ner_tags"]]
                pred_tags = [self.labels[t] if t >= 0 else "O" for t in tags[: len(row["words"])]]
                pred_tags += ["O"] * (len(gold_tags) - len(pred_tags))  # words cut by max_length
                gold.append(gold_tags)
                pred.append(pred_tags)
                records.append(
                    {
                        "id": row["id"],
                        "words": row["words"],
                        "gold": bio_entities(gold_tags),
                        "pred": bio_entities(pred_tags),
                    }
                )
            scores = ner_scores(gold, pred)
        elif self.task == "mre":
            names = rows.features["relation"].names
            gold, pred = [], []
            for row, mass in zip(rows, predictions):
                relation, score = mre_relation_from_sums(mass[:-1], bool(mass[-1]), id2label)
                gold.append(names[row["relation"]])
                pred.append(relation)
                records.append(
                    {
                        "id": row["id"],
                        "words": row["words"],
                        "head": row["head"],
                        "tail": row["tail"],
                        "gold": gold[-1],
                        "pred": relation,
                        "score": round(score, 4),
                    }  # fmt: skip
                )
            scores = mre_scores(gold, pred)
        else:
            gold, pred = [], []
            for row, grid in zip(rows, predictions):
                size = len(row["words"])
                entities, relations = decode_grid(grid[:size, :size], id2label)
                gold.append((row["entities"], row["relations"]))
                pred.append((entities, relations))
                records.append(
                    {
                        "id": row["id"],
                        "words": row["words"],
                        "gold": {"entities": row["entities"], "relations": row["relations"]},
                        "pred": {"entities": entities, "relations": relations},
                    }  # fmt: skip
                )
            scores = mjere_scores(gold, pred)
        self.last_records = records
        return scores


# -- outputs ------------------------------------------------------------------------------------


def write_jsonl(path: Path, records) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def context_generators(context_files: list[str]) -> str:
    generators = set()
    for path in context_files:
        for _, record in read_context_lines(path):
            generators.add(record.get("generator", "unknown"))
            break
    return ", ".join(sorted(generators)) or "none"


def write_model_card(output_dir: Path, model_args, data_args, training_args, task: str, results: dict) -> None:
    """The checkpoint's README.md: results as model-index YAML, data, context generator, hyperparameters."""
    repo_id = training_args.hub_model_id or f"shapca-{data_args.corpus}"
    metrics = [
        {
            "type": key.removeprefix("test_"),
            "value": round(float(value), 4),
            "name": f"test {key.removeprefix('test_')}",
        }
        for key, value in results.items()
        if key.startswith("test_") and key.split("_", 1)[1] in ("f1", "precision", "recall", "entity_f1", "strict_f1")
    ]
    metadata = {
        "library_name": "transformers",
        "tags": ["shapca", "multimodal", "information-extraction", TASK_TITLES[task].replace(" ", "-")],
        "pipeline_tag": "token-classification",
        "datasets": [data_args.corpus],
        "model-index": [
            {
                "name": repo_id,
                "results": [
                    {
                        "task": {"type": "token-classification", "name": TASK_TITLES[task]},
                        "dataset": {"type": data_args.corpus, "name": data_args.corpus, "split": "test"},
                        "metrics": metrics,
                    }
                ],
            }
        ],
    }
    shown = {key: value for key, value in results.items() if isinstance(value, (int, float))}
    table = "| metric | value |\n|---|---|\n" + "\n".join(f"| {k} | {v:.4f} |" for k, v in sorted(shown.items()))
    hyper = {
        "learning_rate (non-encoder)": training_args.learning_rate,
        "encoder_learning_rate": training_args.encoder_learning_rate,
        "batch_size": training_args.per_device_train_batch_size,
        "epochs": training_args.num_train_epochs,
        "scheduler": f"{training_args.lr_scheduler_type}, warmup {training_args.warmup_steps}",
        "early_stopping_patience": training_args.early_stopping_patience,
        "seed": training_args.seed,
        **model_args.config_switches(),
        "max_length": data_args.max_length,
        "pos_tagger": data_args.pos_tagger,
    }
    text_encoder = model_args.text_model_name_or_path or f"random init from {model_args.text_config}"
    card = Template(CARD_TEMPLATE.read_text(encoding="utf-8")).substitute(
        metadata=yaml.safe_dump(metadata, sort_keys=False).strip(),
        model_name=repo_id,
        task_title=TASK_TITLES[task],
        corpus=data_args.corpus,
        text_encoder=text_encoder,
        image_encoder=f"`{model_args.vision_model}`" if model_args.use_image else "none (w/o Image)",
        context_generator=context_generators(data_args.context_files) if data_args.use_context else "none",
        alignment=f"{model_args.alignment_loss} loss, players: {model_args.alignment_players}, "
        f"alpha {model_args.alpha}, beta {model_args.beta}, tau {model_args.tau}",
        fusion="adaptive (context-gated)" if model_args.fusion_use_context else "plain cross-attention",
        head="CRF" if task == "ner" else "word-pair contrastive" if model_args.wordpair_contrastive else "word-pair",
        results_table=table,
        hyperparameters="\n".join(f"- {key}: {value}" for key, value in hyper.items()),
        repo_id=repo_id,
        pipeline_task="multimodal-ner" if task == "ner" else "multimodal-relation-extraction",
        data_note=f"Corpus `{data_args.corpus}`"
        + (f" from `{data_args.data_dir}`" if data_args.data_dir else "")
        + ". Twitter content: using it means accepting the terms of Twitter and of the corpus authors.",
    )
    (output_dir / "README.md").write_text(card, encoding="utf-8")


# -- runs ---------------------------------------------------------------------------------------


def load_new_examples(path: str) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row.get("words"), list):
                raise ValueError(
                    f"{path}:{number}: expected an object with a 'words' list (and optional image, context)."
                )
            rows.append({"words": row["words"], "image": row.get("image"), "context": row.get("context")})
    return rows


def predict_new_examples(model_args, data_args, training_args) -> Path:
    """``--do_predict --predict_file``: predictions of a trained checkpoint for new examples."""
    if not model_args.model_name_or_path:
        raise ValueError("--predict_file needs --model_name_or_path, a trained checkpoint.")
    config = AutoConfig.from_pretrained(model_args.model_name_or_path)
    model = MODEL_FOR_TASK[config.task].from_pretrained(model_args.model_name_or_path).eval()
    processor = AutoProcessor.from_pretrained(model_args.model_name_or_path)
    # Tag the words as the checkpoint was trained (the processor keeps the tagger's name).
    tagger = PosTagger(getattr(processor, "pos_tagger", data_args.pos_tagger), cache_dir=pos_cache(data_args))
    collator = ShapCADataCollator(processor, data_args.missing_image, use_images=model.config.use_image)
    rows = load_new_examples(data_args.predict_file)
    records = []
    for start in range(0, len(rows), training_args.per_device_eval_batch_size):
        chunk = rows[start : start + training_args.per_device_eval_batch_size]
        for row, tags in zip(chunk, tagger([row["words"] for row in chunk])):
            row["pos_ids"] = pos_ids(tags)
        batch = collator(chunk)
        with torch.no_grad():
            logits = model(**batch).logits
        decoded = model.decode(logits, batch["word_index"] >= 0)
        for row, prediction in zip(chunk, decoded.tolist()):
            size = len(row["words"])
            if model.config.task == "ner":
                tags = [model.config.id2label[t] if t >= 0 else "O" for t in prediction[:size]]
                result = {"entities": bio_entities(tags + ["O"] * (size - len(tags)))}
            else:
                entities, relations = decode_grid(np.asarray(prediction)[:size, :size], model.config.id2label)
                result = {"entities": entities, "relations": relations}
            records.append({"words": row["words"], "image": row["image"], "pred": result})
    output_dir = Path(training_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "predictions_predict.jsonl"
    write_jsonl(path, records)
    logger.info("Wrote %d predictions to %s", len(records), path)
    return path


def pos_cache(data_args: DataArguments) -> Path | None:
    return Path(data_args.cache_dir) / "pos" if data_args.cache_dir else None


def train_and_evaluate(model_args, data_args, training_args) -> dict:
    """One run: build, train with early stopping on dev F1, score dev and test, write everything."""
    set_seed(training_args.seed)
    output_dir = Path(training_args.output_dir)
    task = corpus_task(data_args.corpus, data_args.demo_flavour)
    demo = dict(
        flavour=data_args.demo_flavour,
        seed=data_args.demo_seed,
        train_size=data_args.demo_train_size,
        validation_size=data_args.demo_validation_size,
        test_size=data_args.demo_test_size,
    )
    corpus = load_corpus(
        data_args.corpus,
        data_args.data_dir,
        image_dir=data_args.image_dir,
        context_files=data_args.context_files,
        missing_context=data_args.missing_context,
        cache_dir=data_args.cache_dir,
        **(demo if data_args.corpus == "demo" else {}),
    )
    if data_args.max_train_samples:
        corpus["train"] = corpus["train"].select(range(min(data_args.max_train_samples, len(corpus["train"]))))
    if data_args.max_eval_samples:
        for split in ("validation", "test"):
            corpus[split] = corpus[split].select(range(min(data_args.max_eval_samples, len(corpus[split]))))
    labels = label_names(corpus, data_args, task)
    processor = build_processor(model_args, data_args, corpus)
    model = build_model(model_args, labels, task, processor)
    tagger = PosTagger(data_args.pos_tagger, cache_dir=pos_cache(data_args))
    label2id = {label: i for i, label in enumerate(labels)}
    prepared = {
        split: prepare_split(part, task, label2id, tagger, data_args.use_context) for split, part in corpus.items()
    }
    truncated = processor.count_truncated(prepared["train"]["words"], prepared["train"]["context"])
    if truncated:
        logger.warning("%d training examples are longer than max_length=%d: their last words are dropped.",
                       truncated, data_args.max_length)  # fmt: skip

    metric_computer = MetricComputer(task, labels, width=data_args.max_length)
    results: dict = {}
    trainer = MIETrainer(
        model=model,
        args=training_args,
        train_dataset=prepared["train"],
        eval_dataset=prepared["validation"],
        data_collator=ShapCADataCollator(processor, data_args.missing_image, use_images=model.config.use_image),
        processing_class=processor,
        compute_metrics=metric_computer,
        callbacks=[EarlyStoppingCallback(training_args.early_stopping_patience)]
        if training_args.load_best_model_at_end
        else [],
        task=task,
        metric_computer=metric_computer,
        card_writer=lambda: write_model_card(output_dir, model_args, data_args, training_args, task, results),
    )
    if training_args.do_train:
        outcome = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        trainer.save_model()
        processor.save_pretrained(output_dir)
        results.update(outcome.metrics)
    if training_args.do_eval:
        results.update(trainer.evaluate(prepared["validation"]))
        write_jsonl(output_dir / "predictions_validation.jsonl", metric_computer.last_records)
        test = trainer.predict(prepared["test"])
        results.update(test.metrics)
        write_jsonl(output_dir / "predictions_test.jsonl", metric_computer.last_records)
    if trainer.is_world_process_zero():
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "all_results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        write_model_card(output_dir, model_args, data_args, training_args, task, results)
    if training_args.push_to_hub:
        trainer.push_to_hub()
    return results


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


def main(argv: list[str] | None = None) -> dict:
    model_args, data_args, training_args = parse_arguments(argv)
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.INFO if training_args.should_log else logging.WARNING,
    )
    transformers.utils.logging.set_verbosity(logging.INFO if training_args.should_log else logging.WARNING)
    if data_args.predict_file:
        return {"predictions": str(predict_new_examples(model_args, data_args, training_args))}
    if not training_args.seeds:
        return train_and_evaluate(model_args, data_args, training_args)
    runs = {}
    for seed in (int(s) for s in training_args.seeds.split(",")):
        seed_args = replace(training_args, seed=seed, output_dir=str(Path(training_args.output_dir) / f"seed-{seed}"))
        runs[seed] = train_and_evaluate(model_args, data_args, seed_args)
    summary = summarise_seeds(runs)
    if training_args.process_index == 0:
        path = Path(training_args.output_dir) / "all_results.json"
        path.write_text(json.dumps(summary, indent=2) + "\n")
        for key in ("eval_f1", "test_f1"):
            if f"{key}_mean" in summary:
                logger.info("%s: %.4f +- %.4f over seeds %s", key, summary[f"{key}_mean"], summary[f"{key}_std"],
                            summary["seeds"])  # fmt: skip
    return summary


if __name__ == "__main__":
    main()
