"""The paper's three tasks, and what hangs on each: the head that reads it, the `evaluate` module
that scores it, the pipeline that serves its checkpoints and the words a model card uses for it.
Every other module asks here.

    >>> TASKS[Task.MRE].head, TASKS[Task.MRE].metric, TASKS[Task.MRE].pipeline
    ('word_pair', 'mre', 'multimodal-relation-extraction')
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Task(str, enum.Enum):
    """A run's task (a string too: ``Task.NER == "ner"``)."""

    NER = "ner"  # Twitter-2015, Twitter-2017: typed entity spans
    MRE = "mre"  # MNRE: the relation of a given entity pair
    MJERE = "mjere"  # JMERE: entities and the relations between them

    def __str__(self) -> str:  # "ner", not "Task.NER", in messages and f-strings
        return self.value


@dataclass(frozen=True)
class TaskSpec:
    """What a task is.

    Attributes:
        head: the head of its checkpoints, their ``config.task``: ``"ner"`` (CRF) or ``"word_pair"``.
        metric: its `evaluate` module, a folder of ``shapca_metrics/``.
        pipeline: the pipeline task that reads its checkpoints.
        title: its name on a model card.
        scores: the test scores a model card reports, in the task's own words (``results`` key
            without ``test_`` -> name).
    """

    head: str
    metric: str
    pipeline: str
    title: str
    scores: dict[str, str]


# The card's names of each task's test scores (a ``results`` key without ``test_`` -> its name).
NER_SCORES = {"f1": "entity F1", "precision": "entity precision", "recall": "entity recall",
              "strict_f1": "entity F1 (strict IOB2)"}  # fmt: skip
MRE_SCORES = {"f1": "relation F1", "precision": "relation precision", "recall": "relation recall"}
MJERE_SCORES = {"f1": "triple F1 (MJERE_j)", "precision": "triple precision", "recall": "triple recall",
                "entity_f1": "entity F1 (MJERE_e)", "entity_precision": "entity precision",
                "entity_recall": "entity recall"}  # fmt: skip

# head, metric, pipeline, title, scores
TASKS: dict[Task, TaskSpec] = {
    Task.NER: TaskSpec("ner", "mner", "multimodal-ner", "multimodal named entity recognition", NER_SCORES),
    Task.MRE: TaskSpec(
        "word_pair", "mre", "multimodal-relation-extraction", "multimodal relation extraction", MRE_SCORES
    ),
    Task.MJERE: TaskSpec(
        "word_pair",
        "mjere",
        "multimodal-relation-extraction",
        "joint multimodal entity-relation extraction",
        MJERE_SCORES,
    ),
}

# What a checkpoint of each head does on a new text (the pipeline has no given pair: a word-pair
# checkpoint finds entities and relations, as in joint extraction).
TASK_OF_HEAD: dict[str, Task] = {"ner": Task.NER, "word_pair": Task.MJERE}

__all__ = ["TASKS", "TASK_OF_HEAD", "Task", "TaskSpec"]
