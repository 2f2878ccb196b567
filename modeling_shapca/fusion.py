"""Adaptive fusion of words, image regions and bridging context (the paper's section 3.5, Eqs. 8-11)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ContextGate(nn.Module):
    """Mixes features with the context bias ``B`` through a learned gate.

    ``g = tanh(W [X ; B] + b)``, ``X' = g * X + (1 - g) * B``.

    The gate is one scalar per row of ``X``. Table 4 of the paper puts the whole model at
    170.7M parameters, which leaves room for the projections of the block but not for two
    more ``2D x D`` gate matrices; a scalar gate fits that budget.
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.gate = nn.Linear(2 * hidden_size, 1)

    def forward(self, features: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """
        Args:
            features: ``(B, n, D)`` rows to gate.
            bias: ``(B, D)`` context bias, one per example.

        Returns:
            ``(B, n, D)`` gated features.
        """
        bias = bias[:, None, :].expand_as(features)
        gate = torch.tanh(self.gate(torch.cat([features, bias], dim=-1)))
        return gate * features + (1 - gate) * bias


def context_bias(context: torch.Tensor, context_mask: torch.Tensor) -> torch.Tensor:
    """``B = mean over rows of (C^T C / sqrt(D))``, ignoring padded context tokens.

    Row ``d`` of ``C^T C`` is ``sum_l C[l, d] * C[l, :]``, so the mean over its ``D`` rows is
    ``sum_l mean_d(C[l, :]) * C[l, :]``, computed without building the ``D x D`` matrix.

    Args:
        context: ``(B, L, D)`` projected context tokens ``C``.
        context_mask: ``(B, L)``, 1 on real context tokens.

    Returns:
        ``(B, D)``.
    """
    context = context * context_mask[..., None].to(context.dtype)
    return torch.einsum("bl,bld->bd", context.mean(dim=-1), context) / math.sqrt(context.shape[-1])


class AdaptiveFusion(nn.Module):
    """Image-aware word features ``M^t`` (the paper's Eqs. 8-11).

    ``Q = H_t W_q``, ``K = H_v W_k``, ``V = H_v W_v``, ``C = H_c W_c``; with the context bias ``B``,
    queries and keys are gated towards ``B`` and::

        M^t = LayerNorm(H_t W_o + MultiHeadAttention(Q', K', V))

    Words are the queries (one output row per word) and image regions the keys and values.
    Without context (``use_context=False``) ``Q' = Q`` and ``K' = K``. Without image
    (``use_image=False``) ``M^t = LayerNorm(H_t W_o)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_heads: int,
        dropout: float = 0.1,
        use_image: bool = True,
        use_context: bool = True,
        layer_norm_eps: float = 1e-12,
    ):
        super().__init__()
        self.use_image = use_image
        self.use_context = use_context and use_image
        self.num_heads = num_heads
        self.output = nn.Linear(input_size, hidden_size)  # W_o of the residual path
        if use_image:
            self.query = nn.Linear(input_size, hidden_size)
            self.key = nn.Linear(input_size, hidden_size)
            self.value = nn.Linear(input_size, hidden_size)
            self.attention_output = nn.Linear(hidden_size, hidden_size)
            self.attention_dropout = dropout
        if self.use_context:
            self.context = nn.Linear(input_size, hidden_size)
            self.query_gate = ContextGate(hidden_size)
            self.key_gate = ContextGate(hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        return x.view(batch, length, self.num_heads, width // self.num_heads).transpose(1, 2)

    def forward(
        self,
        words: torch.Tensor,
        regions: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """
        Args:
            words: ``(B, W, d)`` word features ``H_t``.
            regions: ``(B, R, d)`` image region features ``H_v`` (projected to the text width).
            image_mask: ``(B,)``, 0 for examples without an image: their words get no image term.
            context: ``(B, L, d)`` context token states ``H_c``.
            context_mask: ``(B, L)``, 1 on real context tokens.

        Returns:
            ``(B, W, D)`` fused word features ``M^t``.
        """
        fused = self.output(words)
        if self.use_image:
            query, key, value = self.query(words), self.key(regions), self.value(regions)
            if self.use_context:
                bias = context_bias(self.context(context), context_mask)
                query, key = self.query_gate(query, bias), self.key_gate(key, bias)
            attended = F.scaled_dot_product_attention(
                self._split_heads(query),
                self._split_heads(key),
                self._split_heads(value),
                dropout_p=self.attention_dropout if self.training else 0.0,
            )
            attended = attended.transpose(1, 2).flatten(2)
            has_image = image_mask.to(words.dtype)[:, None, None]
            fused = fused + has_image * self.attention_output(attended)
        return self.layer_norm(self.dropout(fused))
