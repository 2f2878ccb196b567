"""`MIETrainer`: the `Trainer` with the paper's two learning rates, logged loss parts, decoded
predictions for the metrics, and self-contained checkpoints."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from torch.utils.data import SequentialSampler
from transformers import Trainer

from model_cards import build_model_card
from modeling_shapca import ShapCAInputs
from processing.decoding import IGNORE, join_windows, predictions_from_logits
from processing.pipeline_shapca import add_pipeline_to_config, save_pipeline_code
from records_mie import read_results, write_text_atomic

LOSS_PARTS = ("loss_main", "loss_semantic", "loss_modality")
MODEL_INPUTS = {*ShapCAInputs.__annotations__, "labels"}


def pad_to(tensor: torch.Tensor, size: int) -> torch.Tensor:
    """Pad the word axes of ``(B, W)`` or ``(B, W, W)`` to ``size`` with -100 (so batches concatenate)."""
    if tensor.shape[-1] > size:  # padding by a negative amount would cut words off silently
        raise ValueError(f"Predictions of {tensor.shape[-1]} words do not fit max_words={size}; raise max_words.")
    padding = []
    for _ in range(tensor.dim() - 1):
        padding = [0, size - tensor.shape[-1 - len(padding) // 2]] + padding
    return torch.nn.functional.pad(tensor, padding, value=IGNORE)


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
      ``max_words`` so that batches concatenate), or the relation mass of the given pair; the gold
      is the file's own, the ``gold_*`` columns of the batch. `compute_metrics` turns both into
      scores.
    - A saved checkpoint carries the pipeline's code next to the model's and the processor's, and
      the model card (`model_cards.build_model_card`) is written from the model's config, the
      data the run read and its results. Results files are written whole (temporary file, then rename).

    Args:
        run_record: ``(task, data)`` for the model card: the task (``"ner"``, ``"mre"``,
            ``"mjere"``) and what the run read (`data_mie.data_summary`).
        max_words: the width the word axes of the predictions are padded to: at least the words
            of the longest example evaluated.
    """

    def __init__(self, *args, run_record=None, max_words: int = 128, **kwargs):
        super().__init__(*args, **kwargs)
        self.run_record = run_record
        self.max_words = max_words
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

    def _get_eval_sampler(self, eval_dataset):
        # The Trainer would group evaluation batches by length too; predictions are written and
        # scored row by row against the dataset, so evaluation keeps its order.
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

    def _get_dataloader(self, *args, is_training: bool = False, **kwargs):
        # Evaluation and prediction read long texts in windows; training reads each text once, cut.
        collator = self.data_collator
        if not is_training:
            if not hasattr(collator, "return_overflowing_tokens"):
                raise TypeError("MIETrainer evaluates with a ShapCADataCollator (it reads long texts in windows).")
            self.data_collator = dataclasses.replace(collator, return_overflowing_tokens=True)
        try:
            return super()._get_dataloader(*args, is_training=is_training, **kwargs)
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
        decoded = (pad_to(predictions["ids"], self.max_words).int(), pad_to(predictions["scores"], self.max_words))
        if "gold_entities" in inputs:  # joint extraction: the gold structures themselves
            return loss, decoded, (inputs["gold_entities"], inputs["gold_relations"])
        if "gold_tags" not in inputs:  # new examples (run_mie.py --do_predict): no gold to score
            return loss, decoded, None
        return loss, decoded, pad_to(inputs["gold_tags"], self.max_words).int()

    def _save(self, output_dir: str | None = None, state_dict=None):
        """Save the model and the processor (the Trainer's own), with the pipeline's code and its
        entry in the config: a checkpoint that predicts with only transformers installed."""
        add_pipeline_to_config(self.accelerator.unwrap_model(self.model).config)
        super()._save(output_dir, state_dict)
        if self.args.should_save:  # every rank enters `_save`; one writes
            save_pipeline_code(output_dir or self.args.output_dir)

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
