"""bench/mre_decision.py: decision rules for a given pair, chosen on dev records written by hand."""

import json
from collections import Counter

import pytest
from helpers import ROOT, load_script

decision = load_script(ROOT / "bench" / "mre_decision.py")
COUNTS = Counter({"peer": 89, "rare": 9, "None": 300})  # priors (89 + 1) / 100 and (9 + 1) / 100


def record(gold, none, peer, rare):
    return {"gold": gold, "pred": "", "label_scores": {"None": none, "peer": peer, "rare": rare}}


def write(folder, split, records):
    folder.mkdir(exist_ok=True)
    (folder / f"predictions_{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_the_prior_rule_finds_the_rare_relation_the_argmax_misses(tmp_path):
    # The rare relation is a little below the frequent one: the argmax says peer, the prior says
    # rare; the clear peer and the clear None stay.
    pairs = [record("rare", 0.25, 0.4, 0.35), record("peer", 0.1, 0.8, 0.1), record("None", 0.7, 0.2, 0.1)]
    write(tmp_path, "validation", pairs)
    write(tmp_path, "test", pairs)
    rows = decision.evaluate_run(tmp_path, COUNTS)
    assert rows["argmax"]["test_f1"] == 0.5 and (rows["argmax"]["w"], rows["argmax"]["t"]) == (1.0, 0.0)
    assert rows["prior"]["t"] > 0 and rows["prior"]["test_f1"] == 1.0 and rows["prior"]["w"] == 1.0
    # A heavier None only drops the wrong peer (F1 2/3): the weight cannot find the rare relation.
    assert rows["None weight"]["t"] == 0.0 and rows["None weight"]["test_f1"] == pytest.approx(2 / 3)
    assert rows["None weight + prior"]["dev_f1"] == 1.0


def test_the_counts_come_from_the_run_config_else_the_data(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"mre_relation_counts": {"peer": 3}}))
    assert decision.relation_counts(tmp_path, None) == Counter({"peer": 3})
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(SystemExit, match="give --data_dir"):
        decision.relation_counts(tmp_path, None)


def test_an_old_run_without_label_scores_is_told_how_to_predict_again(tmp_path):
    write(tmp_path, "validation", [{"gold": "None", "pred": "None", "score": 0.9}])
    with pytest.raises(SystemExit, match="no label_scores .* --do_train false"):
        decision.read_records(tmp_path / "predictions_validation.jsonl")
