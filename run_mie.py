#!/usr/bin/env python
"""Train, evaluate and predict with Shap-CA on a multimodal information extraction corpus.

    python run_mie.py configs/demo.json                      # the embedded demo, on CPU
    python run_mie.py configs/twitter2017.json --data_dir data/twitter2017 --output_dir runs/t17
    accelerate launch run_mie.py configs/mnre.json           # one GPU or many
    python run_mie.py configs/demo.json --seeds 1,2,3        # mean and standard deviation
    python run_mie.py configs/demo.json --resume_from_checkpoint true   # go on after a stop
    python run_mie.py --model_name_or_path runs/t17 --do_predict --predict_file new.jsonl --output_dir out

    python run_mie.py --task ner --train_file mine/train.jsonl --validation_file mine/dev.jsonl \
        --test_file mine/test.jsonl --text_model_name_or_path google-bert/bert-base-uncased --output_dir runs/mine
    python run_mie.py --dataset_name exports/twitter2017 --text_model_name_or_path ... --output_dir runs/t17

A single ``.json`` argument is a config file; flags after it override its values. The data is a
named corpus (``--corpus``), files in the library's schema (``--train_file``...) or a `datasets`
dataset (``--dataset_name``); the task follows from it: a CRF tagger for named entities, the
word-pair head for relations (MNRE-style given pairs, JMERE-style entities and relations).
Each job this recipe orchestrates has its module in the `shapca_training` package: `arguments`
(the flags), `data` (labels and prepared splits), `build` (the processor and the model),
`trainer` (the Trainer subclass), `scoring` (scores and prediction records) and `records`
(results files, the run's environment, the output folder's lock).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from contextlib import nullcontext
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig, EarlyStoppingCallback, set_seed

from modeling_shapca import MODEL_FOR_HEAD
from shapca_training.arguments import parse_arguments
from shapca_training.errors import UsageError, is_input_error
from shapca_training.records import checkpoint_state, last_complete_checkpoint, stored_callback_state

# The corpus, processor, Trainer and metric code (processing and the *_mie modules) is imported
# in the functions that use it, after the arguments are parsed: --help and a wrong flag answer at once.

logger = logging.getLogger("run_mie")


def resume_requested(training_args) -> bool:
    value = training_args.resume_from_checkpoint
    return value is not None and str(value).lower() not in ("false", "no", "")


def resume_checkpoint(training_args) -> str | None:
    """``--resume_from_checkpoint``: a path as given, or ``true``: the last complete checkpoint of
    ``output_dir`` (one a kill interrupted while saving has no ``trainer_state.json``: skipped)."""
    value = training_args.resume_from_checkpoint
    if not resume_requested(training_args):
        return None
    if str(value).lower() in ("true", "yes", "last"):
        last = last_complete_checkpoint(training_args.output_dir)
        if last is None:
            logger.warning("No complete checkpoint in %s: training from the start.", training_args.output_dir)
            return None
        logger.info("Going on from the last complete checkpoint, %s.", last)
        value = str(last)
    warn_of_the_checkpoints_patience(value, training_args)
    return value


def warn_of_the_checkpoints_patience(checkpoint: str, training_args) -> None:
    """A resumed run goes on with early stopping as its checkpoint left it: the patience and the count
    of epochs without a better dev F1 (``restore_callback_states_from_checkpoint``). Say so when
    ``--early_stopping_patience`` asks for another patience, which the resumed run does not use."""
    if not training_args.restore_callback_states_from_checkpoint or not training_args.load_best_model_at_end:
        return
    stored = stored_callback_state(checkpoint_state(checkpoint), "EarlyStoppingCallback")
    if not stored or stored["args"]["early_stopping_patience"] == training_args.early_stopping_patience:
        return
    logger.warning(
        "%s was trained with --early_stopping_patience %s: the resumed run goes on with that patience and its "
        "count of epochs without a better dev F1 (%s), not with --early_stopping_patience %s. To use it, start over "
        "in another --output_dir, or give --restore_callback_states_from_checkpoint false (the count then starts "
        "again at 0).",
        checkpoint, stored["args"]["early_stopping_patience"],
        stored["attributes"]["early_stopping_patience_counter"], training_args.early_stopping_patience,
    )  # fmt: skip


# -- runs ---------------------------------------------------------------------------------------


def predict_new_examples(model_args, data_args, training_args) -> Path:
    """``--do_predict --predict_file``: a trained checkpoint's predictions for new examples, through
    `MIETrainer.predict` as evaluation (on the run's device and processes, long texts in windows)."""
    from datasets import Dataset
    from transformers import AutoProcessor

    from processing import ShapCADataCollator
    from processing.input_files import InputFileNotFoundError, read_examples_file
    from processing.tasks import TASK_OF_HEAD
    from shapca_training.records import write_jsonl
    from shapca_training.scoring import decoded_structures
    from shapca_training.trainer import MIETrainer

    if not model_args.model_name_or_path:
        raise UsageError("--predict_file needs --model_name_or_path, a trained checkpoint.")
    if not Path(data_args.predict_file).is_file():
        raise InputFileNotFoundError(f"--predict_file {data_args.predict_file} does not exist or is not a file.")
    rows = read_examples_file(data_args.predict_file)
    config = AutoConfig.from_pretrained(model_args.model_name_or_path)
    model = MODEL_FOR_HEAD[config.head].from_pretrained(model_args.model_name_or_path)
    processor = AutoProcessor.from_pretrained(model_args.model_name_or_path)
    trainer = MIETrainer(
        model=model,
        # Prediction only: no evaluation schedule, no best checkpoint to keep.
        args=replace(training_args, eval_strategy="no", save_strategy="no", load_best_model_at_end=False),
        data_collator=ShapCADataCollator(processor, data_args.missing_image, use_images=model.config.use_image),
        processing_class=processor,
        prediction_width=max(len(row["words"]) for row in rows) if rows else 1,
    )
    records = []
    if rows:
        output = trainer.predict(Dataset.from_list(rows))
        task = TASK_OF_HEAD[model.config.head]  # a new text has no given pair: entities (and relations)
        structures = decoded_structures(output.predictions, model.config.id2label, task)
        records = [
            {"words": row["words"], "image": row["image"], "pred": found} for row, found in zip(rows, structures)
        ]
    path = Path(training_args.output_dir) / "predictions_predict.jsonl"
    if trainer.is_world_process_zero():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(path, records)
        logger.info("Wrote %d predictions to %s", len(records), path)
    return path


def check_checkpoint_task(checkpoint: str, config, task: str, corpus: str) -> None:
    """A trained checkpoint (its ``config``) is scored or trained on further only on data of its
    own kind: a CRF tagger on named entities, a word-pair model on relations (MNRE, JMERE, the
    word-pair demo, files or datasets of those tasks)."""
    from processing.tasks import TASKS

    wanted = MODEL_FOR_HEAD[TASKS[task].head].config_class
    if getattr(config, "head", None) != wanted.head:
        raise UsageError(
            f"{checkpoint} is a {getattr(config, 'head_title', type(config).__name__)} checkpoint and {corpus} is "
            f"{task} data: the tasks differ. Give a {wanted.head_title} checkpoint for {corpus}, or data of the "
            "checkpoint's task."
        )


def check_splits(splits, training_args) -> None:
    """The splits a run needs: train to train, validation to evaluate during training or at the end."""
    needed = {"train": training_args.do_train, "validation": training_args.do_eval or (
        training_args.do_train and training_args.eval_strategy != "no")}  # fmt: skip
    missing = [split for split, wanted in needed.items() if wanted and split not in splits]
    if missing:
        flags = {"train": "--train_file", "validation": "--validation_file"}
        raise UsageError(
            f"The data has no {' and no '.join(missing)} split: give {' and '.join(flags[m] for m in missing)}, "
            "or leave the work out (--do_train false, --do_eval false --eval_strategy no)."
        )


def train_and_evaluate(model_args, data_args, training_args) -> dict:
    """One run: build, train with early stopping on dev F1, score dev and test, write everything."""
    from processing import ShapCADataCollator
    from processing.corpora import examples_without_image
    from processing.decoding import mre_decision_settings
    from processing.tasks import TASKS
    from shapca_training.build import build_model, build_processor
    from shapca_training.data import (
        check_model_covers,
        data_summary,
        load_run_data,
        model_label_names,
        one_row_per_sentence,
        parse_label_map,
        prepare_split,
        relation_counts,
    )
    from shapca_training.records import read_results, run_environment, write_jsonl
    from shapca_training.scoring import (
        NONE_WEIGHTS,
        PRIOR_EXPONENTS,
        compute_metrics,
        decoded_structures,
        prediction_records,
        select_mre_decision,
    )
    from shapca_training.trainer import MIETrainer

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
    # Stopped after training ended (while choosing on dev or testing): score the model it saved,
    # without a further step (the Trainer would train on from the last checkpoint, past an early stop).
    trained = None
    if training_args.do_train and resume_requested(training_args) and (output_dir / "config.json").is_file():
        trained = read_results(output_dir / "train_results.json")
    if trained is not None:
        logger.info("%s finished training before it was stopped: scoring the model it saved.", output_dir)
        model_args = replace(model_args, model_name_or_path=str(output_dir))
    if training_args.torch_num_threads:
        torch.set_num_threads(training_args.torch_num_threads)
    set_seed(training_args.seed)
    environment = run_environment(training_args)  # at the start: the code this run's training ran
    checkpoint_config = checkpoint_labels = None
    if model_args.model_name_or_path:  # a trained checkpoint keeps its labels (scored on any data of its task)
        checkpoint_config = AutoConfig.from_pretrained(model_args.model_name_or_path)
        checkpoint_labels = [checkpoint_config.id2label[index] for index in range(len(checkpoint_config.id2label))]
    # One process reads the corpus and tags it; the others then find it in the caches.
    with training_args.main_process_first(desc="corpus preparation"):
        data = load_run_data(data_args, model_args, checkpoint_labels)
        task, corpus = data.task, data.splits
        check_splits(corpus, training_args)
        selects = [
            flag for flag in ("select_mre_none_weight", "select_mre_prior_exponent") if getattr(training_args, flag)
        ]
        if selects and (not TASKS[task].given_pair or not training_args.do_eval):
            raise UsageError(
                f"--{selects[0]} chooses how a given pair (MNRE) is decided, on dev: it needs data of "
                f"the mre task and --do_eval true (got {data.name}, {task}, and do_eval {training_args.do_eval})."
            )
        if checkpoint_config is not None:
            check_checkpoint_task(model_args.model_name_or_path, checkpoint_config, task, data.name)
            check_model_covers(task, data.labels, checkpoint_labels, model_args.model_name_or_path)
        if data_args.max_train_samples and "train" in corpus:
            corpus["train"] = corpus["train"].select(range(min(data_args.max_train_samples, len(corpus["train"]))))
        if data_args.max_eval_samples:
            for split in ("validation", "test"):
                if split in corpus:
                    corpus[split] = corpus[split].select(range(min(data_args.max_eval_samples, len(corpus[split]))))
        labels = checkpoint_labels or model_label_names(task, data.labels)
        processor = build_processor(model_args, data_args, corpus)
        label2id = {label: i for i, label in enumerate(labels)}
        label_map = parse_label_map(data_args.label_map)
        prepared = {
            split: prepare_split(part, task, label2id, processor, data_args.use_context, label_map)
            for split, part in corpus.items()
        }
    model = build_model(model_args, labels, task, processor)
    if (
        model.config.use_image
        and training_args.do_train
        and examples_without_image(corpus["train"]) == len(corpus["train"])
    ):
        raise UsageError(
            "The model reads images (use_image true) but no training example has one: give --image_dir, "
            "or train text-only with --use_image false."
        )
    given_pair = TASKS[task].given_pair  # MNRE: an example is a pair, its relation the label
    relation_names = data.labels.relation_types if given_pair else ()
    if given_pair and "train" in corpus and (training_args.do_train or not model.config.mre_relation_counts):
        # The priors of the decision's logit adjustment (mre_prior_exponent), kept in the checkpoint.
        model.config.mre_relation_counts = relation_counts(corpus["train"])
    if training_args.select_mre_prior_exponent and not model.config.mre_relation_counts:
        raise UsageError(
            "--select_mre_prior_exponent weighs relations by their training pairs: give the data a training split "
            f"(or a checkpoint that counted them); {model_args.model_name_or_path} has no mre_relation_counts."
        )

    def paper_rule_f1(output) -> float:
        return compute_metrics(output, task=task, id2label=model.config.id2label, relation_names=relation_names)["f1"]

    train_split = prepared.get("train")
    trainer = MIETrainer(
        model=model,
        args=training_args,
        train_dataset=one_row_per_sentence(train_split) if given_pair and train_split else train_split,
        eval_dataset=prepared.get("validation"),
        data_collator=ShapCADataCollator(processor, data_args.missing_image, use_images=model.config.use_image),
        processing_class=processor,
        compute_metrics=partial(
            compute_metrics,
            task=task,
            id2label=model.config.id2label,
            relation_names=relation_names,
            **(mre_decision_settings(model.config) if given_pair else {}),
        ),
        callbacks=[EarlyStoppingCallback(training_args.early_stopping_patience)]
        if training_args.load_best_model_at_end
        else [],
        run_record=(task, data_summary(data, data_args, model_args, prepared, processor)),
        # Predictions are padded to the longest example evaluated (long texts are read in windows).
        prediction_width=max(
            (len(words) for split in ("validation", "test") if split in prepared for words in prepared[split]["words"]),
            default=1,
        ),
    )
    results: dict = {}
    train_now = training_args.do_train and trained is None
    if train_now:
        trained = trainer.train(resume_from_checkpoint=resume_checkpoint(training_args)).metrics
    results.update(trained or {})
    dev_output = None  # when the decision of a given pair is chosen, dev is predicted once: for the choice, then scored
    if selects:
        config = model.config
        dev_output = trainer.predict(prepared["validation"], metric_key_prefix="eval")
        dev_f1 = select_mre_decision(
            dev_output, config.id2label, relation_names,
            none_weights=NONE_WEIGHTS if training_args.select_mre_none_weight else (config.mre_none_weight,),
            prior_exponents=PRIOR_EXPONENTS if training_args.select_mre_prior_exponent else (config.mre_prior_exponent,),
            relation_counts=config.mre_relation_counts,
        )  # fmt: skip
        config.mre_none_weight, config.mre_prior_exponent = chosen = next(iter(dev_f1))
        decision = mre_decision_settings(config)
        trainer.compute_metrics = partial(trainer.compute_metrics, **decision)
        logger.info("Decision of a given pair chosen on dev: None weight %s, prior exponent %s (dev F1 %.4f; "
                    "%.4f with the paper's argmax)", *chosen, dev_f1[chosen], paper_rule_f1(dev_output))  # fmt: skip
        results.update(mre_none_weight=config.mre_none_weight, mre_prior_exponent=config.mre_prior_exponent)
    if train_now:
        trainer.save_model()  # after the decision is chosen: the checkpoint decides as the run scored
        trainer.log_metrics("train", trained)
        trainer.save_metrics("train", trained, combined=False)
    if training_args.do_eval:
        for split, prefix in (("validation", "eval"), ("test", "test")):
            if split not in prepared:
                continue
            if split == "validation" and dev_output is not None:
                output = dev_output  # its metrics are at weight 1.0: score it at the chosen weight
                output.metrics.update({f"{prefix}_{k}": v for k, v in trainer.compute_metrics(output).items()})
            else:
                output = trainer.predict(prepared[split], metric_key_prefix=prefix)
            if selects:  # the F1 of the paper's argmax beside the chosen decision's
                output.metrics[f"{prefix}_f1_none_weight_1"] = paper_rule_f1(output)
            trainer.log_metrics(prefix, output.metrics)
            trainer.save_metrics(prefix, output.metrics, combined=False)
            results.update(output.metrics)
            if trainer.is_world_process_zero():
                decision = mre_decision_settings(model.config) if given_pair else {}
                structures = decoded_structures(output.predictions, model.config.id2label, task, **decision)
                records = prediction_records(prepared[split], structures, task, model.config.id2label)
                write_jsonl(output_dir / f"predictions_{split}.jsonl", records)
    results["environment"] = environment
    trainer.create_model_card(results=results)
    # Written last: a run with an all_results.json is complete (the grid runner relies on it).
    trainer.save_metrics("all", results, combined=False)
    if training_args.push_to_hub:
        trainer.push_to_hub()
    return results


def main(argv: list[str] | None = None) -> dict:
    model_args, data_args, training_args = parse_arguments(argv)
    from shapca_training.records import OutputDirLock

    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.INFO if training_args.should_log else logging.WARNING,
    )
    # The library's own messages (the Trainer's, the loaders') at --log_level: warnings by default
    # ("passive"); --log_level info shows them all.
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    threads = torch.get_num_threads()
    # One run per folder at a time (the other processes of a multi-process run share the main one's).
    try:
        with OutputDirLock(training_args.output_dir) if training_args.process_index == 0 else nullcontext():
            return run(model_args, data_args, training_args)
    finally:
        torch.set_num_threads(threads)  # --torch_num_threads holds for this run only (a caller's process goes on)


