"""The run's model card: huggingface_hub metadata with a model-index, and a text built from the
model's own config, the data the run read and its results."""

import re

import pytest
from helpers import ROOT, load_script, tiny_config, write_contexts
from huggingface_hub import ModelCard

run_mie = load_script("run_mie.py")
from model_cards import build_model_card
from shapca_training.data import context_source

RESULTS = {
    "test_f1": 0.812345, "test_precision": 0.8, "test_recall": 0.825, "test_strict_f1": 0.79, "eval_f1": 0.9,
    "test_loss": 0.25, "test_runtime": 2.5, "test_samples_per_second": 120.0, "total_flos": 8.1e11, "epoch": 8.0,
    "environment": {"device": "cpu", "device_name": "Some CPU", "processes": 1, "torch_num_threads": 2,
                    "versions": {"torch": "2.14.1", "transformers": "5.24.0"}},
}  # fmt: skip
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
    return run_mie.parse_arguments([str(ROOT / "configs" / config), *flags])[2]


def data(corpus="demo", with_context=(56, 16, 16), source="given with the corpus", checkpoint=None, data_dir=None):
    return {
        "corpus": corpus, "data_dir": data_dir,
        "examples": {"train": 56, "validation": 16, "test": 16},
        "with_context": dict(zip(("train", "validation", "test"), with_context)),
        "context_source": source, "max_length": 48, "pos_tagger": "none", "checkpoint": checkpoint,
        "source": "generated", "licence": "Apache-2.0",
    }  # fmt: skip


def test_ner_card_metadata_text_and_snippet(tmp_path):
    output_dir = tmp_path / "runs" / "demo"
    training_args = arguments("demo.json", "--output_dir", str(output_dir))
    card = build_model_card(tiny_config("crf", alpha=0.3), training_args, "ner", RESULTS, data())

    metadata = card.data.to_dict()
    assert metadata["library_name"] == "transformers" and metadata["pipeline_tag"] == "token-classification"
    assert metadata["datasets"] == ["demo"] and "multimodal-named-entity-recognition" in metadata["tags"]
    (index,) = metadata["model-index"]
    assert index["name"] == "demo"  # the run's name, not the local path
    (result,) = index["results"]
    assert result["task"] == {"type": "token-classification", "name": "multimodal named entity recognition"}
    assert result["dataset"] == {"type": "demo", "name": "demo", "split": "test"}
    scores = {metric["type"]: metric["value"] for metric in result["metrics"]}
    assert scores == {"f1": 0.8123, "precision": 0.8, "recall": 0.825, "strict_f1": 0.79}  # test scores only

    text = card.text
    assert "{{" not in text and "{%" not in text  # the template is fully rendered
    assert text.startswith("\n# demo\n") or "\n# demo\n" in text
    scores_table, speed_table = text.split("| score | value |")[1].split("| speed | value |")
    assert "| eval_f1 | 0.9000 |\n| test_f1 | 0.8123 |" in scores_table and "runtime" not in scores_table
    assert "| test_runtime | 2.5 |" in speed_table and "| total_flos | 8.1e+11 |" in speed_table
    assert "f1" not in speed_table
    assert (
        "Computed on Some CPU (cpu, 1 process(es), 2 torch thread(s)) with\ntorch 2.14.1, transformers 5.24.0." in text
    )
    # the model's own settings, not the command line's
    assert (
        "- head: CRF tagger (named entities)\n" in text
        and "- alpha: 0.3" in text
        and "- text encoder: bert, 2 layers of 32" in text
    )
    assert "- bridging context: given with the corpus; examples with one: train 56 of 56, validation 16 of 16" in text
    assert "- scheduler: cosine, warmup" in text and "- encoder_learning_rate: " in text
    assert "`demo`: train 56, validation 16, test 16 examples." in text
    # the snippet runs as it stands on the local checkpoint: it loads the output folder
    assert re.findall(r"```python\n(.*?)```", text, re.DOTALL) == [SNIPPET.replace("REPO", str(output_dir))]
    assert f'`pipeline("multimodal-ner", model="{output_dir}")` works without' in text


