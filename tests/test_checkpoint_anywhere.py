"""A checkpoint written by run_mie.py loads and predicts in a fresh process, with the library and
without it (an import blocker refuses the project's packages), and what the README and the model
card show runs as written."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import ROOT
from PIL import Image

PROJECT_MODULES = (
    "modeling_shapca",
    "processing",
    "run_mie",
    "shapca_training",
    "shapca_metrics",
    "model_cards",
)

# Prepended to a script to run it as a user without the library: the project's packages cannot be imported.
BLOCKER = textwrap.dedent(
    f"""
    import sys
    class _Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {PROJECT_MODULES!r}:
                raise ModuleNotFoundError(f"{{name}} is blocked: this process plays a user without the library")
    sys.meta_path.insert(0, _Blocker())
    """
)

# The same calls with and without the library; prints what they predict.
CHECK = textwrap.dedent(
    """
    import json, sys
    import torch
    from PIL import Image
    from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification, AutoProcessor, pipeline

    remote = sys.argv[1] == "remote"
    if not remote:
        import processing  # registers the Auto classes and the pipelines
    options = {"trust_remote_code": True} if remote else {}
    report = {}
    for checkpoint in sys.argv[2:]:
        config = AutoConfig.from_pretrained(checkpoint, **options)
        base = AutoModel.from_pretrained(checkpoint, **options).eval()
        model = AutoModelForTokenClassification.from_pretrained(checkpoint, **options).eval()
        processor = AutoProcessor.from_pretrained(checkpoint, **options)
        image = Image.open("photo.jpg")
        inputs = processor(["so", "proud", "of", "Jordan"], context="a portrait of a man", images=[image])
        with torch.no_grad():
            structures = processor.post_process(model, model(**inputs), inputs)
            features = base(**inputs).word_features
        task = "multimodal-ner" if config.head == "crf" else "multimodal-relation-extraction"
        extract = pipeline(model=checkpoint, trust_remote_code=True) if remote else pipeline(task, model=checkpoint)
        asks_for_remote_code = None
        if not remote:  # without a task, transformers loads the checkpoint's own pipeline: remote code, as the README says
            try:
                pipeline(model=checkpoint)
            except ValueError as error:
                asks_for_remote_code = "trust_remote_code" in str(error)
        report[checkpoint] = {
            "asks_for_remote_code": asks_for_remote_code,
            "classes": [type(config).__name__, type(base).__name__, type(model).__name__, type(processor).__name__,
                        type(extract).__name__],
            "structures": structures,
            "features": round(float(features.abs().sum()), 3),
            "pipeline": extract("so proud of Jordan", image="photo.jpg", context="a portrait of a man"),
            "project_imported": sorted(m for m in sys.modules if m.split(".")[0] in ("modeling_shapca", "processing")),
        }
    print("REPORT " + json.dumps(report))
    """
)


def run_python(code: str, cwd: Path, with_library: bool, *args: str, stderr: bool = False) -> str:
    """Run ``code`` in a fresh Python process in ``cwd``, as a user with or without the library;
    its standard output (and error, if asked)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_MODULES_CACHE=str(cwd / "modules"))
    if not with_library:
        code = BLOCKER + code
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout + (done.stderr if stderr else "")


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, ner_checkpoint, pair_checkpoint):
    """The session's CRF and word-pair demo checkpoints, and a working folder with a photo."""
    made = {"ner": ner_checkpoint, "pair": pair_checkpoint}
    work = tmp_path_factory.mktemp("anywhere") / "work"
    (work / "runs").mkdir(parents=True)
    os.symlink(made["ner"], work / "runs" / "demo")  # the README's snippets name runs/demo
    os.symlink(made["pair"], work / "runs" / "demo_wordpair")
    Image.new("RGB", (64, 64), (220, 50, 60)).save(work / "photo.jpg")
    (work / "data" / "mnre_images").mkdir(parents=True)
    Image.new("RGB", (64, 64), (40, 170, 70)).save(work / "data" / "mnre_images" / "x.jpg")
    (work / "data" / "contexts").mkdir()
    (work / "data" / "contexts" / "mnre.llava-next.jsonl").write_text(
        json.dumps({"image_id": "x.jpg", "context": "two people at a wedding", "generator": "t", "source": "t"}) + "\n"
    )
    return made, work


