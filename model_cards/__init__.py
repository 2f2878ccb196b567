"""The model card (README.md) of a Shap-CA run, built with huggingface_hub.

    >>> card = build_model_card(model.config, training_args, "ner", results, data)
    >>> card.save(Path(training_args.output_dir) / "README.md")

The card says what the run really had: the model's settings come from the model's own config,
the corpus, its splits and the contexts from the data the run read (``data``, see
`shapca_training.data.data_summary`), the training settings only when the run trained. The YAML header,
``model-index`` included, comes from `huggingface_hub.ModelCardData`; the body is the Jinja
template ``shapca.md`` next to this file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers import PreTrainedConfig
from transformers.trainer_utils import SchedulerType

from processing.tasks import TASKS

TEMPLATE = Path(__file__).resolve().parent / "shapca.md"
# Results that measure time or work, not quality: the card's speed table.
SPEED_KEYS = ("_runtime", "_samples_per_second", "_steps_per_second", "total_flos")
# The example each kind of checkpoint is shown with.
EXAMPLES = {
    "crf": (["so", "proud", "of", "Jordan"], "a portrait of a man"),
    "word_pair": (["Eden", "met", "Hudson", "at", "the", "beach"], "two people holding hands at a wedding"),
}
# The config fields every `PreTrainedConfig` has, and the sub-models' own: not Shap-CA settings.
NOT_SETTINGS = {field.name for field in dataclasses.fields(PreTrainedConfig)} | {"text_config", "vision_config"}


def eval_results(corpus: str, task: str, results: dict) -> list[EvalResult]:
    """One `EvalResult` per test score of the task (`TaskSpec.scores`) found in ``results`` (keys ``test_<metric>``)."""
    return [
        EvalResult(
            task_type="token-classification",
            task_name=TASKS[task].title,
            dataset_type=corpus,
            dataset_name=corpus,
            dataset_split="test",
            metric_type=metric,
            metric_name=f"test {name}",
            metric_value=round(float(results[f"test_{metric}"]), 4),
        )
        for metric, name in TASKS[task].scores.items()
        if f"test_{metric}" in results
    ]


def model_settings(config) -> dict:
    """Every Shap-CA setting of the model's config (alignment, fusion, head...), by name."""
    return {
        field.name: getattr(config, field.name)
        for field in dataclasses.fields(config)
        if field.name not in NOT_SETTINGS
    }


def text_encoder(config) -> str:
    text = config.text_config
    if getattr(text, "_name_or_path", ""):
        return f"`{text._name_or_path}`"
    return f"{text.model_type}, {text.num_hidden_layers} layers of {text.hidden_size}, random init"


def image_encoder(vision_config) -> str:
    """The backbone's name: a timm architecture, else the checkpoint it came from, else its model type."""
    return (
        getattr(vision_config, "architecture", None)
        or getattr(vision_config, "_name_or_path", "")
        or vision_config.model_type
    )


def context_line(data: dict) -> str:
    """How many examples of each split had a bridging context, and where the contexts came from."""
    with_context = data["with_context"]
    if not any(with_context.values()):
        return "none (no example had a context)"
    counts = ", ".join(f"{split} {with_context[split]:,} of {data['examples'][split]:,}" for split in data["examples"])
    return f"{data['context_source']}; examples with one: {counts}"


def split_results(results: dict) -> tuple[dict, dict]:
    """The run's numbers as (scores, speed), each by name; other entries (the environment) are left out."""
    numbers = {key: value for key, value in results.items() if isinstance(value, (int, float)) and key != "epoch"}
    speed = {key: value for key, value in numbers.items() if key.endswith(SPEED_KEYS)}
    return {key: value for key, value in numbers.items() if key not in speed}, speed


def training_settings(training_args, data: dict, results: dict) -> dict:
    return {
        "learning_rate (non-encoder)": training_args.learning_rate,
        "encoder_learning_rate": training_args.encoder_learning_rate,
        "batch_size": training_args.per_device_train_batch_size * max(1, training_args.world_size),
        "epochs": training_args.num_train_epochs,
        **({"epochs run (early stopping may end sooner)": results["epoch"]} if "epoch" in results else {}),
        "scheduler": f"{SchedulerType(training_args.lr_scheduler_type).value}, warmup {training_args.warmup_steps}",
        "early_stopping_patience": training_args.early_stopping_patience,
        "sampling": training_args.train_sampling_strategy,
        "seed": training_args.seed,
        "max_length": data["max_length"],
        "pos_tagger": data["pos_tagger"],
    }


def build_model_card(config, training_args, task: str, results: dict, data: dict) -> ModelCard:
    """The run's card: metadata and test scores as model-index, model, results, training, use and data.

    Args:
        config: the model's own config (`ShapCAConfig` or `ShapCAWordPairConfig`).
        training_args: the run's `TrainingArguments` (``do_train``, ``output_dir``, ``hub_model_id``...).
        task: ``"ner"``, ``"mre"`` or ``"mjere"``.
        results: the run's results (``eval_*``, ``test_*``, ``*_runtime``..., ``environment``); the
            test scores of the task (`TaskSpec.scores`) also go to the model-index and to the top of the card.
        data: what the run read (`shapca_training.data.data_summary`): ``corpus`` (the data's name: a corpus,
            a dataset, the training file), ``source``, ``licence``, ``data_dir``, ``examples``
            and ``with_context`` per split, ``context_source``, ``max_length``, ``pos_tagger`` and
            ``checkpoint`` (the trained checkpoint the run started from or scored, if any).

    The card's name is ``hub_model_id`` when one is given, else the output folder's name. The
    snippets load the Hub id, else the folder the weights are in (the output folder of a run that
    trained, the scored checkpoint of one that did not), so that they run as they stand.
    """
    trained = training_args.do_train
    location = training_args.hub_model_id or (
        training_args.output_dir if trained or not data["checkpoint"] else data["checkpoint"]
    )
    name = training_args.hub_model_id or Path(training_args.output_dir).name
    scores, speed = split_results(results)
    contrastive = config.head == "word_pair" and config.wordpair_contrastive  # the CRF has no such loss
    head = config.head_title + (" with the contrastive loss" if contrastive else "")
    card_data = ModelCardData(
        model_name=name,
        library_name="transformers",
        pipeline_tag=TASKS[task].hub_pipeline_tag,
        tags=["shapca", "multimodal", "information-extraction", TASKS[task].title.replace(" ", "-")],
        # A Hub card's datasets are names, not local files.
        datasets=None if data["corpus"].endswith((".jsonl", ".json")) else [data["corpus"]],
        eval_results=eval_results(data["corpus"], task, results) or None,  # no test scores, no model-index
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        name=name,
        location=str(location),
        trained=trained,
        checkpoint=data["checkpoint"],
        task_title=TASKS[task].title,
        corpus=data["corpus"],
        source=data["source"],
        licence=data["licence"],
        data_dir=data["data_dir"],
        examples=data["examples"],
        text_encoder=text_encoder(config),
        image_encoder=f"`{image_encoder(config.vision_config)}`" if config.use_image else "none (w/o Image)",
        contexts=context_line(data),
        head=head,
        settings=model_settings(config),
        headline={
            name: results[f"test_{metric}"]
            for metric, name in TASKS[task].scores.items()
            if f"test_{metric}" in results
        },
        scores=scores,
        speed=speed,
        environment=results.get("environment"),
        training=training_settings(training_args, data, results) if trained else None,
        example=EXAMPLES[config.head],
        pipeline_task=TASKS[task].pipeline,
    )
