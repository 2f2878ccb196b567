#!/usr/bin/env python
"""Train, evaluate and predict with Shap-CA on a multimodal information extraction corpus.

    python run_mie.py configs/demo.json                      # the embedded demo, on CPU
    python run_mie.py configs/twitter2017.json --data_dir data/twitter2017 --output_dir runs/t17
    accelerate launch run_mie.py configs/mnre.json           # one GPU or many
    python run_mie.py configs/demo.json --seeds 1,2,3        # mean and standard deviation
    python run_mie.py configs/demo.json --resume_from_checkpoint true   # go on after a stop
    python run_mie.py --model_name_or_path runs/t17 --do_predict --predict_file new.jsonl --output_dir out

A single ``.json`` argument is a config file; flags after it override its values. The task
follows from the corpus: a CRF tagger for Twitter-2015/2017 (and the demo), the word-pair
head for MNRE and JMERE (and the word-pair demo). The pieces live beside this script:
`trainer_mie.py` (the Trainer subclass) and `utils_mie.py` (building, data, metrics, records).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig, AutoProcessor, EarlyStoppingCallback, HfArgumentParser, TrainingArguments, set_seed
from transformers.integrations import is_tensorboard_available

from modeling_shapca import MODEL_FOR_TASK, ShapCAConfig
from processing import ShapCADataCollator
from processing.corpora import corpus_task, load_corpus
from processing.input_files import FileFormatError, check_text, check_words
from trainer_mie import MIETrainer
from utils_mie import (
    OutputDirLock,
    build_model,
    build_processor,
    compute_metrics,
    data_summary,
    decoded_structures,
    label_names,
    one_row_per_sentence,
    parse_label_map,
    prediction_records,
    prepare_split,
    read_results,
    run_environment,
    select_none_weight,
    summarise_seeds,
    write_jsonl,
    write_text_atomic,
)

logger = logging.getLogger("run_mie")


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
        names = [
            "use_image",
            "fusion_use_context",
            "fusion_num_heads",
            "head_hidden_size",
            "feature_embedding_size",
            "sentence_pooling",
            "alignment_loss",
            "alignment_players",
            "alignment_global_batch",
            "tau",
            "alpha",
            "beta",
            "wordpair_lambda",
            "wordpair_contrastive",
        ]
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
    label_map: list[str] = field(
        default_factory=list,
        metadata={
            "help": "CORPUS_TYPE=MODEL_TYPE pairs: read the corpus's entity types as the model's when scoring a "
            "checkpoint on another corpus (OTHER <-> MISC is built in)."
        },
    )
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
    train_sampling_strategy: str = field(
        default="random",
        metadata={
            "help": "'group_by_length' batches examples of similar length (the 'length' column: tokens per "
            "example), which pads less; 'random' (default) as the Trainer. Evaluation keeps the corpus order."
        },
    )
    seeds: str | None = field(
        default=None, metadata={"help": "Comma-separated seeds: one run each, then mean and std."}
    )
    torch_num_threads: int | None = field(
        default=None,
        metadata={
            "help": "CPU threads of torch's operators (default: torch's choice, one per core; run_grid.py "
            "gives each run its --cpus_per_trial). Part of what a result depends on: recorded in "
            "all_results.json under 'environment'."
        },
    )
    select_mre_none_weight: bool = field(
        default=False,
        metadata={
            "help": "MNRE: after training, choose on dev the weight of None against the relations in the decision "
            "of a given pair (mre_none_weight; 1.0, the default, is the paper's argmax), keep it in the checkpoint "
            "and score with it. all_results.json also gives the F1 at 1.0 (eval_f1_none_weight_1, test_...)."
        },
    )
    report_to: None | str | list[str] = None
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Train again over a finished run: --resume_from_checkpoint true otherwise leaves it as it is."
        },
    )

    def __post_init__(self):
        if self.report_to is None:
            self.report_to = "tensorboard" if is_tensorboard_available() else "none"
        if self.torch_num_threads is not None and self.torch_num_threads < 1:
            raise ValueError(f"--torch_num_threads must be at least 1, got {self.torch_num_threads}.")
        super().__post_init__()


# -- arguments ----------------------------------------------------------------------------------

ARGUMENT_CLASSES = (ModelArguments, DataArguments, MIETrainingArguments)
# [CLS] word [SEP] context [SEP]: the fewest tokens that still read one word and one context token.
MIN_MAX_LENGTH = 5


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


class UsageError(ValueError):
    """A command line or config file that run_mie.py cannot use; the message says what to change.
    From the command line it is one line on standard error, not a traceback."""


def flag_names() -> set[str]:
    """Every flag of run_mie.py: the fields of its three argument classes."""
    return {field.name for arguments in ARGUMENT_CLASSES for field in dataclasses.fields(arguments) if field.init}


def unknown_flag_error(flag: str, where: str = "") -> UsageError:
    name = flag.lstrip("-").partition("=")[0]
    close = difflib.get_close_matches(name, sorted(flag_names()), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(f'--{match}' for match in close)}? " if close else ""
    return UsageError(f"{where}unknown flag --{name}: {hint}`python run_mie.py --help` lists the flags.")


def read_config_file(path: str) -> dict:
    """A JSON config file of flags; an unreadable file, broken JSON or an unknown key names the file (and line)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read this config file ({error}).") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(
            f"{path}:{error.lineno}:{error.colno}: not valid JSON ({error.msg}); fix the config file."
        ) from None
    if not isinstance(config, dict):
        raise UsageError(f'{path}: a config file holds one JSON object of flags, e.g. {{"alpha": 0.2}}.')
    for key in config:
        if key.replace("-", "_") not in flag_names():  # the parser takes dashed spellings too
            raise unknown_flag_error(key, where=f"{path}: ")
    return config


