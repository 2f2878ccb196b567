"""Configuration of Shap-CA models."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec


@strict
class ShapCAConfig(PreTrainedConfig):
    r"""
    Configuration of [`ShapCAModel`] and [`ShapCAForTokenClassification`] (the CRF head); its
    subclass [`ShapCAWordPairConfig`], with the same fields, configures the word-pair models.

    Defaults give the paper's model: a `bert-base-uncased`-shaped text encoder, a ResNet-152 image
    encoder, Shapley contrastive alignment through the bridging context (alpha 0.2, beta 0.4) and
    context-aware adaptive fusion.

    Args:
        text_config (`dict` or `PreTrainedConfig`, *optional*):
            Config of the BERT-family encoder that reads `[CLS] text [SEP] context [SEP]`.
        vision_config (`dict` or `TimmWrapperConfig`, *optional*):
            Config of the timm image backbone (default architecture `resnet152`).
        use_image (`bool`, defaults to `True`):
            `False` is the "w/o Image" setting: no vision tower is built, fusion sees text only and
            there is no context-image alignment.
        fusion_hidden_size (`int`, *optional*):
            Width D of the fusion block; defaults to the text encoder's width.
        fusion_num_heads (`int`, defaults to 12):
            Attention heads of the fusion block.
        fusion_use_context (`bool`, defaults to `True`):
            `False` is "w/o Context in Fusion": plain cross-attention, without the context bias and gates.
        fusion_dropout (`float`, defaults to 0.1):
            Dropout on the attention weights and the fused features.
        num_pos_tags (`int`, defaults to 19):
            Size of the part-of-speech vocabulary: the 17 universal POS tags plus padding and
            unknown (the processor's `UPOS_TAGS`).
        feature_embedding_size (`int`, defaults to 100):
            Width of the POS (`M^s`) and word-position (`M^p`) embeddings.
        max_words (`int`, defaults to 512):
            Number of word positions the position embedding knows.
        head_hidden_size (`int`, defaults to 256):
            Hidden width of the MLPs of both heads.
        head_dropout (`float`, defaults to 0.1):
            Dropout inside the heads.
        sentence_pooling (`"mean"` or `"cls"`, defaults to `"mean"`):
            How the sentence vector `x_t` of the text is pooled (the context is always mean-pooled).
        alignment_loss (`"shapley"`, `"infonce"` or `"none"`, defaults to `"shapley"`):
            `"infonce"` is the "w/o Shapley Value" ablation.
        alignment_players (`"context"` or `"direct"`, defaults to `"context"`):
            `"context"`: the context aligns with the text (weight alpha) and with the image (weight beta).
            `"direct"`: "w/o Context in Alignment", one image-text alignment weighted by beta.
        alignment_global_batch (`bool`, defaults to `False`):
            In distributed training, gather the sentence features of all processes before the
            alignment games, so their size is the global batch.
        tau (`float`, defaults to 0.1):
            Temperature of the Shapley utility and of InfoNCE.
        alpha (`float`, defaults to 0.2):
            Weight of the context-text alignment loss `L_semantic`.
        beta (`float`, defaults to 0.4):
            Weight of the context-image alignment loss `L_modality`.
        wordpair_lambda (`float`, defaults to 1.0):
            Weight lambda of the contrastive term of the word-pair head.
        wordpair_contrastive (`bool`, defaults to `True`):
            `False` is "w/o word-pair Contrastive": the head uses `P^tsp` alone.

    Example:

    ```python
    >>> from modeling_shapca import ShapCAConfig, ShapCAForTokenClassification
    >>> config = ShapCAConfig(id2label={0: "O", 1: "B-PER", 2: "I-PER"})
    >>> model = ShapCAForTokenClassification(config)
    ```
    """

    model_type = "shapca"
    # The head of the task model, and its name in messages: a CRF over BIO tags here, the word-pair
    # grid in `ShapCAWordPairConfig`. (Not saved: the model type says it.)
    head: ClassVar[str] = "crf"
    head_title: ClassVar[str] = "CRF tagger (named entities)"
    sub_configs_defaults: ClassVar[dict[str, SubConfigSpec]] = {
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="bert"),
        "vision_config": SubConfigSpec(
            config_class=AutoConfig, model_type="timm_wrapper", init_kwargs={"architecture": "resnet152"}
        ),
    }

    text_config: PreTrainedConfig | dict | None = None
    vision_config: PreTrainedConfig | dict | None = None
    use_image: bool = True
    fusion_hidden_size: int | None = None
    fusion_num_heads: int = 12
    fusion_use_context: bool = True
    fusion_dropout: float = 0.1
    num_pos_tags: int = 19
    feature_embedding_size: int = 100
    max_words: int = 512
    head_hidden_size: int = 256
    head_dropout: float = 0.1
    sentence_pooling: Literal["mean", "cls"] = "mean"
    alignment_loss: Literal["shapley", "infonce", "none"] = "shapley"
    alignment_players: Literal["context", "direct"] = "context"
    alignment_global_batch: bool = False
    tau: float = 0.1
    alpha: float = 0.2
    beta: float = 0.4
    wordpair_lambda: float = 1.0
    wordpair_contrastive: bool = True

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.fusion_hidden_size is None:
            self.fusion_hidden_size = self.text_config.hidden_size
        if self.id2label is not None and not self.label2id:
            self.label2id = {label: index for index, label in self.id2label.items()}

    # The float settings, with the bounds each must lie in (inclusive lower, exclusive upper).
    NUMBER_BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {
        "tau": (0.0, math.inf),
        "alpha": (0.0, math.inf),
        "beta": (0.0, math.inf),
        "wordpair_lambda": (0.0, math.inf),
        "fusion_dropout": (0.0, 1.0),
        "head_dropout": (0.0, 1.0),
    }

    # The sizes of the model's parts: each a positive integer.
    POSITIVE_SIZES: ClassVar[tuple[str, ...]] = (
        "fusion_hidden_size", "fusion_num_heads", "num_pos_tags", "feature_embedding_size", "max_words",
        "head_hidden_size",
    )  # fmt: skip

    # Upper bounds of sizes, far above any real model (the largest encoders have ~100 layers and
    # 16k-wide states): a config beyond them (a typo, a damaged file) would hang or exhaust memory
    # while the model is built, so it is refused when read, by name.
    SIZE_LIMITS: ClassVar[dict[str, int]] = {
        "num_hidden_layers": 1024,
        "hidden_size": 65536,
        "intermediate_size": 262144,
        "num_attention_heads": 1024,
        "vocab_size": 4_000_000,
        "max_position_embeddings": 1_048_576,
        "fusion_hidden_size": 65536,
        "fusion_num_heads": 1024,
        "num_pos_tags": 1024,
        "feature_embedding_size": 65536,
        "max_words": 1_048_576,
        "head_hidden_size": 65536,
    }

    @classmethod
    def check_numbers(cls, settings: dict) -> None:
        """Reject a float setting of ``settings`` that is not a finite number within its bounds
        (``NUMBER_BOUNDS``), naming it: a NaN alpha would otherwise train to the end on a NaN loss."""
        for name, (low, high) in cls.NUMBER_BOUNDS.items():
            if name not in settings:
                continue
            value = settings[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(
                    f"{name} must be a number, got {value!r} ({type(value).__name__}) (in a checkpoint: its config.json)."
                )
            if not math.isfinite(value) or not low <= value < high:
                raise ValueError(f"{name} must be a finite number in [{low}, {high}), got {value!r}.")
        if settings.get("tau", 1.0) == 0:
            raise ValueError("tau must be positive (it divides the similarities), got 0.")

    def validate_numbers(self):
        self.check_numbers({name: getattr(self, name) for name in self.NUMBER_BOUNDS})

    def validate_shapca(self):
        """Reject settings that cannot build a model, with the fix in the message."""
        choices = {
            "sentence_pooling": ("mean", "cls"),
            "alignment_loss": ("shapley", "infonce", "none"),
            "alignment_players": ("context", "direct"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}.")
        for name in self.POSITIVE_SIZES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"{name} must be a positive integer, got {value!r} (in a checkpoint: its config.json)."
                )
        text = self.text_config.to_dict() if self.text_config is not None else {}
        sizes = {**{f"text_config.{name}": text.get(name) for name in self.SIZE_LIMITS}, **{
            name: getattr(self, name) for name in self.POSITIVE_SIZES}}  # fmt: skip
        for name, value in sizes.items():
            limit = self.SIZE_LIMITS[name.removeprefix("text_config.")]
            if isinstance(value, int) and value > limit:
                raise ValueError(
                    f"{name} is {value}, above the {limit} any real model needs: the config (in a checkpoint: its "
                    "config.json) is wrong. Fix the value."
                )
        if self.use_image and getattr(self.vision_config, "model_type", None) == "timm_wrapper":
            check_vision_architecture(self.vision_config.architecture)
        if self.fusion_hidden_size % self.fusion_num_heads:
            raise ValueError(
                f"fusion_hidden_size ({self.fusion_hidden_size}) must be divisible by fusion_num_heads "
                f"({self.fusion_num_heads}); change one of them."
            )


def check_vision_architecture(architecture: str) -> None:
    """A timm backbone's architecture must be one this timm knows: say so, and how to list them,
    instead of timm's own error deep in the model's construction."""
    import timm

    if not timm.is_model(architecture):
        family = architecture.rstrip("0123456789_").split("_")[0] or "resnet"
        raise ValueError(
            f"Unknown vision architecture {architecture!r}: timm {timm.__version__} has no such model. List the "
            f"known ones with: python -c \"import timm; print(timm.list_models('{family}*'))\"; or give a folder "
            "or Hub id of an image checkpoint."
        )


MRE_DECISION_CELLS = ("spans", "first_words")


@strict
class ShapCAWordPairConfig(ShapCAConfig):
    r"""
    Configuration of [`ShapCAForWordPairTagging`] (relation extraction, joint entity-relation
    extraction): the fields of [`ShapCAConfig`], under a model type of its own so that each
    Auto class maps a word-pair checkpoint to the word-pair classes, and one of its own:

    Args:
        mre_none_weight (`float`, defaults to 1.0):
            Relation extraction of a given pair (MNRE): the weight of `None` against the relations
            when the pair's label is the argmax of the probabilities summed between the two spans.
            1.0 is the paper's argmax; below 1 a relation wins more often. `run_mie.py
            --select_mre_none_weight true` chooses it on dev after training.
        mre_prior_exponent (`float`, defaults to 0.0):
            Relation extraction of a given pair (MNRE): logit adjustment for the long tail (Menon et
            al. 2021). Each relation's share in the decision is weighed by its prior among the
            training pairs (`mre_relation_counts`) to the power `-mre_prior_exponent`, normalised so
            that the weights average 1 over the training pairs: 0 is the paper's rule; above 0 rare
            relations win against frequent ones more often, and `None` keeps its place.
            `run_mie.py --select_mre_prior_exponent true` chooses it on dev after training.
        mre_relation_counts (`dict[str, int]`, *optional*):
            Relation extraction of a given pair: how many training pairs hold each relation, written
            by `run_mie.py` when it trains (the priors of `mre_prior_exponent`).
        mre_decision_cells (`"spans"` or `"first_words"`, defaults to `"spans"`):
            Relation extraction of a given pair (MNRE): the grid cells whose probabilities decide the
            pair. `"spans"`: every cell between a word of one span and a word of the other (the
            cells that carry the relation in training); `"first_words"`: only the cell between the
            two spans' first words.

    Example:

    ```python
    >>> from modeling_shapca import ShapCAForWordPairTagging, ShapCAWordPairConfig
    >>> config = ShapCAWordPairConfig(id2label={0: "None", 1: "PER", 2: "couple", 3: "couple^-1"})
    >>> model = ShapCAForWordPairTagging(config)
    ```
    """

    model_type = "shapca_word_pair"
    head: ClassVar[str] = "word_pair"
    head_title: ClassVar[str] = "word-pair tagger (entities and relations)"

    mre_none_weight: float = 1.0
    mre_prior_exponent: float = 0.0
    mre_relation_counts: dict[str, int] | None = None
    mre_decision_cells: Literal["spans", "first_words"] = "spans"

    NUMBER_BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {
        **ShapCAConfig.NUMBER_BOUNDS,
        "mre_none_weight": (0.0, math.inf),
        "mre_prior_exponent": (0.0, 4.0),
    }

    def validate_mre_decision_cells(self):
        if self.mre_decision_cells not in MRE_DECISION_CELLS:
            raise ValueError(
                f"mre_decision_cells must be one of {MRE_DECISION_CELLS}, got {self.mre_decision_cells!r}."
            )


__all__ = ["ShapCAConfig", "ShapCAWordPairConfig"]
