"""The scores of the Shap-CA paper's Table 1 as `evaluate` modules, one folder per task.

    >>> from shapca_metrics import load_metric
    >>> load_metric("mner").compute(predictions=[["B-PER", "O"]], references=[["B-PER", "O"]])["f1"]
    1.0

Each folder holds one self-contained script (it imports only evaluate, datasets, seqeval and
the standard library), so ``evaluate.load("shapca_metrics/mner")`` also works on its own, offline.
"""

from __future__ import annotations

import functools
from pathlib import Path

import evaluate

# One folder per task (`processing.tasks.TASKS` names each task's module).
MODULES = ("mner", "mre", "mjere")


@functools.cache
def load_metric(name: str) -> evaluate.EvaluationModule:
    """The `evaluate` module ``name`` (``"mner"``, ``"mre"`` or ``"mjere"``), loaded from this folder.

    It keeps what it is given in memory, so processes that score at the same time share no cache file;
    it is loaded once per process (training scores the dev split after every epoch).
    """
    if name not in MODULES:
        raise ValueError(f"Unknown metric {name!r}; choose one of {list(MODULES)}.")
    return evaluate.load(str(Path(__file__).resolve().parent / name), keep_in_memory=True)
