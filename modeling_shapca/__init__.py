"""Shap-CA for Hugging Face transformers.

Importing the package registers the models with the Auto classes (`AutoConfig`, `AutoModel`,
`AutoModelForTokenClassification`) and marks the classes for remote code, so that
`save_pretrained` writes `auto_map` and copies the modeling files next to the weights.

Each kind of checkpoint has a model type of its own, so one Auto route serves it with the
library imported and without it (`trust_remote_code=True`):

| checkpoint | model type | config | `AutoModel` | `AutoModelForTokenClassification` |
|---|---|---|---|---|
| CRF tagger (NER) | `shapca` | `ShapCAConfig` | `ShapCAModel` | `ShapCAForTokenClassification` |
| word pairs (MRE, MJERE) | `shapca_word_pair` | `ShapCAWordPairConfig` | `ShapCAWordPairModel` | `ShapCAForWordPairTagging` |
"""

# Before transformers: a torchvision of another build than torch's fails inside it, unnamed.
from .torch_builds import check_torchvision

check_torchvision()

from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification

from .configuration_shapca import ShapCAConfig, ShapCAWordPairConfig
from .modeling_shapca import (
    BASE_MODEL_FOR_HEAD,
    MODEL_FOR_HEAD,
    ShapCAForTokenClassification,
    ShapCAForWordPairTagging,
    ShapCAInputs,
    ShapCAModel,
    ShapCAModelOutput,
    ShapCAPreTrainedModel,
    ShapCATaggingModel,
    ShapCATaggingOutput,
    ShapCAWordPairModel,
)

for head, task_model in MODEL_FOR_HEAD.items():
    config_class, base_model = task_model.config_class, BASE_MODEL_FOR_HEAD[head]
    AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    AutoModel.register(config_class, base_model, exist_ok=True)
    AutoModelForTokenClassification.register(config_class, task_model, exist_ok=True)
    config_class.register_for_auto_class()
    base_model.register_for_auto_class("AutoModel")
    task_model.register_for_auto_class("AutoModelForTokenClassification")

__all__ = [
    "BASE_MODEL_FOR_HEAD",
    "MODEL_FOR_HEAD",
    "ShapCAConfig",
    "ShapCAForTokenClassification",
    "ShapCAForWordPairTagging",
    "ShapCAInputs",
    "ShapCAModel",
    "ShapCAModelOutput",
    "ShapCAPreTrainedModel",
    "ShapCATaggingModel",
    "ShapCATaggingOutput",
    "ShapCAWordPairConfig",
    "ShapCAWordPairModel",
]
