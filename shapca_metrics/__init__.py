"""The scores of the Shap-CA paper's Table 1 as `evaluate` modules, one folder per task.

    >>> from shapca_metrics import load_metric
    >>> load_metric("ner").compute(predictions=[["B-PER", "O"]], references=[["B-PER", "O"]])["f1"]
    1.0

Each folder holds one self-contained script (it imports only evaluate, datasets, seqeval and
the standard library), so ``evaluate.load("shapca_metrics/mner")`` also works on its own, offline.
"""

from __future__ import annotations

import functools
from pathlib import Path

import evaluate

MODULE_FOR_TASK = {"ner": "mner", "mre": "mre", "mjere": "mjere"}


@functools.cache
def load_metric(task: str) -> evaluate.EvaluationModule:
    """The `evaluate` module that scores ``task`` (``"ner"``, ``"mre"`` or ``"mjere"``), loaded from this folder.

    It keeps what it is given in memory, so processes that score at the same time share no cache file;
    it is loaded once per process (training scores the dev split after every epoch).
    """
    if task not in MODULE_FOR_TASK:
        raise ValueError(f"Unknown task {task!r}; choose one of {sorted(MODULE_FOR_TASK)}.")
    return evaluate.load(str(Path(__file__).resolve().parent / MODULE_FOR_TASK[task]), keep_in_memory=True)
