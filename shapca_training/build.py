"""What `run_mie.py` builds from its arguments: the processor (tokenizer, image processor, POS
tagger) and the model (from a checkpoint, from a config, or from pretrained encoders)."""

from __future__ import annotations

import dataclasses
import json
import os

from transformers import AutoConfig, AutoImageProcessor, AutoProcessor, AutoTokenizer, BertTokenizer

from modeling_shapca import MODEL_FOR_HEAD
from modeling_shapca.configuration_shapca import check_vision_architecture
from processing import ShapCAProcessor
from processing.tasks import TASKS
from shapca_training.errors import UsageError


def corpus_tokenizer(corpus) -> BertTokenizer:
    """A word-level tokenizer over the lower-cased words and context words of the training split."""
    words = set()
    for row in corpus["train"]:
        words.update(word.lower() for word in row["words"])
        words.update((row["context"] or "").lower().split())
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(words)]
    return BertTokenizer(vocab={word: i for i, word in enumerate(vocabulary)}, do_lower_case=True)


def vision_is_checkpoint(name: str) -> bool:
    """``--vision_model`` names a checkpoint (a folder or a Hub id), not a timm architecture."""
    return os.path.isdir(name) or "/" in name


def image_processor_for(model_args):
    if vision_is_checkpoint(model_args.vision_model):
        return AutoImageProcessor.from_pretrained(model_args.vision_model)
    import timm
    from transformers import TimmWrapperImageProcessor

    check_vision_architecture(model_args.vision_model)
    pretrained_cfg = timm.models.get_pretrained_cfg(model_args.vision_model).to_dict()
    if model_args.image_size:
        pretrained_cfg["input_size"] = (3, model_args.image_size, model_args.image_size)
    return TimmWrapperImageProcessor(pretrained_cfg=pretrained_cfg, architecture=model_args.vision_model)


def encoder_positions(model_args) -> int | None:
    """The token positions the text encoder has (``max_position_embeddings``), read from its config."""
    if model_args.model_name_or_path:
        config = AutoConfig.from_pretrained(model_args.model_name_or_path).text_config
    elif model_args.text_model_name_or_path:
        config = AutoConfig.from_pretrained(model_args.text_model_name_or_path)
    elif model_args.text_config:
        settings = json.loads(model_args.text_config)
        config = AutoConfig.for_model(settings.pop("model_type", "bert"), **settings)
    else:
        return None
    positions = getattr(config, "max_position_embeddings", None)
    # RoBERTa-style encoders number positions after the padding id: two of their table are never used.
    if positions is not None and "roberta" in getattr(config, "model_type", ""):
        positions -= config.pad_token_id + 1
    return positions


def check_max_length(model_args, data_args) -> None:
    """``--max_length`` tokens must fit the encoder's positions: a longer setting trains on short
    posts and then fails on the first long one, deep in the encoder."""
    positions = encoder_positions(model_args)
    if positions is not None and data_args.max_length > positions:
        raise UsageError(
            f"--max_length {data_args.max_length} is more tokens than the text encoder has positions "
            f"({positions}, its max_position_embeddings): give --max_length {positions} or less."
        )


def build_processor(model_args, data_args, corpus) -> ShapCAProcessor:
    check_max_length(model_args, data_args)
    if model_args.model_name_or_path:
        processor = AutoProcessor.from_pretrained(model_args.model_name_or_path)
        processor.max_length = data_args.max_length
        return processor
    if model_args.text_model_name_or_path:
        tokenizer = AutoTokenizer.from_pretrained(model_args.text_model_name_or_path)
    elif model_args.text_config:
        tokenizer = corpus_tokenizer(corpus)
    else:
        raise UsageError("Give --text_model_name_or_path (a pretrained encoder) or --text_config (random init).")
    return ShapCAProcessor(
        image_processor_for(model_args), tokenizer, max_length=data_args.max_length, pos_tagger=data_args.pos_tagger
    )


# The settings that decide a given pair from a trained model's outputs (see build_model).
DECISION_SETTINGS = ("mre_none_weight", "mre_prior_exponent", "mre_decision_cells")


def build_model(model_args, labels: list[str], task: str, processor: ShapCAProcessor):
    model_class = MODEL_FOR_HEAD[TASKS[task].head]
    if model_args.model_name_or_path:
        model = model_class.from_pretrained(model_args.model_name_or_path)
        # How a trained model decides a given pair is not what it learnt: a flag set away from its
        # default replaces the checkpoint's (its other settings are the checkpoint's own).
        defaults = {item.name: item.default for item in dataclasses.fields(model.config_class)}
        for name in DECISION_SETTINGS:
            value = getattr(model_args, name)
            if name in defaults and value != defaults[name]:
                setattr(model.config, name, value)
        return model
    settings = dict(
        model_args.config_settings(model_class.config_class),
        id2label=dict(enumerate(labels)),
        max_words=max(512, processor.max_length),
    )
    checkpoint = vision_is_checkpoint(model_args.vision_model)
    vision_name = None
    if model_args.use_image and (checkpoint or model_args.vision_pretrained):
        vision_name = model_args.vision_model if checkpoint else f"timm/{model_args.vision_model}"
    else:
        settings["vision_config"] = {"architecture": model_args.vision_model}
    if model_args.text_config:
        text_config = dict(json.loads(model_args.text_config), vocab_size=len(processor.tokenizer))
        text_config.setdefault("model_type", "bert")
        if vision_name is not None:
            raise UsageError("A pretrained vision backbone with a random text encoder is not supported; drop one.")
        return model_class(model_class.config_class(text_config=text_config, **settings))
    return model_class.from_encoders(model_args.text_model_name_or_path, vision_name, **settings)
