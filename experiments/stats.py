"""Per-sentence counts of the main F1 and the paired bootstrap of F1 differences.

F1 is a corpus-level figure, so the bootstrap resamples sentences, re-adds their counts
(true positives, predicted, gold) and recomputes F1 for each resample: the same resampled
sentences for the system and the reference, and for every seed (seeds paired).
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


@dataclass(frozen=True)
class BootstrapResult:
    """F1 difference system - reference (mean over the paired seeds) and its bootstrap interval."""

    difference: float
    low: float
    high: float
    seeds: int
    sentences: int
    samples: int
    level: float

    @property
    def significant(self) -> bool:
        """The interval leaves out 0."""
        return self.low > 0 or self.high < 0

    @property
    def verdict(self) -> str:
        return "significant" if self.significant else "within noise"


def paired_bootstrap(
    system: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    samples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> BootstrapResult:
    """Paired bootstrap confidence interval of the F1 difference between two settings.

    Args:
        system, reference: per seed, the ``(n, 3)`` counts of :func:`count_matrix` on the same
            ``n`` test sentences in the same order; ``system[s]`` and ``reference[s]`` share a seed.
        samples: number of resamples.
        level: coverage of the percentile interval.
        seed: seed of the resampling.

    Each resample draws ``n`` sentences with replacement; the difference of the resample is the
    mean over the seeds of ``F1(system) - F1(reference)`` on it.
    """
    if not system or len(system) != len(reference):
        raise ValueError("paired_bootstrap needs the same number (at least one) of seeds on both sides.")
    sizes = {len(counts) for counts in [*system, *reference]}
    if len(sizes) != 1:
        raise ValueError(f"Every run must score the same test sentences; got sizes {sorted(sizes)}.")
    n = sizes.pop()
    weights = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=samples)  # (samples, n)
    differences = np.zeros(samples)
    observed = 0.0
    for ours, theirs in zip(system, reference):
        differences += f1_from_counts(weights @ ours) - f1_from_counts(weights @ theirs)
        observed += f1_from_counts(ours.sum(axis=0)) - f1_from_counts(theirs.sum(axis=0))
    differences /= len(system)
    tail = (1 - level) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    return BootstrapResult(float(observed / len(system)), float(low), float(high), len(system), n, samples, level)