def test_checkpoint_carries_all_its_code(checkpoints):
    made, _ = checkpoints
    for checkpoint in made.values():
        files = {path.name for path in checkpoint.iterdir()}
        assert {"modeling_shapca.py", "configuration_shapca.py", "processing_shapca.py", "pipeline_shapca.py",
                "decoding.py", "pos.py", "images.py", "context_store.py", "context_generation.py", "context_writer.py",
                "tasks.py"} <= files  # fmt: skip
        processor_config = json.loads((checkpoint / "processor_config.json").read_text())
        assert processor_config["auto_map"] == {"AutoProcessor": "processing_shapca.ShapCAProcessor"}
        assert processor_config["pos_tagger"] == "none"  # what configs/demo*.json train with
        config = json.loads((checkpoint / "config.json").read_text())
        assert config["custom_pipelines"]["multimodal-information-extraction"]["impl"] == (
            "pipeline_shapca.MultimodalExtractionPipeline"
        )


def test_same_predictions_with_and_without_the_library(checkpoints):
    made, work = checkpoints
    paths = [str(made["ner"]), str(made["pair"])]
    reports = {}
    for mode, with_library in (("remote", False), ("library", True)):
        output = run_python(CHECK, work, with_library, mode, *paths, stderr=True)
        # transformers warns that "torchvision backend is not available" when an image processor has
        # no torchvision variant (the timm wrapper's), even with torchvision installed: not on our loads.
        assert "torchvision backend is not available" not in output
        line = next(line for line in output.splitlines() if line.startswith("REPORT "))
        reports[mode] = json.loads(line.removeprefix("REPORT "))
    # Only the `remote` process was told to trust remote code; the library process passes nothing.
    remote, library = reports["remote"], reports["library"]
    ner, pair = paths
    assert remote[ner]["classes"][:3] == ["ShapCAConfig", "ShapCAModel", "ShapCAForTokenClassification"]
    assert remote[pair]["classes"][:3] == ["ShapCAWordPairConfig", "ShapCAWordPairModel", "ShapCAForWordPairTagging"]
    for checkpoint in paths:
        assert remote[checkpoint]["project_imported"] == []  # everything came from the checkpoint
        assert library[checkpoint]["project_imported"]
        assert remote[checkpoint]["classes"] == library[checkpoint]["classes"]
        assert library[checkpoint]["asks_for_remote_code"] is True
        for key in ("structures", "features", "pipeline"):
            assert remote[checkpoint][key] == library[checkpoint][key], key
    assert isinstance(remote[ner]["pipeline"], list) and set(remote[pair]["pipeline"]) == {"entities", "relations"}
    assert "entities" in remote[ner]["structures"][0] and "relations" in remote[pair]["structures"][0]


def readme_snippet(title: str) -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split(f"### {title}", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return python_blocks(section)[0]


@pytest.mark.parametrize("with_library", [True, False], ids=["library", "no-library"])
def test_readme_loading_snippet_runs_as_written(checkpoints, with_library):
    _, work = checkpoints
    output = run_python(readme_snippet("Loading a result"), work, with_library)
    assert "'entities'" in output


def test_readme_pipeline_snippet_runs_as_written(checkpoints):
    """The snippet, verbatim, in a folder holding the files it names; it fails the test if any call raises."""
    _, work = checkpoints
    run_python(readme_snippet("Extracting from raw text and an image"), work, with_library=True)


def test_model_card_snippets_run_as_written(checkpoints):
    made, work = checkpoints
    snippets = []
    for checkpoint in made.values():
        blocks = python_blocks((checkpoint / "README.md").read_text())
        assert blocks and str(checkpoint) in blocks[0]
        snippets.append("\n".join([*blocks, "print('CARD DONE')"]))
    output = run_python("\n".join(snippets), work, with_library=False)  # both cards' snippets, one process
    assert output.count("CARD DONE") == 2 and output.count("'entities'") >= 2
