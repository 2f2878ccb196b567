"""Shap-CA models: encoders, Shapley contrastive alignment, adaptive fusion and task heads."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

import torch
import torch.distributed as dist
from safetensors import SafetensorError
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.models.auto.modeling_auto import MODEL_MAPPING
from transformers.utils import ModelOutput, logging

from .configuration_shapca import ShapCAConfig, ShapCAWordPairConfig
from .fusion import AdaptiveFusion
from .heads import CRFTagger, WordPairContrastiveHead, bio_transition_constraints
from .shapley import (
    MAX_EXACT_PLAYERS,
    cosine_similarities,
    cyclic_shapley,
    exact_shapley,
    info_nce_loss,
    shapley_contrastive_loss,
)

if TYPE_CHECKING:
    from typing import Unpack

logger = logging.get_logger(__name__)

# With `output_shapley_values=True` and `shapley_method="auto"`, games of at most
# `MAX_EXACT_PLAYERS` players get exact Shapley values (2^k coalitions); larger ones the estimate
# of Algorithm 1.
SHAPLEY_METHODS = ("auto", "exact", "cyclic")


class ShapCAInputs(TypedDict, total=False):
    """The inputs of [`ShapCAModel.forward`] as the processor returns them (shapes there): what the
    task models pass on to the encoder. `input_ids`, `attention_mask`, `word_index` and
    `context_mask` are required."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    word_index: torch.Tensor
    context_mask: torch.Tensor
    token_type_ids: torch.Tensor | None
    pixel_values: torch.Tensor | None
    image_mask: torch.Tensor | None
    pos_ids: torch.Tensor | None


@dataclass
class ShapCAModelOutput(ModelOutput):
    """
    Args:
        word_features (`(B, W, D)`): fused word features `M^t`.
        pos_features (`(B, W, E)`): part-of-speech embeddings `M^s`.
        position_features (`(B, W, E)`): word-position embeddings `M^p`.
        word_mask (`(B, W)` bool): True on real words.
        loss_semantic (scalar, *optional*): with `output_alignment_losses=True`, the context-text
            alignment loss (0 when switched off).
        loss_modality (scalar, *optional*): the same for the context-image (or, with
            `alignment_players="direct"`, text-image) alignment loss.
        text_embeds, context_embeds, image_embeds (`(B, d)`): sentence vectors `x_t`, `x_c`, `x_v`.
        shapley_context_text (`(B, B)`, *optional*): with `output_shapley_values=True`, the Shapley
            values of the context-text games: `[j, i]` is the value `phi_i(u_j)` of context `i` in
            the game of text `j` (rows: texts, columns: contexts; the paper's section 3.4). Each row sums to
            `u_j(all contexts)`. NaN in the rows and columns of examples without a context.
        shapley_context_image (`(B, B)`, *optional*): the same for the context-image games (rows:
            images, columns: contexts), when the model uses images; NaN where an example lacks
            the image or the context.
        shapley_method (`str`, *optional*): how the values were computed: `"exact"` (every
            coalition) or `"cyclic"` (Algorithm 1, one random order).
    """

    word_features: torch.Tensor | None = None
    pos_features: torch.Tensor | None = None
    position_features: torch.Tensor | None = None
    word_mask: torch.Tensor | None = None
    loss_semantic: torch.Tensor | None = None
    loss_modality: torch.Tensor | None = None
    text_embeds: torch.Tensor | None = None
    context_embeds: torch.Tensor | None = None
    image_embeds: torch.Tensor | None = None
    shapley_context_text: torch.Tensor | None = None
    shapley_context_image: torch.Tensor | None = None
    shapley_method: str | None = None


