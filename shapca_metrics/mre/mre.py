"""Relation classification scores between given entity pairs (the MRE columns of the Shap-CA paper).

Loaded by path with ``evaluate.load("shapca_metrics/mre")``; it imports nothing from the project.
"""

import datasets
import evaluate

NO_RELATION = "None"

_DESCRIPTION = f"""\
Micro-averaged precision, recall and F1 of relation labels predicted for given (head, tail)
entity pairs, one label per pair. The label "{NO_RELATION}" (no relation) is never counted as a
positive: a pair counts as predicted when its predicted label is not "{NO_RELATION}", as gold when
its gold label is not, and as right when both agree. Accuracy counts every pair, "{NO_RELATION}" included.
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

_INPUTS_DESCRIPTION = f"""\
Args:
    predictions: one relation label (a string such as "/per/org/member_of") per entity pair.
    references: the gold label of each pair, "{NO_RELATION}" where the pair holds no relation.
Returns:
    precision, recall, f1: over the pairs whose label is not "{NO_RELATION}".
    accuracy: the share of pairs whose label is right.
Example:
    >>> mre = evaluate.load("shapca_metrics/mre")
    >>> mre.compute(predictions=["/per/per/peer", "None"], references=["/per/per/peer", "/per/org/member_of"])["f1"]
    0.6666666666666666
"""


def precision_recall_f1(true_positives: int, predicted: int, gold: int) -> dict[str, float]:
    """Micro scores from counts (0.0 where a denominator is zero)."""
    precision = true_positives / predicted if predicted else 0.0
    recall = true_positives / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


class MRE(evaluate.Metric):
    """Precision, recall and F1 over the relations other than "None", and accuracy over all pairs."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):
        pairs = list(zip(references, predictions))
        scores = precision_recall_f1(
            sum(gold == pred and gold != NO_RELATION for gold, pred in pairs),
            sum(pred != NO_RELATION for pred in predictions),
            sum(gold != NO_RELATION for gold in references),
        )
        scores["accuracy"] = sum(gold == pred for gold, pred in pairs) / len(pairs) if pairs else 0.0
        return scores
