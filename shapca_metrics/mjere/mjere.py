"""Joint entity and relation triple scores (the MJERE columns of the Shap-CA paper).

Loaded by path with ``evaluate.load("shapca_metrics/mjere")``; it imports nothing from the project.
"""

import datasets
import evaluate

_DESCRIPTION = """\
Micro-averaged precision, recall and F1 of joint multimodal entity-relation extraction. A
triple (head entity, tail entity, relation) is right only when both entity spans, both entity
types and the relation type are right, in the right direction (MJERE_j). The entity_* keys
score the entities alone, span and type (MJERE_e).
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
    predictions: one structure per sentence, {"entities": [...], "relations": [...]}, where each
        entity has {"start": int, "end": int, "type": str} (word offsets, end exclusive) and each
        relation {"head": int, "tail": int, "type": str}, head and tail being indices into that
        sentence's "entities". Other keys (the "score" the decoder and the pipeline give each
        entity and relation) are ignored.
    references: the gold structures, in the same form, one per sentence.
Returns:
    precision, recall, f1: over triples (MJERE_j).
    entity_precision, entity_recall, entity_f1: over entities (MJERE_e).
Example:
    >>> mjere = evaluate.load("shapca_metrics/mjere")
    >>> sentence = {
    ...     "entities": [{"start": 0, "end": 1, "type": "PER"}, {"start": 2, "end": 3, "type": "ORG"}],
    ...     "relations": [{"head": 0, "tail": 1, "type": "member_of"}],
    ... }
    >>> mjere.compute(predictions=[sentence], references=[sentence])["f1"]
    1.0
"""

ENTITY = {"start": datasets.Value("int32"), "end": datasets.Value("int32"), "type": datasets.Value("string")}
RELATION = {"head": datasets.Value("int32"), "tail": datasets.Value("int32"), "type": datasets.Value("string")}
SENTENCE = {"entities": datasets.List(ENTITY), "relations": datasets.List(RELATION)}


def _declared(item, feature: dict):
    """A dict with only the keys ``feature`` declares (those it lacks stay missing, for the features
    to name); anything else is given back as is."""
    return {key: item[key] for key in feature if key in item} if isinstance(item, dict) else item


def in_features(sentence):
    """A sentence with only what is scored: `evaluate` encodes the inputs with the features of
    `MJERE._info`, and fails with a bare KeyError on a key they do not declare (an entity's "score")."""
    if not isinstance(sentence, dict):
        return sentence
    sentence = _declared(sentence, SENTENCE)
    for key, feature in (("entities", ENTITY), ("relations", RELATION)):
        if isinstance(sentence.get(key), (list, tuple)):
            sentence[key] = [_declared(item, feature) for item in sentence[key]]
    return sentence


def precision_recall_f1(true_positives: int, predicted: int, gold: int) -> dict[str, float]:
    """Micro scores from counts (0.0 where a denominator is zero)."""
    precision = true_positives / predicted if predicted else 0.0
    recall = true_positives / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def entities_and_triples(sentence: dict) -> tuple[set, set]:
    """The sentence's entities as ``(start, end, type)`` and its relations as ``(head entity, tail entity, type)``."""
    entities = [(entity["start"], entity["end"], entity["type"]) for entity in sentence["entities"]]
    triples = {
        (entities[relation["head"]], entities[relation["tail"]], relation["type"]) for relation in sentence["relations"]
    }
    return set(entities), triples


class MJERE(evaluate.Metric):
    """Triple scores (spans, types and relation right) and entity scores over sentences."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS_DESCRIPTION,
            features=datasets.Features({"predictions": SENTENCE, "references": SENTENCE}),
        )

    # `evaluate` appends the inputs' description to the docstrings of add_batch, add and compute.
    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of sentences, their keys the features do not declare left out.\n"""
        predictions, references = (
            None if sentences is None else [in_features(sentence) for sentence in sentences]
            for sentences in (predictions, references)
        )
        super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one sentence, its keys the features do not declare left out.\n"""
        super().add(prediction=in_features(prediction), reference=in_features(reference), **kwargs)

    def _compute(self, predictions, references):
        counts = {"entity": [0, 0, 0], "triple": [0, 0, 0]}  # right, predicted, gold
        for predicted, gold in zip(predictions, references):
            pred_entities, pred_triples = entities_and_triples(predicted)
            gold_entities, gold_triples = entities_and_triples(gold)
            for kind, pred_set, gold_set in (
                ("entity", pred_entities, gold_entities),
                ("triple", pred_triples, gold_triples),
            ):
                counts[kind][0] += len(pred_set & gold_set)
                counts[kind][1] += len(pred_set)
                counts[kind][2] += len(gold_set)
        scores = precision_recall_f1(*counts["triple"])
        scores.update({f"entity_{key}": value for key, value in precision_recall_f1(*counts["entity"]).items()})
        return scores