@dataclass
class ShapCATaggingOutput(ModelOutput):
    """
    Args:
        loss (scalar): `L_main + alpha * L_semantic + beta * L_modality`, when labels are given.
        logits: `(B, W, T)` CRF emission scores, or `(B, W, W, C)` word-pair logits (softmax = `P^final`).
        loss_main, loss_semantic, loss_modality (scalars): the parts of the loss, for logging.
        shapley_context_text (`(B, B)`), shapley_context_image (`(B, B)`), shapley_method (`str`):
            with `output_shapley_values=True`, as in [`ShapCAModelOutput`].
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    loss_main: torch.Tensor | None = None
    loss_semantic: torch.Tensor | None = None
    loss_modality: torch.Tensor | None = None
    shapley_context_text: torch.Tensor | None = None
    shapley_context_image: torch.Tensor | None = None
    shapley_method: str | None = None


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``states`` ``(B, L, d)`` over the positions where ``mask`` ``(B, L)`` is set (0 if none)."""
    mask = mask.to(states.dtype)[..., None]
    return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every process along dim 0, keeping the gradient path."""
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor), dim=0)


class ShapCAPreTrainedModel(PreTrainedModel):
    config: ShapCAConfig
    config_class = ShapCAConfig
    base_model_prefix = "shapca"
    main_input_name = "input_ids"
    input_modalities = ("image", "text")

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`, plus an `AutoModel` entry in `auto_map`.

        transformers writes `auto_map` only for the class of the saved instance; the extra entry
        lets `AutoModel.from_pretrained(checkpoint, trust_remote_code=True)` load the base model
        from a task checkpoint too.
        """
        if self._auto_class is not None:
            base_model = BASE_MODEL_FOR_HEAD[self.config.head]
            auto_map = dict(getattr(self.config, "auto_map", None) or {})
            auto_map.setdefault("AutoModel", f"{base_model.__module__.rsplit('.', 1)[-1]}.{base_model.__name__}")
            self.config.auto_map = auto_map
        return super().save_pretrained(save_directory, *args, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except SafetensorError as error:  # the bare message names neither the file nor the fix
            raise OSError(
                f"The weights of {pretrained_model_name_or_path} (model.safetensors) cannot be read ({error}): "
                "the file is damaged or incomplete, e.g. a copy or download cut short. Copy or download it again."
            ) from error

    def _init_weights(self, module):
        if isinstance(module, CRFTagger):
            for parameter in (module.crf.start_transitions, module.crf.end_transitions, module.crf.transitions):
                init.uniform_(parameter, -0.1, 0.1)
            # The BIO constraints are buffers derived from the labels, not weights: from_pretrained
            # builds the model without data, so they are filled in again here.
            allowed_start, allowed = bio_transition_constraints(self.config.id2label)
            init.copy_(module.allowed_start, allowed_start)
            init.copy_(module.allowed, allowed)
        else:
            super()._init_weights(module)

    @classmethod
    def from_encoders(
        cls,
        text_model_name_or_path: str,
        vision_model_name_or_path: str | None = None,
        **config_kwargs,
    ) -> ShapCAPreTrainedModel:
        """Build a model whose encoders start from pretrained weights; the rest is freshly initialised.

        Like `VisionTextDualEncoderModel.from_vision_text_pretrained`.

        Args:
            text_model_name_or_path: a BERT-family checkpoint (Hub id or folder), e.g. `"bert-base-uncased"`.
            vision_model_name_or_path: an image backbone checkpoint loadable by `AutoModel`, e.g.
                `"timm/resnet152.a1h_in1k"`. `None` with `use_image=True` gives a randomly initialised
                backbone from `config_kwargs["vision_config"]` (default ResNet-152).
            config_kwargs: any other field of the class's config (`id2label`, `alpha`, ...).
        """
        text_config = AutoConfig.from_pretrained(text_model_name_or_path)
        text_model = AutoModel.from_pretrained(text_model_name_or_path, **_without_pooler(text_config))
        config_kwargs["text_config"] = text_model.config
        vision_model = None
        if vision_model_name_or_path is not None and config_kwargs.get("use_image", True):
            vision_model = AutoModel.from_pretrained(vision_model_name_or_path)
            config_kwargs["vision_config"] = vision_model.config
        elif vision_model_name_or_path is not None:
            raise ValueError("vision_model_name_or_path was given together with use_image=False.")
        attention = text_model.config._attn_implementation
        config = cls.config_class(**config_kwargs)
        # Building the composite config resets the attention choice of its sub-configs, which the
        # loaded encoder shares; give it back the implementation it was loaded with (e.g. SDPA).
        config.text_config._attn_implementation_internal = attention
        base_model = BASE_MODEL_FOR_HEAD[config.head](config, text_model=text_model, vision_model=vision_model)
        return base_model if isinstance(base_model, cls) else cls(config, shapca=base_model)


def _without_pooler(text_config) -> dict:
    """Keyword arguments that build a text encoder without its pooler, where the class has one.

    Shap-CA pools the token states itself; an unused pooler would only add parameters that
    get no gradient (which distributed training rejects).
    """
    model_class = MODEL_MAPPING[type(text_config)]
    if "add_pooling_layer" in inspect.signature(model_class.__init__).parameters:
        return {"add_pooling_layer": False}
    return {}


def _vision_width(vision_model: nn.Module) -> int:
    """Channels of the region features of a timm backbone or of a transformers vision model."""
    timm_model = getattr(vision_model, "timm_model", None)
    if timm_model is not None:
        return timm_model.num_features
    return vision_model.config.hidden_size


class ShapCAModel(ShapCAPreTrainedModel):
    """Encoders, alignment and fusion: everything but the task head.

    The text encoder reads ``[CLS] text [SEP] context [SEP]``; the image encoder (a CNN) gives a
    grid of region features. The sentence vectors of text, context and image play the Shapley
    contrastive games; the words, regions and context tokens go through the adaptive fusion.
    """

    def __init__(self, config: ShapCAConfig, text_model: PreTrainedModel | None = None, vision_model=None):
        super().__init__(config)
        self.text_model = (
            text_model
            if text_model is not None
            else AutoModel.from_config(config.text_config, **_without_pooler(config.text_config))
        )
        text_width = config.text_config.hidden_size
        if config.use_image:
            self.vision_model = (
                vision_model if vision_model is not None else AutoModel.from_config(config.vision_config)
            )
            self.vision_projection = nn.Linear(_vision_width(self.vision_model), text_width)
        elif vision_model is not None:
            raise ValueError("A vision model was given but config.use_image is False; set use_image=True to use it.")
        self.word_dropout = nn.Dropout(config.text_config.hidden_dropout_prob)
        self.fusion = AdaptiveFusion(
            text_width,
            config.fusion_hidden_size,
            config.fusion_num_heads,
            dropout=config.fusion_dropout,
            use_image=config.use_image,
            use_context=config.fusion_use_context,
        )
        self.pos_embeddings = nn.Embedding(config.num_pos_tags, config.feature_embedding_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(config.max_words, config.feature_embedding_size)
        self._shapley_generator: torch.Generator | None = None
        self.post_init()

    def shapley_generator(self, device: torch.device) -> torch.Generator:
        """The generator of the random orders of Algorithm 1: the model's own, so that a forward pass
        leaves the caller's random stream as it was. Created on first use on ``device``, from torch's
        seed (`transformers.set_seed`), so a seeded run draws the same orders again."""
        if self._shapley_generator is None or self._shapley_generator.device != torch.device(device):
            self._shapley_generator = torch.Generator(device=device)
            self._shapley_generator.manual_seed(torch.initial_seed())
        return self._shapley_generator

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` pixels -> ``(B, R, d)`` region features ``H_v`` projected to the text width."""
        kwargs = {"do_pooling": False} if hasattr(self.vision_model, "timm_model") else {}
        regions = self.vision_model(pixel_values=pixel_values, **kwargs).last_hidden_state
        if regions.dim() == 4:  # CNN feature map (B, C, h, w) -> (B, h * w, C)
            regions = regions.flatten(2).transpose(1, 2)
        return self.vision_projection(regions)

    def alignment_losses(
        self,
        text_embeds: torch.Tensor,
        context_embeds: torch.Tensor,
        image_embeds: torch.Tensor | None,
        has_context: torch.Tensor,
        has_image: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(L_semantic, L_modality)`` over the examples that have the modalities of each game."""
        zero = text_embeds.new_zeros(())
        config = self.config
        if config.alignment_loss == "none":
            return zero, zero
        # Only while training: evaluation reads long texts in windows, so processes can hold
        # different row counts, which all_gather cannot take.
        if config.alignment_global_batch and self.training and dist.is_available() and dist.is_initialized():
            text_embeds, context_embeds = gather_with_grad(text_embeds), gather_with_grad(context_embeds)
            # masks travel as integers (the gloo backend has no bool); every process has the same
            # batch size per training step (the Trainer's distributed sampler pads the last batch).
            has_context = gather_with_grad(has_context.long()).bool()
            has_image = gather_with_grad(has_image.long()).bool()
            image_embeds = gather_with_grad(image_embeds) if image_embeds is not None else None

        generator = self.shapley_generator(text_embeds.device)

        def align(a: torch.Tensor, b: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
            if config.alignment_loss == "infonce":
                return info_nce_loss(a[keep], b[keep], config.tau)
            return shapley_contrastive_loss(a[keep], b[keep], config.tau, generator=generator)

        if config.alignment_players == "direct":
            if image_embeds is None:
                return zero, zero
            return zero, align(text_embeds, image_embeds, has_image)
        loss_semantic = align(text_embeds, context_embeds, has_context)
        loss_modality = zero if image_embeds is None else align(image_embeds, context_embeds, has_context & has_image)
        return loss_semantic, loss_modality

    def shapley_values(
        self, games: torch.Tensor, players: torch.Tensor, playing: torch.Tensor, method: str
    ) -> torch.Tensor:
        """``(B, B)`` Shapley values of the games of ``games`` with ``players`` as players.

        Only the examples where ``playing`` is set take part (as game and as player); ``[j, i]`` is
        the value of player ``i`` in game ``j``, NaN outside the examples that play.
        ``method`` is ``"exact"`` or ``"cyclic"`` (Algorithm 1).
        """
        batch = games.shape[0]
        values = games.new_full((batch, batch), float("nan"))
        index = playing.nonzero().squeeze(-1)
        if index.numel() == 0:
            return values
        sim = cosine_similarities(games[index], players[index])
        if method == "exact":
            shapley = exact_shapley(sim, self.config.tau)
        else:
            shapley = cyclic_shapley(sim, self.config.tau, generator=self.shapley_generator(sim.device))
        values[index[:, None], index] = shapley.to(values.dtype)
        return values

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        word_index: torch.Tensor,
        context_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
        pos_ids: torch.Tensor | None = None,
        output_alignment_losses: bool = False,
        output_shapley_values: bool = False,
        shapley_method: str = "auto",
    ) -> ShapCAModelOutput:
        r"""
        Args:
            input_ids (`(B, L)`): `[CLS] text [SEP] context [SEP]` token ids.
            attention_mask (`(B, L)`): 1 on real tokens.
            word_index (`(B, W)`): position of each word's first sub-token, -1 on padding words.
            context_mask (`(B, L)`): 1 on the context tokens.
            token_type_ids (`(B, L)`, *optional*): 0 for the text segment, 1 for the context.
            pixel_values (`(B, 3, H, W)`, *optional*): images; required when `config.use_image`.
            image_mask (`(B,)`, *optional*): 0 for examples without an image (defaults to all 1).
            pos_ids (`(B, W)`, *optional*): universal POS tag ids (defaults to unknown).
            output_alignment_losses (`bool`, defaults to `False`): play the alignment games of the
                batch and return `loss_semantic` and `loss_modality` (the task models ask for them
                when labels are given: training work, not inference work).
            output_shapley_values (`bool`, defaults to `False`): also return the Shapley values of
                the context-text games (and of the context-image games when the model uses images)
                over this batch, as `shapley_context_text` / `shapley_context_image`.
            shapley_method (`"auto"`, `"exact"` or `"cyclic"`, defaults to `"auto"`): how to compute
                them; `"auto"` is exact for games of at most `MAX_EXACT_PLAYERS` (12) players
                and Algorithm 1 beyond.
        """
        if shapley_method not in SHAPLEY_METHODS:
            raise ValueError(f"shapley_method must be one of {SHAPLEY_METHODS}, got {shapley_method!r}.")
        batch = input_ids.shape[0]
        word_mask = word_index >= 0
        context_mask = context_mask.bool() & attention_mask.bool()
        hidden = self.text_model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state  # (B, L, d)

        words = hidden.gather(1, word_index.clamp(min=0)[..., None].expand(-1, -1, hidden.shape[-1]))
        words = self.word_dropout(words)
        if self.config.sentence_pooling == "cls":
            text_embeds = hidden[:, 0]
        else:
            text_embeds = masked_mean(hidden, attention_mask.bool() & ~context_mask)
        context_embeds = masked_mean(hidden, context_mask)

        regions = image_embeds = None
        if image_mask is None:
            image_mask = torch.ones(batch, dtype=torch.long, device=input_ids.device)
        if self.config.use_image:
            if pixel_values is None:
                raise ValueError(
                    "This model uses images (config.use_image=True) but no pixel_values were given. "
                    "Pass pixel_values with image_mask=0 for examples without an image."
                )
            regions = self.encode_image(pixel_values)
            image_embeds = regions.mean(dim=1)

        has_context = context_mask.any(dim=-1)
        loss_semantic = loss_modality = None
        if output_alignment_losses:
            loss_semantic, loss_modality = self.alignment_losses(
                text_embeds, context_embeds, image_embeds, has_context, image_mask.bool()
            )
        shapley = {}
        if output_shapley_values:
            method = shapley_method
            if method == "auto":
                method = "exact" if int(has_context.sum()) <= MAX_EXACT_PLAYERS else "cyclic"
            shapley["shapley_method"] = method
            shapley["shapley_context_text"] = self.shapley_values(text_embeds, context_embeds, has_context, method)
            if image_embeds is not None:
                playing = has_context & image_mask.bool()
                shapley["shapley_context_image"] = self.shapley_values(image_embeds, context_embeds, playing, method)
        word_features = self.fusion(words, regions, image_mask, hidden, context_mask)

        if pos_ids is None:
            pos_ids = torch.ones_like(word_index)  # id 1 = unknown tag
        positions = torch.arange(word_index.shape[1], device=word_index.device).clamp(max=self.config.max_words - 1)
        return ShapCAModelOutput(
            word_features=word_features,
            pos_features=self.pos_embeddings(pos_ids.masked_fill(~word_mask, 0)),
            position_features=self.position_embeddings(positions).expand(batch, -1, -1),
            word_mask=word_mask,
            loss_semantic=loss_semantic,
            loss_modality=loss_modality,
            text_embeds=text_embeds,
            context_embeds=context_embeds,
            image_embeds=image_embeds,
            **shapley,
        )


class ShapCAWordPairModel(ShapCAModel):
    """[`ShapCAModel`] for word-pair checkpoints: the same modules, registered for `AutoModel` under
    the word-pair model type (an Auto class maps each config class to one model class)."""

    config_class = ShapCAWordPairConfig


class ShapCATaggingModel(ShapCAPreTrainedModel):
    """Shared forward of the task models: encode, score with ``self.head``, add the losses.

    A head has ``forward(...) -> logits``, ``loss(logits, labels, word_mask)`` and
    ``decode(logits, word_mask)``; subclasses build it and say how it reads the encoder output.
    """

    def __init__(self, config: ShapCAConfig, shapca: ShapCAModel | None = None):
        if config.head != self.config_class.head:
            other = MODEL_FOR_HEAD[config.head].__name__ if config.head in MODEL_FOR_HEAD else "its own class"
            raise ValueError(
                f"This is a {type(config).__name__} (head {config.head!r}), not a {self.config_class.__name__}: "
                f"load the checkpoint with {other} or AutoModelForTokenClassification."
            )
        super().__init__(config)
        if config.id2label is None:
            raise ValueError(f"{type(self).__name__} needs config.id2label: the label of every output id.")
        self.shapca = shapca if shapca is not None else BASE_MODEL_FOR_HEAD[config.head](config)

    def score(self, encoded: ShapCAModelOutput) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self,
        labels: torch.Tensor | None = None,
        output_shapley_values: bool = False,
        shapley_method: str = "auto",
        **inputs: Unpack[ShapCAInputs],
    ) -> ShapCATaggingOutput:
        r"""
        Args:
            labels (*optional*): `(B, W)` tag ids for the CRF model, `(B, W, W)` grid ids for the
                word-pair model; -100 where nothing is to be learnt. With labels, the alignment
                games are played and the loss returned; without, the forward pass is inference only.
            output_shapley_values, shapley_method: as in [`ShapCAModel.forward`].
            inputs: the encoder's inputs, [`ShapCAInputs`] (what the processor returns); a key that
                is not one of them is an error.
        """
        encoded = self.shapca(
            **inputs,
            output_alignment_losses=labels is not None,
            output_shapley_values=output_shapley_values,
            shapley_method=shapley_method,
        )
        logits = self.score(encoded)
        loss_main = loss = None
        if labels is not None:
            loss_main = self.head.loss(logits, labels, encoded.word_mask)
            loss = loss_main + self.config.alpha * encoded.loss_semantic + self.config.beta * encoded.loss_modality
        return ShapCATaggingOutput(
            loss=loss,
            logits=logits,
            loss_main=loss_main,
            loss_semantic=encoded.loss_semantic,
            loss_modality=encoded.loss_modality,
            shapley_context_text=encoded.shapley_context_text,
            shapley_context_image=encoded.shapley_context_image,
            shapley_method=encoded.shapley_method,
        )

    def decode(self, logits: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """Predictions from the `logits` of `forward`; `word_mask` is `word_index >= 0`.

        CRF model: Viterbi tags `(B, W)`, always valid BIO. Word-pair model: argmax of `P^final`
        per cell `(B, W, W)`. -100 marks padding.
        """
        return self.head.decode(logits, word_mask.bool())


class ShapCAForTokenClassification(ShapCATaggingModel):
    """Shap-CA with a CRF head, for multimodal NER (Twitter-2015, Twitter-2017).

    `logits` are the CRF emission scores `(B, W, T)`, from `MLP_1([M^t ; M^s ; M^p])`.
    """

    def __init__(self, config: ShapCAConfig, shapca: ShapCAModel | None = None):
        super().__init__(config, shapca)
        self.head = CRFTagger(
            config.fusion_hidden_size + 2 * config.feature_embedding_size,
            config.head_hidden_size,
            config.id2label,
            dropout=config.head_dropout,
        )
        self.post_init()

    def score(self, encoded: ShapCAModelOutput) -> torch.Tensor:
        return self.head(torch.cat([encoded.word_features, encoded.pos_features, encoded.position_features], dim=-1))


class ShapCAForWordPairTagging(ShapCATaggingModel):
    """Shap-CA with the word-pair contrastive head, for relation extraction (MNRE) and joint
    entity-relation extraction (JMERE).

    `logits` are `(B, W, W, C)`; their softmax over the last axis is `P^final`.
    """

    config_class = ShapCAWordPairConfig

    def __init__(self, config: ShapCAWordPairConfig, shapca: ShapCAModel | None = None):
        super().__init__(config, shapca)
        self.head = WordPairContrastiveHead(
            config.fusion_hidden_size,
            config.feature_embedding_size,
            config.head_hidden_size,
            config.num_labels,
            contrastive_lambda=config.wordpair_lambda,
            contrastive=config.wordpair_contrastive,
            dropout=config.head_dropout,
        )
        self.post_init()

    def score(self, encoded: ShapCAModelOutput) -> torch.Tensor:
        return self.head(encoded.word_features, encoded.pos_features, encoded.position_features)


# The base and task model of each `config.head`.
BASE_MODEL_FOR_HEAD = {"crf": ShapCAModel, "word_pair": ShapCAWordPairModel}
MODEL_FOR_HEAD = {"crf": ShapCAForTokenClassification, "word_pair": ShapCAForWordPairTagging}
