"""The Shapley game of the paper's section 3.4: exact values, the cyclic estimate and the losses."""

import math

import pytest
import torch

from modeling_shapca.shapley import (
    cyclic_shapley,
    cyclic_strides,
    exact_shapley,
    info_nce_loss,
    shapley_contrastive_loss,
)


def utility(similarities, tau):
    """u(A) for one game, written out plainly for a coalition given by its similarities."""
    if not similarities:
        return 0.0
    weights = [math.exp(s / tau) for s in similarities]
    return sum(w * s for w, s in zip(weights, similarities)) / sum(weights)


def test_exact_two_players_by_hand():
    # Two players with similarities 0.5 and -0.5 at tau = 1:
    # u({0}) = 0.5, u({1}) = -0.5, u({0,1}) = (e^.5 * .5 - e^-.5 * .5) / (e^.5 + e^-.5) = 0.5 * tanh(0.5)
    # phi_0 = (u({0}) + u({0,1}) - u({1})) / 2
    both = 0.5 * math.tanh(0.5)
    expected = [(0.5 + both + 0.5) / 2, (-0.5 + both - 0.5) / 2]
    phi = exact_shapley(torch.tensor([[0.5, -0.5]], dtype=torch.float64), tau=1.0)
    assert phi[0].tolist() == pytest.approx(expected, abs=1e-12)


def test_exact_three_players_by_hand():
    sims, tau = [0.9, 0.1, -0.3], 0.5
    # Shapley value as the average marginal over the 6 join orders.
    orders = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
    expected = [0.0, 0.0, 0.0]
    for order in orders:
        for position, player in enumerate(order):
            before = [sims[p] for p in order[:position]]
            expected[player] += (utility(before + [sims[player]], tau) - utility(before, tau)) / len(orders)
    phi = exact_shapley(torch.tensor([sims], dtype=torch.float64), tau)
    assert phi[0].tolist() == pytest.approx(expected, abs=1e-12)


def test_exact_refuses_large_games():
    with pytest.raises(ValueError, match="k <= 12"):
        exact_shapley(torch.zeros(1, 13), 0.1)


def test_cyclic_strides_follow_algorithm_1():
    assert cyclic_strides(28) == [0, 14, 21, 24]  # strides 14, 7, 3, 1
    assert cyclic_strides(2) == [0]
    assert cyclic_strides(1) == [0]
    assert len(cyclic_strides(256)) == 8


@pytest.mark.parametrize("k", [1, 2, 5, 28, 64])
def test_each_pass_is_efficient(k):
    # The marginals of one pass sum to u(all players), so their mean over passes does too.
    sim = torch.rand(k, k, dtype=torch.float64) * 2 - 1
    tau = 0.1
    phi = cyclic_shapley(sim, tau, generator=torch.Generator().manual_seed(k))
    full = torch.stack([torch.softmax(row / tau, 0) @ row for row in sim])
    torch.testing.assert_close(phi.sum(dim=-1), full)


def test_cyclic_mean_converges_to_exact():
    sim = torch.rand(4, 6, dtype=torch.float64) * 2 - 1
    exact = exact_shapley(sim, 0.3)
    generator = torch.Generator().manual_seed(0)
    draws = torch.stack([cyclic_shapley(sim, 0.3, generator=generator) for _ in range(4000)])
    assert (draws.mean(0) - exact).abs().max() < 0.01
    # One draw alone is not exact: the estimate is random.
    assert (draws[0] - exact).abs().max() > 1e-4


def test_two_players_mean_of_both_orders_is_exact():
    sim = torch.tensor([[0.7, -0.2], [0.1, 0.4]], dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    seen = {}
    for _ in range(50):
        phi = cyclic_shapley(sim, 0.2, generator=generator)
        seen[tuple(phi.flatten().tolist())] = phi
    assert len(seen) == 2  # one per order
    torch.testing.assert_close(sum(seen.values()) / 2, exact_shapley(sim, 0.2))


def test_permuting_the_batch_permutes_the_values():
    sim = torch.rand(5, 5, dtype=torch.float64)
    perm = torch.tensor([3, 0, 4, 1, 2])
    exact = exact_shapley(sim, 0.2)
    torch.testing.assert_close(exact_shapley(sim[perm][:, perm], 0.2), exact[perm][:, perm])
    # The cyclic estimate shares one random order across games: permuting the games permutes
    # its rows exactly for the same draw.
    cyclic = cyclic_shapley(sim, 0.2, generator=torch.Generator().manual_seed(3))
    permuted = cyclic_shapley(sim[perm], 0.2, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(permuted, cyclic[perm])


def test_loss_matches_its_formula():
    a, b = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    s = torch.nn.functional.normalize(a, dim=-1) @ torch.nn.functional.normalize(b, dim=-1).T
    # Both directions are estimated in one call over one random order.
    phi = cyclic_shapley(torch.cat([s, s.T]), 0.1, generator=torch.Generator().manual_seed(11))

    def half(p):
        return -(2 * p.diagonal() - p.sum(-1)).mean()

    expected = (half(phi[:4]) + half(phi[4:])) / 2
    loss = shapley_contrastive_loss(a, b, 0.1, generator=torch.Generator().manual_seed(11))
    torch.testing.assert_close(loss, expected)
    # The same as the exact loss in expectation.
    exact = (half(exact_shapley(s, 0.1)) + half(exact_shapley(s.T, 0.1))) / 2
    generator = torch.Generator().manual_seed(0)
    mean = torch.stack([shapley_contrastive_loss(a, b, 0.1, generator=generator) for _ in range(3000)]).mean()
    assert abs(mean - exact) < 0.01


def test_loss_prefers_aligned_pairs():
    torch.manual_seed(0)
    a = torch.randn(8, 16)
    aligned = shapley_contrastive_loss(a, a + 0.01 * torch.randn(8, 16), 0.1)
    shuffled = shapley_contrastive_loss(a, a[torch.randperm(8)], 0.1)
    assert aligned < shuffled


@pytest.mark.parametrize("loss_fn", [shapley_contrastive_loss, info_nce_loss])
@pytest.mark.parametrize("tau", [1e-6, 0.1, 1e6])
@pytest.mark.parametrize("case", ["identical", "zeros", "single", "random"])
def test_losses_are_finite_with_finite_gradients(loss_fn, tau, case):
    k = 1 if case == "single" else 6
    if case == "identical":
        a = torch.ones(k, 4).requires_grad_()
        b = torch.ones(k, 4).requires_grad_()
    elif case == "zeros":
        a, b = torch.zeros(k, 4, requires_grad=True), torch.zeros(k, 4, requires_grad=True)
    else:
        a, b = torch.randn(k, 4, requires_grad=True), torch.randn(k, 4, requires_grad=True)
    loss = loss_fn(a, b, tau)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
    if case == "single":
        assert loss.item() == 0.0


def test_info_nce_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss = info_nce_loss(a, a, tau=1.0)
    # cos = identity: each row is CE([1, 0], 0) = log(1 + e^-1)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)
