"""Every command the README shows is checked: run_mie commands parse (configs exist, flags are
known), scripts exist and are valid bash. The demo run itself is run by .ci/run."""

import json
import os
import re
import shlex
import subprocess

import pytest
from helpers import ROOT, load_script

run_mie = load_script("run_mie.py")


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


COMMANDS = readme_commands()


def test_readme_has_the_three_first_commands():
    assert COMMANDS[:3] == [
        'pip install -e ".[dev,sweep,demo,bench]"',
        "python run_mie.py configs/demo.json",
        "python -m pytest -q",
    ]


@pytest.mark.parametrize("command", [c for c in COMMANDS if "run_mie.py" in c])
def test_run_mie_commands_parse(command, monkeypatch):
    monkeypatch.chdir(ROOT)
    words = shlex.split(command)
    arguments = words[words.index("run_mie.py") + 1 :]
    if arguments and arguments[0].endswith(".json"):
        assert (ROOT / arguments[0]).exists(), arguments[0]
    _model_args, data_args, _training_args = run_mie.parse_arguments(arguments)
    # one source of data: a named corpus (the demo by default), files, or a dataset
    assert data_args.corpus in (None, "demo", "twitter2015", "twitter2017", "mnre", "jmere") or (
        data_args.files() or data_args.dataset_name
    )
    if words[0] == "accelerate":
        assert words[1] == "launch"


@pytest.mark.parametrize("command", [c for c in COMMANDS if "bash" in shlex.split(c)])
def test_scripts_exist_and_parse(command):
    words = shlex.split(command)  # `bash script` or `VAR=value bash script`
    script = ROOT / words[words.index("bash") + 1]
    assert script.exists()
    subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.parametrize("command", [c for c in COMMANDS if "scripts/generate_contexts.py" in c])
def test_context_generation_commands_parse(command):
    module = load_script("scripts/generate_contexts.py")
    words = shlex.split(command)
    arguments = module.build_parser().parse_args(words[words.index("scripts/generate_contexts.py") + 1 :])
    assert arguments.out.endswith(".jsonl") and (arguments.images or arguments.corpus)


EXPERIMENT_SCRIPTS = ("scripts/run_grid.py", "scripts/report_mie.py", "scripts/shapley_heatmap.py")


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.split()[1:2] and c.split()[1] in EXPERIMENT_SCRIPTS])
def test_experiment_commands_parse(command, monkeypatch):
    from shapca_training.experiments.grid import check_flags, expand_grid, load_grid, override_flags, run_mie_flags

    monkeypatch.chdir(ROOT)
    words = shlex.split(command)
    script = load_script(words[1])
    arguments = script.parse_args(words[2:])
    if words[1] == "scripts/run_grid.py":
        grid = override_flags(load_grid(arguments.grid), arguments.overrides)
        check_flags(grid, run_mie_flags())
        assert expand_grid(grid)


@pytest.mark.parametrize("command", [c for c in COMMANDS if "demo/app.py" in c])
def test_demo_app_commands_parse(command, monkeypatch):
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)  # what a Space sets
    pytest.importorskip("gradio", reason='the demo app needs Gradio: pip install -e ".[demo]"')
    module = load_script("demo/app.py")
    words = shlex.split(command)
    arguments = module.build_parser().parse_args(words[words.index("demo/app.py") + 1 :])
    assert arguments.model and arguments.host == "127.0.0.1"


def test_every_command_is_covered():
    known = ("pip install", "python -m pytest", "bash ")
    scripts = ("run_mie.py", "generate_contexts.py", "demo/app.py", *EXPERIMENT_SCRIPTS)
    for command in COMMANDS:
        assert (
            any(script in command for script in scripts)
            or command.startswith(known)
            or ("bash" in shlex.split(command))
        ), command


def readme_section(title: str) -> str:
    """The text of one ``###`` section of the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split(f"### {title}\n", 1)[1].split("\n### ", 1)[0]


def test_the_own_data_section_shows_lines_of_the_example_files():
    (shown,) = re.findall(r"```json\n(.*?)```", readme_section("Your own data"), flags=re.DOTALL)
    example_lines = {
        line for path in (ROOT / "examples" / "own_data").glob("*/*.jsonl") for line in path.read_text().splitlines()
    }
    assert shown.splitlines() and set(shown.splitlines()) <= example_lines


@pytest.mark.slow
def test_the_own_data_section_runs_as_written(tmp_path):
    """The section's Python and commands from the repository root, as a user runs them (their runs/
    and exports/ folders put in a temporary folder): in fresh processes, but for the mre, mjere and
    --dataset_name trainings, run in this process with the same arguments to keep the suite short."""
    section = readme_section("Your own data")
    moved = lambda text: text.replace("runs/", f"{tmp_path}/runs/").replace("exports/", f"{tmp_path}/exports/")
    (python,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    commands = [
        line for block in re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL) for line in block.splitlines()
    ]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    run = lambda words: subprocess.run(
        words, check=False, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300
    )
    for command in commands[:4]:  # train on each task's files, then predict
        words = shlex.split(moved(command))
        if "mre" in words or "mjere" in words:
            run_mie.main(words[words.index("run_mie.py") + 1 :])
            continue
        finished = run(words)
        assert finished.returncode == 0, finished.stderr[-3000:]
    finished = run(["python", "-c", moved(python)])
    assert finished.returncode == 0, finished.stderr[-3000:]
    words = shlex.split(moved(commands[4]))
    run_mie.main(words[words.index("run_mie.py") + 1 :])  # --dataset_name, in this process too

    runs = tmp_path / "runs"
    for task, label in (("ner", "B-PRODUCT"), ("mre", "founded_by"), ("mjere", "founded_by")):
        results = json.loads((runs / f"own_{task}" / "all_results.json").read_text())
        assert {"eval_f1", "test_f1"} <= results.keys()
        assert label in json.loads((runs / f"own_{task}" / "config.json").read_text())["id2label"].values()
        card = (runs / f"own_{task}" / "README.md").read_text()
        assert f"trained on **examples/own_data/{task}/train.jsonl**" in card and "twitter" not in card.lower()
    (prediction,) = [json.loads(line) for line in (runs / "own_ner_predictions" / "predictions_predict.jsonl").open()]
    assert prediction["words"] == ["Zoe", "shows", "off", "the", "Orbit", "Watch"] and "entities" in prediction["pred"]
    exported = json.loads((runs / "own_from_export" / "all_results.json").read_text())
    assert "test_f1" in exported
    assert "trained on **" in (runs / "own_from_export" / "README.md").read_text()
    assert "posts we annotated" in (tmp_path / "exports" / "mine" / "README.md").read_text()
