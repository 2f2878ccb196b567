"""Shap-CA for Hugging Face transformers.

Importing the package registers the model with the Auto classes (`AutoConfig`, `AutoModel`,
`AutoModelForTokenClassification`) and marks the classes for remote code, so that
`save_pretrained` writes `auto_map` and copies the modeling files next to the weights.
"""

from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification

from .configuration_shapca import UPOS_TAGS, ShapCAConfig
from .modeling_shapca import (
    MODEL_FOR_TASK,
    ShapCAForTokenClassification,
    ShapCAForWordPairTagging,
    ShapCAModel,
    ShapCAModelOutput,
    ShapCAPreTrainedModel,
    ShapCATaggingOutput,
)

AutoConfig.register(ShapCAConfig.model_type, ShapCAConfig, exist_ok=True)
AutoModel.register(ShapCAConfig, ShapCAModel, exist_ok=True)
AutoModelForTokenClassification.register(ShapCAConfig, ShapCAForTokenClassification, exist_ok=True)

ShapCAConfig.register_for_auto_class()
ShapCAModel.register_for_auto_class("AutoModel")
ShapCAForTokenClassification.register_for_auto_class("AutoModelForTokenClassification")
# No Auto class exists for word-pair grids; a word-pair checkpoint loads through
# AutoModelForTokenClassification with trust_remote_code=True (its auto_map names this class).
ShapCAForWordPairTagging.register_for_auto_class("AutoModelForTokenClassification")

__all__ = [
    "MODEL_FOR_TASK",
    "UPOS_TAGS",
    "ShapCAConfig",
    "ShapCAModel",
    "ShapCAPreTrainedModel",
    "ShapCAForTokenClassification",
    "ShapCAForWordPairTagging",
    "ShapCAModelOutput",
    "ShapCATaggingOutput",
]
