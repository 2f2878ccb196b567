"""What `run_mie.py` builds from its arguments: the processor (tokenizer, image processor, POS
tagger) and the model (from a checkpoint, from a config, or from pretrained encoders)."""

from __future__ import annotations

import json
import os

from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer, BertTokenizer

from modeling_shapca import MODEL_FOR_TASK
from processing import ShapCAProcessor
from processing.tasks import TASKS


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
