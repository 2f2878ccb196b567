"""Raw text (and an image) in, entities and relations with character offsets out.

    >>> import processing  # registers the tasks
    >>> from transformers import pipeline
    >>> nlp = pipeline("multimodal-ner", model="runs/demo")
    >>> nlp("so proud of Jordan", image="photo.jpg", context="a portrait of a man")
    [{'entity_group': 'PER', 'word': 'Jordan', 'start': 12, 'end': 18, 'score': 0.98}]

The context comes from the call, else from a configured `ContextStore` (by the image's file
name), else from a configured image-to-text generator, else the text is read without one.
A text longer than the encoder's window is read in consecutive windows of words; no word is
dropped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from PIL import Image
from transformers import AutoModelForTokenClassification, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from modeling_shapca import ShapCAForTokenClassification, ShapCAForWordPairTagging

from .contexts import ContextGenerator, ContextStore
from .metrics import bio_entities
from .pos import PosTagger, pos_ids
from .wordpair import REVERSED, cross_cells, decode_grid

WORD = re.compile(r"\S+")


def split_words(text_or_words) -> tuple[str, list[str], list[tuple[int, int]]]:
    """A string -> its whitespace-separated words with character offsets; a word list -> the
    words joined by single spaces, with their offsets in that text."""
    if isinstance(text_or_words, str):
        matches = list(WORD.finditer(text_or_words))
        return text_or_words, [m.group() for m in matches], [m.span() for m in matches]
    words, offsets, position = list(text_or_words), [], 0
    for word in words:
        offsets.append((position, position + len(word)))
        position += len(word) + 1
    return " ".join(words), words, offsets


class MultimodalExtractionPipeline(Pipeline):
    """Multimodal NER (CRF checkpoints) and entity-relation extraction (word-pair checkpoints).

    Args (besides the `Pipeline` ones):
        context_store: a `ContextStore` or context JSONL path(s), looked up by the image file name.
        context_generator: a callable ``(list of PIL images) -> list of texts``, or the name of an
            image-text-to-text model (see `processing.contexts.ContextGenerator`).
        pos_tagger: spaCy model for POS tags; defaults to the one saved with the processor.
    """

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, context_store=None, context_generator=None, pos_tagger=None, **kwargs):
        super().__init__(*args, **kwargs)
        if context_store is not None and not isinstance(context_store, ContextStore):
            paths = [context_store] if isinstance(context_store, (str, os.PathLike)) else context_store
            context_store = ContextStore(paths, missing_context="empty")
        self.context_store = context_store
        if isinstance(context_generator, (str, os.PathLike)):
            context_generator = ContextGenerator(context_generator, device=self.device)
        self.context_generator = context_generator
        self.tagger = PosTagger(pos_tagger or getattr(self.processor, "pos_tagger", "none"))

    def _sanitize_parameters(self, image=None, context=None, **kwargs):
        preprocess = {}
        if image is not None:
            preprocess["image"] = image
        if context is not None:
            preprocess["context"] = context
        return preprocess, {}, {}

    # -- inputs -------------------------------------------------------------------------------

    def _image(self, image) -> tuple[Image.Image | None, str | None]:
        if image is None:
            return None, None
        if isinstance(image, Image.Image):
            return image.convert("RGB"), None
        with Image.open(image) as opened:
            return opened.convert("RGB"), Path(image).name

    def resolve_context(self, context, image, image_id) -> tuple[str | None, str]:
        """The context to read the text with and where it came from: ``"given"`` (the call's),
        ``"store"`` (by the image's file name), ``"generator"`` (made from the image) or ``"none"``."""
        if context is not None:
            return context, "given"
        if self.context_store is not None and image_id is not None and image_id in self.context_store:
            return self.context_store.get(image_id), "store"
        if self.context_generator is not None and image is not None:
            return self.context_generator([image])[0], "generator"
        return None, "none"

    def windows(self, words: list[str], context: str | None) -> list[tuple[int, int]]:
        """Consecutive word ranges whose tokens fit the encoder (half of it when there is a context)."""
        budget = self.processor.max_length - self.processor.tokenizer.num_special_tokens_to_add(pair=True)
        if context:
            budget //= 2
        counts = [max(1, n) for n in self.processor.token_counts([words])[0]]
        ranges, start, used = [], 0, 0
        for position, count in enumerate(counts):
            if position > start and used + count > budget:
                ranges.append((start, position))
                start, used = position, 0
            used += count
        ranges.append((start, len(words)))
        return ranges

    def preprocess(self, inputs, image=None, context=None):
        if isinstance(inputs, dict):
            image, context = inputs.get("image", image), inputs.get("context", context)
            inputs = inputs["text"] if "text" in inputs else inputs["words"]
        text, words, offsets = split_words(inputs)
        if not words:
            raise ValueError("The input has no words.")
        picture, image_id = self._image(image)
        context, _ = self.resolve_context(context, picture, image_id)
        ranges = self.windows(words, context)
        tags = pos_ids(self.tagger([words])[0])
        batch = self.processor(
            [words[a:b] for a, b in ranges],
            context=[context] * len(ranges),
            images=[picture] * len(ranges) if self.model.config.use_image else None,
            pos=[tags[a:b] for a, b in ranges],
        )
        return {"batch": batch, "text": text, "offsets": offsets, "ranges": ranges}

    # -- model ----------------------------------------------------------------------------------

    def _forward(self, model_inputs):
        batch = model_inputs["batch"]
        logits = self.model(**batch).logits
        word_mask = batch["word_index"] >= 0
        return {**model_inputs, "logits": logits, "predictions": self.model.decode(logits, word_mask)}

    # -- outputs --------------------------------------------------------------------------------

    def _span(self, text, offsets, start, end) -> dict:
        begin, finish = offsets[start][0], offsets[end - 1][1]
        return {"word": text[begin:finish], "start": begin, "end": finish}

    def postprocess(self, model_outputs):
        text, offsets, ranges = model_outputs["text"], model_outputs["offsets"], model_outputs["ranges"]
        id2label = self.model.config.id2label
        predictions = model_outputs["predictions"].cpu().numpy()
        probabilities = model_outputs["logits"].float().softmax(-1).cpu().numpy()
        if self.model.config.task == "ner":
            tags, scores = [], []
            for row, (a, b) in enumerate(ranges):
                ids = predictions[row, : b - a]
                tags += [id2label[int(i)] for i in ids]
                scores += [float(probabilities[row, k, i]) for k, i in enumerate(ids)]
            return [
                {
                    "entity_group": e["type"],
                    **self._span(text, offsets, e["start"], e["end"]),
                    "score": float(np.mean(scores[e["start"] : e["end"]])),
                }  # fmt: skip
                for e in bio_entities(tags)
            ]
        entities, relations = [], []
        label_ids = {label: int(i) for i, label in id2label.items()}
        for row, (a, b) in enumerate(ranges):
            size = b - a
            found, links = decode_grid(predictions[row, :size, :size], id2label)
            base = len(entities)
            for e in found:
                block = probabilities[row, e["start"] : e["end"], e["start"] : e["end"], label_ids[e["type"]]]
                entities.append({"entity_group": e["type"], **self._span(text, offsets, a + e["start"], a + e["end"]),
                                 "score": float(np.triu(block).sum() / np.triu(np.ones_like(block)).sum())})  # fmt: skip
            for link in links:
                head, tail = found[link["head"]], found[link["tail"]]
                rows, columns, forward = cross_cells(head, tail)
                label = link["type"] if forward else link["type"] + REVERSED
                score = float(probabilities[row, rows, columns, label_ids[label]].mean())
                relations.append({"head": entities[base + link["head"]], "tail": entities[base + link["tail"]],
                                  "relation": link["type"], "score": score})  # fmt: skip
        return {"entities": entities, "relations": relations}


PIPELINE_REGISTRY.register_pipeline(
    "multimodal-ner",
    pipeline_class=MultimodalExtractionPipeline,
    pt_model=(ShapCAForTokenClassification, ShapCAForWordPairTagging, AutoModelForTokenClassification),
    type="multimodal",
)
PIPELINE_REGISTRY.register_pipeline(
    "multimodal-relation-extraction",
    pipeline_class=MultimodalExtractionPipeline,
    pt_model=(ShapCAForWordPairTagging, ShapCAForTokenClassification, AutoModelForTokenClassification),
    type="multimodal",
)
