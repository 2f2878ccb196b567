"""Per-sentence counts of the main F1 and a two-level bootstrap of F1 differences.

A difference between two settings has two sources of noise: the seeds (the same setting
trained again scores differently) and the test set (other sentences would give other scores).
The bootstrap resamples both. At the top level it draws the seeds of each setting with
replacement; at the bottom level it draws the test sentences with replacement, re-adds their
counts (true positives, predicted, gold) and recomputes micro F1, since F1 is a corpus-level
figure. The same sentences are drawn for both settings and every seed (the test set is shared);
the seeds are drawn for both settings at once when they have the same seeds (the run with
seed 1 of one setting is compared with the run with seed 1 of the other), each setting on its
own otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from processing.wordpair import MRE_NO_RELATION


def entity_keys(entities: Sequence[Mapping]) -> list[tuple]:
    return [(e["start"], e["end"], e["type"]) for e in entities]


def triples(entities: Sequence[Mapping], relations: Sequence[Mapping]) -> set[tuple]:
    """(head span and type, tail span and type, relation) of each relation, as the mjere metric counts them."""
    keys = entity_keys(entities)
    return {(keys[r["head"]], keys[r["tail"]], r["type"]) for r in relations}


def sentence_counts(record: Mapping) -> tuple[int, int, int]:
    """``(true positives, predicted, gold)`` of the main F1 in one record of ``predictions_*.jsonl``.

    The task follows from the record: entity lists (NER: spans and types), relation names
    (MRE: micro F1 over the relations other than ``None``) or ``{"entities", "relations"}``
    (joint extraction: triples with both spans, both types and the relation).
    """
    gold, pred = record["gold"], record["pred"]
    if isinstance(gold, str):
        hit = gold == pred and gold != MRE_NO_RELATION
        return int(hit), int(pred != MRE_NO_RELATION), int(gold != MRE_NO_RELATION)
    if isinstance(gold, Mapping):
        gold_set = triples(gold["entities"], gold["relations"])
        pred_set = triples(pred["entities"], pred["relations"])
    else:
        gold_set, pred_set = set(entity_keys(gold)), set(entity_keys(pred))
    return len(gold_set & pred_set), len(pred_set), len(gold_set)


def count_matrix(records: Sequence[Mapping]) -> np.ndarray:
    """``(n, 3)`` counts, one row per sentence (see :func:`sentence_counts`)."""
    return np.array([sentence_counts(record) for record in records], dtype=np.int64).reshape(-1, 3)


def f1_from_counts(counts: np.ndarray) -> np.ndarray:
    """F1 from summed counts ``(..., 3)``: ``2 tp / (predicted + gold)``, 0 when there is nothing."""
    counts = np.asarray(counts, dtype=np.float64)
    denominator = counts[..., 1] + counts[..., 2]
    return np.divide(2 * counts[..., 0], denominator, out=np.zeros_like(denominator), where=denominator > 0)


# The verdict of an interval that leaves out 0 but could not measure the seeds' noise.
ONE_SEED_VERDICT = "test-set noise only; run more seeds"


@dataclass(frozen=True)
class BootstrapResult:
    """F1 difference system - reference (mean over seeds minus mean over seeds) and its interval.

    ``low`` and ``high`` bound the percentile interval of the two-level bootstrap at ``level``.
    With one seed on either side, the seed noise of that side is not measured: the interval
    then reflects the test set's noise only, and the verdict cannot be "significant".
    """

    difference: float
    low: float
    high: float
    system_seeds: int
    reference_seeds: int
    seeds_paired: bool
    sentences: int
    samples: int
    level: float

    @property
    def seeds(self) -> int:
        """The fewer seeds of the two settings."""
        return min(self.system_seeds, self.reference_seeds)

    @property
    def seed_noise_measured(self) -> bool:
        """Both settings have at least two seeds, so the bootstrap has a seed spread to draw from."""
        return self.seeds > 1

    @property
    def excludes_zero(self) -> bool:
        """The interval leaves out 0."""
        return self.low > 0 or self.high < 0

    @property
    def significant(self) -> bool:
        """The interval leaves out 0 and accounts for the seeds' noise as well as the test set's."""
        return self.excludes_zero and self.seed_noise_measured

    @property
    def verdict(self) -> str:
        if not self.excludes_zero:
            return "within noise"
        return "significant" if self.seed_noise_measured else ONE_SEED_VERDICT


def sentence_weights(rng: np.random.Generator, sentences: int, samples: int) -> np.ndarray:
    """``(samples, sentences)`` draw counts: how often each test sentence is drawn, with
    replacement, in each resample of the test set (each row sums to ``sentences``)."""
    return rng.multinomial(sentences, np.full(sentences, 1.0 / sentences), size=samples)


def seed_draws(rng: np.random.Generator, seeds: int, samples: int) -> np.ndarray:
    """``(samples, seeds)`` indices: the seeds drawn, with replacement, in each resample."""
    return rng.integers(0, seeds, size=(samples, seeds))


def resampled_f1(counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(samples, seeds)`` micro F1 of each seed's run on each resampled test set.

    Args:
        counts: ``(seeds, sentences, 3)`` counts of one setting's runs.
        weights: ``(samples, sentences)`` draw counts of :func:`sentence_weights`.
    """
    summed = np.tensordot(weights.astype(np.float64), counts.astype(np.float64), axes=([1], [1]))
    return f1_from_counts(summed)  # summed: (samples, seeds, 3)


