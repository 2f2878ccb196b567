"""The `evaluate` modules of shapca_metrics/ and the scoring of shapca_training.scoring against hand-counted examples, and loaded offline by path."""

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT
from transformers import EvalPrediction

from processing.wordpair import MRE_ENTITY, grid_label_names, mre_relation_weights
from shapca_metrics import load_metric
from shapca_training.scoring import select_mre_decision


@pytest.fixture(scope="module")
def mner():
    return load_metric("mner")


@pytest.fixture(scope="module")
def mre():
    return load_metric("mre")


@pytest.fixture(scope="module")
def mjere():
    return load_metric("mjere")


def test_ner_default_and_strict_modes(mner):
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["I-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["I-ORG", "O"]]
    scores = mner.compute(predictions=pred, references=gold)
    # default mode: gold entities PER, LOC, ORG (the I- start counts); predicted PER, ORG, both right
    assert scores["precision"] == 1.0 and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(0.8)
    # strict IOB2: the ORG that starts with I- is no entity: gold PER, LOC; predicted PER
    assert scores["strict_precision"] == 1.0 and scores["strict_recall"] == 0.5
    assert scores["PER_f1"] == 1.0 and scores["LOC_f1"] == 0.0


def test_ner_rejects_misaligned_input(mner):
    with pytest.raises(ValueError, match="one tag per word"):
        mner.compute(predictions=[["O"]], references=[["O", "O"]])


def test_mre_scores_ignore_none_but_accuracy_counts_it(mre):
    gold = ["/per/org/member_of", "None", "/per/per/peer", "None"]
    pred = ["/per/org/member_of", "/per/per/peer", "None", "None"]
    scores = mre.compute(predictions=pred, references=gold)
    assert scores["precision"] == 0.5 and scores["recall"] == 0.5 and scores["f1"] == 0.5
    assert scores["accuracy"] == 0.5


def test_mjere_triples_need_spans_types_and_relation(mjere):
    entities = [{"start": 0, "end": 1, "type": "PER"}, {"start": 2, "end": 3, "type": "ORG"}]
    gold = [{"entities": entities, "relations": [{"head": 0, "tail": 1, "type": "member_of"}]}]
    wrong_type = [{"start": 0, "end": 1, "type": "LOC"}, {"start": 2, "end": 3, "type": "ORG"}]
    pred = [{"entities": wrong_type, "relations": [{"head": 0, "tail": 1, "type": "member_of"}]}]
    scores = mjere.compute(predictions=pred, references=gold)
    assert scores["f1"] == 0.0  # the head type is wrong
    assert scores["entity_precision"] == 0.5 and scores["entity_recall"] == 0.5
    assert mjere.compute(predictions=gold, references=gold)["f1"] == 1.0
    reversed_relation = [{"entities": entities, "relations": [{"head": 1, "tail": 0, "type": "member_of"}]}]
    assert mjere.compute(predictions=reversed_relation, references=gold)["f1"] == 0.0


def test_mjere_ignores_the_scores_and_other_keys_the_decoder_and_pipeline_give(mjere):
    """The decoder and the pipeline give every entity and relation a "score"; the module's features
    do not declare one, and `evaluate` failed with KeyError: 'score'."""
    entities = [{"start": 0, "end": 1, "type": "PER"}, {"start": 2, "end": 3, "type": "ORG"}]
    gold = {"entities": entities, "relations": [{"head": 0, "tail": 1, "type": "member_of"}]}
    scored = {
        "entities": [{**entity, "score": 0.9} for entity in entities],
        "relations": [{"head": 0, "tail": 1, "type": "member_of", "score": 0.8, "source": "grid"}],
        "id": "test-0",
    }
    stray = {"entities": [{"start": 4, "end": 5, "type": "PER", "score": 0.5}], "relations": []}
    scores = mjere.compute(predictions=[scored, stray], references=[gold, {"entities": entities[:1], "relations": []}])
    assert scores["f1"] == 1.0  # the one triple, found
    assert scores["entity_precision"] == pytest.approx(2 / 3) and scores["entity_recall"] == pytest.approx(2 / 3)
    assert mjere.compute(predictions=[scored], references=[scored])["f1"] == 1.0  # references may carry them too
    mjere.add(prediction=scored, reference=gold)
    assert mjere.compute()["f1"] == 1.0
    assert scored["entities"][0]["score"] == 0.9  # the caller's structures are left as they were


def test_modules_load_offline_by_relative_and_absolute_path():
    """A fresh process with every Hugging Face library offline and no reachable Hub loads each module by path."""
    script = """
import os

import evaluate

for name in ("mner", "mre", "mjere"):
    for path in (f"shapca_metrics/{name}", os.path.abspath(f"shapca_metrics/{name}")):
        module = evaluate.load(path)
        assert module.name == name and "Shapley Value-based" in module.citation, (path, module.name)
print(evaluate.load("shapca_metrics/mre").compute(predictions=["a", "None"], references=["a", "b"])["recall"])
"""
    offline = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"}
    env = {**os.environ, **offline, "HF_ENDPOINT": "http://127.0.0.1:9", "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", script], check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0.5"


def test_load_metric_names_the_modules():
    with pytest.raises(ValueError, match=r"Unknown metric 'ner'; choose one of \['mner', 'mre', 'mjere'\]"):
        load_metric("ner")


def test_bio_entities():
    from processing.decoding import bio_entities

    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-ORG", "B-ORG", "I-PER"]
    assert bio_entities(tags) == [
        {"start": 0, "end": 2, "type": "PER"},
        {"start": 3, "end": 5, "type": "LOC"},
        {"start": 5, "end": 6, "type": "ORG"},
        {"start": 6, "end": 7, "type": "ORG"},
        {"start": 7, "end": 8, "type": "PER"},
    ]


def test_compute_metrics_scores_joint_predictions_that_carry_decoder_scores():
    """The decoder attaches a score to every entity and relation; the joint metric has no such
    feature. A prediction in the first sentence used to end the run with KeyError: 'score'."""
    import numpy as np
    from transformers import EvalPrediction

    from modeling_shapca.heads import IGNORE_INDEX
    from processing.wordpair import encode_grid
    from shapca_training.scoring import compute_metrics

    id2label = {0: "none", 1: "PER", 2: "couple", 3: "couple^-1"}
    label2id = {label: i for i, label in id2label.items()}
    entities = [{"start": 0, "end": 1, "type": "PER"}, {"start": 2, "end": 3, "type": "PER"}]
    relations = [{"head": 0, "tail": 1, "type": "couple"}]
    width = 6
    ids = np.full((2, width, width), IGNORE_INDEX, dtype=np.int64)
    ids[0, :4, :4] = encode_grid(4, entities, relations, label2id)  # the first sentence: both entities, the relation
    ids[1, :3, :3] = encode_grid(3, [], [], label2id)  # the second: nothing predicted
    scores = np.where(ids >= 0, 0.9, 0.0)
    gold_entities = np.full((2, 2, 3), IGNORE_INDEX)
    gold_entities[0] = [[0, 1, 1], [2, 3, 1]]
    gold_entities[1, 0] = [1, 2, 1]  # missed by the prediction
    gold_relations = np.full((2, 1, 3), IGNORE_INDEX)
    gold_relations[0, 0] = [0, 1, 2]
    prediction = EvalPrediction(predictions=(ids, scores), label_ids=(gold_entities, gold_relations))
    scores = compute_metrics(prediction, task="mjere", id2label=id2label)
    assert scores["f1"] == 1.0  # one triple, found
    assert scores["entity_precision"] == 1.0 and scores["entity_recall"] == pytest.approx(2 / 3)


def test_the_none_weight_is_chosen_by_dev_f1_nearest_the_papers_argmax():
    relations = ["None", "/per/org/member_of"]
    id2label = dict(enumerate(grid_label_names([MRE_ENTITY], relations[1:])))  # none, entity, r, r^-1
    # Per pair: summed P^final of none, entity, r, r^-1, then 1 (the head comes first).
    mass = np.array([
        [0.60, 0.0, 0.40, 0.0, 1.0],  # gold r: r wins once None weighs below 0.4 / 0.6
        [0.90, 0.0, 0.10, 0.0, 1.0],  # gold None: r wins below 0.1 / 0.9
    ])  # fmt: skip
    dev_f1 = select_mre_decision(EvalPrediction(mass, np.array([1, 0])), id2label, relations)
    assert dev_f1[(1.0, 0.0)] == 0.0  # the paper's argmax says None twice
    best = next(iter(dev_f1))
    assert best == (0.65, 0.0) and dev_f1[best] == 1.0  # of 0.15 ... 0.65 (all F1 1.0), the one nearest 1
    assert dev_f1[(0.1, 0.0)] < 1.0  # too light: the None pair is called r


def test_the_prior_exponent_lets_a_rare_relation_win_and_is_kept_at_zero_when_it_does_not_help():
    relations = ["None", "peer", "rare"]
    id2label = dict(enumerate(grid_label_names([MRE_ENTITY], relations[1:])))  # none, entity, peer, rare, ^-1s
    counts = {"peer": 89, "rare": 9, "None": 500}  # priors (89 + 1) / 100 and (9 + 1) / 100
    # Divided by their prior and by the number of relations: on the training pairs, the mean weight is 1.
    assert mre_relation_weights(counts, relations, 1.0) == pytest.approx({"peer": 1 / 0.9 / 2, "rare": 10 / 2})
    half = mre_relation_weights(counts, relations, 0.5)
    assert 0.9 * half["peer"] + 0.1 * half["rare"] == pytest.approx(1.0) and half["rare"] > 1 > half["peer"]
    assert mre_relation_weights(None, relations, 0.0) is None  # the paper's rule
    with pytest.raises(ValueError, match="needs the training pairs of each relation"):
        mre_relation_weights(None, relations, 0.5)
    # gold rare, its share a little below peer's; gold peer, ahead by a margin a strong exponent overturns
    mass = np.array([[0.2, 0.0, 0.42, 0.38, 0.0, 0.0, 1.0], [0.3, 0.0, 0.5, 0.2, 0.0, 0.0, 1.0]])
    prediction = EvalPrediction(mass, np.array([2, 1]))
    exponents = (0.0, 0.1, 0.5)
    dev_f1 = select_mre_decision(prediction, id2label, relations, (1.0,), exponents, counts)
    assert dev_f1[(1.0, 0.0)] == 0.5 and next(iter(dev_f1)) == (1.0, 0.1) and dev_f1[(1.0, 0.1)] == 1.0
    assert dev_f1[(1.0, 0.5)] == 0.5  # too strong: peer's pair goes to rare too
    # Nothing to gain: the paper's rule stays.
    clear = EvalPrediction(mass[1:], np.array([1]))
    assert next(iter(select_mre_decision(clear, id2label, relations, (1.0,), exponents, counts))) == (1.0, 0.0)
