"""`MIETrainer`: the `Trainer` with the paper's two learning rates, logged loss parts, decoded
predictions for the metrics, and self-contained checkpoints."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import shutil
import time
from pathlib import Path

import torch
from torch.utils.data import SequentialSampler
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import ExportableState

from model_cards import build_model_card
from modeling_shapca import ShapCAInputs
from modeling_shapca.heads import IGNORE_INDEX
from processing.decoding import join_windows, predictions_from_logits
from processing.pipeline_shapca import add_pipeline_to_config, save_pipeline_code
from shapca_training.records import (
    checkpoint_state,
    last_complete_checkpoint,
    read_results,
    stored_callback_state,
    write_text_atomic,
)

logger = logging.getLogger(__name__)
LOSS_PARTS = ("loss_main", "loss_semantic", "loss_modality")
# Below this much free space, a failed write is taken for a full disk (a checkpoint is larger).
FULL_DISK_BYTES = 64 * 2**20
MODEL_INPUTS = {*ShapCAInputs.__annotations__, "labels"}
# Per process, beside the Trainer's own rng_state_<i>.pth of the checkpoint.
SHAPLEY_ORDERS_FILE = "shapley_orders_{}.pt"


def pad_to(tensor: torch.Tensor, size: int) -> torch.Tensor:
    """Pad the word axes of ``(B, W)`` or ``(B, W, W)`` to ``size`` with -100 (so batches concatenate)."""
    if tensor.shape[-1] > size:  # padding by a negative amount would cut words off silently
        raise ValueError(
            f"Predictions of {tensor.shape[-1]} words do not fit prediction_width={size}: give MIETrainer a "
            "prediction_width of at least the words of the longest example evaluated."
        )
    padding = []
    for _ in range(tensor.dim() - 1):
        padding = [0, size - tensor.shape[-1 - len(padding) // 2]] + padding
    return torch.nn.functional.pad(tensor, padding, value=IGNORE_INDEX)


def orders_owner(model: torch.nn.Module) -> torch.nn.Module | None:
    """The module that draws the alignment games' random orders (``shapley_generator``), if any."""
    return next((module for module in model.modules() if hasattr(module, "shapley_generator")), None)


class TrainingClock(TrainerCallback, ExportableState):
    """Seconds of training over every part of a run that was stopped and resumed.

    The Trainer's ``train_runtime`` counts one call of ``train``: a resumed run reports its last
    part only. The clock's count goes into every checkpoint's ``trainer_state.json`` and comes back
    with it on resume (``restore_callback_states_from_checkpoint``); the time a stopped part spent
    after its last checkpoint is not counted (that work is done again). A run resumed without a
    count (a checkpoint saved without the clock, or callback states not restored) does not know its
    earlier parts' time: `add_total_training_time` then gives no total.
    """

    def __init__(self, seconds_before: float | None = None, counted_from_start: bool = True):
        self.seconds_before = seconds_before  # None: not restored from a checkpoint
        self.counted_from_start = counted_from_start
        self._started: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()
        if self.seconds_before is None:  # a new run, or a resumed one whose checkpoint held no count
            self.seconds_before = 0.0
            self.counted_from_start = state.global_step == 0
        # A checkpoint saved without a clock has no entry for it, and the Trainer's saves need one.
        state.stateful_callbacks.setdefault(type(self).__name__, self.state())

    @property
    def seconds(self) -> float:
        running = time.perf_counter() - self._started if self._started is not None else 0.0
        return (self.seconds_before or 0.0) + running

    def state(self) -> dict:
        return {
            "args": {"seconds_before": self.seconds, "counted_from_start": self.counted_from_start},
            "attributes": {},
        }


def early_stopped_at(checkpoint: str | os.PathLike) -> int | None:
    """The step of ``checkpoint`` when early stopping ended the run's training there (its count of
    epochs without a better dev F1 had reached its patience), else None. (A run that ended at its
    last epoch is not: resumed with more epochs, it trains on, as the Trainer does.)"""
    state = checkpoint_state(checkpoint)
    stored = stored_callback_state(state, "EarlyStoppingCallback")
    if (
        not stored
        or stored["attributes"]["early_stopping_patience_counter"] < stored["args"]["early_stopping_patience"]
    ):
        return None
    return state["global_step"]