def mean_over_drawn_seeds(f1: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """``(samples,)`` mean F1 of the drawn seeds: ``f1`` and ``draws`` are ``(samples, seeds)``."""
    return np.take_along_axis(f1, draws, axis=1).mean(axis=1)


def hierarchical_bootstrap(
    system: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    paired_seeds: bool,
    samples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> BootstrapResult:
    """Two-level bootstrap confidence interval of the test F1 difference between two settings.

    Args:
        system, reference: per seed, the ``(n, 3)`` counts of :func:`count_matrix` on the same
            ``n`` test sentences in the same order.
        paired_seeds: ``system[s]`` and ``reference[s]`` share a seed (both lists are in the
            same seed order): the resample draws seed indices once for both settings.
            Otherwise each setting's seeds are drawn on their own.
        samples: number of resamples.
        level: coverage of the percentile interval.
        seed: seed of the resampling.

    Each resample draws, with replacement, as many seeds as each setting has (top level) and
    ``n`` test sentences (bottom level, the same sentences for both settings and all seeds);
    it recomputes each drawn run's micro F1 from the drawn sentences' counts, and its
    difference is the mean F1 of the system's drawn runs minus that of the reference's.
    """
    if not system or not reference:
        raise ValueError("hierarchical_bootstrap needs at least one seed on both sides.")
    if paired_seeds and len(system) != len(reference):
        raise ValueError(f"Paired seeds need as many runs on both sides; got {len(system)} and {len(reference)}.")
    sizes = {len(counts) for counts in [*system, *reference]}
    if len(sizes) != 1:
        raise ValueError(f"Every run must score the same test sentences; got sizes {sorted(sizes)}.")
    n = sizes.pop()
    if n == 0:
        raise ValueError("The runs score no test sentence.")
    ours, theirs = np.stack(system).reshape(len(system), n, 3), np.stack(reference).reshape(len(reference), n, 3)
    rng = np.random.default_rng(seed)
    weights = sentence_weights(rng, n, samples)
    our_draws = seed_draws(rng, len(system), samples)
    their_draws = our_draws if paired_seeds else seed_draws(rng, len(reference), samples)
    our_means = mean_over_drawn_seeds(resampled_f1(ours, weights), our_draws)
    their_means = mean_over_drawn_seeds(resampled_f1(theirs, weights), their_draws)
    differences = our_means - their_means  # (samples,)
    observed = f1_from_counts(ours.sum(axis=1)).mean() - f1_from_counts(theirs.sum(axis=1)).mean()
    tail = (1 - level) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    return BootstrapResult(
        float(observed), float(low), float(high), len(system), len(reference), paired_seeds, n, samples, level
    )
