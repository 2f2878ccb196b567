"""run_mie.py end to end on small demo corpora: training, evaluation, outputs, resume, predict, DDP."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import ROOT, load_script
from PIL import Image
from transformers import AutoModelForTokenClassification

run_mie = load_script("run_mie.py")
from modeling_shapca import ShapCAWordPairConfig
from processing.decoding import mre_decision_settings
from processing.input_files import read_examples_file
from shapca_training.experiments.grid import run_mie_flags
from shapca_training.scoring import NONE_WEIGHTS, PRIOR_EXPONENTS

# run_mie configs (the grid files beside them are scripts/run_grid.py's, tested in test_experiments.py).
CONFIGS = sorted(path for path in (ROOT / "configs").glob("*.json") if not path.name.startswith("grid_"))
SMALL = ["--demo_train_size", "56", "--demo_validation_size", "16", "--demo_test_size", "16", "--report_to", "none"]


def small_run(config, tmp_path, *extra):
    out = tmp_path / "out"
    args = [str(ROOT / "configs" / config), "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache"), *SMALL]
    return out, run_mie.main([*args, *extra])


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.stem)
def test_every_config_parses(config, tmp_path):
    model_args, data_args, training_args = run_mie.parse_arguments([str(config), "--output_dir", str(tmp_path)])
    # own_data_tiny.json names no corpus: it goes with the user's files (README, "Your own data")
    assert data_args.corpus in (None, "demo", "twitter2015", "twitter2017", "mnre", "jmere")
    assert training_args.output_dir == str(tmp_path)  # a flag after the file overrides it
    assert training_args.metric_for_best_model == "f1" and training_args.load_best_model_at_end
    if data_args.corpus not in (None, "demo"):  # the paper's recipe
        assert training_args.per_device_train_batch_size == 28 and training_args.encoder_learning_rate == 5e-5
        assert model_args.alpha == 0.2 and model_args.beta == 0.4 and training_args.early_stopping_patience == 7
        assert training_args.lr_scheduler_type == "cosine" and training_args.warmup_steps == 0.05
        assert model_args.text_model_name_or_path == "google-bert/bert-base-uncased"
        assert training_args.learning_rate == (3e-4 if data_args.corpus == "twitter2015" else 1e-4)


def test_text_only_config_drops_image_and_context():
    model_args, data_args, _ = run_mie.parse_arguments([str(ROOT / "configs" / "demo_text_only.json")])
    assert model_args.use_image is False and data_args.use_context is False


def test_demo_end_to_end_outputs_and_reload(tmp_path):
    out, results = small_run("demo.json", tmp_path, "--num_train_epochs", "2")
    for key in ("eval_f1", "eval_strict_f1", "test_f1", "test_precision", "train_runtime", "train_samples_per_second"):
        assert key in results, key
    saved = json.loads((out / "all_results.json").read_text())
    assert saved["test_f1"] == results["test_f1"]
    records = [json.loads(line) for line in (out / "predictions_test.jsonl").read_text().splitlines()]
    assert len(records) == 16 and {"words", "gold", "pred"} <= set(records[0])
    assert (out / "model.safetensors").exists() and (out / "processor_config.json").exists()
    assert not list(out.glob("pytorch_model*.bin"))  # weights in safetensors only

    card = (out / "README.md").read_text()
    assert "model-index:" in card and "multimodal named entity recognition" in card
    assert f"value: {round(results['test_f1'], 4)}" in card and "encoder_learning_rate" in card
    assert "$" not in card  # every placeholder of the template was filled

    model = AutoModelForTokenClassification.from_pretrained(out).eval()
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(out)
    image = Image.new("RGB", (64, 64), (220, 50, 60))
    batch = processor(["so", "proud", "of", "Jordan"], context="a portrait of a man", images=[image])
    tags = model.decode(model(**batch).logits, batch["word_index"] >= 0)
    assert tags.shape == (1, 4) and (tags >= 0).all()


def test_word_pair_demo_end_to_end(tmp_path):
    out, results = small_run("demo_wordpair.json", tmp_path, "--num_train_epochs", "1")
    assert {"test_f1", "test_entity_f1", "eval_f1"} <= set(results)
    record = json.loads((out / "predictions_test.jsonl").read_text().splitlines()[0])
    assert set(record["gold"]) == {"entities", "relations"} and set(record["pred"]) == {"entities", "relations"}

    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps({"words": ["Austin", "and", "Eden", "spotted", "together", "today"]}) + "\n")
    run_mie.main(["--model_name_or_path", str(out), "--do_predict", "--predict_file", str(new),
                  "--output_dir", str(tmp_path / "pred"), "--report_to", "none"])  # fmt: skip
    predicted = json.loads((tmp_path / "pred" / "predictions_predict.jsonl").read_text())
    assert set(predicted["pred"]) == {"entities", "relations"}


def test_resume_from_checkpoint(tmp_path):
    steps = ["--max_steps", "4", "--eval_strategy", "steps", "--save_strategy", "steps", "--eval_steps", "2",
             "--save_steps", "2", "--save_total_limit", "3", "--do_eval", "false"]  # fmt: skip
    out, _ = small_run("demo.json", tmp_path, *steps)
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    resumed_out = tmp_path / "resumed"
    run_mie.main(
        [
            str(ROOT / "configs" / "demo.json"),
            "--output_dir",
            str(resumed_out),
            "--cache_dir",
            str(tmp_path / "cache"),
            *SMALL,
            *steps,
            "--max_steps",
            "6",
            "--resume_from_checkpoint",
            str(out / "checkpoint-4"),
        ]
    )
    resumed = json.loads((resumed_out / "checkpoint-6" / "trainer_state.json").read_text())
    assert resumed["global_step"] == 6
    assert resumed["log_history"][0]["step"] <= 4  # the history of the first run was carried over


def test_do_predict_on_new_examples(tmp_path, ner_checkpoint):
    image = tmp_path / "new.png"
    Image.new("RGB", (64, 64), (40, 170, 70)).save(image)
    new = tmp_path / "new.jsonl"
    new.write_text(
        json.dumps({"words": ["new", "pics", "from", "Austin", ":"], "image": str(image), "context": "a green logo"})
        + "\n"
        + json.dumps({"words": ["hi", "Eden"], "image": None})
        + "\n"
    )
    with pytest.raises(FileNotFoundError, match=rf"--predict_file {tmp_path / 'typo.jsonl'} does not exist"):
        run_mie.main(["--model_name_or_path", str(ner_checkpoint), "--do_predict", "--predict_file",
                      str(tmp_path / "typo.jsonl"), "--output_dir", str(tmp_path / "pred"), "--report_to", "none"])  # fmt: skip
    run_mie.main(["--model_name_or_path", str(ner_checkpoint), "--do_predict", "--predict_file", str(new),
                  "--output_dir", str(tmp_path / "pred"), "--report_to", "none"])  # fmt: skip
    records = [json.loads(line) for line in (tmp_path / "pred" / "predictions_predict.jsonl").read_text().splitlines()]
    assert [r["words"] for r in records] == [["new", "pics", "from", "Austin", ":"], ["hi", "Eden"]]
    for record in records:
        for entity in record["pred"]["entities"]:
            assert 0 <= entity["start"] < entity["end"] <= len(record["words"])

    # From the command line, the log says what a user needs (the library's INFO lines are behind --log_level info).
    command = [sys.executable, str(ROOT / "run_mie.py"), "--model_name_or_path", str(ner_checkpoint), "--do_predict",
               "--predict_file", str(new), "--output_dir", str(tmp_path / "cli"), "--report_to", "none"]  # fmt: skip
    quiet = subprocess.run(
        command, capture_output=True, text=True, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    log = (quiet.stdout + quiet.stderr).splitlines()
    assert len(log) < 15 and "Wrote 2 predictions" in log[-1], log
    assert (tmp_path / "cli" / "predictions_predict.jsonl").read_text() == (
        tmp_path / "pred" / "predictions_predict.jsonl"
    ).read_text()


def test_seeds_give_mean_and_std(tmp_path):
    out, summary = small_run("demo.json", tmp_path, "--num_train_epochs", "1", "--seeds", "1,2")
    assert summary["seeds"] == [1, 2]
    assert {"test_f1_mean", "test_f1_std", "eval_f1_mean"} <= set(summary)
    assert (out / "seed-1" / "all_results.json").exists() and (out / "seed-2" / "model.safetensors").exists()
    assert json.loads((out / "all_results.json").read_text())["seeds"] == [1, 2]
    assert summary["environment"]["torch_num_threads"] == torch.get_num_threads()


def test_the_code_version_names_the_files_changed_since_the_commit(tmp_path):
    from shapca_training.records import code_version

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)  # fmt: skip

    git("init", "-q")
    (tmp_path / "a.py").write_text("".join(f"x{i} = {i}\n" for i in range(20)))
    (tmp_path / "c.py").write_text("y = 1\n")
    git("add", "a.py", "c.py")
    git("commit", "-q", "-m", "a")
    assert code_version(tmp_path)["changed_files"] == [] and not code_version(tmp_path)["modified"]
    (tmp_path / "c.py").write_text("y = 2\n")
    (tmp_path / "new wheel é.whl").write_text("")  # a space and a letter git would quote and escape
    git("mv", "a.py", "b.py")  # a rename: the new name, once
    version = code_version(tmp_path)
    assert version["modified"] and sorted(version["changed_files"]) == ["b.py", "c.py", "new wheel é.whl"]
    assert version["changed_files_total"] == 3
    assert code_version(tmp_path / "a.py") is None  # not a folder git can run in: no version, no error


def test_the_environment_is_recorded_and_the_thread_count_holds_for_the_run_only(tmp_path):
    before = torch.get_num_threads()
    out, results = small_run("demo.json", tmp_path, "--num_train_epochs", "1", "--torch_num_threads", "1")
    environment = json.loads((out / "all_results.json").read_text())["environment"]
    assert environment == results["environment"]
    assert environment["torch_num_threads"] == 1 and environment["device"] == "cpu"
    assert environment["versions"]["torch"] == torch.__version__.split("+")[0]
    head = subprocess.run(["git", "rev-parse", "HEAD"], check=False, cwd=ROOT, capture_output=True, text=True)
    if head.returncode == 0:  # the commit of the code that made the figures (CI runs a clone)
        assert environment["code"]["commit"] == head.stdout.strip()
        assert isinstance(environment["code"]["modified"], bool)
    else:
        assert environment["code"] is None
    assert torch.get_num_threads() == before  # the caller's process goes on with its own setting
    with pytest.raises(ValueError, match="torch_num_threads"):
        run_mie.parse_arguments(["configs/demo.json", "--torch_num_threads", "0"])


@pytest.mark.slow
def test_two_process_launch_stopped_by_sigterm_resumes_to_the_end(tmp_path):
    """Two processes with the global alignment batch; SIGTERM to the launcher after the first
    checkpoint stops both ranks and frees the output folder; the same command with
    --resume_from_checkpoint true finishes the run."""
    out = tmp_path / "ddp"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1")
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", str(ROOT / "run_mie.py"), str(ROOT / "configs" / "demo.json"),
        "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache"), *SMALL, "--num_train_epochs", "3",
        "--alignment_global_batch", "true", "--per_device_train_batch_size", "8", "--disable_tqdm", "true",
    ]  # fmt: skip
    with open(tmp_path / "stopped.log", "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while not list(out.glob("checkpoint-*/trainer_state.json")) and process.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint was written"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) != 0
    assert not (out / "all_results.json").exists(), "the run ended before it could be stopped"
    assert not (out / ".run_mie.lock").exists()  # released on the way out: the next run finds no stale lock
    assert "--resume_from_checkpoint true" in (tmp_path / "stopped.log").read_text()

    resumed = subprocess.run([*command, "--resume_from_checkpoint", "true"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=600, check=False)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "No complete checkpoint" not in resumed.stderr  # it went on from the stopped run's checkpoint
    results = json.loads((out / "all_results.json").read_text())
    assert "test_f1" in results and results["epoch"] == 3


def loss_history(output_dir):
    """The logged losses (with their parts) of the last checkpoint of a run, step by step."""
    states = output_dir.glob("checkpoint-*/trainer_state.json")
    last = max(states, key=lambda path: int(path.parent.name.split("-")[-1]))
    history = json.loads(last.read_text())["log_history"]
    history = [{key: value for key, value in entry.items() if "loss" in key} for entry in history]
    assert any("loss_semantic" in entry for entry in history), "no alignment loss was logged"
    return history


def test_a_complete_checkpoint_has_the_alignment_orders(tmp_path, monkeypatch):
    """The order generator's state is written before ``trainer_state.json``, the file that marks a
    checkpoint complete: a kill between the two cannot leave a complete checkpoint without it."""
    from transformers.trainer_callback import TrainerState

    from shapca_training.trainer import SHAPLEY_ORDERS_FILE

    real_save, seen = TrainerState.save_to_json, []

    def save_to_json(state, json_path):
        seen.append((Path(json_path).parent / SHAPLEY_ORDERS_FILE.format(0)).is_file())
        real_save(state, json_path)

    monkeypatch.setattr(TrainerState, "save_to_json", save_to_json)
    small_run("demo.json", tmp_path, "--max_steps", "2", "--save_strategy", "steps", "--save_steps", "1",
              "--eval_strategy", "no", "--load_best_model_at_end", "false", "--do_eval", "false")  # fmt: skip
    assert seen == [True, True]


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_result(tmp_path):
    """SIGKILL after the first checkpoint, then --resume_from_checkpoint true: the same test F1 and
    predictions as a run that was never stopped; a checkpoint torn by the kill is skipped."""

    def arguments(out):
        return [str(ROOT / "configs" / "demo.json"), "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache"),
                *SMALL, "--num_train_epochs", "4", "--save_total_limit", "10", "--disable_tqdm", "true",
                "--logging_steps", "1"]  # fmt: skip

    reference = run_mie.main(arguments(tmp_path / "reference"))
    out = tmp_path / "killed"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    process = subprocess.Popen([sys.executable, str(ROOT / "run_mie.py"), *arguments(out)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 300
    while not list(out.glob("checkpoint-*/trainer_state.json")) and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "all_results.json").exists(), "the run ended before it could be killed"
    (out / "checkpoint-999").mkdir()  # a save the kill tore: no trainer_state.json
    (out / "checkpoint-999" / "config.json").write_text("{")

    stored = json.loads((run_mie.last_complete_checkpoint(out) / "trainer_state.json").read_text())
    counted = stored["stateful_callbacks"]["TrainingClock"]["args"]["seconds_before"]
    resumed = run_mie.main([*arguments(out), "--resume_from_checkpoint", "true"])
    assert resumed["test_f1"] == reference["test_f1"] and resumed["eval_f1"] == reference["eval_f1"]
    # The training time counts the killed part up to its checkpoint; train_runtime is the last part's.
    assert reference["train_runtime_total"] == reference["train_runtime"]
    assert counted > 0 and resumed["train_runtime_total"] == pytest.approx(resumed["train_runtime"] + counted, abs=1e-3)
    # The losses step by step, the alignment's included: the resumed run drew the same random
    # orders of the Shapley games as the uninterrupted one (they differ if it starts them again).
    assert loss_history(out) == loss_history(tmp_path / "reference")
    for split in ("test", "validation"):
        name = f"predictions_{split}.jsonl"
        assert (out / name).read_text() == (tmp_path / "reference" / name).read_text()


def test_a_resumed_run_goes_on_counting_epochs_without_a_better_dev_f1(tmp_path, caplog):
    """Early stopping's count is restored from the checkpoint: with patience 2, a checkpoint that had
    counted one epoch without a better dev F1 (against a best no F1 reaches) stops after one more
    epoch. Restarting the count at 0 (the Trainer's default) would train two more."""
    patience = ["--early_stopping_patience", "2"]
    out, _ = small_run("demo.json", tmp_path, "--num_train_epochs", "1", *patience)
    [checkpoint] = out.glob("checkpoint-*")
    state_file = checkpoint / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["best_metric"] = 2.0
    state["stateful_callbacks"]["EarlyStoppingCallback"]["attributes"]["early_stopping_patience_counter"] = 1
    del state["stateful_callbacks"]["TrainingClock"]  # as an older version saved it: the time before is unknown
    state_file.write_text(json.dumps(state))
    resumed = tmp_path / "resumed"
    arguments = [str(ROOT / "configs" / "demo.json"), "--output_dir", str(resumed), "--cache_dir",
                 str(tmp_path / "cache"), *SMALL, "--num_train_epochs", "4", "--save_total_limit", "10",
                 "--resume_from_checkpoint", str(checkpoint)]  # fmt: skip
    results = run_mie.main([*arguments, *patience])
    assert "train_runtime" in results and "train_runtime_total" not in results
    last = max(resumed.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))
    assert json.loads((last / "trainer_state.json").read_text())["epoch"] == 2.0
    # Another patience on resume is not used (the checkpoint's goes on): the run says so.
    with caplog.at_level("WARNING"):
        _, _, training_args = run_mie.parse_arguments([*arguments, "--early_stopping_patience", "5"])
        assert run_mie.resume_checkpoint(training_args) == str(checkpoint)
    assert "trained with --early_stopping_patience 2: the resumed run goes on with that patience" in caplog.text


