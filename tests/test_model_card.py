"""The checkpoint's model card: huggingface_hub metadata with a model-index, the template's text, the snippet."""

import re
from pathlib import Path

import pytest
from conftest import write_contexts
from huggingface_hub import ModelCard

import run_mie
from model_cards import build_model_card

ROOT = Path(__file__).resolve().parents[1]
RESULTS = {"test_f1": 0.812345, "test_precision": 0.8, "test_recall": 0.825, "test_strict_f1": 0.79, "eval_f1": 0.9}
SNIPPET = """\
from PIL import Image
from transformers import AutoModelForTokenClassification, AutoProcessor, pipeline

model = AutoModelForTokenClassification.from_pretrained("REPO", trust_remote_code=True)
processor = AutoProcessor.from_pretrained("REPO", trust_remote_code=True)
inputs = processor(["so", "proud", "of", "Jordan"], context="a portrait of a man", images=[Image.open("photo.jpg")])
print(processor.post_process(model, model(**inputs), inputs))

extract = pipeline(model="REPO", trust_remote_code=True)
print(extract("so proud of Jordan", image="photo.jpg", context="a portrait of a man"))
"""


def arguments(config: str, *flags: str):
    return run_mie.parse_arguments([str(ROOT / "configs" / config), *flags])


def test_ner_card_metadata_text_and_snippet(tmp_path):
    output_dir = tmp_path / "run"
    model_args, data_args, training_args = arguments("demo.json", "--output_dir", str(output_dir))
    card = build_model_card(model_args, data_args, training_args, "ner", RESULTS)

    metadata = card.data.to_dict()
    assert metadata["library_name"] == "transformers" and metadata["pipeline_tag"] == "token-classification"
    assert metadata["datasets"] == ["demo"] and "multimodal-named-entity-recognition" in metadata["tags"]
    (index,) = metadata["model-index"]
    assert index["name"] == str(output_dir)
    (result,) = index["results"]
    assert result["task"] == {"type": "token-classification", "name": "multimodal named entity recognition"}
    assert result["dataset"] == {"type": "demo", "name": "demo", "split": "test"}
    scores = {metric["type"]: metric["value"] for metric in result["metrics"]}
    assert scores == {"f1": 0.8123, "precision": 0.8, "recall": 0.825, "strict_f1": 0.79}  # test scores only

    text = card.text
    assert "{{" not in text and "{%" not in text  # the template is fully rendered
    assert "| eval_f1 | 0.9000 |\n| test_f1 | 0.8123 |" in text  # every number in the table
    assert "- head: CRF" in text and "- bridging context: none" in text
    assert "- scheduler: cosine, warmup" in text and "- encoder_learning_rate: " in text
    # the snippet runs as it stands on the local checkpoint: the repo id is the output folder
    assert re.findall(r"```python\n(.*?)```", text, re.DOTALL) == [SNIPPET.replace("REPO", str(output_dir))]
    assert f'`pipeline("multimodal-ner", model="{output_dir}")` works without' in text


def test_card_round_trips_through_a_readme(tmp_path):
    model_args, data_args, training_args = arguments("demo.json", "--output_dir", str(tmp_path / "run"))
    card = build_model_card(model_args, data_args, training_args, "ner", RESULTS)
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    assert loaded.data.to_dict() == card.data.to_dict()
    assert loaded.data.eval_results[0].metric_value == 0.8123 and loaded.text == card.text


def test_word_pair_card_names_hub_id_contexts_and_data(tmp_path):
    contexts = write_contexts(tmp_path / "contexts.jsonl", ["a", "b"])
    model_args, data_args, training_args = arguments(
        "jmere.json", "--hub_model_id", "someone/shapca-jmere", "--context_files", str(contexts)
    )
    results = {"test_f1": 0.5, "test_entity_f1": 0.75}
    card = build_model_card(model_args, data_args, training_args, "mjere", results)
    (index,) = card.data.to_dict()["model-index"]
    assert index["name"] == "someone/shapca-jmere"
    (result,) = index["results"]
    assert (
        result["dataset"]["name"] == "jmere" and result["task"]["name"] == "joint multimodal entity-relation extraction"
    )
    assert {metric["type"] for metric in result["metrics"]} == {"f1", "entity_f1"}
    assert {metric["name"] for metric in result["metrics"]} == {"test triple F1 (MJERE_j)", "test entity F1 (MJERE_e)"}
    assert (
        "- test triple F1 (MJERE_j): **0.5000**" in card.text and "- test entity F1 (MJERE_e): **0.7500**" in card.text
    )
    assert 'from_pretrained("someone/shapca-jmere", trust_remote_code=True)' in card.text
    assert '`pipeline("multimodal-relation-extraction", model="someone/shapca-jmere")`' in card.text
    assert "- head: word-pair contrastive" in card.text and "- bridging context: test" in card.text
    assert "- text encoder: `google-bert/bert-base-uncased`" in card.text
    assert "Corpus `jmere` from `data/jmere`." in card.text


@pytest.mark.parametrize("task", ["mre", "mjere"])
def test_card_without_test_scores_has_no_model_index(tmp_path, task):
    model_args, data_args, training_args = arguments("demo_wordpair.json", "--output_dir", str(tmp_path))
    card = build_model_card(model_args, data_args, training_args, task, {"eval_f1": 0.4})
    assert "model-index" not in card.data.to_dict() and "| eval_f1 | 0.4000 |" in card.text


def test_relation_card_reports_relation_scores(tmp_path):
    contexts = write_contexts(tmp_path / "contexts.jsonl", ["a"])
    model_args, data_args, training_args = arguments(
        "mnre.json", "--output_dir", str(tmp_path), "--context_files", str(contexts)
    )
    results = {"test_f1": 0.61, "test_precision": 0.6, "test_recall": 0.62, "test_accuracy": 0.8}
    card = build_model_card(model_args, data_args, training_args, "mre", results)
    (result,) = card.data.to_dict()["model-index"][0]["results"]
    assert result["task"]["name"] == "multimodal relation extraction"
    names = {metric["name"]: metric["value"] for metric in result["metrics"]}
    assert names == {"test relation F1": 0.61, "test relation precision": 0.6, "test relation recall": 0.62}
    assert "- test relation F1: **0.6100**" in card.text
