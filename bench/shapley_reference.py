"""Algorithm 1 of the paper written as a plain loop: one game, one pass, one player at a time.

Kept as the reference that `bench/bench_shapley.py` measures the batched
`modeling_shapca.shapley.cyclic_shapley` against (and checks it agrees with).
"""

from __future__ import annotations

import torch

from modeling_shapca.shapley import cyclic_strides


def coalition_utility(similarities: torch.Tensor, tau: float) -> torch.Tensor:
    """u(A) = sum_i softmax(s / tau)_i * s_i over the coalition's similarities (0 if empty)."""
    if similarities.numel() == 0:
        return similarities.new_zeros(())
    return torch.softmax(similarities / tau, dim=0) @ similarities


def cyclic_shapley_loop(sim: torch.Tensor, tau: float, permutation: torch.Tensor) -> torch.Tensor:
    """The same estimate as `cyclic_shapley` for a given permutation, by explicit loops."""
    num_games, k = sim.shape
    phi = torch.zeros_like(sim)
    offsets = cyclic_strides(k)
    for game in range(num_games):
        for offset in offsets:
            order = torch.roll(permutation, -offset)
            previous = sim.new_zeros(())
            for step in range(k):
                current = coalition_utility(sim[game, order[: step + 1]], tau)
                phi[game, order[step]] += current - previous
                previous = current
    return phi / len(offsets)