def run(model_args, data_args, training_args) -> dict:
    """Predict, or train and evaluate once or once per seed (``--seeds``)."""
    from shapca_training.records import summarise_seeds, write_text_atomic

    if data_args.predict_file:
        return {"predictions": str(predict_new_examples(model_args, data_args, training_args))}
    if not training_args.seeds:
        return train_and_evaluate(model_args, data_args, training_args)
    runs = {}
    for seed in (int(s) for s in training_args.seeds.split(",")):
        seed_args = replace(training_args, seed=seed, output_dir=str(Path(training_args.output_dir) / f"seed-{seed}"))
        runs[seed] = train_and_evaluate(model_args, data_args, seed_args)
    summary = {**summarise_seeds(runs), "environment": next(iter(runs.values()))["environment"]}
    if training_args.process_index == 0:
        write_text_atomic(Path(training_args.output_dir) / "all_results.json", json.dumps(summary, indent=2) + "\n")
        for key in ("eval_f1", "test_f1"):
            if f"{key}_mean" in summary:
                logger.info("%s: %.4f +- %.4f over seeds %s", key, summary[f"{key}_mean"], summary[f"{key}_std"],
                            summary["seeds"])  # fmt: skip
    return summary


def stop(signum, frame):
    """SIGTERM (a scheduler, `kill`, or the launcher of a multi-process run passing on its own)
    unwinds the run as Ctrl-C does: the output folder's lock is released on the way out."""
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop)
    try:
        main()
    except (ValueError, OSError, KeyError) as error:
        if not is_input_error(error):
            raise
        sys.exit(f"run_mie.py: error: {error}")
    except KeyboardInterrupt:
        logger.error(
            "Stopped. Run the same command with --resume_from_checkpoint true to go on from the last checkpoint."
        )
        sys.exit(130)
