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

- a text (``str``): its words are read, offsets refer to the text. Words are separated by white
  space and by the invisible separators ``SEPARATORS`` (zero-width space U+200B, word joiner
  U+2060, zero-width no-break space U+FEFF...); the zero-width joiners of emoji and scripts
  (U+200C, U+200D) stay inside their words;
- one example as a dict: ``{"text": str}`` or ``{"words": [str, ...]}``, with optional ``"image"``
  and ``"context"`` (the call's ``image=`` and ``context=`` apply to single inputs only);
- a batch: a list of texts or of such dicts -> a list of results, in order.

A bare list of single words (``["so", "proud", "of", "Jordan"]``) is ambiguous (one pre-split
text, or a batch of one-word texts) and is rejected: pass ``{"words": [...]}`` for the former.
An image is a path, a PIL image, a NumPy array or the bytes of an image file.

The context comes from the input, else from a configured `ContextStore` (by the image's file
name), else from a configured image-to-text generator, else the text is read without one.
Texts longer than the encoder's window are read in overlapping windows (the processor's
``stride``); no word is dropped. ``max_text_words`` (a pipeline or call argument, default no
limit) refuses longer texts before any work.

This is a `ChunkPipeline`, like transformers' token-classification pipeline: `preprocess` turns an
example into its windows, the base class's iterator puts ``batch_size`` windows at a time through
`_forward`, whichever examples they come from (so the model's memory does not grow with a text's
length), and hands each example's windows to `postprocess`, which joins them. Two things stay here.
Sorting: the base class streams inputs in the order given, so `__call__` (which also reads the
input forms above) orders a batch's examples by the tokens of their rows before handing them over
(less padding) and puts the results back in input order. Collating: ``word_index`` pads with -1,
which the base class's collator cannot do (it pads other keys with 0, and needs a tokenizer that a
processor-only pipeline lacks), so `get_iterator` passes `collate`, and gives the data loader a
random generator of its own (a call leaves the caller's random stream alone). Images go through
the base class: an example's pixels are computed once and shared by its windows.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader
from transformers import AutoModelForTokenClassification
from transformers.dynamic_module_utils import custom_object_save
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.pipelines.base import ChunkPipeline, no_collate_fn
from transformers.pipelines.pt_utils import PipelineChunkIterator, PipelineIterator, PipelinePackIterator

from .context_generation import ContextGenerator
from .context_store import ContextStore
from .decoding import join_windows, predictions_from_logits, structures_from_predictions
from .images import load_image
from .input_files import lone_surrogate
from .tasks import TASK_OF_HEAD, TASKS
from .wordpair import IGNORE_INDEX

# Invisible characters that separate words although Python's white space (``\s``) leaves them out:
# zero-width space, word joiner, zero-width no-break space (BOM), Mongolian vowel separator and
# invisible separator. The joiners U+200C / U+200D are not among them: they hold emoji sequences
# and the letters of some scripts together inside one word.
SEPARATORS = "\u180e\u200b\u2060\u2063\ufeff"
WORD = re.compile(rf"[^\s{SEPARATORS}]+")
# The task name under which a checkpoint carries this pipeline (`config.custom_pipelines`); not one
# of the names the library registers, so that with the library imported those load without remote code.
CHECKPOINT_TASK = "multimodal-information-extraction"
# The pipeline task of each kind of checkpoint (its head, ``config.head``).
PIPELINE_OF_HEAD = {head: TASKS[task].pipeline for head, task in TASK_OF_HEAD.items()}
INPUT_FORMS = (
    "a text (str), a dict {'text': str} or {'words': [str, ...]} with optional 'image' and 'context', "
    "or a list of texts or of such dicts"
)
# What a window pads its word-level tensors with in a batch (every other tensor pads with 0).
PADDING = {"word_index": -1}
_UNSET = object()


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """A text -> its words (separated by white space or `SEPARATORS`) and their character offsets."""
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
        if len(inputs) > 1 and all(isinstance(item, str) and len(WORD.findall(item)) == 1 for item in inputs):
            raise ValueError(
                f"{list(inputs)[:6]} is ambiguous: one text split into words, or a batch of one-word texts? "
                "Pass {'words': [...]} for a pre-split text, or a list of {'text': ...} dicts for a batch."
            )
        if image is not None or context is not None:
            raise ValueError("For a batch, give each example's image and context in its dict, not as arguments.")
        return [_example(item) for item in inputs], True
    raise TypeError(f"Cannot read an input of type {type(inputs).__name__}; accepted inputs: {INPUT_FORMS}.")


def _check_limit(max_text_words):
    """``max_text_words`` as given, once checked: None or a positive number of words."""
    if max_text_words is not None and (
        isinstance(max_text_words, bool) or not isinstance(max_text_words, int) or max_text_words < 1
    ):
        raise ValueError(f"max_text_words must be a positive number of words or None, got {max_text_words!r}.")
    return max_text_words


def _check_length(example: dict, max_text_words: int | None) -> None:
    if max_text_words is not None and len(example["words"]) > max_text_words:
        raise ValueError(
            f"The text has {len(example['words'])} words, more than this pipeline's max_text_words={max_text_words}. "
            "Raise the limit (pipeline(..., max_text_words=N) or nlp(text, max_text_words=N); None for no limit) "
            "or split the text."
        )


class _Carried:
    """An example riding along its windows through the model step untouched (the base class copies
    the dicts, lists and tuples it finds there, moving their tensors to the model's device)."""

    __slots__ = ("example",)

    def __init__(self, example: dict):
        self.example = example


class MultimodalExtractionPipeline(ChunkPipeline):
    """Multimodal NER (CRF checkpoints) and entity-relation extraction (word-pair checkpoints).

    Args (besides the `Pipeline` ones):
        context_store: a `ContextStore` or context JSONL path(s), looked up by the image file name.
        context_generator: a callable ``(list of PIL images) -> list of texts``, or the name of an
            image-text-to-text model (see `processing.context_generation.ContextGenerator`).
        max_text_words: the most words a text may have, also a call argument (default None: no
            limit; a long text is read ``batch_size`` windows at a time, in flat memory).
        batch_size: how many model rows (windows; one per text that fits the encoder) go through
            the model at once, also a call argument.

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
        wanted = PIPELINE_OF_HEAD[self.model.config.head]
        if self.task in PIPELINE_OF_HEAD.values() and self.task != wanted:
            raise ValueError(
                f"This is a {self.model.config.head_title} checkpoint: load it with pipeline({wanted!r}, ...), "
                f"not {self.task!r}."
            )
        if context_store is not None and not isinstance(context_store, ContextStore):
            paths = [context_store] if isinstance(context_store, (str, os.PathLike)) else context_store
            context_store = ContextStore(paths, missing_context="empty")
        self.context_store = context_store
        if isinstance(context_generator, (str, os.PathLike)):
            context_generator = ContextGenerator(context_generator, device=self.device)
        self.context_generator = context_generator

    def _sanitize_parameters(self, max_text_words=_UNSET):
        preprocess_params = {} if max_text_words is _UNSET else {"max_text_words": _check_limit(max_text_words)}
        return preprocess_params, {}, {}

    def __call__(self, inputs, image=None, context=None, batch_size: int | None = None, **kwargs):
        """Read one input or a batch (see the module's docstring for the accepted forms)."""
        examples, is_batch = examples_from_inputs(inputs, image, context)
        limit = {**self._preprocess_params, **self._sanitize_parameters(**kwargs)[0]}.get("max_text_words")
        for example in examples:  # before any work
            _check_length(example, limit)
        batch_size = max(1, batch_size or self._batch_size or 1)
        # Rows of similar length share a batch (less padding); results come back in input order.
        lengths = self.row_lengths(examples) if batch_size > 1 and len(examples) > 1 else [0] * len(examples)
        order = sorted(range(len(examples)), key=lengths.__getitem__)
        outputs = super().__call__([examples[index] for index in order], batch_size=batch_size, **kwargs)
        results = [None] * len(examples)
        for index, result in zip(order, outputs):
            results[index] = result
        return results if is_batch else results[0]

    def get_iterator(
        self, inputs, num_workers: int, batch_size: int, preprocess_params, forward_params, postprocess_params
    ):
        """`ChunkPipeline.get_iterator` with this pipeline's collator, and a data loader that draws its
        seed from a generator of its own, not from the caller's random stream."""
        windows = PipelineChunkIterator(inputs, self.preprocess, preprocess_params)
        loader = DataLoader(
            windows,
            batch_size=batch_size,
            num_workers=min(num_workers, 1),  # windows come from a generator: one worker at most
            collate_fn=no_collate_fn if batch_size == 1 else self.collate,
            generator=torch.Generator(),
        )
        model_iterator = PipelinePackIterator(loader, self.forward, forward_params, loader_batch_size=batch_size)
        return PipelineIterator(model_iterator, self.postprocess, postprocess_params)

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

    def row_lengths(self, examples: list[dict]) -> list[int]:
        """About how many tokens the model row of each example holds (the first, for a long text):
        its words and the context known before reading it (given, or in the store), up to the
        processor's ``max_length``. One tokenizer call for them all."""
        contexts = []
        for example in examples:
            source = example["image"]
            image_id = Path(source).name if isinstance(source, (str, os.PathLike)) else None
            context, _ = self.resolve_context(example["context"], None, image_id)  # no image: no generator
            contexts.append((context or "").split())
        words = [example["words"] for example in examples]
        encoded = self.processor.tokenizer(words + contexts, is_split_into_words=True, add_special_tokens=False)
        tokens = [len(ids) for ids in encoded["input_ids"]]
        most = self.processor.max_length
        return [min(text + context, most) for text, context in zip(tokens, tokens[len(examples) :])]

    def encode(self, example: dict):
        """One example (see `examples_from_inputs`) -> the processor's output for it: one row per
        window (``word_offset``: the index of each window's first word), and for a model that reads
        images the example's ``pixel_values`` and ``image_mask`` once (one row, for every window).
        Sets the example's ``context`` and ``context_source`` (see `resolve_context`)."""
        source = example["image"]
        picture = None if source is None else load_image(source, self.processor.image_processor)
        image_id = Path(source).name if isinstance(source, (str, os.PathLike)) else None
        example["context"], example["context_source"] = self.resolve_context(example["context"], picture, image_id)
        inputs = self.processor([example["words"]], context=[example["context"]], return_overflowing_tokens=True)
        if self.model.config.use_image:
            # The processor would copy the pixels once per window; a long text shares one copy.
            inputs["pixel_values"], inputs["image_mask"] = self.processor._pixel_values([picture])
        return inputs

    def preprocess(self, example: dict, max_text_words: int | None = None):
        """One example -> its windows, one model row each (``is_last`` on the last)."""
        _check_length(example, max_text_words)
        inputs = self.encode(example)
        carried, offsets = _Carried(example), inputs.pop("word_offset").tolist()
        inputs.pop("overflow_to_sample_mapping")
        shared = {key: inputs.pop(key) for key in ("pixel_values", "image_mask") if key in inputs}
        for row, offset in enumerate(offsets):
            window = {key: value[row : row + 1] for key, value in inputs.items()}
            yield {**window, **shared, "word_offset": offset, "example": carried, "is_last": row == len(offsets) - 1}

    def collate(self, windows: list[dict]) -> dict:
        """Windows -> one batch: token and word rows padded as the processor pads them."""
        batch = {}
        for key, value in windows[0].items():
            if not isinstance(value, torch.Tensor):
                batch[key] = [window[key] for window in windows]
            elif value.dim() == 2:  # (1, tokens) or (1, words)
                rows = [window[key][0] for window in windows]
                batch[key] = pad_sequence(rows, batch_first=True, padding_value=self._padding(key))
            else:  # pixel_values, image_mask
                batch[key] = torch.cat([window[key] for window in windows])
        return batch

    def _padding(self, key: str) -> int:
        return self.processor.tokenizer.pad_token_id if key == "input_ids" else PADDING.get(key, 0)

    # -- model ----------------------------------------------------------------------------------

    def get_inference_context(self):
        return torch.inference_mode  # less work per tensor operation than the base class's no_grad

    def _forward(self, model_inputs):
        inputs = {key: model_inputs[key] for key in self.processor.model_input_names if key in model_inputs}
        logits = self.model(**inputs).logits
        # The tags (or grid labels) and their probabilities, for the whole batch at once.
        predictions = predictions_from_logits(self.model, logits, inputs["word_index"] >= 0)
        bookkeeping = ("word_offset", "example", "is_last")
        return {**predictions, **{key: model_inputs[key] for key in bookkeeping}}

    # -- outputs --------------------------------------------------------------------------------

    @staticmethod
    def _entity(example: dict, entity: dict) -> dict:
        begin, finish = example["offsets"][entity["start"]][0], example["offsets"][entity["end"] - 1][1]
        return {"entity_group": entity["type"], "word": example["text"][begin:finish], "start": begin,
                "end": finish, "score": entity["score"]}  # fmt: skip

    def postprocess(self, windows: list[dict]):
        """One example's windows (from any batches) -> its entities (and relations)."""
        example = windows[0]["example"].example
        predictions = {key: windows[0][key] for key in ("ids", "scores")}
        if len(windows) > 1:  # the windows of a long text, joined: each word from where it has most context
            rows = {key: _stack([window[key][0] for window in windows], key) for key in predictions}
            offsets = torch.tensor([window["word_offset"] for window in windows])
            predictions = join_windows(rows, torch.zeros_like(offsets), offsets)
        config = self.model.config
        (found,) = structures_from_predictions(predictions, config.id2label, config.head)
        entities = [self._entity(example, entity) for entity in found["entities"]]
        if "relations" not in found:
            return entities
        relations = [
            {"head": entities[r["head"]], "tail": entities[r["tail"]], "relation": r["type"], "score": r["score"]}
            for r in found["relations"]
        ]
        return {"entities": entities, "relations": relations}

    # -- checkpoints ------------------------------------------------------------------------------

    def save_pretrained(self, save_directory, **kwargs):
        """Save the model and the processor with this pipeline's code: a self-contained checkpoint."""
        save_checkpoint(self.model, self.processor, save_directory, **kwargs)


def _stack(rows: list[torch.Tensor], key: str) -> torch.Tensor:
    """Window rows ``(W...)`` of different widths (batches pad differently) -> ``(R, W_max...)``."""
    width = max(row.shape[0] for row in rows)
    fill = IGNORE_INDEX if key == "ids" else 0
    out = rows[0].new_full((len(rows), *[width] * rows[0].dim()), fill)
    for index, row in enumerate(rows):
        out[(index, *[slice(0, size) for size in row.shape])] = row
    return out


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
