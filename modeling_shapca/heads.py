"""Task heads of Shap-CA: a CRF tagger (MNER) and the word-pair contrastive layer (MRE, MJERE)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchcrf import CRF

IGNORE_INDEX = -100
# Score given to a forbidden transition while decoding (finite, so the Viterbi sums stay finite).
FORBIDDEN = -1e4


def bio_transition_constraints(id2label: dict[int, str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Which BIO tag sequences are valid.

    ``I-X`` may only follow ``B-X`` or ``I-X`` and may not start a sentence; everything else
    is allowed. Labels outside the BIO scheme are left unconstrained.

    Returns:
        ``allowed_start`` ``(T,)`` and ``allowed`` ``(T, T)`` booleans, ``allowed[a, b]`` for the step a -> b.
    """
    labels = [id2label[index] for index in range(len(id2label))]
    num_tags = len(labels)
    allowed = torch.ones(num_tags, num_tags, dtype=torch.bool)
    allowed_start = torch.ones(num_tags, dtype=torch.bool)
    for b, label in enumerate(labels):
        if not label.startswith("I-"):
            continue
        entity = label[2:]
        allowed_start[b] = False
        allowed[:, b] = torch.tensor([prev in (f"B-{entity}", f"I-{entity}") for prev in labels])
    return allowed_start, allowed


def feed_forward(input_size: int, hidden_size: int, output_size: int, dropout: float) -> nn.Sequential:
    """Two-layer perceptron ``Linear -> GELU -> Dropout -> Linear``."""
    return nn.Sequential(
        nn.Linear(input_size, hidden_size), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_size, output_size)
    )


