"""The model card (README.md) of a trained Shap-CA checkpoint, built with huggingface_hub.

    >>> card = build_model_card(model_args, data_args, training_args, "ner", results)
    >>> card.save(Path(training_args.output_dir) / "README.md")

The YAML header, ``model-index`` included, comes from `huggingface_hub.ModelCardData`; the body
is the Jinja template ``shapca.md`` next to this file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers.trainer_utils import SchedulerType

from processing.contexts import read_context_lines

TEMPLATE = Path(__file__).resolve().parent / "shapca.md"
TASK_TITLES = {
    "ner": "multimodal named entity recognition",
    "mre": "multimodal relation extraction",
    "mjere": "joint multimodal entity-relation extraction",
}
# The test scores reported in the model-index and at the top of the results, in each task's own
# words (the card's table shows every number).
TASK_METRICS = {
    "ner": {"f1": "entity F1", "precision": "entity precision", "recall": "entity recall", "strict_f1": "entity F1 (strict IOB2)"},
    "mre": {"f1": "relation F1", "precision": "relation precision", "recall": "relation recall"},
    "mjere": {
        "f1": "triple F1 (MJERE_j)", "precision": "triple precision", "recall": "triple recall",
        "entity_f1": "entity F1 (MJERE_e)", "entity_precision": "entity precision", "entity_recall": "entity recall",
    },
}  # fmt: skip


def context_generators(context_files: Iterable[str | os.PathLike]) -> str:
    """The generators named by the first record of each context file, comma-separated, or ``"none"``."""
    generators = set()
    for path in context_files:
        first = next(read_context_lines(path), None)
        if first is not None:
            generators.add(first[1].get("generator", "unknown"))
    return ", ".join(sorted(generators)) or "none"


def eval_results(corpus: str, task: str, results: dict) -> list[EvalResult]:
    """One `EvalResult` per test score of the task's ``TASK_METRICS`` found in ``results`` (keys ``test_<metric>``)."""
    return [
        EvalResult(
            task_type="token-classification",
            task_name=TASK_TITLES[task],
            dataset_type=corpus,
            dataset_name=corpus,
            dataset_split="test",
            metric_type=metric,
            metric_name=f"test {name}",
            metric_value=round(float(results[f"test_{metric}"]), 4),
        )
        for metric, name in TASK_METRICS[task].items()
        if f"test_{metric}" in results
    ]


def build_model_card(model_args, data_args, training_args, task: str, results: dict) -> ModelCard:
    """The checkpoint's card: metadata and test scores as model-index, model, results, training, use and data.

    Args:
        model_args, data_args, training_args: the three argument dataclasses of ``run_mie.py``.
        task: ``"ner"``, ``"mre"`` or ``"mjere"``.
        results: the run's metrics (``eval_*``, ``test_*``, ...); every number is shown in the
            card's table; the test scores of ``TASK_METRICS`` also go to the model-index and to
            the top of the results, named in the task's words.

    The repository id in the card's code is ``training_args.hub_model_id``, else the output
    folder, so that the snippets run as they stand on the local checkpoint.
    """
    repo_id = training_args.hub_model_id or str(training_args.output_dir)
    card_data = ModelCardData(
        model_name=repo_id,
        library_name="transformers",
        pipeline_tag="token-classification",
        tags=["shapca", "multimodal", "information-extraction", TASK_TITLES[task].replace(" ", "-")],
        datasets=[data_args.corpus],
        eval_results=eval_results(data_args.corpus, task, results) or None,  # no test scores, no model-index
    )
    hyperparameters = {
        "learning_rate (non-encoder)": training_args.learning_rate,
        "encoder_learning_rate": training_args.encoder_learning_rate,
        "batch_size": training_args.per_device_train_batch_size,
        "epochs": training_args.num_train_epochs,
        "scheduler": f"{SchedulerType(training_args.lr_scheduler_type).value}, warmup {training_args.warmup_steps}",
        "early_stopping_patience": training_args.early_stopping_patience,
        "seed": training_args.seed,
        **model_args.config_switches(),
        "max_length": data_args.max_length,
        "pos_tagger": data_args.pos_tagger,
    }
    if task == "ner":
        head = "CRF"
    else:
        head = "word-pair contrastive" if model_args.wordpair_contrastive else "word-pair"
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        repo_id=repo_id,
        task_title=TASK_TITLES[task],
        corpus=data_args.corpus,
        data_dir=data_args.data_dir,
        text_encoder=model_args.text_model_name_or_path or f"random init from {model_args.text_config}",
        image_encoder=f"`{model_args.vision_model}`" if model_args.use_image else "none (w/o Image)",
        context_generator=context_generators(data_args.context_files) if data_args.use_context else "none",
        alignment=f"{model_args.alignment_loss} loss, players: {model_args.alignment_players}, "
        f"alpha {model_args.alpha}, beta {model_args.beta}, tau {model_args.tau}",
        fusion="adaptive (context-gated)" if model_args.fusion_use_context else "plain cross-attention",
        head=head,
        headline={
            name: results[f"test_{metric}"]
            for metric, name in TASK_METRICS[task].items()
            if f"test_{metric}" in results
        },
        scores={key: value for key, value in results.items() if isinstance(value, (int, float))},
        hyperparameters=hyperparameters,
        pipeline_task="multimodal-ner" if task == "ner" else "multimodal-relation-extraction",
    )
