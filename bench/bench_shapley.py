"""Speed of the batched Shapley estimate, and the cost of alignment inside a training step.

    python bench/bench_shapley.py            # both parts
    python bench/bench_shapley.py --skip-step  # only the Shapley timings

Part 1: `cyclic_shapley` on k games of k players against the loop of Algorithm 1 in
`cyclic_shapley_loop` below (same permutation, same values), k in 8, 28, 64, 256.
Part 2: one forward+backward step of the paper configuration (bert-base shape + ResNet-152,
random weights) at batch 28 on CPU, and the time of the two alignment losses (forward and
backward on the sentence vectors of that batch) as a share of it.
"""

from __future__ import annotations

import argparse
import time

import torch

from modeling_shapca import ShapCAConfig, ShapCAForTokenClassification
from modeling_shapca.shapley import cyclic_shapley, cyclic_strides, shapley_contrastive_loss


# Algorithm 1 of the paper as a plain loop (one game, one pass, one player at a time): the
# reference the batched `cyclic_shapley` is timed against, and must agree with.
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


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def best_time(fn, repeat: int, budget_s: float = 20.0) -> float:
    """Best wall time of `fn` over `repeat` runs (fewer if the budget runs out), after one warm-up."""
    fn()
    synchronize()
    times = []
    start = time.perf_counter()
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget_s:
            break
    return min(times)


def bench_shapley(sizes, tau: float = 0.1, device: str = "cpu") -> None:
    print(f"{'k':>5} {'batched (ms)':>13} {'loop (ms)':>11} {'speed-up':>9} {'max |diff|':>11}   [{device}]")
    for k in sizes:
        sim = (torch.rand(k, k) * 2 - 1).to(device)
        batched = best_time(lambda sim=sim: cyclic_shapley(sim, tau, generator=torch.Generator().manual_seed(0)), 50)
        permutation = torch.randperm(k, generator=torch.Generator().manual_seed(0))
        loop_values = cyclic_shapley_loop(sim, tau, permutation.to(device))
        loop = best_time(
            lambda sim=sim, permutation=permutation: cyclic_shapley_loop(sim, tau, permutation.to(device)),
            3 if k <= 64 else 1,
        )
        diff = (cyclic_shapley(sim, tau, generator=torch.Generator().manual_seed(0)) - loop_values).abs().max()
        print(f"{k:>5} {batched * 1e3:>13.3f} {loop * 1e3:>11.1f} {loop / batched:>8.0f}x {diff.item():>11.2e}")


def paper_batch(batch: int, text_tokens: int, context_tokens: int, words: int, image_size: int = 224, device="cpu"):
    length = text_tokens + context_tokens
    context_mask = torch.zeros(batch, length, dtype=torch.long)
    context_mask[:, text_tokens:-1] = 1
    inputs = {
        "input_ids": torch.randint(1000, 30000, (batch, length)),
        "attention_mask": torch.ones(batch, length, dtype=torch.long),
        "token_type_ids": context_mask.clone(),
        "context_mask": context_mask,
        "word_index": torch.arange(1, words + 1).repeat(batch, 1),
        "pos_ids": torch.randint(2, 19, (batch, words)),
        "pixel_values": torch.randn(batch, 3, image_size, image_size),
        "image_mask": torch.ones(batch, dtype=torch.long),
        "labels": torch.zeros(batch, words, dtype=torch.long),
    }
    return {name: tensor.to(device) for name, tensor in inputs.items()}


def bench_step(batch: int, steps: int, device: str = "cpu") -> None:
    torch.manual_seed(0)
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC"]
    model = ShapCAForTokenClassification(ShapCAConfig(id2label=dict(enumerate(labels)))).to(device).train()
    inputs = paper_batch(batch, text_tokens=40, context_tokens=24, words=30, device=device)

    def step():
        model.zero_grad(set_to_none=True)
        model(**inputs).loss.backward()

    step_time = best_time(step, steps, budget_s=600)

    width, config = model.config.text_config.hidden_size, model.config
    vectors = [torch.randn(batch, width, device=device, requires_grad=True) for _ in range(3)]

    def alignment():
        text, context, image = vectors
        loss = config.alpha * shapley_contrastive_loss(text, context, config.tau)
        loss = loss + config.beta * shapley_contrastive_loss(image, context, config.tau)
        loss.backward()

    align_time = best_time(alignment, 50)
    where = torch.cuda.get_device_name() if device == "cuda" else f"CPU threads {torch.get_num_threads()}"
    print(f"paper configuration, batch {batch}, {where}")
    print(f"  forward+backward step: {step_time:.2f} s (best of {steps})")
    print(f"  two alignment losses, forward+backward: {align_time * 1e3:.2f} ms")
    print(f"  alignment share of the step: {100 * align_time / step_time:.3f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="8,28,64,256")
    parser.add_argument("--batch", type=int, default=28)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--skip-step", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    bench_shapley([int(k) for k in args.sizes.split(",")], device=args.device)
    if not args.skip_step:
        bench_step(args.batch, args.steps, device=args.device)


if __name__ == "__main__":
    main()
