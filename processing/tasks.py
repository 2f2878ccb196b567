"""The paper's three tasks, and what hangs on each: the head that reads it, the `evaluate` module
that scores it, the pipeline that serves its checkpoints and the words a model card uses for it.
Every other module asks here.

    >>> TASKS[Task.MRE].head, TASKS[Task.MRE].metric, TASKS[Task.MRE].pipeline
    ('word_pair', 'mre', 'multimodal-relation-extraction')

A task is not a head: a checkpoint's head (``config.head``: ``"crf"`` or ``"word_pair"``) is the
model's, and one head serves several tasks (the word-pair head reads MNRE's given pairs and
JMERE's entities and relations).
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
        head: the head of its checkpoints, their ``config.head``: ``"crf"`` or ``"word_pair"``.
        metric: its `evaluate` module, a folder of ``shapca_metrics/``.
        pipeline: the pipeline task that reads its checkpoints.
        title: its name on a model card.
        scores: the test scores a model card reports, in the task's own words (``results`` key
            without ``test_`` -> name).
        given_pair: an example is one entity pair of a sentence, whose relation is asked (MNRE);
            otherwise an example is a sentence and the model finds the structures.
        hub_pipeline_tag: the Hub's task for its checkpoints, where the Hub has one.
    """

    head: str
    metric: str
    pipeline: str
    title: str
    scores: dict[str, str]
    given_pair: bool = False
    hub_pipeline_tag: str | None = None

    @property
    def tagged(self) -> bool:
        """Each word carries a BIO tag (the CRF's labels); otherwise the labels are word-pair grids."""
        return self.head == "crf"


# The card's names of each task's test scores (a ``results`` key without ``test_`` -> its name).
NER_SCORES = {"f1": "entity F1", "precision": "entity precision", "recall": "entity recall",
              "strict_f1": "entity F1 (strict IOB2)"}  # fmt: skip
MRE_SCORES = {"f1": "relation F1", "precision": "relation precision", "recall": "relation recall"}
MJERE_SCORES = {"f1": "triple F1 (MJERE_j)", "precision": "triple precision", "recall": "triple recall",
                "entity_f1": "entity F1 (MJERE_e)", "entity_precision": "entity precision",
                "entity_recall": "entity recall"}  # fmt: skip

# head, metric, pipeline, title, scores
TASKS: dict[Task, TaskSpec] = {
    Task.NER: TaskSpec(
        "crf",
        "mner",
        "multimodal-ner",
        "multimodal named entity recognition",
        NER_SCORES,
        # The NER pipeline answers in the token-classification format; the relation pipeline's
        # entities-and-relations answer has no Hub task.
        hub_pipeline_tag="token-classification",
    ),
    Task.MRE: TaskSpec(
        "word_pair",
        "mre",
        "multimodal-relation-extraction",
        "multimodal relation extraction",
        MRE_SCORES,
        given_pair=True,
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
TASK_OF_HEAD: dict[str, Task] = {"crf": Task.NER, "word_pair": Task.MJERE}

__all__ = ["TASKS", "TASK_OF_HEAD", "Task", "TaskSpec"]
