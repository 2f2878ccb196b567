"""Shapley values of the contrastive game of Shap-CA, as pure functions on tensors.

Notation (the paper's section 3.4). A batch holds ``k`` pairs. ``sim[j, i]`` is the cosine
similarity between the target of game ``j`` (e.g. text ``j``) and player ``i`` (e.g.
context ``i``). The utility of a coalition ``A`` of players in game ``j`` is the
softmax-weighted mean similarity of the coalition to the target::

    u_j(A) = sum_{i in A} p_i * sim[j, i],   p_i = exp(sim[j, i] / tau) / sum_{a in A} exp(sim[j, a] / tau)
    u_j({}) = 0

A player's Shapley value ``phi_i(u_j)`` is its marginal contribution averaged over all
orders in which the players can join. The contrastive loss rewards the matched player
(the diagonal) and penalises the others.

Every function here works on a whole batch at once; there is no Python loop over games,
players or coalitions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "cosine_similarities",
    "cyclic_shapley",
    "cyclic_strides",
    "exact_shapley",
    "info_nce_loss",
    "shapley_contrastive_loss",
]

MAX_EXACT_PLAYERS = 12


def cosine_similarities(games: torch.Tensor, players: torch.Tensor) -> torch.Tensor:
    """``(g, k)`` matrix ``sim[j, i] = cos(games[j], players[i])`` of ``(g, d)`` and ``(k, d)`` features."""
    return F.normalize(games, dim=-1) @ F.normalize(players, dim=-1).T


def _shifted_similarity(sim: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``sim`` into a per-game constant ``c`` and a strictly positive rest ``sim - c``.

    The utility is a weighted mean, so ``u_j(A) = c_j + sum_{i in A} p_i (sim[j, i] - c_j)``
    for any constant ``c_j``. Choosing ``c_j = min_i sim[j, i] - 1`` makes the shifted
    similarities >= 1, so their logarithms exist and the weighted sums can be taken in log
    space (stable for any ``tau``). ``c`` carries no gradient: the utility does not depend on it.
    """
    shift = sim.detach().amin(dim=-1, keepdim=True) - 1.0
    return shift, sim - shift


def exact_shapley(sim: torch.Tensor, tau: float) -> torch.Tensor:
    """Exact Shapley values by enumerating every coalition (for tests and small ``k``).

    ``phi_i(u_j) = sum_{A subset of N without i} |A|! (k - |A| - 1)! / k! * (u_j(A + i) - u_j(A))``

    Args:
        sim: ``(g, k)`` similarities, row ``j`` = game ``j``, column ``i`` = player ``i``.
        tau: softmax temperature of the utility.

    Returns:
        ``(g, k)`` tensor, ``phi[j, i]`` = Shapley value of player ``i`` in game ``j``.
    """
    num_games, k = sim.shape
    if k > MAX_EXACT_PLAYERS:
        raise ValueError(
            f"exact_shapley enumerates all 2^k coalitions and is limited to k <= {MAX_EXACT_PLAYERS} "
            f"players, got k = {k}. Use cyclic_shapley for larger games."
        )
    device = sim.device
    coalitions = torch.arange(2**k, device=device)
    bits = 2 ** torch.arange(k, device=device)
    # members[A, i] is True when player i belongs to coalition A (A read as a bit mask).
    members = (coalitions[:, None] & bits) > 0  # (2^k, k)

    shift, rest = _shifted_similarity(sim)
    # Utilities of the non-empty coalitions 1 .. 2^k - 1; the empty one (index 0) is worth 0.
    logits = (sim / tau)[:, None, :].masked_fill(~members[1:], float("-inf"))  # (g, 2^k - 1, k)
    log_den = torch.logsumexp(logits, dim=-1)
    log_num = torch.logsumexp(logits + rest.log()[:, None, :], dim=-1)
    utility = torch.cat([sim.new_zeros(num_games, 1), torch.exp(log_num - log_den) + shift], dim=-1)

    size = members.sum(dim=-1)  # (2^k,)
    weight = torch.tensor(
        [math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k) for s in range(k)],
        dtype=sim.dtype,
        device=device,
    )
    without = ~members  # (2^k, k): coalition A does not contain player i
    # weighted marginal of i joining A, for every (A, i) with i not in A
    joined = coalitions[:, None] | bits  # index of A + i
    marginal = utility[:, joined] - utility[:, coalitions, None]  # (g, 2^k, k)
    coeff = torch.where(without, weight[size.clamp(max=k - 1)][:, None], 0.0)
    return (marginal * coeff).sum(dim=1)


def cyclic_strides(k: int) -> list[int]:
    """Cyclic shifts of the permutation before each pass of Algorithm 1.

    The stride starts at ``floor(k / 2)`` and halves until it reaches 0; pass ``t`` walks the
    permutation rotated by the sum of the strides before it. ``k = 28`` gives offsets
    ``[0, 14, 21, 24]`` (four passes). A single player gives one pass.
    """
    offsets, offset, stride = [0], 0, k // 2
    while stride > 1:
        offset += stride
        offsets.append(offset % k)
        stride //= 2
    return offsets


