"""bench/relation_errors.py: the error analysis of a relation run's predictions, on records written by hand."""

import json
import subprocess
import sys

from helpers import ROOT

SCRIPT = ROOT / "bench" / "relation_errors.py"


def analyse(tmp_path, records) -> str:
    path = tmp_path / "predictions_test.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return subprocess.run([sys.executable, SCRIPT, path], capture_output=True, text=True, check=True).stdout


def test_given_pairs_are_split_into_missed_false_alarms_and_other_relations(tmp_path):
    records = [
        {"gold": "/per/per/couple", "pred": "/per/per/couple"},
        {"gold": "/per/per/couple", "pred": "None"},
        {"gold": "None", "pred": "/per/org/member_of"},
        {"gold": "/per/org/member_of", "pred": "/per/per/couple"},
    ]
    out = analyse(tmp_path, records)
    assert "| /per/per/couple | 2 | 2 | 1 | 50.0 | 50.0 | 50.0 |" in out
    assert "| /per/org/member_of | 1 | 1 | 0 | 0.0 | 0.0 | 0.0 |" in out
    assert "| None |" not in out  # no relation is not a relation type
    for outcome in ("a relation called None (missed): 1", "None called a relation (false alarm): 1",
                    "another relation: 1"):  # fmt: skip
        assert outcome in out


def test_joint_misses_are_traced_to_entities_or_relations(tmp_path):
    per, org, loc = ({"start": 0, "end": 1, "type": "PER"}, {"start": 2, "end": 4, "type": "ORG"},
                     {"start": 4, "end": 5, "type": "LOC"})  # fmt: skip
    gold = {"entities": [per, org, loc], "relations": [{"head": 0, "tail": 1, "type": "member_of"},
                                                      {"head": 0, "tail": 2, "type": "place"}]}  # fmt: skip
    short_org = {"start": 2, "end": 3, "type": "ORG"}
    pred = {"entities": [per, short_org, loc], "relations": [{"head": 2, "tail": 0, "type": "place"}]}
    out = analyse(tmp_path, [{"gold": gold, "pred": pred}])
    assert "| ORG | 1 | 1 | 0 | 0.0 | 0.0 | 0.0 |" in out and "| PER | 1 | 1 | 1 | 100.0 |" in out
    assert "wrong boundary (overlaps a predicted entity): 1" in out
    assert "an entity not found exactly (span and type): 1" in out  # member_of: its tail ORG is cut short
    assert "entities right, the wrong way round: 1" in out  # place: LOC -> PER predicted for PER -> LOC
