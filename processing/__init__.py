"""Data side of Shap-CA: corpora, contexts, POS tags, the processor, the collator and metrics."""

from .collator import ShapCADataCollator
from .processing_shapca import ShapCAProcessor

__all__ = ["ShapCADataCollator", "ShapCAProcessor"]

# AutoProcessor finds the processor of a Shap-CA checkpoint through its config type,
# and a saved processor through the class name in processor_config.json.
from transformers import AutoProcessor  # noqa: E402

from modeling_shapca import ShapCAConfig  # noqa: E402

AutoProcessor.register(ShapCAConfig, ShapCAProcessor, exist_ok=True)

from . import pipeline_shapca  # noqa: E402,F401  (registers the multimodal-ner and -relation-extraction tasks)