def cyclic_shapley(sim: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Cyclic Monte-Carlo Shapley values (the paper's Algorithm 1), batched over games.

    One random permutation ``P`` of the ``k`` players is drawn (shared by all games). Pass
    ``t`` walks ``P`` rotated by the offsets of :func:`cyclic_strides`; the marginal of the
    ``m``-th player of the walk is ``u_j(P[1..m]) - u_j(P[1..m-1])``. The prefix utilities come
    from running sums in log space::

        u_j(P[1..m]) = c_j + exp(LSE_{a<=m}(sim[j, P_a] / tau + log(sim[j, P_a] - c_j)) - LSE_{a<=m}(sim[j, P_a] / tau))

    so a pass costs ``O(k)`` per game. The estimate is the mean of the passes' marginals.
    Each pass walks a uniformly random order, hence the estimate is unbiased, and each pass's
    marginals sum to ``u_j(all players)``.

    Args:
        sim: ``(g, k)`` similarities, row = game, column = player.
        tau: softmax temperature of the utility.
        generator: optional ``torch.Generator`` for the permutation (on CPU).

    Returns:
        ``(g, k)`` estimates of the Shapley values; differentiable with respect to ``sim``.
    """
    num_games, k = sim.shape
    device = sim.device
    if generator is None:
        permutation = torch.randperm(k, device=device)
    else:
        permutation = torch.randperm(k, generator=generator, device=generator.device).to(device)
    offsets = torch.tensor(cyclic_strides(k), device=device)
    # orders[t, m] = the player at step m of pass t
    orders = permutation[(torch.arange(k, device=device)[None, :] + offsets[:, None]) % k]  # (T, k)
    num_passes = orders.shape[0]

    shift, rest = _shifted_similarity(sim)
    walked_sim = sim[:, orders]  # (g, T, k)
    walked_rest = rest[:, orders]
    log_den = torch.logcumsumexp(walked_sim / tau, dim=-1)
    log_num = torch.logcumsumexp(walked_sim / tau + walked_rest.log(), dim=-1)
    prefix_utility = torch.exp(log_num - log_den) + shift[:, :, None]  # (g, T, k)
    marginal = torch.diff(prefix_utility, dim=-1, prepend=torch.zeros_like(prefix_utility[..., :1]))

    phi = torch.zeros_like(marginal).scatter(-1, orders.expand(num_games, -1, -1), marginal)
    return phi.sum(dim=1) / num_passes


def _contrastive_term(phi: torch.Tensor) -> torch.Tensor:
    """``L = -(1/k) * sum_j [phi_j(u_j) - sum_{i != j} phi_i(u_j)]`` for ``(k, k)`` Shapley values."""
    return -(2 * phi.diagonal() - phi.sum(dim=-1)).mean()


def shapley_contrastive_loss(
    a: torch.Tensor, b: torch.Tensor, tau: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Shapley value-based contrastive loss between paired features (the paper's section 3.4.2).

    ``s[j, i] = cos(a_j, b_i)``; with ``phi`` the cyclic Shapley values of the games of ``s`` and ``s^T``
    (estimated together, over one random order)::

        L(s) = -(1/k) * sum_j [2 * phi[j, j] - sum_i phi[j, i]]
        loss = (L(s) + L(s^T)) / 2

    With ``a`` = texts and ``b`` = contexts this is ``L_semantic = (L_c2t + L_t2c) / 2``.
    A batch of one pair has no negatives: the loss is 0 (and still part of the graph).

    Args:
        a: ``(k, d)`` features, row ``j`` paired with row ``j`` of ``b``.
        b: ``(k, d)`` features.
        tau: temperature of the utility.
        generator: optional generator for the random permutations.

    Returns:
        Scalar loss.
    """
    if a.shape[0] < 2:
        return (a.sum() + b.sum()) * 0.0
    k = a.shape[0]
    sim = cosine_similarities(a, b)
    # Both directions in one batched estimate (2k games over the same random order): one
    # tensor program instead of two, which matters on a GPU where the step is launch-bound.
    phi = cyclic_shapley(torch.cat([sim, sim.T]), tau, generator=generator)
    return (_contrastive_term(phi[:k]) + _contrastive_term(phi[k:])) / 2


def info_nce_loss(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    """Symmetric InfoNCE on cosine similarities (the paper's "w/o Shapley Value" ablation).

    ``loss = (CE(s / tau, diag) + CE(s^T / tau, diag)) / 2`` with ``s[j, i] = cos(a_j, b_i)``.
    A batch of one pair gives 0.

    Args:
        a: ``(k, d)`` features.
        b: ``(k, d)`` features.
        tau: temperature.

    Returns:
        Scalar loss.
    """
    if a.shape[0] < 2:
        return (a.sum() + b.sum()) * 0.0
    logits = cosine_similarities(a, b) / tau
    target = torch.arange(a.shape[0], device=a.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
