"""The command line of run_mie.py: the model's flags (one per setting of the Shap-CA config, its
docstring as help), the data's, and the Trainer's with the paper's recipe as defaults.

Light to import (no corpus, tokenizer or model code), so that ``--help`` and a wrong flag answer
at once; `experiments.grid` asks these classes which flags exist.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from transformers import HfArgumentParser, TrainingArguments
from transformers.integrations import is_tensorboard_available

from modeling_shapca import configuration_shapca
from modeling_shapca.configuration_shapca import ShapCAConfig, ShapCAWordPairConfig
from shapca_training.errors import UsageError


@dataclass
class ScriptModelArguments:
    """Where the model comes from: a trained checkpoint, or the encoders to build one from."""

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


# Config fields the script fills in itself: the encoders' configs (from the flags above), the
# position table (from --max_length) and the POS vocabulary (the processor's).
SET_BY_THE_SCRIPT = ("text_config", "vision_config", "max_words", "num_pos_tags", "mre_relation_counts")


def config_field_help(config_class: type) -> dict[str, str]:
    """The description of each field in the ``Args:`` section of a config class's docstring."""
    entries = re.findall(r"^ {8}(\w+) \(.*\):\n((?: {12}.*\n?)+)", config_class.__doc__ or "", flags=re.MULTILINE)
    return {name: " ".join(line.strip() for line in text.splitlines()) for name, text in entries}


def config_flag_fields() -> list[tuple[str, Any, dataclasses.Field]]:
    """One flag per setting of the Shap-CA configs (`ShapCAConfig`, then the word-pair config's
    own), with the config's default and the docstring's description: a new config field is a
    flag of run_mie.py with no second edit."""
    defaults = {item.name: item for item in dataclasses.fields(ShapCAWordPairConfig)}
    namespace = vars(configuration_shapca)
    flags = []
    for config_class in (ShapCAConfig, ShapCAWordPairConfig):
        help_texts = config_field_help(config_class)
        for name, annotation in vars(config_class).get("__annotations__", {}).items():
            kind = eval(annotation, namespace) if isinstance(annotation, str) else annotation
            if typing.get_origin(kind) is ClassVar or name in SET_BY_THE_SCRIPT:
                continue
            default = defaults[name].default
            flags.append((name, kind, field(default=default, metadata={"help": help_texts[name]})))
    return flags


CONFIG_FLAGS = config_flag_fields()


def _config_settings(self, config_class: type = ShapCAWordPairConfig) -> dict:
    """The values of the config flags that ``config_class`` has (the NER config lacks the word-pair ones)."""
    names = {item.name for item in dataclasses.fields(config_class)}
    return {name: getattr(self, name) for name, _, _ in CONFIG_FLAGS if name in names}


ModelArguments = dataclasses.make_dataclass(
    "ModelArguments",
    CONFIG_FLAGS,
    bases=(ScriptModelArguments,),
    namespace={"config_settings": _config_settings, "__module__": __name__},
)
ModelArguments.__doc__ = (
    "The model's flags: where it comes from (`ScriptModelArguments`) and one flag per Shap-CA config setting."
)


@dataclass
class DataArguments:
    """The data's flags: one of a named corpus (--corpus), files of one's own (--train_file...) or a
    dataset (--dataset_name); the demo corpus when none is given."""

    corpus: str | None = field(
        default=None,
        metadata={
            "help": "A named corpus: twitter2015, twitter2017, mnre, jmere or demo (the default when no files or "
            "dataset are given), or the path of a corpus module (.py)."
        },
    )
    train_file: str | None = field(
        default=None, metadata={"help": "JSON Lines file of training examples in the library's schema (README)."}
    )
    validation_file: str | None = field(default=None, metadata={"help": "JSON Lines file of dev examples."})
    test_file: str | None = field(default=None, metadata={"help": "JSON Lines file of test examples."})
    dataset_name: str | None = field(
        default=None,
        metadata={"help": "A datasets folder or Hub id in the schema (e.g. a folder written by export_corpus)."},
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "The dataset's configuration."})
    task: str | None = field(
        default=None,
        metadata={
            "help": "ner, mre or mjere, for files or a dataset (default: what the rows' columns say); a named "
            "corpus has its own."
        },
    )
    labels: list[str] = field(
        default_factory=list,
        metadata={
            "help": "The label sets, in the model's order: entities=PER,ORG,... relations=founded_by,... "
            "(default: the training data's, sorted)."
        },
    )
    data_dir: str | None = field(default=None, metadata={"help": "Folder of the corpus files."})
    image_dir: str | None = field(default=None, metadata={"help": "Folder of the images."})
    context_files: list[str] = field(default_factory=list, metadata={"help": "JSONL files of bridging contexts."})
    use_context: bool = field(default=True, metadata={"help": "False drops the contexts (text-only runs)."})
    missing_context: str = field(default="error", metadata={"help": "'error' or 'empty'."})
    missing_image: str = field(default="error", metadata={"help": "'error' or 'skip' for unreadable images."})
    pos_tagger: str = field(default="en_core_web_sm", metadata={"help": "spaCy model for POS tags, or 'none'."})
    max_length: int = field(default=128, metadata={"help": "Longest token sequence (text + context)."})
    demo_flavour: str = field(
        default="ner", metadata={"help": "Demo corpus: 'ner', 'word_pair' (joint extraction) or 'mre' (given pairs)."}
    )
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

    def files(self) -> dict[str, str]:
        """The user's files by split (those given)."""
        given = {"train": self.train_file, "validation": self.validation_file, "test": self.test_file}
        return {split: path for split, path in given.items() if path}

    def check_source(self) -> None:
        """One source of data: a named corpus, files, or a dataset."""
        given = [name for name, value in (("--corpus", self.corpus), ("--train_file/--validation_file/--test_file",
                 self.files()), ("--dataset_name", self.dataset_name)) if value]  # fmt: skip
        if len(given) > 1:
            raise UsageError(f"{' and '.join(given)} are given: train on one of them.")
        if self.task is not None and self.task not in ("ner", "mre", "mjere"):
            raise UsageError(f"--task {self.task}: choose ner, mre or mjere.")
        if self.data_dir and not self.corpus:
            raise UsageError(
                "--data_dir is the folder of a named corpus's files: give --corpus too (or --train_file ...)."
            )