class CRFTagger(nn.Module):
    """``M = MLP_1([M^t ; M^s ; M^p])`` -> emission scores -> linear-chain CRF.

    Training minimises the CRF negative log-likelihood. Decoding is a batched Viterbi search
    in which the BIO-invalid transitions are forbidden, so the output is always valid BIO;
    training leaves them allowed because some gold data (Twitter-2015) starts entities with ``I-``.
    """

    def __init__(self, input_size: int, hidden_size: int, id2label: dict[int, str], dropout: float = 0.1):
        super().__init__()
        self.emissions = feed_forward(input_size, hidden_size, len(id2label), dropout)
        self.crf = CRF(len(id2label), batch_first=True)
        allowed_start, allowed = bio_transition_constraints(id2label)
        self.register_buffer("allowed_start", allowed_start, persistent=False)
        self.register_buffer("allowed", allowed, persistent=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, W, F)`` word features -> ``(B, W, T)`` emission scores."""
        return self.emissions(features)

    @staticmethod
    def _crf_mask(word_mask: torch.Tensor) -> torch.Tensor:
        # pytorch-crf wants the first step of every sequence on; an example without words
        # then scores (and decodes) one padding step, which the caller masks out.
        mask = word_mask.clone()
        mask[:, 0] = True
        return mask

    def loss(self, emissions: torch.Tensor, labels: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood over the batch.

        Args:
            emissions: ``(B, W, T)``.
            labels: ``(B, W)`` tag ids, ``-100`` on padding words.
            word_mask: ``(B, W)`` bool, True on real words (a prefix of each row).
        """
        if (labels[word_mask] == IGNORE_INDEX).any():
            raise ValueError(
                "A CRF needs a tag for every word: found label -100 on a real word. "
                "Give every word its BIO tag (use 'O' for words outside entities)."
            )
        tags = labels.clamp(min=0)
        return -self.crf(emissions, tags, mask=self._crf_mask(word_mask), reduction="mean")

    def decode(self, emissions: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """Constrained Viterbi decoding, batched (one step of the loop per word position).

        Args:
            emissions: ``(B, W, T)``.
            word_mask: ``(B, W)`` bool.

        Returns:
            ``(B, W)`` best tag ids, ``-100`` on padding words.
        """
        batch, length, num_tags = emissions.shape
        mask = self._crf_mask(word_mask)
        forbid = emissions.new_tensor(FORBIDDEN)
        start = torch.where(self.allowed_start, self.crf.start_transitions, forbid)
        transitions = torch.where(self.allowed, self.crf.transitions, forbid)
        identity = torch.arange(num_tags, device=emissions.device).expand(batch, num_tags)

        score = start + emissions[:, 0]  # (B, T): best score of a path ending in each tag
        backpointers = []
        for step in range(1, length):
            candidates = score[:, :, None] + transitions + emissions[:, step, None, :]  # (B, prev, next)
            best, best_prev = candidates.max(dim=1)
            on = mask[:, step, None]
            score = torch.where(on, best, score)
            # A padding step keeps every path as it is, so backtracking passes through it unchanged.
            backpointers.append(torch.where(on, best_prev, identity))
        score = score + self.crf.end_transitions

        tag = score.argmax(dim=-1)
        tags = [tag]
        for pointers in reversed(backpointers):
            tag = pointers.gather(1, tag[:, None]).squeeze(1)
            tags.append(tag)
        tags = torch.stack(tags[::-1], dim=1)
        return tags.masked_fill(~word_mask, IGNORE_INDEX)


class PairFeatures(nn.Module):
    """``X_ij = MLP([m_i ; m_j ; m_i - m_j])`` for every word pair, without building the concatenation.

    The first layer is linear, so ``W [m_i ; m_j ; m_i - m_j] = W_a m_i + W_b m_j`` for suitable
    ``W_a``, ``W_b``: two per-word projections broadcast over the grid give the same function
    at ``O(W)`` instead of ``O(W^2)`` matrix products.
    """

    def __init__(self, input_size: int, hidden_size: int, dropout: float = 0.1):
        super().__init__()
        self.first = nn.Linear(input_size, hidden_size)
        self.second = nn.Linear(input_size, hidden_size, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        """``(B, W, F)`` -> ``(B, W, W, H)``."""
        pairs = self.first(words)[:, :, None, :] + self.second(words)[:, None, :, :]
        return self.dropout(F.gelu(pairs))


class WordPairContrastiveHead(nn.Module):
    """The word-pair contrastive layer (the paper's section 3.6, Eqs. 14-18).

    For each channel ``l`` in ``{t, s, p}`` (fused text, POS, position), pair features
    ``X^l_ij``; then::

        P^t     = softmax(MLP_2(X^t_ij))
        P^tsp   = softmax(MLP_3([X^t_ij ; X^s_ij ; X^p_ij]))
        P^final = softmax(P^tsp + lambda * log(P^tsp / P^t))

    The logarithms come from ``log_softmax``. With ``contrastive=False`` the head uses
    ``P^tsp`` alone ("w/o word-pair Contrastive").
    """

    def __init__(
        self,
        text_size: int,
        feature_size: int,
        hidden_size: int,
        num_labels: int,
        contrastive_lambda: float = 1.0,
        contrastive: bool = True,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.contrastive_lambda = contrastive_lambda
        self.contrastive = contrastive
        self.text_pairs = PairFeatures(text_size, hidden_size, dropout)
        self.pos_pairs = PairFeatures(feature_size, hidden_size, dropout)
        self.position_pairs = PairFeatures(feature_size, hidden_size, dropout)
        self.text_classifier = feed_forward(hidden_size, hidden_size, num_labels, dropout)  # MLP_2
        self.joint_classifier = feed_forward(3 * hidden_size, hidden_size, num_labels, dropout)  # MLP_3

    def forward(self, text: torch.Tensor, pos: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """
        Args:
            text: ``(B, W, D)`` fused word features ``M^t``.
            pos: ``(B, W, E)`` POS embeddings ``M^s``.
            position: ``(B, W, E)`` position embeddings ``M^p``.

        Returns:
            ``(B, W, W, C)`` logits whose softmax is ``P^final`` (``P^tsp`` without the contrast).
        """
        text_pairs = self.text_pairs(text)
        joint = torch.cat([text_pairs, self.pos_pairs(pos), self.position_pairs(position)], dim=-1)
        log_p_tsp = F.log_softmax(self.joint_classifier(joint), dim=-1)
        if not self.contrastive:
            return log_p_tsp
        log_p_t = F.log_softmax(self.text_classifier(text_pairs), dim=-1)
        return log_p_tsp.exp() + self.contrastive_lambda * (log_p_tsp - log_p_t)

    @staticmethod
    def valid_cells(word_mask: torch.Tensor) -> torch.Tensor:
        """``(B, W)`` word mask -> ``(B, W, W)`` bool, True on the upper triangle ``i <= j`` of real words."""
        pair_mask = word_mask[:, :, None] & word_mask[:, None, :]
        return pair_mask.triu()

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of ``P^final`` against the gold grid over the valid cells.

        Args:
            logits: ``(B, W, W, C)``.
            labels: ``(B, W, W)`` grid label ids, ``-100`` on ignored cells.
            word_mask: ``(B, W)`` bool.
        """
        labels = labels.masked_fill(~self.valid_cells(word_mask), IGNORE_INDEX)
        return F.cross_entropy(logits.flatten(0, 2), labels.flatten(), ignore_index=IGNORE_INDEX)

    def decode(self, logits: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """Argmax of ``P^final`` per cell: ``(B, W, W)`` label ids, ``-100`` outside the valid cells."""
        return logits.argmax(dim=-1).masked_fill(~self.valid_cells(word_mask), IGNORE_INDEX)