def check_model_path(name_or_path: str | None) -> None:
    """A ``--model_name_or_path`` that is meant as a folder (absolute, relative with ./ or ../, or with
    more than one /) must be one: otherwise transformers reports a failed Hub lookup."""
    if name_or_path is None or Path(name_or_path).is_dir():
        return
    if Path(name_or_path).exists():
        raise UsageError(f"--model_name_or_path {name_or_path} is a file: give the folder of a checkpoint.")
    looks_like_a_path = (
        Path(name_or_path).is_absolute() or name_or_path.startswith((".", "~")) or name_or_path.count("/") > 1
    )
    if looks_like_a_path:
        raise UsageError(
            f"--model_name_or_path {name_or_path}: no such folder. Give the folder of a checkpoint that "
            "run_mie.py saved, or a Hub id such as org/shapca-twitter17."
        )


def parse_arguments(argv: list[str] | None = None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith(".json"):
        argv = config_to_flags(read_config_file(argv[0])) + argv[1:]
    # No abbreviations: a misspelt flag (--num_train_epoch) is an error, not another option.
    parser = HfArgumentParser(ARGUMENT_CLASSES, allow_abbrev=False)
    _, unknown = parser.parse_known_args(argv)
    flags = [word for word in unknown if word.startswith("-")]
    if flags:
        raise unknown_flag_error(flags[0])
    if unknown:
        raise UsageError(f"unexpected value(s) {unknown}: a value follows its flag, e.g. --alpha 0.2.")
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    # The config class's own check, before any data is read (the model is built much later).
    ShapCAConfig.check_numbers(model_args.config_switches())
    check_model_path(model_args.model_name_or_path)
    if data_args.max_length < MIN_MAX_LENGTH:
        raise UsageError(
            f"--max_length {data_args.max_length} cannot hold a word and its context: "
            f"[CLS] word [SEP] context [SEP] needs at least {MIN_MAX_LENGTH} tokens (the corpus configs use 128)."
        )
    return model_args, data_args, training_args


def resume_requested(training_args) -> bool:
    value = training_args.resume_from_checkpoint
    return value is not None and str(value).lower() not in ("false", "no", "")


def resume_checkpoint(training_args) -> str | None:
    """``--resume_from_checkpoint``: a path as given, or ``true``: the last complete checkpoint of
    ``output_dir`` (one a kill interrupted while saving has no ``trainer_state.json``: skipped)."""
    value = training_args.resume_from_checkpoint
    if not resume_requested(training_args):
        return None
    if str(value).lower() not in ("true", "yes", "last"):
        return value
    complete = [
        path for path in Path(training_args.output_dir).glob("checkpoint-*")
        if (path / "trainer_state.json").exists() and path.name.split("-")[-1].isdigit()
    ]  # fmt: skip
    if not complete:
        logger.warning("No complete checkpoint in %s: training from the start.", training_args.output_dir)
        return None
    return str(max(complete, key=lambda path: int(path.name.split("-")[-1])))


# -- runs ---------------------------------------------------------------------------------------


def load_new_examples(path: str) -> list[dict]:
    """``--predict_file``: one JSON object per line, ``{"words": [...], "image": path, "context": str}``.

    ``image`` is a path, absolute or relative to the current directory (a predict file names the
    images it wants on purpose); ``image`` and ``context`` are optional.
    """
    rows = []
    with open(path, "rb") as handle:
        lines = handle.read().split(b"\n")
    for number, line in enumerate(lines, start=1):
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
            line = line[3:]
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise ValueError(f"{path}:{number}: not UTF-8 text ({error.reason} at byte {error.start}).") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not a JSON object ({error.msg}).") from None
        except RecursionError:
            raise ValueError(f"{path}:{number}: not a JSON object (nested too deeply).") from None
        if not isinstance(row, dict) or not isinstance(row.get("words"), list):
            raise ValueError(f"{path}:{number}: expected an object with a 'words' list (and optional image, context).")
        check_words(path, number, row["words"], FileFormatError)
        if row.get("context") is not None:
            check_text(path, number, row["context"], "'context'", FileFormatError)
        if row.get("image") is not None and not isinstance(row["image"], str):
            raise FileFormatError(path, number, f"'image' is a {type(row['image']).__name__}; expected a path.")
        rows.append({"words": row["words"], "image": row.get("image"), "context": row.get("context")})
    return rows


def predict_new_examples(model_args, data_args, training_args) -> Path:
    """``--do_predict --predict_file``: predictions of a trained checkpoint for new examples.

    Long texts are read in overlapping windows, as the pipeline reads them."""
    if not model_args.model_name_or_path:
        raise ValueError("--predict_file needs --model_name_or_path, a trained checkpoint.")
    config = AutoConfig.from_pretrained(model_args.model_name_or_path)
    model = MODEL_FOR_TASK[config.task].from_pretrained(model_args.model_name_or_path).eval()
    processor = AutoProcessor.from_pretrained(model_args.model_name_or_path)
    collator = ShapCADataCollator(
        processor, data_args.missing_image, use_images=model.config.use_image, return_overflowing_tokens=True
    )
    rows = load_new_examples(data_args.predict_file)
    records = []
    for start in range(0, len(rows), training_args.per_device_eval_batch_size):
        chunk = rows[start : start + training_args.per_device_eval_batch_size]
        batch = collator(chunk)
        with torch.no_grad():
            outputs = model(**batch)
        for row, found in zip(chunk, processor.post_process(model, outputs, batch)):
            records.append({"words": row["words"], "image": row["image"], "pred": found})
    output_dir = Path(training_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "predictions_predict.jsonl"
    write_jsonl(path, records)
    logger.info("Wrote %d predictions to %s", len(records), path)
    return path


def check_checkpoint_task(checkpoint: str, task: str, corpus: str) -> None:
    """A trained checkpoint is scored or trained on further only on a corpus of its own kind: a CRF
    tagger on a NER corpus, a word-pair model on MNRE, JMERE or the word-pair demo."""
    kind = getattr(AutoConfig.from_pretrained(checkpoint), "task", None)
    wanted = "ner" if task == "ner" else "word_pair"
    if kind != wanted:
        kinds = {"ner": "CRF tagger (NER)", "word_pair": "word-pair (relations)"}
        raise UsageError(
            f"{checkpoint} is a {kinds.get(kind, repr(kind))} checkpoint and {corpus} is a {task} corpus: the tasks "
            f"differ. Give a {kinds[wanted]} checkpoint for {corpus}, or a corpus of the checkpoint's task."
        )


def train_and_evaluate(model_args, data_args, training_args) -> dict:
    """One run: build, train with early stopping on dev F1, score dev and test, write everything."""
    output_dir = Path(training_args.output_dir)
    finished = read_results(output_dir / "all_results.json")
    if (
        training_args.do_train
        and resume_requested(training_args)
        and finished
        and not training_args.overwrite_output_dir
    ):
        logger.warning(
            "%s holds a finished run (all_results.json): nothing to resume, nothing changed. "
            "Pass --overwrite_output_dir true to train it again.",
            output_dir,
        )
        return finished
    if training_args.torch_num_threads:
        torch.set_num_threads(training_args.torch_num_threads)
    set_seed(training_args.seed)
    task = corpus_task(data_args.corpus, data_args.demo_flavour)
    if training_args.select_mre_none_weight and (task != "mre" or not training_args.do_eval):
        raise UsageError(
            f"--select_mre_none_weight chooses how a given pair (MNRE) is decided, on dev: it needs --corpus mnre "
            f"and --do_eval true (got {data_args.corpus} and do_eval {training_args.do_eval})."
        )
    if model_args.model_name_or_path:
        check_checkpoint_task(model_args.model_name_or_path, task, data_args.corpus)
    demo = dict(
        flavour=data_args.demo_flavour,
        seed=data_args.demo_seed,
        train_size=data_args.demo_train_size,
        validation_size=data_args.demo_validation_size,
        test_size=data_args.demo_test_size,
    )
    # One process reads the corpus and tags it; the others then find it in the caches.
    with training_args.main_process_first(desc="corpus preparation"):
        corpus = load_corpus(
            data_args.corpus,
            data_args.data_dir,
            # A text-only model reads no image: the config's image folder need not exist.
            image_dir=data_args.image_dir if model_args.use_image else None,
            context_files=data_args.context_files,
            missing_context=data_args.missing_context,
            missing_image=data_args.missing_image,
            cache_dir=data_args.cache_dir,
            **(demo if data_args.corpus == "demo" else {}),
        )
        if data_args.max_train_samples:
            corpus["train"] = corpus["train"].select(range(min(data_args.max_train_samples, len(corpus["train"]))))
        if data_args.max_eval_samples:
            for split in ("validation", "test"):
                corpus[split] = corpus[split].select(range(min(data_args.max_eval_samples, len(corpus[split]))))
        if model_args.model_name_or_path:  # a trained checkpoint keeps its labels (scored on any corpus)
            id2label = AutoConfig.from_pretrained(model_args.model_name_or_path).id2label
            labels = [id2label[index] for index in range(len(id2label))]
        else:
            labels = label_names(corpus, data_args.corpus, task)
        processor = build_processor(model_args, data_args, corpus)
        label2id = {label: i for i, label in enumerate(labels)}
        label_map = parse_label_map(data_args.label_map)
        prepared = {
            split: prepare_split(part, task, label2id, processor, data_args.use_context, label_map)
            for split, part in corpus.items()
        }
    model = build_model(model_args, labels, task, processor)
    if model.config.use_image and training_args.do_train and all(image is None for image in corpus["train"]["image"]):
        raise ValueError(
            "The model reads images (use_image true) but no training example has one: give --image_dir, "
            "or train text-only with --use_image false."
        )
    relation_names = corpus["train"].features["relation"].names if task == "mre" else ()
    trainer = MIETrainer(
        model=model,
        args=training_args,
        train_dataset=one_row_per_sentence(prepared["train"]) if task == "mre" else prepared["train"],
        eval_dataset=prepared["validation"],
        data_collator=ShapCADataCollator(processor, data_args.missing_image, use_images=model.config.use_image),
        processing_class=processor,
        compute_metrics=partial(
            compute_metrics, task=task, id2label=model.config.id2label, relation_names=relation_names
        ),
        callbacks=[EarlyStoppingCallback(training_args.early_stopping_patience)]
        if training_args.load_best_model_at_end
        else [],
        run_record=(task, data_summary(data_args, model_args, prepared, processor)),
        # Predictions are padded to the longest example evaluated (long texts are read in windows).
        max_words=max(
            (len(words) for split in ("validation", "test") for words in prepared[split]["words"]), default=1
        ),
    )
    results: dict = {}
    if training_args.do_train:
        outcome = trainer.train(resume_from_checkpoint=resume_checkpoint(training_args))
        results.update(outcome.metrics)
    if training_args.select_mre_none_weight:
        dev_f1 = select_none_weight(trainer.predict(prepared["validation"]), model.config.id2label, relation_names)
        model.config.mre_none_weight = next(iter(dev_f1))
        trainer.compute_metrics = partial(trainer.compute_metrics, none_weight=model.config.mre_none_weight)
        logger.info("None weight chosen on dev: %s (dev F1 %.4f; %.4f at 1.0, the paper's argmax)",
                    model.config.mre_none_weight, dev_f1[model.config.mre_none_weight], dev_f1[1.0])  # fmt: skip
        results["mre_none_weight"] = model.config.mre_none_weight
    if training_args.do_train:
        trainer.save_model()  # after the None weight is chosen: the checkpoint decides as the run scored
        trainer.log_metrics("train", outcome.metrics)
        trainer.save_metrics("train", outcome.metrics, combined=False)
    if training_args.do_eval:
        for split, prefix in (("validation", "eval"), ("test", "test")):
            output = trainer.predict(prepared[split], metric_key_prefix=prefix)
            if training_args.select_mre_none_weight:
                at_one = compute_metrics(
                    output, task=task, id2label=model.config.id2label, relation_names=relation_names
                )
                output.metrics[f"{prefix}_f1_none_weight_1"] = at_one["f1"]
            trainer.log_metrics(prefix, output.metrics)
            trainer.save_metrics(prefix, output.metrics, combined=False)
            results.update(output.metrics)
            if trainer.is_world_process_zero():
                structures = decoded_structures(
                    output.predictions, model.config.id2label, task, getattr(model.config, "mre_none_weight", 1.0)
                )
                records = prediction_records(prepared[split], structures, task, model.config.id2label)
                write_jsonl(output_dir / f"predictions_{split}.jsonl", records)
    results["environment"] = run_environment(training_args)
    trainer.create_model_card(results=results)
    # Written last: a run with an all_results.json is complete (the grid runner relies on it).
    trainer.save_metrics("all", results, combined=False)
    if training_args.push_to_hub:
        trainer.push_to_hub()
    return results


def main(argv: list[str] | None = None) -> dict:
    model_args, data_args, training_args = parse_arguments(argv)
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.INFO if training_args.should_log else logging.WARNING,
    )
    transformers.utils.logging.set_verbosity(logging.INFO if training_args.should_log else logging.WARNING)
    threads = torch.get_num_threads()
    # One run per folder at a time (the other processes of a multi-process run share the main one's).
    try:
        with OutputDirLock(training_args.output_dir) if training_args.process_index == 0 else nullcontext():
            return run(model_args, data_args, training_args)
    finally:
        torch.set_num_threads(threads)  # --torch_num_threads holds for this run only (a caller's process goes on)


def run(model_args, data_args, training_args) -> dict:
    """Predict, or train and evaluate once or once per seed (``--seeds``)."""
    if data_args.predict_file:
        return {"predictions": str(predict_new_examples(model_args, data_args, training_args))}
    if not training_args.seeds:
        return train_and_evaluate(model_args, data_args, training_args)
    runs = {}
    for seed in (int(s) for s in training_args.seeds.split(",")):
        seed_args = replace(training_args, seed=seed, output_dir=str(Path(training_args.output_dir) / f"seed-{seed}"))
        runs[seed] = train_and_evaluate(model_args, data_args, seed_args)
    summary = {**summarise_seeds(runs), "environment": run_environment(training_args)}
    if training_args.process_index == 0:
        write_text_atomic(Path(training_args.output_dir) / "all_results.json", json.dumps(summary, indent=2) + "\n")
        for key in ("eval_f1", "test_f1"):
            if f"{key}_mean" in summary:
                logger.info("%s: %.4f +- %.4f over seeds %s", key, summary[f"{key}_mean"], summary[f"{key}_std"],
                            summary["seeds"])  # fmt: skip
    return summary


if __name__ == "__main__":
    try:
        main()
    except UsageError as error:
        sys.exit(f"run_mie.py: error: {error}")