@dataclass
class MIETrainingArguments(TrainingArguments):
    """`TrainingArguments` with the paper's recipe as defaults (its section 4.2)."""

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
    restore_callback_states_from_checkpoint: bool = field(
        default=True,
        metadata={
            "help": "A resumed run goes on with early stopping's patience and count of epochs without a better dev "
            "F1, and with its training time, as its checkpoint left them (the Trainer's default, false, restarts "
            "the count at 0: a run stopped and resumed would train longer than one never stopped)."
        },
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
            "help": "CPU threads of torch's operators (default: torch's choice, one per core; scripts/run_grid.py "
            "gives each run its --cpus_per_trial). Part of what a result depends on: recorded in "
            "all_results.json under 'environment'."
        },
    )
    select_mre_none_weight: bool = field(
        default=False,
        metadata={
            "help": "MNRE: after training, choose on dev the weight of None against the relations in the decision "
            "of a given pair (mre_none_weight; 1.0, the default, is the paper's argmax), keep it in the checkpoint "
            "and score with it. all_results.json also gives the F1 of the paper's argmax (eval_f1_none_weight_1, test_...)."
        },
    )
    select_mre_prior_exponent: bool = field(
        default=False,
        metadata={
            "help": "MNRE: after training, choose on dev the prior exponent of the decision of a given pair "
            "(mre_prior_exponent, logit adjustment for rare relations; 0, the default, is the paper's rule), with the "
            "None weight when --select_mre_none_weight is true too; keep it in the checkpoint and score with it."
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
            raise UsageError(f"--torch_num_threads must be at least 1, got {self.torch_num_threads}.")
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
    parser = HfArgumentParser(
        ARGUMENT_CLASSES,
        allow_abbrev=False,
        prog="run_mie.py",
        usage="%(prog)s [CONFIG.json] [--FLAG VALUE ...]",
        description="Train, evaluate and predict with Shap-CA. A config file (JSON, e.g. configs/demo.json) may "
        "come first; flags after it override its values. The model's flags below are the settings of the "
        "Shap-CA config (ShapCAConfig), the rest are the data's and the Trainer's (TrainingArguments).",
    )
    _, unknown = parser.parse_known_args(argv)
    flags = [word for word in unknown if word.startswith("-")]
    if flags:
        raise unknown_flag_error(flags[0])
    if unknown:
        raise UsageError(f"unexpected value(s) {unknown}: a value follows its flag, e.g. --alpha 0.2.")
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    # The config class's own check, before any data is read (the model is built much later).
    ShapCAWordPairConfig.check_numbers(model_args.config_settings())
    if model_args.fusion_use_context is False and model_args.use_image is False:
        raise UsageError(
            "--fusion_use_context false changes nothing with --use_image false: the context in fusion biases and "
            "gates the text's attention to the image, which a model without images does not have (the run would "
            "be the same model). Drop the flag, or train with images."
        )
    check_model_path(model_args.model_name_or_path)
    data_args.check_source()
    if data_args.max_length < MIN_MAX_LENGTH:
        raise UsageError(
            f"--max_length {data_args.max_length} cannot hold a word and its context: "
            f"[CLS] word [SEP] context [SEP] needs at least {MIN_MAX_LENGTH} tokens (the corpus configs use 128)."
        )
    return model_args, data_args, training_args