def clock_of(trainer: Trainer) -> TrainingClock | None:
    return next(
        (callback for callback in trainer.callback_handler.callbacks if isinstance(callback, TrainingClock)), None
    )


def add_total_training_time(trainer: Trainer, metrics: dict) -> None:
    """``train_runtime_total`` into the metrics of a training that just ended: its
    ``train_runtime`` plus the earlier parts' count, when known (see `TrainingClock`)."""
    clock = clock_of(trainer)
    if clock is not None and clock.counted_from_start:
        metrics["train_runtime_total"] = round(clock.seconds_before + metrics["train_runtime"], 4)


class MIETrainer(Trainer):
    """The Trainer for Shap-CA.

    - The optimizer (``--optim``, fused AdamW by default) has one learning rate for the two
      encoders (``encoder_learning_rate``) and one for the rest (``learning_rate``).
    - The parts of the loss (``loss_main``, ``loss_semantic``, ``loss_modality``) are logged; a loss
      that is not finite stops training with the step and the parts.
    - Evaluation reads every word: a text longer than ``max_length`` is read in overlapping
      windows (the collator's ``return_overflowing_tokens``) whose predictions are joined back per
      example (`processing.decoding.join_windows`), as the pipeline reads it.
    - Evaluation gathers decoded predictions (`processing.decoding.predictions_from_logits`), never
      raw emissions: Viterbi tags or argmax grids with their probabilities (padded to
      ``prediction_width`` so that batches concatenate), or the relation mass of the given pair; the gold
      is the file's own, the ``gold_*`` columns of the batch. `compute_metrics` turns both into
      scores.
    - A checkpoint holds the state of the alignment games' order generator beside the Trainer's
      random states (`_save_rng_state`): a resumed run draws the orders the uninterrupted run
      would have drawn. Its training time goes on too (`TrainingClock`): ``train_runtime_total``
      counts every part, ``train_runtime`` the last; resumed from the checkpoint at which its
      training ended (early stopping), it trains no step.
    - A saved checkpoint carries the pipeline's code next to the model's and the processor's, and
      the model card (`model_cards.build_model_card`) is written from the model's config, the
      data the run read and its results. Results files are written whole (temporary file, then rename).

    Args:
        run_record: ``(task, data)`` for the model card: the task (``"ner"``, ``"mre"``,
            ``"mjere"``) and what the run read (`shapca_training.data.data_summary`).
        prediction_width: the width the word axes of the predictions are padded to: at least the words
            of the longest example evaluated.
    """

    def __init__(self, *args, run_record=None, prediction_width: int = 128, **kwargs):
        super().__init__(*args, **kwargs)
        self.run_record = run_record
        self.prediction_width = prediction_width
        self._loss_parts: dict[str, list[float]] = {}
        if clock_of(self) is None:  # one clock: two would save their counts as a list the restore mispairs
            self.add_callback(TrainingClock())

    def train(self, resume_from_checkpoint=None, **kwargs):
        """`Trainer.train`, going on with the checkpoint's alignment orders and training time when
        resuming (``train_runtime_total`` in the metrics), and with a full disk said as such:
        torch's checkpoint writer reports it as "iostream error" or "unexpected pos", naming
        neither the disk nor the folder."""
        checkpoint = (
            last_complete_checkpoint(self.args.output_dir) if resume_from_checkpoint is True else resume_from_checkpoint
        )
        ended_at = None
        if checkpoint:  # True and no complete checkpoint: the Trainer says so
            self._restore_shapley_orders(Path(checkpoint))
            ended_at = early_stopped_at(checkpoint) if self.args.restore_callback_states_from_checkpoint else None
        max_steps = self.args.max_steps
        if ended_at is not None:
            # The Trainer clears a checkpoint's stop when it resumes: it would train on past where
            # early stopping ended the run. Ending at the checkpoint's step, it trains no step and
            # takes the best checkpoint, as the uninterrupted run did.
            logger.info("Early stopping had ended the training at %s: no step is trained again.", checkpoint)
            self.args.max_steps = ended_at
        try:
            output = super().train(
                resume_from_checkpoint=str(checkpoint) if checkpoint else resume_from_checkpoint, **kwargs
            )
        except (OSError, RuntimeError) as error:
            free = shutil.disk_usage(self.args.output_dir).free if os.path.isdir(self.args.output_dir) else None
            if free is None or free >= FULL_DISK_BYTES:
                raise
            raise OSError(
                errno.ENOSPC,
                f"No space left on device while writing under {self.args.output_dir} ({free // 2**20} MB free; "
                f"the writer said: {str(error).strip().splitlines()[-1]}). Free some space (or give another "
                "--output_dir), then go on from the last whole checkpoint with --resume_from_checkpoint true.",
            ) from error
        finally:
            self.args.max_steps = max_steps
        add_total_training_time(self, output.metrics)  # train_runtime is this part's; the total counts all
        return output

    def _load_callback_state(self) -> None:
        super()._load_callback_state()
        # A checkpoint saved without one of this run's stateful callbacks (e.g. trained without early
        # stopping) has no entry for it in its state, and the Trainer's first save would fail on it.
        for callback in self.callback_handler.callbacks:
            if isinstance(callback, ExportableState):
                self.state.stateful_callbacks.setdefault(type(callback).__name__, callback.state())

    def _save_rng_state(self, output_dir: str) -> None:
        """The Trainer's random states, and beside them the state of the generator the model draws
        the alignment games' orders from (its own, so that a forward pass leaves torch's random
        stream alone: the Trainer's files do not hold it). Written, as they are, before
        ``trainer_state.json``, which marks the checkpoint complete (`last_complete_checkpoint`): a
        complete checkpoint has the main process's (another process's, like its RNG file, may be
        torn by a kill: nothing waits for the processes before that file)."""
        super()._save_rng_state(output_dir)
        owner = orders_owner(self.model)
        if owner is not None:
            path = Path(output_dir) / SHAPLEY_ORDERS_FILE.format(self.args.process_index)
            torch.save(owner.shapley_generator(self.args.device).get_state(), path)

    def _restore_shapley_orders(self, checkpoint: Path) -> None:
        owner = orders_owner(self.model)
        path = checkpoint / SHAPLEY_ORDERS_FILE.format(self.args.process_index)
        if owner is None:
            return
        # No file: an older version's checkpoint, one saved with --save_only_model, or another
        # process's file torn by a kill.
        if not path.is_file():
            logger.warning(
                "%s has no %s: the alignment games' orders start again from the seed.", checkpoint, path.name
            )
            return
        try:
            owner.shapley_generator(self.args.device).set_state(torch.load(path, weights_only=True))
        except RuntimeError as error:  # e.g. a GPU run resumed on CPU: another generator's state
            logger.warning("%s does not fit this device's generator (%s): the orders start again from the seed.",
                           path, error)  # fmt: skip

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            model = self.model if model is None else model
            decay = set(self.get_decay_parameter_names(model))
            groups = {}
            for name, parameter in model.named_parameters():
                if not parameter.requires_grad:
                    continue
                encoder = ".text_model." in f".{name}" or ".vision_model." in f".{name}"
                groups.setdefault((encoder, name in decay), []).append(parameter)
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

    # Private: the Trainer has no public hook for the evaluation sampler. It would group evaluation
    # batches by length too; predictions are written and scored row by row against the dataset, so
    # evaluation keeps its order. (tests/shapca_training/test_trainer.py fails if a release changes it.)
    def _get_eval_sampler(self, eval_dataset):
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

    def get_eval_dataloader(self, eval_dataset=None):
        with self._reading_windows():
            return super().get_eval_dataloader(eval_dataset)

    def get_test_dataloader(self, test_dataset):
        with self._reading_windows():
            return super().get_test_dataloader(test_dataset)

    @contextlib.contextmanager
    def _reading_windows(self):
        """Evaluation and prediction read long texts in overlapping windows (training reads each
        text once, cut): the collator of the data loaders made inside this block does."""
        collator = self.data_collator
        if not hasattr(collator, "return_overflowing_tokens"):
            raise TypeError("MIETrainer evaluates with a ShapCADataCollator (it reads long texts in windows).")
        self.data_collator = dataclasses.replace(collator, return_overflowing_tokens=True)
        try:
            yield
        finally:
            self.data_collator = collator

    @staticmethod
    def _model_inputs(inputs: dict) -> dict:
        """The entries of a batch that the model takes (`ShapCAInputs` and the labels); the rest (the
        given pair, where each window belongs, the gold structures) is for decoding and scoring."""
        return {key: value for key, value in inputs.items() if key in MODEL_INPUTS}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**self._model_inputs(inputs))
        if model.training:
            parts = {
                part: float(getattr(outputs, part).detach())
                for part in LOSS_PARTS
                if getattr(outputs, part, None) is not None
            }
            if not torch.isfinite(outputs.loss.detach()):
                terms = ", ".join(f"{part} {value}" for part, value in parts.items())
                raise FloatingPointError(
                    f"The training loss is {float(outputs.loss.detach())} at step {self.state.global_step + 1} "
                    f"({terms}; loss = loss_main + alpha * loss_semantic + beta * loss_modality). Lower the "
                    "learning rates, check tau, or resume from the last checkpoint with --resume_from_checkpoint true."
                )
            for part, value in parts.items():
                self._loss_parts.setdefault(part, []).append(value)
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def log(self, logs, start_time=None):
        if "loss" in logs and self._loss_parts:
            logs.update({part: round(sum(v) / len(v), 4) for part, v in self._loss_parts.items()})
            self._loss_parts = {}
        super().log(logs, start_time)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            outputs = model(**self._model_inputs(inputs))
        loss = outputs.loss.detach() if outputs.loss is not None else None
        if prediction_loss_only:
            return loss, None, None
        unwrapped = self.accelerator.unwrap_model(model)
        predictions = predictions_from_logits(unwrapped, outputs.logits, inputs["word_index"] >= 0, inputs.get("spans"))
        if "overflow_to_sample_mapping" in inputs:  # rows are windows: one row per example again
            predictions = join_windows(predictions, inputs["overflow_to_sample_mapping"], inputs["word_offset"])
        if "relation_mass" in predictions:  # a given pair (MNRE)
            return loss, predictions["relation_mass"], inputs.get("gold_relation")
        width = self.prediction_width
        decoded = (pad_to(predictions["ids"], width).int(), pad_to(predictions["scores"], width))
        if "gold_entities" in inputs:  # joint extraction: the gold structures themselves
            return loss, decoded, (inputs["gold_entities"], inputs["gold_relations"])
        if "gold_tags" not in inputs:  # new examples (run_mie.py --do_predict): no gold to score
            return loss, decoded, None
        return loss, decoded, pad_to(inputs["gold_tags"], width).int()

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        """Save the model and the processor (the Trainer's own), with the pipeline's code and its
        entry in the config: a checkpoint that predicts with only transformers installed. Checkpoints
        during training and ``push_to_hub`` come through here too."""
        add_pipeline_to_config(self.accelerator.unwrap_model(self.model).config)
        super().save_model(output_dir, _internal_call=True)  # pushed below, once the code is there too
        if self.args.should_save:
            save_pipeline_code(output_dir or self.args.output_dir)
        if self.args.push_to_hub and not _internal_call:
            self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision)

    def save_metrics(self, split, metrics, combined=True):
        """`Trainer.save_metrics`, with every file written whole (see `write_text_atomic`): a reader
        never finds half a results file, even when the run is killed while writing it."""
        if not self.is_world_process_zero():
            return
        output_dir = Path(self.args.output_dir)
        write_text_atomic(output_dir / f"{split}_results.json", json.dumps(metrics, indent=4, sort_keys=True))
        if combined:
            results = read_results(output_dir / "all_results.json") or {}
            write_text_atomic(
                output_dir / "all_results.json", json.dumps({**results, **metrics}, indent=4, sort_keys=True)
            )

    def create_model_card(self, *args, results: dict | None = None, **kwargs):
        """The card of the run (`model_cards.build_model_card`) from ``results``, else from
        ``all_results.json`` (the Trainer calls this itself when pushing to the Hub)."""
        if not self.is_world_process_zero() or self.run_record is None:
            return
        output_dir = Path(self.args.output_dir)
        if results is None:
            results = read_results(output_dir / "all_results.json") or {}
        task, data = self.run_record
        card = build_model_card(self.accelerator.unwrap_model(self.model).config, self.args, task, results, data)
        card.save(output_dir / "README.md")