def test_a_run_stopped_after_early_stopping_ended_it_trains_no_further_step(tmp_path):
    """Resumed from the checkpoint at which early stopping ended training (its count had reached the
    patience), the run trains no step (the Trainer clears the stop on resume) and takes its best epoch."""
    out, _ = small_run("demo.json", tmp_path, "--num_train_epochs", "1", "--early_stopping_patience", "1")
    [checkpoint] = out.glob("checkpoint-*")
    state_file = checkpoint / "trainer_state.json"
    state = json.loads(state_file.read_text())
    assert state["epoch"] == 1.0
    state["stateful_callbacks"]["EarlyStoppingCallback"]["attributes"]["early_stopping_patience_counter"] = 1
    state_file.write_text(json.dumps(state))
    resumed = tmp_path / "resumed"
    results = run_mie.main([str(ROOT / "configs" / "demo.json"), "--output_dir", str(resumed), "--cache_dir",
                            str(tmp_path / "cache"), *SMALL, "--num_train_epochs", "3", "--early_stopping_patience",
                            "1", "--resume_from_checkpoint", str(checkpoint)])  # fmt: skip
    assert results["epoch"] == 1.0 and not list(resumed.glob("checkpoint-*"))
    assert results["eval_f1"] == state["best_metric"]


def test_a_run_resumed_with_early_stopping_from_a_checkpoint_trained_without_it(tmp_path):
    """A checkpoint saved with no early stopping (nothing of it in its state) resumes with it: the
    Trainer's first save would otherwise fail on the missing entry (KeyError)."""
    out, _ = small_run("demo.json", tmp_path, "--num_train_epochs", "1", "--load_best_model_at_end", "false")
    [checkpoint] = out.glob("checkpoint-*")
    assert (
        "EarlyStoppingCallback" not in json.loads((checkpoint / "trainer_state.json").read_text())["stateful_callbacks"]
    )
    resumed = tmp_path / "resumed"
    results = run_mie.main([str(ROOT / "configs" / "demo.json"), "--output_dir", str(resumed), "--cache_dir",
                            str(tmp_path / "cache"), *SMALL, "--num_train_epochs", "2",
                            "--resume_from_checkpoint", str(checkpoint)])  # fmt: skip
    assert results["epoch"] == 2.0  # its epoch-2 checkpoint was saved


