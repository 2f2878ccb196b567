"""Data side of Shap-CA: corpora, contexts, POS tags, the processor, the decoder, the collator.

Importing the package registers the processor with `AutoProcessor` (for both model types) and
the pipelines ``multimodal-ner`` and ``multimodal-relation-extraction``.
"""

from transformers import AutoProcessor

from modeling_shapca import MODEL_FOR_HEAD

from .collator import ShapCADataCollator
from .processing_shapca import ShapCAProcessor

for _task_model in MODEL_FOR_HEAD.values():
    AutoProcessor.register(_task_model.config_class, ShapCAProcessor, exist_ok=True)

from . import pipeline_shapca  # noqa: F401  (registers the pipeline tasks)

__all__ = ["ShapCADataCollator", "ShapCAProcessor"]