def test_card_round_trips_through_a_readme(tmp_path):
    training_args = arguments("demo.json", "--output_dir", str(tmp_path / "run"))
    card = build_model_card(tiny_config("crf"), training_args, "ner", RESULTS, data())
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    assert loaded.data.to_dict() == card.data.to_dict()
    assert loaded.data.eval_results[0].metric_value == 0.8123 and loaded.text == card.text


def test_word_pair_card_names_hub_id_contexts_and_data(tmp_path):
    contexts = write_contexts(tmp_path / "jmere.llava-next.jsonl", ["a", "b"])
    training_args = arguments("jmere.json", "--hub_model_id", "someone/shapca-jmere")
    results = {"test_f1": 0.5, "test_entity_f1": 0.75}
    run_data = data("jmere", (50, 16, 0), context_source([str(contexts)]), data_dir="data/jmere")
    card = build_model_card(tiny_config("word_pair"), training_args, "mjere", results, run_data)
    metadata = card.data.to_dict()
    assert "pipeline_tag" not in metadata  # the relation pipeline's answer has no Hub task
    (index,) = metadata["model-index"]
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
    assert 'extract("Eden met Hudson at the beach", image="photo.jpg"' in card.text
    assert '`pipeline("multimodal-relation-extraction", model="someone/shapca-jmere")`' in card.text
    assert "- head: word-pair tagger (entities and relations) with the contrastive loss" in card.text
    assert (
        "- bridging context: test (jmere.llava-next.jsonl); examples with one: train 50 of 56, validation 16 of 16, "
        "test 0 of 16"
    ) in card.text
    assert "`jmere` from `data/jmere`: " in card.text
    assert "| speed | value |" not in card.text  # no speed figures, no speed table


def test_a_run_without_contexts_says_so(tmp_path):
    training_args = arguments("demo_text_only.json", "--output_dir", str(tmp_path))
    card = build_model_card(
        tiny_config("crf", use_image=False), training_args, "ner", RESULTS, data(with_context=(0, 0, 0))
    )
    assert "- bridging context: none (no example had a context)" in card.text
    assert "- image encoder: none (w/o Image)" in card.text


def test_a_rescoring_run_shows_no_training_settings_and_loads_the_scored_checkpoint(tmp_path):
    training_args = arguments(
        "demo.json",
        "--model_name_or_path",
        "runs/t17",
        "--do_train",
        "false",
        "--output_dir",
        str(tmp_path / "t17_on_t15"),
    )
    card = build_model_card(
        tiny_config("crf"), training_args, "ner", RESULTS, data("twitter2015", checkpoint="runs/t17")
    )
    assert "the checkpoint `runs/t17` scored on **twitter2015**" in card.text
    assert "This run did not train" in card.text and "encoder_learning_rate" not in card.text
    assert 'from_pretrained("runs/t17", trust_remote_code=True)' in card.text
    assert card.data.to_dict()["model-index"][0]["name"] == "t17_on_t15"


@pytest.mark.parametrize("task", ["mre", "mjere"])
def test_card_without_test_scores_has_no_model_index(tmp_path, task):
    training_args = arguments("demo_wordpair.json", "--output_dir", str(tmp_path))
    card = build_model_card(tiny_config("word_pair"), training_args, task, {"eval_f1": 0.4}, data())
    assert "model-index" not in card.data.to_dict() and "| eval_f1 | 0.4000 |" in card.text


def test_relation_card_reports_relation_scores(tmp_path):
    training_args = arguments("mnre.json", "--output_dir", str(tmp_path))
    results = {"test_f1": 0.61, "test_precision": 0.6, "test_recall": 0.62, "test_accuracy": 0.8}
    card = build_model_card(tiny_config("word_pair"), training_args, "mre", results, data("mnre"))
    (result,) = card.data.to_dict()["model-index"][0]["results"]
    assert result["task"]["name"] == "multimodal relation extraction"
    names = {metric["name"]: metric["value"] for metric in result["metrics"]}
    assert names == {"test relation F1": 0.61, "test relation precision": 0.6, "test relation recall": 0.62}
    assert "- test relation F1: **0.6100**" in card.text