def test_a_run_stopped_after_training_scores_its_model_without_training_again(tmp_path, caplog):
    """Stopped while testing (all_results.json not yet written): --resume_from_checkpoint true scores
    the model the run saved; the Trainer would otherwise train on from its last checkpoint."""
    out, first = small_run("demo.json", tmp_path, "--num_train_epochs", "2")
    for name in ("all_results.json", "test_results.json", "predictions_test.jsonl"):
        (out / name).unlink()
    weights_written = (out / "model.safetensors").stat().st_mtime_ns
    with caplog.at_level("INFO"):
        _, again = small_run("demo.json", tmp_path, "--num_train_epochs", "2", "--resume_from_checkpoint", "true")
    assert "finished training before it was stopped: scoring the model it saved" in caplog.text
    assert (out / "model.safetensors").stat().st_mtime_ns == weights_written  # not trained, not saved again
    for key in ("test_f1", "eval_f1", "train_runtime", "epoch"):
        assert again[key] == first[key], key
    assert (out / "predictions_test.jsonl").is_file()


def test_resume_true_without_a_checkpoint_starts_over(tmp_path, caplog):
    with caplog.at_level("WARNING"):
        small_run("demo.json", tmp_path, "--max_steps", "1", "--do_eval", "false", "--resume_from_checkpoint", "true")
    assert "No complete checkpoint" in caplog.text


