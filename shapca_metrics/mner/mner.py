"""Entity-level precision, recall and F1 of BIO tag sequences (the MNER columns of the Shap-CA paper).

Loaded by path with ``evaluate.load("shapca_metrics/mner")``; it imports nothing from the project.
"""

import datasets
import evaluate
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2

_DESCRIPTION = """\
Micro-averaged entity-level precision, recall and F1 over BIO-tagged sentences, computed with
seqeval in two modes. The plain keys use seqeval's default (CoNLL) mode, in which an entity may
also start with an I- tag; the strict_* keys use strict IOB2, in which it may not. An entity is
right only when its span and its type are both right.
"""

_CITATION = """\
@inproceedings{luo2024shapca,
  title = {Shapley Value-based Contrastive Alignment for Multimodal Information Extraction},
  author = {Luo, Wen and Xia, Yu and Shen, Tianshu and Li, Sujian},
  booktitle = {Proceedings of the 32nd ACM International Conference on Multimedia},
  year = {2024},
  doi = {10.1145/3664647.3681367}
}
"""

_INPUTS_DESCRIPTION = """\
Args:
    predictions: one list of BIO tags (strings such as "B-PER", "I-PER", "O") per sentence.
    references: the gold tags, one list per sentence, as long as the predicted one.
Returns:
    precision, recall, f1: seqeval's default mode.
    strict_precision, strict_recall, strict_f1: strict IOB2 mode.
    <TYPE>_f1: the F1 of each entity type found in the references or predictions (default mode).
Example:
    >>> mner = evaluate.load("shapca_metrics/mner")
    >>> mner.compute(predictions=[["B-PER", "I-PER", "O"]], references=[["B-PER", "I-PER", "O"]])["f1"]
    1.0
"""


class MNER(evaluate.Metric):
    """seqeval's entity scores, in default and strict IOB2 mode, with per-type F1."""

    def _info(self):
        tags = datasets.List(datasets.Value("string"))
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS_DESCRIPTION,
            features=datasets.Features({"predictions": tags, "references": tags}),
        )

    def _compute(self, predictions, references):
        if [len(tags) for tags in predictions] != [len(tags) for tags in references]:
            raise ValueError("predictions and references must have one tag per word, sentence by sentence.")
        strict = {"mode": "strict", "scheme": IOB2}
        scores = {
            "precision": precision_score(references, predictions, zero_division=0),
            "recall": recall_score(references, predictions, zero_division=0),
            "f1": f1_score(references, predictions, zero_division=0),
            "strict_precision": precision_score(references, predictions, zero_division=0, **strict),
            "strict_recall": recall_score(references, predictions, zero_division=0, **strict),
            "strict_f1": f1_score(references, predictions, zero_division=0, **strict),
        }
        report = classification_report(references, predictions, output_dict=True, zero_division=0)
        for entity_type, values in report.items():
            if not entity_type.endswith(" avg"):
                scores[f"{entity_type}_f1"] = values["f1-score"]
        return {key: float(value) for key, value in scores.items()}
