"""bench/mre_decision.py: decision rules for a given pair, chosen on dev records written by hand."""

import json

import pytest
from helpers import ROOT, load_script

decision = load_script(ROOT / "bench" / "mre_decision.py")
PRIORS = decision.relation_priors({"peer": 90, "rare": 10, "None": 300})


def record(gold, none, peer, rare):
    return {"gold": gold, "pred": "", "label_scores": {"None": none, "peer": peer, "rare": rare}}


def write(folder, split, records):
    folder.mkdir(exist_ok=True)
    (folder / f"predictions_{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_the_prior_rule_finds_the_rare_relation_the_argmax_misses(tmp_path):
    assert PRIORS == {"peer": 0.9, "rare": 0.1}  # None is not a relation
    # The rare relation is a little below the frequent one: the argmax says peer, the prior
    # (rare ** -t grows faster than peer ** -t) says rare, and None stays None.
    pairs = [record("rare", 0.25, 0.4, 0.35), record("peer", 0.1, 0.8, 0.1), record("None", 0.7, 0.2, 0.1)]
    write(tmp_path, "validation", pairs)
    write(tmp_path, "test", pairs)
    rows = decision.evaluate_run(tmp_path, PRIORS)
    assert rows["argmax"]["test_f1"] == 0.5 and (rows["argmax"]["w"], rows["argmax"]["t"]) == (1.0, 0.0)
    assert rows["prior"]["t"] > 0 and rows["prior"]["test_f1"] == 1.0 and rows["prior"]["w"] == 1.0
    assert rows["None weight + prior"]["dev_f1"] == 1.0
    # With nothing to gain, the choice stays at the paper's rule (w = 1, t = 0).
    assert decision.choose(pairs[1:], decision.NONE_WEIGHTS, decision.PRIOR_EXPONENTS, PRIORS) == (1.0, 0.0, 1.0)


def test_an_old_run_without_label_scores_is_told_how_to_predict_again(tmp_path):
    write(tmp_path, "validation", [{"gold": "None", "pred": "None", "score": 0.9}])
    with pytest.raises(SystemExit, match="no label_scores .* --do_train false"):
        decision.read_records(tmp_path / "predictions_validation.jsonl")