def test_an_ablation_that_changes_nothing_is_refused():
    # Without images the fusion has no attention to the image for the context to bias: the same model.
    with pytest.raises(run_mie.UsageError, match="--fusion_use_context false changes nothing with --use_image false"):
        run_mie.parse_arguments(["configs/demo.json", "--use_image", "false", "--fusion_use_context", "false"])
    model_args, _, _ = run_mie.parse_arguments(["configs/demo.json", "--fusion_use_context", "false"])
    assert model_args.fusion_use_context is False and model_args.use_image


def test_abbreviated_flags_are_refused():
    with pytest.raises(run_mie.UsageError, match="unknown flag --num_train_epoch: did you mean --num_train_epochs"):
        run_mie.parse_arguments(["--num_train_epoch", "1"])
    with pytest.raises(run_mie.UsageError, match="unknown flag --alph: did you mean --alpha"):
        run_mie.parse_arguments([str(ROOT / "configs" / "demo.json"), "--alph", "0.1"])


def test_a_misspelt_flag_is_one_line_naming_the_closest_flags():
    command = [sys.executable, "run_mie.py", "configs/demo.json", "--alpah", "0.3"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert (
        last
        == "run_mie.py: error: unknown flag --alpah: did you mean --alpha? `python run_mie.py --help` lists the flags."
    )


def test_a_bad_line_of_the_users_file_is_one_line_naming_file_and_line(tmp_path):
    """The readers' errors name the file, the line and the fix: the script shows that, not a traceback."""
    good = ROOT / "examples" / "own_data" / "ner" / "train.jsonl"
    lines = good.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "train.jsonl"
    bad.write_text("\n".join([lines[0], lines[1][:-5], *lines[2:]]) + "\n", encoding="utf-8")  # line 2 cut short
    command = [sys.executable, "run_mie.py", "configs/own_data_tiny.json", "--task", "ner", "--train_file", str(bad),
               "--validation_file", str(good), "--output_dir", str(tmp_path / "out"), "--use_image", "false"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"run_mie.py: error: {bad}:2: ")


def test_the_own_data_config_trains_a_last_batch_of_one_image(tmp_path):
    """Nine sentences of given pairs, eight to a batch: the last training batch holds one image.
    At 32 pixels the tiny backbone's last feature map was 1x1, and its batch norm refused a batch
    of one value per channel."""
    image = tmp_path / "plate.png"
    Image.new("RGB", (40, 40), (200, 120, 30)).save(image)
    rows = [{"words": [f"Chef{i}", "cooks", "stew"], "image": image.name, "head": {"start": 0, "end": 1},
             "tail": {"start": 2, "end": 3}, "relation": "cooks" if i % 2 else "None"} for i in range(9)]  # fmt: skip
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    results = run_mie.main([str(ROOT / "configs" / "own_data_tiny.json"), "--task", "mre", "--train_file", str(data),
                            "--validation_file", str(data), "--output_dir", str(tmp_path / "out"),
                            "--cache_dir", str(tmp_path / "cache"), "--num_train_epochs", "1"])  # fmt: skip
    assert results["epoch"] == 1.0 and "eval_f1" in results


def test_a_missing_input_file_is_one_line_naming_it(tmp_path):
    good = ROOT / "examples" / "own_data" / "ner" / "train.jsonl"
    missing = tmp_path / "trian.jsonl"
    command = [sys.executable, "run_mie.py", "configs/own_data_tiny.json", "--task", "ner", "--train_file", str(good),
               "--validation_file", str(missing), "--output_dir", str(tmp_path / "out"), "--use_image", "false"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert (
        done.stderr.strip().splitlines()[-1]
        == f"run_mie.py: error: The validation file {missing} (--validation_file) does not exist."
    )


def test_every_reader_refuses_a_missing_file_as_an_input_error(tmp_path):
    """Each reader's own check, and the one every text reader goes through, raise the error the
    scripts show as one line; an error of our own code (a plain FileNotFoundError) is not one."""
    from processing.context_store import ContextStore
    from processing.corpora import load_files
    from processing.input_files import read_examples_file
    from shapca_training.errors import is_input_error

    missing = tmp_path / "nowhere.jsonl"
    calls = [lambda: read_examples_file(missing), lambda: ContextStore([missing]),
             lambda: load_files({"train": missing}), lambda: load_files({"train": __file__}, image_dir=missing)]  # fmt: skip
    for call in calls:
        with pytest.raises(FileNotFoundError, match="nowhere.jsonl") as refused:
            call()
        assert is_input_error(refused.value)
    assert not is_input_error(FileNotFoundError(2, "No such file or directory", str(missing)))


@pytest.mark.parametrize(
    "content, message",
    [('{"corpus": "demo",\n "alpha": 0.2,,}', r"bad\.json:2:15: not valid JSON"),
     ('{"corpus": "demo", "alpah": 0.2}', r"bad\.json: unknown flag --alpah: did you mean --alpha"),
     ('["--alpha", "0.2"]', r"bad\.json: a config file holds one JSON object")],
)  # fmt: skip
def test_a_bad_config_file_is_named_with_its_line(tmp_path, content, message):
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(run_mie.UsageError, match=message):
        run_mie.parse_arguments([str(tmp_path / "bad.json")])


@pytest.mark.parametrize("value", ["4", "0"])
def test_a_max_length_too_small_for_a_word_and_a_context_is_refused(value):
    with pytest.raises(run_mie.UsageError, match=f"--max_length {value} cannot hold a word and its context"):
        run_mie.parse_arguments([str(ROOT / "configs" / "demo.json"), "--max_length", value])
    run_mie.parse_arguments([str(ROOT / "configs" / "demo.json"), "--max_length", "5"])  # the smallest that reads


def test_a_max_length_beyond_the_encoders_positions_is_refused_before_training(tmp_path):
    # Before: it trained (the demo posts are short) and wrote a checkpoint that failed on any post
    # over 128 tokens, deep in the encoder.
    with pytest.raises(ValueError, match=r"--max_length 400 is more tokens than the text encoder has positions \(128"):
        run_mie.main([str(ROOT / "configs" / "demo.json"), "--max_length", "400", "--output_dir", str(tmp_path / "out"),
                      "--demo_train_size", "8", "--demo_validation_size", "8", "--demo_test_size", "8"])  # fmt: skip
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_a_missing_checkpoint_folder_is_named(tmp_path):
    missing = tmp_path / "no_such_run"
    with pytest.raises(run_mie.UsageError, match="no_such_run: no such folder"):
        run_mie.parse_arguments(["--model_name_or_path", str(missing), "--do_eval", "true"])


@pytest.mark.parametrize("kind, flavour", [("word_pair", "ner"), ("crf", "word_pair")])
def test_scoring_a_checkpoint_on_a_corpus_of_another_task_says_the_tasks_differ(tmp_path, kind, flavour):
    from helpers import tiny_config

    tiny_config(kind).save_pretrained(tmp_path / "checkpoint")
    flags = ["--model_name_or_path", str(tmp_path / "checkpoint"), "--do_train", "false", "--do_eval", "true",
             "--corpus", "demo", "--demo_flavour", flavour, "--output_dir", str(tmp_path / "out")]  # fmt: skip
    with pytest.raises(run_mie.UsageError, match="the tasks differ"):
        run_mie.main(flags)


@pytest.mark.parametrize(
    "content, message",
    [(b'{"words": ["a"]}\n\xff\xfe{"words": ["b"]}\n', r"new\.jsonl:2: byte 0xff at byte 1 of the line is not UTF-8"),
     (b'{"words": ["a"]}\n{"words": ["b"\n', r"new\.jsonl:2: not a JSON object"),
     (b'{"words": "a b"}\n', r"new\.jsonl:1: expected an object with a 'words' list"),
     (b'{"words": ["a"]}\n{"words": ["so", 5, null]}\n', r"new\.jsonl:2: word 1 is a int \(5\); expected a string"),
     (b'{"words": ["a"], "context": 42}\n', r"new\.jsonl:1: 'context' is a int \(42\); expected a string"),
     (b'{"words": ["a"], "context": "x \\ud800"}\n', r"new\.jsonl:1: 'context' holds a lone surrogate"),
     (b'{"words": ["a"], "image": 7}\n', r"new\.jsonl:1: 'image' is a int; expected a path")],
)  # fmt: skip
def test_predict_file_errors_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "new.jsonl"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_examples_file(str(path))


def test_predict_file_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "new.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"words": ["so", "proud"], "image": "a/b.png"}\n')
    # the image path is relative to the file's folder, as in a training file
    assert read_examples_file(str(path)) == [
        {"words": ["so", "proud"], "image": str(path.parent / "a/b.png"), "context": None}
    ]


def test_cross_corpus_evaluation_with_a_label_map(tmp_path, ner_checkpoint):
    """A demo checkpoint (PER, LOC, ORG) scored on a Twitter-2017-format corpus (also MISC)."""
    from helpers import write_twitter

    data = tmp_path / "twitter"
    write_twitter(data)
    evaluate = ["--model_name_or_path", str(ner_checkpoint), "--corpus", "twitter2017", "--data_dir", str(data), "--do_eval",
                "--missing_context", "empty", "--report_to", "none",
                "--cache_dir", str(tmp_path / "cache")]  # fmt: skip
    with pytest.raises(ValueError, match=r"\['B-MISC', 'I-MISC'\] have no counterpart.*--label_map"):
        run_mie.main([*evaluate, "--output_dir", str(tmp_path / "unmapped")])
    results = run_mie.main([*evaluate, "--label_map", "MISC=ORG", "--output_dir", str(tmp_path / "mapped")])
    assert 0.0 <= results["test_f1"] <= 1.0 and "train_runtime" not in results
    record = json.loads((tmp_path / "mapped" / "predictions_test.jsonl").read_text().splitlines()[0])
    assert record["gold"] == [{"start": 0, "end": 2, "type": "ORG"}]  # "Super Bowl", MISC read as ORG


# -- results on disk are whole and belong to one run ----------------------------------------------


def test_a_results_file_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    from shapca_training.experiments.grid import is_finished
    from shapca_training.records import read_results, write_text_atomic

    path = tmp_path / "all_results.json"
    write_text_atomic(path, json.dumps({"test_f1": 0.5}))
    monkeypatch.setattr(os, "replace", lambda *args: (_ for _ in ()).throw(OSError("killed while renaming")))
    with pytest.raises(OSError):
        write_text_atomic(path, json.dumps({"test_f1": 0.9}))
    assert read_results(path) == {"test_f1": 0.5}  # the old file, whole
    monkeypatch.undo()
    path.write_text('{"test_f1": 0.')  # what a plain write leaves when killed
    assert read_results(path) is None and not is_finished(tmp_path)
    path.write_text('{"test_f1": 0.5}')
    assert is_finished(tmp_path)


def test_a_second_run_on_a_folder_in_use_is_refused(tmp_path, caplog):
    out = tmp_path / "out"
    out.mkdir()
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        (out / ".run_mie.lock").write_text(f"{owner.pid} {socket.gethostname()}\n")
        with pytest.raises(
            RuntimeError, match=rf"{out} is in use by another run_mie.py \(process and host: {owner.pid} "
        ):
            small_run("demo.json", tmp_path, "--max_steps", "1", "--do_eval", "false")
    finally:
        owner.kill()
        owner.wait()
    # The owner is gone: its lock is stale, taken over with a warning, and removed at the end.
    with caplog.at_level("WARNING"):
        small_run("demo.json", tmp_path, "--max_steps", "1", "--do_eval", "false")
    assert "left by a run that is gone" in caplog.text and not (out / ".run_mie.lock").exists()


def test_a_lock_released_between_two_looks_is_taken(tmp_path, monkeypatch):
    """The lock's run ends after our exclusive create failed and before we read its owner: the
    folder is free, so the run takes it instead of failing on a file that is gone."""
    from shapca_training.records import OutputDirLock

    real_open, refusals = os.open, []

    def open_once_taken(path, flags, *mode):
        if flags & os.O_EXCL and not refusals:
            refusals.append(path)
            raise FileExistsError(path)  # the other run held it a moment ago, and has now removed it
        return real_open(path, flags, *mode)

    monkeypatch.setattr(os, "open", open_once_taken)
    with OutputDirLock(tmp_path) as lock:
        assert refusals and (tmp_path / OutputDirLock.FILE).read_text().strip() == lock.owner
    assert not (tmp_path / OutputDirLock.FILE).exists()


def test_a_lock_left_without_an_owner_is_taken_and_an_unreadable_one_is_an_error(tmp_path, caplog):
    """A run killed between making the lock file and writing its owner leaves it empty: after a
    moment's wait it is taken over. A lock path that cannot be read is an error, not a retry."""
    from shapca_training.records import OutputDirLock

    (tmp_path / OutputDirLock.FILE).write_text("")
    with caplog.at_level("WARNING"), OutputDirLock(tmp_path) as lock:
        assert (tmp_path / OutputDirLock.FILE).read_text().strip() == lock.owner
    assert "left by a run that is gone (no owner)" in caplog.text
    (tmp_path / OutputDirLock.FILE).mkdir()
    with pytest.raises(IsADirectoryError):
        OutputDirLock(tmp_path).__enter__()


def test_output_dir_that_is_a_file_is_refused_before_reading_data(tmp_path):
    target = tmp_path / "out"
    target.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        run_mie.main([str(ROOT / "configs" / "demo.json"), "--output_dir", str(target), "--corpus", "no_such_corpus"])


def test_resuming_a_finished_run_changes_nothing_unless_asked(tmp_path, caplog):
    out, results = small_run("demo.json", tmp_path, "--num_train_epochs", "1")
    saved = (out / "all_results.json").read_text()
    card_time, results_time = (out / "README.md").stat().st_mtime_ns, (out / "all_results.json").stat().st_mtime_ns
    assert card_time <= results_time  # the results file is the last one written
    with caplog.at_level("WARNING"):
        _, again = small_run("demo.json", tmp_path, "--num_train_epochs", "1", "--resume_from_checkpoint", "true")
    assert again == results and "finished run" in caplog.text and "--overwrite_output_dir" in caplog.text
    assert (out / "all_results.json").read_text() == saved and (
        out / "all_results.json"
    ).stat().st_mtime_ns == results_time
    _, retrained = small_run("demo.json", tmp_path, "--num_train_epochs", "1", "--resume_from_checkpoint", "true",
                             "--overwrite_output_dir", "true")  # fmt: skip
    assert (out / "all_results.json").stat().st_mtime_ns > results_time and "train_runtime" in retrained


@pytest.mark.parametrize("flag", ["--alpha", "--beta", "--tau", "--wordpair_lambda"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_settings_are_refused(flag, value):
    with pytest.raises(ValueError, match=rf"{flag[2:]} must be a finite number.*got {value}"):
        run_mie.parse_arguments([str(ROOT / "configs" / "demo.json"), flag, value])


def test_a_loaded_config_with_a_non_finite_setting_is_refused(tmp_path):
    from modeling_shapca import ShapCAConfig

    ShapCAConfig(fusion_num_heads=4, text_config={"hidden_size": 64}).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(dict(config, head_dropout=float("nan"))))
    with pytest.raises(Exception, match="head_dropout must be a finite number"):
        ShapCAConfig.from_pretrained(tmp_path)


def test_a_loss_that_turns_nan_stops_training_with_its_step(tmp_path, monkeypatch):
    from modeling_shapca import ShapCAForTokenClassification

    forward = ShapCAForTokenClassification.forward
    calls = []

    def nan_from_the_second_step(self, *args, **kwargs):
        outputs = forward(self, *args, **kwargs)
        calls.append(1)
        if len(calls) >= 2 and outputs.loss is not None:
            outputs.loss = outputs.loss * float("nan")
        return outputs

    monkeypatch.setattr(ShapCAForTokenClassification, "forward", nan_from_the_second_step)
    with pytest.raises(FloatingPointError, match=r"training loss is nan at step 2 \(loss_main .*loss_semantic"):
        small_run("demo.json", tmp_path, "--num_train_epochs", "1", "--do_eval", "false")


def test_mnre_run_chooses_the_none_weight_on_dev_and_keeps_it_in_the_checkpoint(tmp_path):
    from helpers import write_contexts, write_mnre

    data = write_mnre(tmp_path / "mnre")
    contexts = write_contexts(tmp_path / "contexts.jsonl", ["a1.jpg", "b1.jpg", "c1.jpg"])
    tiny_text = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
                 "max_position_embeddings": 64}  # fmt: skip
    out = tmp_path / "out"
    flags = ["--corpus", "mnre", "--data_dir", str(data), "--context_files", str(contexts), "--use_image", "false",
             "--pos_tagger", "none", "--text_config", json.dumps(tiny_text), "--max_length", "64", "--head_hidden_size", "16",
             "--feature_embedding_size", "8", "--fusion_num_heads", "2", "--num_train_epochs", "1",
             "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache"), "--report_to", "none",
             "--do_train", "true", "--do_eval", "true", "--select_mre_none_weight", "true",
             "--select_mre_prior_exponent", "true"]  # fmt: skip
    results = run_mie.main(flags)
    weight, exponent = results["mre_none_weight"], results["mre_prior_exponent"]
    assert weight in NONE_WEIGHTS and exponent in PRIOR_EXPONENTS
    assert {"eval_f1_none_weight_1", "test_f1_none_weight_1", "test_f1"} <= results.keys()
    config = json.loads((out / "config.json").read_text())
    assert (config["mre_none_weight"], config["mre_prior_exponent"]) == (weight, exponent)
    # The priors of the decision: the training file's pairs, None included (it is not weighed).
    assert config["mre_relation_counts"] == {"/per/org/member_of": 1, "None": 1}
    weights = mre_decision_settings(ShapCAWordPairConfig.from_pretrained(out))["relation_weights"]
    assert exponent == 0.0 or weights["/per/org/member_of"] < weights["/per/per/couple"]  # seen once, never
    # Each record gives every answer's share: the prediction is their argmax with None weighted
    # (up to the 4 decimals written: this untrained model finds the answers nearly equal).
    records = [json.loads(line) for line in (out / "predictions_test.jsonl").read_text().splitlines()]
    for record in records:
        shares = {answer: share * (weight if answer == "None" else (weights or {}).get(answer, 1.0))
                  for answer, share in record["label_scores"].items()}  # fmt: skip
        assert shares[record["pred"]] >= max(shares.values()) - 1e-4 * max((weights or {1: 1}).values())
        assert record["score"] == pytest.approx(record["label_scores"][record["pred"]], abs=1e-4)
        assert {"None", "/per/per/couple", "/per/org/member_of"} <= set(record["label_scores"])

    # The trained model scored under another rule, without training (README: decision flags
    # replace a checkpoint's): the choice is made again on dev, the cells are the ones given.
    rescored_dir = tmp_path / "rescored"
    rescored = run_mie.main([*flags, "--model_name_or_path", str(out), "--do_train", "false",
                             "--mre_decision_cells", "first_words", "--output_dir", str(rescored_dir)])  # fmt: skip
    assert {
        "test_f1",
        "test_f1_none_weight_1",
        "mre_prior_exponent",
    } <= rescored.keys() and "train_runtime" not in rescored
    assert (rescored_dir / "predictions_test.jsonl").is_file() and not (rescored_dir / "model.safetensors").exists()

    # Only a given-pair corpus has a None weight to choose.
    with pytest.raises(run_mie.UsageError, match="select_mre_none_weight .* needs data of the mre task"):
        small_run("demo.json", tmp_path, "--select_mre_none_weight", "true")
    with pytest.raises(run_mie.UsageError, match="select_mre_prior_exponent .* needs data of the mre task"):
        small_run("demo.json", tmp_path, "--select_mre_prior_exponent", "true")


def test_every_config_setting_is_a_flag_with_its_help():
    from modeling_shapca import ShapCAConfig, ShapCAWordPairConfig
    from shapca_training.arguments import SET_BY_THE_SCRIPT, ModelArguments

    own = [*ShapCAConfig.__annotations__, *ShapCAWordPairConfig.__annotations__]
    fields = {item.name for item in dataclasses.fields(ShapCAWordPairConfig)}  # not the class variables
    settings = [name for name in own if name in fields and name not in SET_BY_THE_SCRIPT]
    assert {"alpha", "beta", "tau", "alignment_loss", "fusion_dropout", "head_dropout", "mre_none_weight"} <= set(
        settings
    )
    helps = {item.name: item.metadata.get("help", "") for item in dataclasses.fields(ModelArguments)}
    for name in settings:
        assert name in run_mie_flags() and len(helps[name]) > 20, name  # the config docstring's description
    assert "context-text alignment" in helps["alpha"] and "Temperature" in helps["tau"]
    model_args, _, _ = run_mie.parse_arguments(
        ["--fusion_dropout", "0.3", "--head_dropout", "0.2", "--alignment_loss", "infonce"]
    )
    ner = model_args.config_settings(ShapCAConfig)
    assert ner["fusion_dropout"] == 0.3 and ner["head_dropout"] == 0.2 and ner["alignment_loss"] == "infonce"
    assert "mre_none_weight" not in ner and model_args.config_settings(ShapCAWordPairConfig)["mre_none_weight"] == 1.0
    with pytest.raises(SystemExit):  # a Literal setting takes only its values
        run_mie.parse_arguments(["--alignment_loss", "cosine"])


def test_the_command_line_answers_before_the_corpus_and_trainer_code_is_loaded():
    # One fresh process: what importing run_mie.py loads, then its --help (main exits after it).
    heavy = ("datasets", "processing", "shapca_training.trainer", "shapca_training.data", "shapca_training.scoring",
             "shapca_metrics")  # fmt: skip
    probe = f"import sys, run_mie; print(sorted(m for m in {heavy!r} if m in sys.modules)); run_mie.main(['--help'])"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded, help_text = done.stdout.split("\n", 1)
    assert loaded == "[]"
    assert help_text.startswith("usage: run_mie.py [CONFIG.json] [--FLAG VALUE ...]")
    assert "A config file (JSON" in help_text
