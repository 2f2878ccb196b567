"""Raw text (and an image) in, entities and relations with character offsets out.

    >>> import processing  # registers the tasks
    >>> from transformers import pipeline
    >>> nlp = pipeline("multimodal-ner", model="runs/demo")
    >>> nlp("so proud of Jordan", image="photo.jpg", context="a portrait of a man")
    [{'entity_group': 'PER', 'word': 'Jordan', 'start': 12, 'end': 18, 'score': 0.98}]

A checkpoint written by `run_mie.py` (or `MultimodalExtractionPipeline.save_pretrained`) carries
this file as a custom pipeline, so that ``pipeline(model=checkpoint, trust_remote_code=True)``
works without the library.

Accepted inputs (anything else is a `TypeError` or `ValueError` that lists them):

- a text (``str``): its whitespace-separated words are read, offsets refer to the text;
- one example as a dict: ``{"text": str}`` or ``{"words": [str, ...]}``, with optional ``"image"``
  and ``"context"`` (the call's ``image=`` and ``context=`` apply to single inputs only);
- a batch: a list of texts or of such dicts -> a list of results, in order.

A bare list of single words (``["so", "proud", "of", "Jordan"]``) is ambiguous (one pre-split
text, or a batch of one-word texts) and is rejected: pass ``{"words": [...]}`` for the former.
An image is a path, a PIL image, a NumPy array or the bytes of an image file.

The context comes from the input, else from a configured `ContextStore` (by the image's file
name), else from a configured image-to-text generator, else the text is read without one.
Texts longer than the encoder's window are read in overlapping windows (the processor's
``stride``); no word is dropped. ``batch_size`` batches examples of similar length together.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from transformers import AutoModelForTokenClassification, Pipeline
from transformers.dynamic_module_utils import custom_object_save
from transformers.pipelines import PIPELINE_REGISTRY

from .context_generation import ContextGenerator
from .context_store import ContextStore
from .images import load_image
from .input_files import lone_surrogate
from .tasks import TASK_OF_HEAD, TASKS

WORD = re.compile(r"\S+")
# The task name under which a checkpoint carries this pipeline (`config.custom_pipelines`); not one
# of the names the library registers, so that with the library imported those load without remote code.
CHECKPOINT_TASK = "multimodal-information-extraction"
# The pipeline task of each kind of checkpoint (its head, ``config.task``).
PIPELINE_OF_HEAD = {head: TASKS[task].pipeline for head, task in TASK_OF_HEAD.items()}
INPUT_FORMS = (
    "a text (str), a dict {'text': str} or {'words': [str, ...]} with optional 'image' and 'context', "
    "or a list of texts or of such dicts"
)


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """A text -> its whitespace-separated words and their character offsets."""
    matches = list(WORD.finditer(text))
    return [m.group() for m in matches], [m.span() for m in matches]


def join_words(words: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """A word list -> the words joined by single spaces, and their offsets in that text."""
    offsets, position = [], 0
    for word in words:
        offsets.append((position, position + len(word)))
        position += len(word) + 1
    return " ".join(words), offsets


def _check_text(text: str, what: str) -> None:
    """A lone surrogate (``"\\ud800"``, half of a pair) is not text: no tokenizer can read it."""
    if problem := lone_surrogate(text):
        raise ValueError(f"The {what} {problem}; remove it or give the whole pair.")


def _check_context(context) -> None:
    if context is not None:
        if not isinstance(context, str):
            raise TypeError(f"context must be a string, got {type(context).__name__}.")
        _check_text(context, "context")


def _words_example(words, image, context) -> dict:
    """A pre-split text, ``{"words": [...]}``, -> an example."""
    bad = [w for w in words if not isinstance(w, str) or not w] if isinstance(words, (list, tuple)) else []
    if not isinstance(words, (list, tuple)) or not words or bad:
        raise TypeError(f"'words' must be a non-empty list of non-empty strings (got {bad[:3] or words!r}); "
                        f"accepted inputs: {INPUT_FORMS}.")  # fmt: skip
    _check_text(" ".join(words), "words")
    _check_context(context)
    text, offsets = join_words(list(words))
    return {"text": text, "words": list(words), "offsets": offsets, "image": image, "context": context}


def _example(item, image=None, context=None) -> dict:
    """One input in any accepted form -> ``{"text", "words", "offsets", "image", "context"}``."""
    if isinstance(item, dict):
        unknown = set(item) - {"text", "words", "image", "context"}
        if unknown or ("text" in item) == ("words" in item):
            raise ValueError(f"An input dict needs exactly one of 'text' or 'words' (got keys {sorted(item)}); "
                             f"accepted inputs: {INPUT_FORMS}.")  # fmt: skip
        image, context = item.get("image", image), item.get("context", context)
        if "words" in item:
            return _words_example(item["words"], image, context)
        item = item["text"]
    if not isinstance(item, str):
        raise TypeError(f"Cannot read an input of type {type(item).__name__}; accepted inputs: {INPUT_FORMS}.")
    _check_text(item, "text")
    _check_context(context)
    words, offsets = split_words(item)
    if not words:
        raise ValueError("The input text has no words: give a non-empty text.")
    return {"text": item, "words": words, "offsets": offsets, "image": image, "context": context}


def examples_from_inputs(inputs, image=None, context=None) -> tuple[list[dict], bool]:
    """Every accepted input form -> ``(examples, is_batch)``."""
    if isinstance(inputs, (str, dict)):
        return [_example(inputs, image, context)], False
    if isinstance(inputs, (list, tuple)):
        if not inputs:
            raise ValueError(f"The input list is empty; accepted inputs: {INPUT_FORMS}.")
        if len(inputs) > 1 and all(isinstance(item, str) and len(item.split()) == 1 for item in inputs):
            raise ValueError(
                f"{list(inputs)[:6]} is ambiguous: one text split into words, or a batch of one-word texts? "
                "Pass {'words': [...]} for a pre-split text, or a list of {'text': ...} dicts for a batch."
            )
        if image is not None or context is not None:
            raise ValueError("For a batch, give each example's image and context in its dict, not as arguments.")
        return [_example(item) for item in inputs], True
    raise TypeError(f"Cannot read an input of type {type(inputs).__name__}; accepted inputs: {INPUT_FORMS}.")


class MultimodalExtractionPipeline(Pipeline):
    """Multimodal NER (CRF checkpoints) and entity-relation extraction (word-pair checkpoints).

    Args (besides the `Pipeline` ones):
        context_store: a `ContextStore` or context JSONL path(s), looked up by the image file name.
        context_generator: a callable ``(list of PIL images) -> list of texts``, or the name of an
            image-text-to-text model (see `processing.context_generation.ContextGenerator`).

    Returns:
        For a CRF checkpoint, the entities ``[{"entity_group", "word", "start", "end", "score"}]``
        (character offsets); for a word-pair checkpoint ``{"entities": [...], "relations":
        [{"head": entity, "tail": entity, "relation", "score"}]}``. A batch gives a list of them.
    """

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, context_store=None, context_generator=None, **kwargs):
        super().__init__(*args, **kwargs)
        wanted = PIPELINE_OF_HEAD[self.model.config.task]
        if self.task in PIPELINE_OF_HEAD.values() and self.task != wanted:
            kind = "a CRF tagger (NER)" if self.model.config.task == "ner" else "a word-pair (relation)"
            raise ValueError(f"This is {kind} checkpoint: load it with pipeline({wanted!r}, ...), not {self.task!r}.")
        if context_store is not None and not isinstance(context_store, ContextStore):
            paths = [context_store] if isinstance(context_store, (str, os.PathLike)) else context_store
            context_store = ContextStore(paths, missing_context="empty")
        self.context_store = context_store
        if isinstance(context_generator, (str, os.PathLike)):
            context_generator = ContextGenerator(context_generator, device=self.device)
        self.context_generator = context_generator

    def _sanitize_parameters(self, **kwargs):
        return {}, {}, {}

    def __call__(self, inputs, image=None, context=None, batch_size: int | None = None):
        """Read one input or a batch (see the module's docstring for the accepted forms)."""
        examples, is_batch = examples_from_inputs(inputs, image, context)
        batch_size = max(1, batch_size or self._batch_size or 1)
        # Examples of similar length share a batch (less padding); results come back in input order.
        order = sorted(range(len(examples)), key=lambda index: len(examples[index]["words"]))
        results = [None] * len(examples)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            outputs = self.run_single([examples[index] for index in chunk], {}, {}, {})
            for index, result in zip(chunk, outputs):
                results[index] = result
        return results if is_batch else results[0]

    # -- inputs -------------------------------------------------------------------------------

    def resolve_context(self, context, image, image_id) -> tuple[str | None, str]:
        """The context to read and where it came from: ``"given"``, ``"store"``, ``"generator"`` or ``"none"``."""
        if context is not None:
            return context, "given"
        if self.context_store is not None and image_id is not None and image_id in self.context_store:
            return self.context_store.get(image_id), "store"
        if self.context_generator is not None and image is not None:
            return self.context_generator([image])[0], "generator"
        return None, "none"

    def preprocess(self, examples: list[dict]):
        for example in examples:
            source = example["image"]
            example["picture"] = None if source is None else load_image(source)
            image_id = Path(source).name if isinstance(source, (str, os.PathLike)) else None
            example["context"], example["context_source"] = self.resolve_context(
                example["context"], example["picture"], image_id
            )
        inputs = self.processor(
            [example["words"] for example in examples],
            context=[example["context"] for example in examples],
            images=[example["picture"] for example in examples] if self.model.config.use_image else None,
            return_overflowing_tokens=True,
        )
        return {"inputs": inputs, "examples": examples}

    # -- model ----------------------------------------------------------------------------------

    def _forward(self, model_inputs):
        inputs = model_inputs["inputs"]
        # The windows' bookkeeping (overflow_to_sample_mapping, word_offset) is for the decoder.
        outputs = self.model(**{key: inputs[key] for key in self.processor.model_input_names if key in inputs})
        return {**model_inputs, "structures": self.processor.post_process(self.model, outputs, inputs)}

    # -- outputs --------------------------------------------------------------------------------

    @staticmethod
    def _entity(example: dict, entity: dict) -> dict:
        begin, finish = example["offsets"][entity["start"]][0], example["offsets"][entity["end"] - 1][1]
        return {"entity_group": entity["type"], "word": example["text"][begin:finish], "start": begin,
                "end": finish, "score": entity["score"]}  # fmt: skip

    def postprocess(self, model_outputs):
        results = []
        for example, found in zip(model_outputs["examples"], model_outputs["structures"]):
            entities = [self._entity(example, entity) for entity in found["entities"]]
            if "relations" not in found:
                results.append(entities)
                continue
            relations = [
                {"head": entities[r["head"]], "tail": entities[r["tail"]], "relation": r["type"], "score": r["score"]}
                for r in found["relations"]
            ]
            results.append({"entities": entities, "relations": relations})
        return results

    # -- checkpoints ------------------------------------------------------------------------------

    def save_pretrained(self, save_directory, **kwargs):
        """Save the model and the processor with this pipeline's code: a self-contained checkpoint."""
        save_checkpoint(self.model, self.processor, save_directory, **kwargs)


def add_pipeline_to_config(config) -> None:
    """Name this pipeline in ``config.custom_pipelines`` (before the model's config is saved)."""
    config.custom_pipelines = {
        CHECKPOINT_TASK: {
            "impl": f"{__name__.rsplit('.', 1)[-1]}.{MultimodalExtractionPipeline.__name__}",
            "pt": ["AutoModelForTokenClassification"],
            "type": "multimodal",
        }
    }


def save_pipeline_code(save_directory) -> None:
    """Copy this file and the files it imports next to a saved model."""
    custom_object_save(MultimodalExtractionPipeline, save_directory)


def save_checkpoint(model, processor, save_directory, **kwargs) -> None:
    """A checkpoint that loads and predicts with only transformers installed: the model and its
    code, the processor and its code, and this pipeline (``pipeline(model=..., trust_remote_code=True)``)."""
    add_pipeline_to_config(model.config)
    model.save_pretrained(save_directory, **kwargs)
    processor.save_pretrained(save_directory)
    save_pipeline_code(save_directory)


for _task in PIPELINE_OF_HEAD.values():
    PIPELINE_REGISTRY.register_pipeline(
        _task, pipeline_class=MultimodalExtractionPipeline, pt_model=AutoModelForTokenClassification, type="multimodal"
    )
