"""The experiment commands: grid files, a 2x2 grid of the tiny demo on a local Ray (resumed), the
report with its two-level bootstrap (on the demo grid and on hand-made runs whose answer is
known), its figures, and the Shapley heatmap of a checkpoint of the grid."""

import json
import math
import os
import random
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, load_script

from modeling_shapca.shapley import MAX_EXACT_PLAYERS
from shapca_metrics import load_metric
from shapca_training.errors import UsageError
from shapca_training.experiments.grid import (
    RESULTS_FILE,
    RUN_FILE,
    VARIANT_AXIS,
    check_flags,
    check_nothing_is_lost,
    expand_grid,
    hold_output_dir,
    last_error_line,
    load_grid,
    override_flags,
    parse_overrides,
    prepare_run_folder,
    run_mie_flags,
    select_runs,
    unfinished_run_plan,
    value_label,
)
from shapca_training.experiments.on_ray import RUN_PROCESS_LINE
from shapca_training.experiments.report import (
    PREDICTIONS_FILE,
    AxisTable,
    Row,
    Run,
    build_tables,
    load_runs,
    markdown_table,
    parse_reference,
    verdict_sentences,
)
from shapca_training.experiments.stats import (
    ONE_SEED_VERDICT,
    count_matrix,
    f1_from_counts,
    hierarchical_bootstrap,
    sentence_counts,
)
from shapca_training.records import OutputDirLock

run_mie = load_script("run_mie.py")
run_grid = load_script("scripts/run_grid.py")
report_mie = load_script("scripts/report_mie.py")
shapley_heatmap = load_script("scripts/shapley_heatmap.py")

GRID_FILES = sorted((ROOT / "configs").glob("grid_*.json"))
TINY = ["--demo_train_size", "56", "--demo_validation_size", "16", "--demo_test_size", "16", "--num_train_epochs", "1"]
RUNS = ["alpha=0,seed=1", "alpha=0,seed=2", "alpha=0.2,seed=1", "alpha=0.2,seed=2"]


@pytest.fixture(scope="module")
def valid_flags():
    return run_mie_flags()


def write_grid(path: Path, **grid) -> Path:
    path.write_text(json.dumps({"base_config": str(ROOT / "configs" / "demo.json"), **grid}))
    return path


# -- grid files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("grid_file", GRID_FILES, ids=lambda path: path.stem)
def test_every_grid_file_expands_to_run_mie_flags(grid_file, valid_flags, monkeypatch):
    monkeypatch.chdir(ROOT)  # base configs are relative to the repository
    grid = load_grid(grid_file)
    check_flags(grid, valid_flags)
    runs = expand_grid(grid)
    assert len({run.name for run in runs}) == len(runs) > 1
    for run in runs:
        flags = {axis: value for axis, value in run.values.items() if axis != VARIANT_AXIS}
        assert flags.items() <= run.config.items() and "output_dir" not in run.values
        assert grid["variants"].get(run.values.get(VARIANT_AXIS), {}).items() <= run.config.items()
    if grid_file.stem == "grid_alpha_beta":  # Figure 3: two one-at-a-time sweeps through alpha=0.2, beta=0.4
        assert len(runs) == 11 * 3 and sum(run.name.startswith("alpha=0.2,beta=0.4,") for run in runs) == 3
    if grid_file.stem == "grid_jmere_ablations":  # Table 2: Shap-CA over three seeds, each part out over two
        assert len(runs) == 3 + 4 * 2 and runs[0].name == "variant=shapca,seed=1"
        text_only = next(run for run in runs if run.name == "variant=text_only,seed=2")
        assert text_only.config["use_context"] is False and text_only.config["seed"] == 2


def test_variants_name_sets_of_flags(tmp_path, valid_flags):
    variants = {"full": {}, "no_alignment": {"alpha": 0, "beta": 0}, "infonce": {"alignment_loss": "infonce"}}
    axes = [{"variant": ["full"], "seed": [1, 2]}, {"variant": ["no_alignment", "infonce"], "seed": [1]}]
    grid = load_grid(write_grid(tmp_path / "g.json", flags={"alpha": 0.3}, variants=variants, axes=axes))
    check_flags(grid, valid_flags)
    runs = {run.name: run.config for run in expand_grid(grid)}
    assert list(runs) == ["variant=full,seed=1", "variant=full,seed=2", "variant=no_alignment,seed=1",
                          "variant=infonce,seed=1"]  # fmt: skip
    assert runs["variant=full,seed=2"]["alpha"] == 0.3 and runs["variant=full,seed=2"]["seed"] == 2
    assert (runs["variant=no_alignment,seed=1"]["alpha"], runs["variant=no_alignment,seed=1"]["beta"]) == (0, 0)
    assert (
        runs["variant=infonce,seed=1"]["alignment_loss"] == "infonce" and runs["variant=infonce,seed=1"]["alpha"] == 0.3
    )
    assert all("variant" not in config for config in runs.values())  # not a run_mie.py flag
    assert [run.name for run in select_runs(expand_grid(grid), "variant=infonce")] == ["variant=infonce,seed=1"]

    def refused(match, **grid_fields):
        with pytest.raises(ValueError, match=match):
            check_flags(load_grid(write_grid(tmp_path / "bad.json", **grid_fields)), valid_flags)

    refused(r"names \['nope'\]; the variants are \['full'", variants={"full": {}}, axes={"variant": ["nope"]})
    refused("give both or neither", variants={"full": {}}, axes={"seed": [1]})
    refused("give both or neither", axes={"variant": ["full"]})
    refused(
        r"\['alpha'\] set by a variant and an axis", variants={"a": {"alpha": 0}}, axes={"variant": ["a"], "alpha": [1]}
    )
    refused(r"\['alpah'\] is not a run_mie.py flag", variants={"a": {"alpah": 0}}, axes={"variant": ["a"]})
    with pytest.raises(ValueError, match=r"\['beta'\] varies in"):
        override_flags(grid, {"beta": "1"})


def test_grid_errors_say_what_to_fix(tmp_path, valid_flags):
    grid = load_grid(write_grid(tmp_path / "g.json", axes={"alpah": [0, 0.2]}))
    with pytest.raises(ValueError, match=r"\['alpah'\] is not a run_mie.py flag. Valid flags: .*alpha"):
        check_flags(grid, valid_flags)
    with pytest.raises(ValueError, match="make `seed` an axis"):
        check_flags(load_grid(write_grid(tmp_path / "g.json", axes={"seeds": ["1,2"]})), valid_flags)
    with pytest.raises(ValueError, match="same axes"):
        load_grid(write_grid(tmp_path / "g.json", axes=[{"alpha": [0]}, {"beta": [0]}]))
    with pytest.raises(ValueError, match="varies in"):
        override_flags(load_grid(write_grid(tmp_path / "g.json", axes={"alpha": [0]})), {"alpha": "1"})
    clash = write_grid(tmp_path / "g.json", axes={"context_files": [["a/c.jsonl"], ["b/c.jsonl"]]})
    with pytest.raises(ValueError, match="both give the run name"):
        expand_grid(load_grid(clash))
    (tmp_path / "torn.json").write_text('{"axes": {"seed": [1]')
    with pytest.raises(UsageError, match="torn.json: cannot read this grid file"):
        load_grid(tmp_path / "torn.json")
    with pytest.raises(UsageError, match="missing.json: cannot read this grid file"):
        load_grid(tmp_path / "missing.json")


def test_run_names_and_union_of_products(tmp_path):
    assert [value_label(v) for v in (0.2, 0, True, [], ["data/contexts/t15.blip2.jsonl"], "a b")] == [
        "0.2", "0", "true", "none", "t15.blip2.jsonl", "a-b"
    ]  # fmt: skip
    sweeps = [{"alpha": [0, 0.2], "beta": [0.4]}, {"alpha": [0.2], "beta": [0, 0.4]}]
    runs = expand_grid(load_grid(write_grid(tmp_path / "g.json", flags={"tau": 0.5}, axes=sweeps)))
    assert [run.name for run in runs] == ["alpha=0,beta=0.4", "alpha=0.2,beta=0.4", "alpha=0.2,beta=0"]
    assert runs[0].config["tau"] == 0.5 and runs[0].config["corpus"] == "demo"
    assert parse_overrides(["--num_train_epochs", "2", "--context_files", "a", "b"]) == {
        "num_train_epochs": "2", "context_files": ["a", "b"]
    }  # fmt: skip


def test_only_selects_a_slice_of_the_grid(tmp_path):
    runs = expand_grid(load_grid(write_grid(tmp_path / "g.json", axes={"alpha": [0, 0.2], "seed": [1, 2]})))
    assert select_runs(runs, None) == runs
    assert [run.name for run in select_runs(runs, "seed=1")] == ["alpha=0,seed=1", "alpha=0.2,seed=1"]
    assert [run.name for run in select_runs(runs, "alpha=0.20,seed=2")] == ["alpha=0.2,seed=2"]
    with pytest.raises(ValueError, match=r"--only names \['sed'\]; the axes of this grid are \['alpha', 'seed'\]"):
        select_runs(runs, "sed=1")
    with pytest.raises(ValueError, match="no run of this grid has these values"):
        select_runs(runs, "seed=3")


def test_a_run_the_grid_only_prepared_is_to_run_not_started_over(tmp_path):
    """The grid writes every run's folder before the first starts: a run that never started is
    "to run"; one that wrote more than the grid's files and left no checkpoint starts over."""
    grid = load_grid(write_grid(tmp_path / "g.json", axes={"seed": [1]}))
    [run] = expand_grid(grid)
    folder = tmp_path / "out" / run.name
    assert unfinished_run_plan(run, folder).describe() == "to run"
    prepare_run_folder(run, folder, grid)
    assert unfinished_run_plan(run, folder).describe() == "to run"
    (folder / "run.log").write_text("started, killed before its first checkpoint")
    assert unfinished_run_plan(run, folder).describe() == "starts over (no complete checkpoint)"
    config = json.loads((folder / "run_config.json").read_text())
    (folder / "run_config.json").write_text(json.dumps({**config, "seed": 2}))
    plan = unfinished_run_plan(run, folder)
    assert plan.describe() == "starts over (the grid now gives other values: seed 2 -> 1)"
    assert not plan.drops_checkpoint
    check_nothing_is_lost([run], folder.parent, restart_changed=False)  # no checkpoint to lose


def test_a_checkpoint_of_another_config_is_kept_unless_told(tmp_path):
    """A flag given by mistake (``--text_model_name_or_path ""`` from an unset variable) once deleted
    two epochs of a two-hour run: now the grid refuses, with each changed value then and now."""
    grid = load_grid(write_grid(tmp_path / "g.json", axes={"seed": [1]}))
    [run] = expand_grid(grid)
    folder = tmp_path / "out" / run.name
    prepare_run_folder(run, folder, grid)
    (folder / "checkpoint-7").mkdir()
    (folder / "checkpoint-7" / "trainer_state.json").write_text("{}")
    assert unfinished_run_plan(run, folder).describe() == "resumes"
    config = json.loads((folder / "run_config.json").read_text())
    (folder / "run_config.json").write_text(json.dumps({**config, "seed": 2, "num_train_epochs": 9}))
    changed = "num_train_epochs 9 -> 8, seed 2 -> 1"
    assert unfinished_run_plan(run, folder).drops_checkpoint
    with pytest.raises(ValueError, match=f"seed=1: has a checkpoint of another config .*{changed}.*--restart_changed"):
        check_nothing_is_lost([run], folder.parent, restart_changed=False)
    with pytest.raises(ValueError, match="--restart_changed"):  # the one who deletes refuses too
        prepare_run_folder(run, folder, grid)
    assert (folder / "checkpoint-7").is_dir()
    (folder / "run_config.json").write_text("{torn by a kill")  # no readable config: the same
    with pytest.raises(ValueError, match="no readable run_config.json"):
        check_nothing_is_lost([run], folder.parent, restart_changed=False)
    check_nothing_is_lost([run], folder.parent, restart_changed=True)
    prepare_run_folder(run, folder, grid, restart_changed=True)
    assert not (folder / "checkpoint-7").exists() and unfinished_run_plan(run, folder).describe() == "to run"


def test_a_run_folder_a_live_run_mie_writes_is_not_touched(tmp_path):
    """A run started by hand from its run_config.json (or left by a killed grid) holds the folder."""
    grid = load_grid(write_grid(tmp_path / "g.json", axes={"seed": [1]}))
    [run] = expand_grid(grid)
    folder = tmp_path / "out" / run.name
    prepare_run_folder(run, folder, grid)
    with OutputDirLock(folder):  # this test's process stands for the live run
        (folder / "run.log").write_text("training")
        with pytest.raises(
            ValueError, match=f"(?s)A run_mie.py is writing into .*{run.name}: process and host {os.getpid()}"
        ):
            check_nothing_is_lost([run], folder.parent, restart_changed=True)
    check_nothing_is_lost([run], folder.parent, restart_changed=False)  # gone: starts over


def test_one_grid_at_a_time_writes_into_a_folder(tmp_path):
    """A second grid on the same folder (the command started twice) is refused before it touches a
    run; the folder is free again once the first ends."""
    out = tmp_path / "runs"
    args = [str(ROOT / "configs" / "grid_demo.json"), "--output_dir", str(out), *TINY]
    with hold_output_dir(out):
        with pytest.raises(ValueError, match=f"Another scripts/run_grid.py is running on {out}"):
            run_grid.main(args)
        with pytest.raises(ValueError, match="Another"), hold_output_dir(out):
            pass
    assert not [path for path in out.iterdir() if path.is_dir()]  # no run was prepared
    with hold_output_dir(out):
        pass


def test_an_empty_flag_value_stops_the_grid_with_a_message_not_a_traceback(tmp_path):
    """``--text_model_name_or_path "$ENC"`` with ENC unset gave an empty value, hence another config
    than the runs' checkpoints were made with: refused before anything is touched."""
    with pytest.raises(ValueError, match="--encoder was given an empty value"):
        parse_overrides(["--encoder", ""])
    # unquoted: no value at all, or the next flag right after
    with pytest.raises(ValueError, match="--encoder given no value"):
        parse_overrides(["--encoder"])
    with pytest.raises(ValueError, match="--encoder, --seed given no value"):
        parse_overrides(["--encoder", "--seed", "--epochs", "2"])
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "run_grid.py"), str(ROOT / "configs" / "grid_demo.json"),
         "--output_dir", str(tmp_path / "runs"), "--text_model_name_or_path", ""],
        check=False, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert done.returncode == 2
    assert "--text_model_name_or_path was given an empty value" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "runs").exists()


# -- bootstrap ----------------------------------------------------------------------------------


def ner_records(correct: list[bool]) -> list[dict]:
    """One gold PER entity per sentence, found (or typed wrong) as ``correct`` says."""
    gold = {"start": 0, "end": 1, "type": "PER"}
    return [{"gold": [gold], "pred": [gold if hit else dict(gold, type="LOC")]} for hit in correct]


def system(rate: float, seed: int, n: int = 300) -> np.ndarray:
    rng = random.Random(seed)
    return count_matrix(ner_records([rng.random() < rate for _ in range(n)]))


def test_bootstrap_identical_systems_are_within_noise():
    counts = [system(0.7, seed) for seed in (1, 2)]
    result = hierarchical_bootstrap(counts, counts, paired_seeds=True, samples=500)
    assert result.difference == 0.0 and result.low <= 0.0 <= result.high
    assert result.verdict == "within noise" and not result.significant


def test_bootstrap_clearly_better_system_is_significant():
    better, worse = [system(0.9, seed) for seed in (1, 2)], [system(0.5, seed + 10) for seed in (1, 2)]
    result = hierarchical_bootstrap(better, worse, paired_seeds=True, samples=500)
    expected = np.mean([f1_from_counts(b.sum(0)) - f1_from_counts(w.sum(0)) for b, w in zip(better, worse)])
    assert result.difference == pytest.approx(expected) and result.difference > 0.3
    assert 0 < result.low < result.difference < result.high and result.verdict == "significant"
    assert hierarchical_bootstrap(worse, better, paired_seeds=False, samples=500).high < 0  # and the other way round


def test_bootstrap_one_sentence_apart_is_within_noise():
    reference = system(0.7, 1)
    changed = reference.copy()
    changed[np.argmin(changed[:, 0])] = [1, 1, 1]  # one more sentence right
    result = hierarchical_bootstrap([changed], [reference], paired_seeds=True, samples=500)
    assert result.difference > 0 and result.verdict == "within noise"
    assert not result.seed_noise_measured and not result.significant


def test_sentence_counts_agree_with_the_metrics():
    mre = [{"gold": "/per/org/member_of", "pred": "/per/org/member_of"}, {"gold": "None", "pred": "/per/per/couple"},
           {"gold": "/per/per/couple", "pred": "None"}, {"gold": "None", "pred": "None"}]  # fmt: skip
    f1 = f1_from_counts(count_matrix(mre).sum(0))
    scores = load_metric("mre").compute(predictions=[r["pred"] for r in mre], references=[r["gold"] for r in mre])
    assert f1 == pytest.approx(scores["f1"])
    entities = [{"start": 0, "end": 1, "type": "PER"}, {"start": 2, "end": 3, "type": "ORG"}]
    joint = [
        {"gold": {"entities": entities, "relations": [{"head": 0, "tail": 1, "type": "member_of"}]},
         "pred": {"entities": entities, "relations": [{"head": 0, "tail": 1, "type": "member_of"}]}},
        {"gold": {"entities": entities, "relations": [{"head": 0, "tail": 1, "type": "member_of"}]},
         "pred": {"entities": entities[:1], "relations": []}},
    ]  # fmt: skip
    assert sentence_counts(joint[1]) == (0, 0, 1)
    scores = load_metric("mjere").compute(predictions=[r["pred"] for r in joint], references=[r["gold"] for r in joint])
    assert f1_from_counts(count_matrix(joint).sum(0)) == pytest.approx(scores["f1"])


# -- the report on hand-made runs whose answer is known ------------------------------------------


def hits(rate: float, order_seed: int, n: int = 400) -> list[bool]:
    """Exactly ``round(rate * n)`` sentences right (so F1 = ``rate``), the first ones of a
    shuffle of the sentences: two calls with the same ``order_seed`` get right the same
    sentences, the one with the higher rate some more."""
    order = list(range(n))
    random.Random(order_seed).shuffle(order)
    right = set(order[: round(rate * n)])
    return [i in right for i in range(n)]


def write_runs(folder: Path, runs: dict[tuple, list[bool]]) -> Path:
    """Run folders as scripts/run_grid.py leaves them, one per ``(alpha, seed): correct`` entry, with
    the test F1 of ``all_results.json`` worked out from the predictions."""
    axes = {
        "alpha": sorted({value_label(alpha) for alpha, _ in runs}, key=float),
        "seed": sorted({value_label(seed) for _, seed in runs}, key=float),
    }
    for (alpha, seed), correct in runs.items():
        name = f"alpha={value_label(alpha)},seed={seed}"
        run = folder / name
        run.mkdir(parents=True)
        records = [dict(record, id=i) for i, record in enumerate(ner_records(correct))]
        f1 = float(f1_from_counts(count_matrix(records).sum(0)))
        (run / RUN_FILE).write_text(json.dumps({"name": name, "values": {"alpha": alpha, "seed": seed}, "axes": axes}))
        (run / RESULTS_FILE).write_text(json.dumps({"eval_f1": f1, "test_f1": f1}))
        (run / PREDICTIONS_FILE).write_text("".join(json.dumps(record) + "\n" for record in records))
    return folder


def comparison_rows(folder: Path, samples: int = 1000) -> dict[str, Row]:
    runs, axes, _ = load_runs(folder)
    [table], _ = build_tables(runs, axes, parse_reference("alpha=0.2", axes), samples=samples)
    return {row.label: row for row in table.rows}


def test_a_large_seed_spread_with_a_small_mean_gain_is_within_noise(tmp_path):
    # Reference: 55-60 F1 on every seed. Setting: 35, 85 and 60 F1 (25 points of spread over
    # seeds) for a mean only 2.3 points higher.
    reference = {(0.2, seed): hits(rate, seed) for seed, rate in zip((1, 2, 3), (0.55, 0.60, 0.58))}
    spread = {(0, seed): hits(rate, seed) for seed, rate in zip((1, 2, 3), (0.35, 0.85, 0.60))}
    rows = comparison_rows(write_runs(tmp_path, {**reference, **spread}))
    row, result = rows["0"], rows["0"].comparison

    # Resampling the test sentences with the seeds held fixed (the report's former method)
    # calls this gain significant: it sees only the test set's noise.
    ours, theirs = ([run.counts for run in rows[label].runs] for label in ("0", "0.2"))
    n = len(ours[0])
    weights = np.random.default_rng(0).multinomial(n, np.full(n, 1 / n), size=1000)
    fixed_seeds = np.mean([f1_from_counts(weights @ a) - f1_from_counts(weights @ b) for a, b in zip(ours, theirs)], 0)
    assert np.quantile(fixed_seeds, 0.025) > 0
    assert 100 * row.stats["test_f1"][1] == pytest.approx(25.0)
    assert result.difference == pytest.approx((0.35 + 0.85 + 0.60 - 0.55 - 0.60 - 0.58) / 3)
    assert result.seeds_paired and result.system_seeds == result.reference_seeds == 3
    assert result.low < 0 < result.high and result.high - result.low > 0.2
    assert result.verdict == "within noise" and not result.significant


def test_a_consistent_gain_across_seeds_is_significant(tmp_path):
    # Every seed gains 10 points (the same sentences right, and 40 more), while the seeds
    # themselves spread over 12 points: paired by seed, the gain stands out.
    rates = {1: 0.50, 2: 0.62, 3: 0.56}
    reference = {(0.2, seed): hits(rate, seed) for seed, rate in rates.items()}
    better = {(0, seed): hits(rate + 0.10, seed) for seed, rate in rates.items()}
    result = comparison_rows(write_runs(tmp_path / "paired", {**reference, **better}))["0"].comparison
    assert result.difference == pytest.approx(0.10) and result.seeds_paired
    assert 0 < result.low < result.difference < result.high and result.verdict == "significant"

    # The same kind of gain with other seeds for the setting: seeds drawn separately, still clear.
    others = {(0, seed + 3): hits(rate + 0.20, seed + 3) for seed, rate in rates.items()}
    rows = comparison_rows(write_runs(tmp_path / "unpaired", {**reference, **others}))
    result = rows["0"].comparison
    assert not result.seeds_paired and result.verdict == "significant" and result.low > 0
    [sentence] = verdict_sentences(AxisTable("alpha", {}, list(rows.values())))
    assert "significant." in sentence and "different seeds" in sentence


def test_one_seed_gives_the_weaker_verdict_and_says_why(tmp_path):
    pytest.importorskip("matplotlib", reason='needs the sweep extra: pip install -e ".[sweep]"')

    folder = write_runs(
        tmp_path / "runs",
        {(0.2, 1): hits(0.50, 1), (0, 1): hits(0.80, 1), (0.1, 1): hits(0.505, 7)},  # +30 and +0.5 points
    )
    rows = comparison_rows(folder)
    gain, tiny = rows["0"].comparison, rows["0.1"].comparison
    assert gain.low > 0 and gain.excludes_zero  # far beyond the test set's noise...
    assert not gain.significant and gain.verdict == ONE_SEED_VERDICT  # ...but the seeds' noise is unknown
    assert tiny.verdict == "within noise" and not tiny.seed_noise_measured

    text = report_mie.main([str(folder), "--reference", "alpha=0.2", "--out", str(tmp_path / "report")]).read_text()
    assert "two-level bootstrap" in text and "with replacement" in text
    assert f"| {ONE_SEED_VERDICT} |" in text and "significant |" not in text
    reason = "Only the test set's noise is measured: this setting and the reference have a single seed"
    assert "- alpha=0: test F1 30.00 points higher than the reference" in text
    assert text.count(reason) == 2  # once for each compared setting


@pytest.mark.parametrize("labels", [["0", "0.2", "0.4"], ["blip2", "llava", "none"]], ids=["curve", "bars"])
def test_error_bars_stay_within_what_f1_can_be(labels):
    pytest.importorskip("matplotlib", reason='needs the sweep extra: pip install -e ".[sweep]"')
    from shapca_training.experiments.plots import bounded_errors, draw_axis_figure

    # Means near both ends with spreads that would cross them: 95 ± 25, 5 ± 20, 50 ± 10.
    stats = [(0.95, 0.25), (0.05, 0.20), (0.50, 0.10)]
    runs = [Run("run", {}, {}), Run("run", {}, {})]
    table = AxisTable("alpha", {}, [Row(label, runs, {"eval_f1": s, "test_f1": s}) for label, s in zip(labels, stats)])
    table.rows[2].is_reference = True
    figure = draw_axis_figure(table)
    ends = []
    for container in figure.axes[0].containers:
        errorbars = getattr(container, "errorbar", container)  # bars carry theirs, curves are theirs
        if errorbars is None or not hasattr(errorbars, "lines"):
            continue
        _, caps, columns = errorbars.lines
        ends += [y for column in columns for segment in column.get_segments() for y in np.asarray(segment)[:, 1]]
        ends += [y for cap in caps for y in cap.get_ydata()]
    assert len(ends) >= 2 * 2 * len(labels)  # test and dev, both ends of every bar
    assert min(ends) >= 0 and max(ends) <= 100
    assert max(ends) == pytest.approx(100) and min(ends) == pytest.approx(0)  # cut, not left out
    assert bounded_errors(np.array([95.0, 5.0, 50.0]), np.array([25.0, 20.0, 10.0])).tolist() == [
        [25.0, 5.0, 10.0], [5.0, 20.0, 10.0]
    ]  # fmt: skip


def test_the_dry_run_refuses_an_output_dir_that_is_a_file(tmp_path):
    # Before: the dry run listed the runs, and the grid died later with a traceback.
    (tmp_path / "runs").write_text("not a folder")
    grid = str(ROOT / "configs" / "grid_demo.json")
    for output_dir in (tmp_path / "runs", tmp_path / "runs" / "inner"):
        with pytest.raises(ValueError, match=r"runs is a file, not a folder: give a folder for the runs"):
            run_grid.main([grid, "--output_dir", str(output_dir), "--dry_run"])
    assert run_grid.main([grid, "--output_dir", str(tmp_path / "fresh"), "--dry_run"]) == {}


# -- a 2x2 grid on a local Ray, the report and the heatmap ---------------------------------------


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray", reason='needs the sweep extra: pip install -e ".[sweep]"')

    run_grid.start_ray(ray, Namespace(address=None, num_cpus=2))
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_the_runs_of_a_local_ray_have_the_priority_of_a_plain_run(ray_session):
    """Ray's workers start at niceness 15 unless told: beside any other work they would wait."""

    @ray_session.remote(max_calls=1)
    def niceness():
        return os.nice(0)

    assert os.environ["RAY_worker_niceness"] == "0"  # what the check below cannot see at niceness 19
    assert ray_session.get(niceness.remote()) == os.nice(0)


@pytest.fixture(scope="module")
def grid_runs(tmp_path_factory, ray_session):
    """The demo grid (alpha {0, 0.2} x seed {1, 2}), tiny, weights kept: the runs' folder and arguments."""

    tmp = tmp_path_factory.mktemp("grid")
    args = [str(ROOT / "configs" / "grid_demo.json"), "--output_dir", str(tmp / "runs"), "--cpus_per_trial", "1",
            "--save_checkpoints", "--cache_dir", str(tmp / "cache"), *TINY]  # fmt: skip
    status = run_grid.main(args)
    return tmp / "runs", args, status


def mtimes(folder: Path) -> dict[str, int]:
    return {name: (folder / name / "all_results.json").stat().st_mtime_ns for name in RUNS}


@pytest.mark.slow
def test_grid_runs_every_combination_then_resumes(grid_runs, caplog):

    out, args, status = grid_runs
    assert status == dict.fromkeys(RUNS, "finished")
    # Each run in a process of its own (the code as on disk when it starts), two Ray workers or not.
    processes = {(out / name / "run.log").read_text().splitlines()[0] for name in RUNS}
    assert len(processes) == len(RUNS) and all(line.startswith(RUN_PROCESS_LINE) for line in processes)
    for name in RUNS:
        run = out / name
        for output in (
            "all_results.json",
            "predictions_test.jsonl",
            "predictions_validation.jsonl",
            "model.safetensors",
        ):
            assert (run / output).is_file(), (name, output)
        config = json.loads((run / "run_config.json").read_text())
        alpha, seed = (part.split("=")[1] for part in name.split(","))
        assert (config["alpha"], config["seed"], config["demo_train_size"]) == (float(alpha), int(seed), "56")
        assert config["output_dir"] == str(run)
    before = mtimes(out)

    assert run_grid.main(args) == dict.fromkeys(RUNS, "skipped")  # started again: nothing reruns
    assert mtimes(out) == before

    # Killed while training: the run goes on from its last checkpoint, in its own folder.
    interrupted = out / "alpha=0.2,seed=2"
    for name in ("all_results.json", "train_results.json"):  # killed while training
        (interrupted / name).unlink()
    (interrupted / "stale.txt").write_text("left by the interrupted run")
    [checkpoint] = interrupted.glob("checkpoint-*")
    # Interrupted with another config than the grid now gives it: from scratch.
    changed = out / "alpha=0,seed=1"
    (changed / "all_results.json").unlink()
    (changed / "stale.txt").write_text("left by a run of another config")
    config = json.loads((changed / "run_config.json").read_text())
    (changed / "run_config.json").write_text(json.dumps({**config, "demo_train_size": "40"}))
    without_weights = [arg for arg in args if arg != "--save_checkpoints"]
    with caplog.at_level("INFO", logger="run_grid"):
        run_grid.main([*without_weights, "--dry_run"])  # says what it would do, does nothing
    assert f"{interrupted}: resumes" in caplog.text
    plan = "has a checkpoint of another config (the grid now gives other values: demo_train_size '40' -> '56')"
    assert f"{changed}: {plan}: kept; starts over only with --restart_changed" in caplog.text
    assert (changed / "stale.txt").exists()
    # Its checkpoint is hours of training, often lost to a flag given by mistake: kept unless told.
    with pytest.raises(ValueError, match=r"alpha=0,seed=1: .*demo_train_size '40' -> '56'.*--restart_changed"):
        run_grid.main(without_weights)
    assert (changed / "stale.txt").exists() and list(changed.glob("checkpoint-*"))
    assert not (interrupted / "all_results.json").exists()  # nothing ran
    again = {interrupted.name: "finished", changed.name: "finished"}
    assert run_grid.main([*without_weights, "--restart_changed"]) == {**dict.fromkeys(RUNS, "skipped"), **again}
    after = mtimes(out)
    for name in again:
        assert after.pop(name) > before.pop(name)
    assert after == before
    assert (interrupted / "stale.txt").exists() and not (changed / "stale.txt").exists()
    assert f"Going on from the last complete checkpoint, {checkpoint}." in (interrupted / "run.log").read_text()
    assert "Going on from" not in (changed / "run.log").read_text()
    assert json.loads((changed / "run_config.json").read_text())["demo_train_size"] == "56"
    for run in again:
        assert not list((out / run).glob("*.safetensors")) and not list((out / run).glob("checkpoint-*"))
        assert (out / run / "predictions_test.jsonl").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["alpha=0,seed=2", "alpha=0.2,seed=1"])
def test_a_grid_run_rerun_directly_gives_the_same_result(grid_runs, tmp_path, name):
    """A run's record (run_config.json, with the threads it ran on) reproduces it outside Ray, in
    another process."""

    out, _, _ = grid_runs
    in_grid = json.loads((out / name / "all_results.json").read_text())
    assert in_grid["environment"]["torch_num_threads"] == 1  # the grid's --cpus_per_trial
    assert {"torch", "transformers", "datasets"} <= set(in_grid["environment"]["versions"])
    direct = run_mie.main([str(out / name / "run_config.json"), "--output_dir", str(tmp_path / "direct")])
    assert direct["environment"] == in_grid["environment"]
    for key in ("eval_loss", "eval_f1", "test_loss", "test_f1"):
        assert direct[key] == in_grid[key], key
    assert (tmp_path / "direct" / "predictions_test.jsonl").read_text() == (
        out / name / "predictions_test.jsonl"
    ).read_text()


def test_report_tables_bootstrap_and_plot(grid_runs, tmp_path):
    pytest.importorskip("matplotlib", reason='needs the sweep extra: pip install -e ".[sweep]"')

    out = grid_runs[0]
    report = report_mie.main([str(out), "--reference", "alpha=0.2", "--out", str(tmp_path), "--samples", "200"])
    text = report.read_text()
    assert "## alpha" in text and "| **0.2** (reference) | 2 |" in text and "\n| 0 | 2 |" in text
    assert "dev F1 (%)" in text and "test strict F1 (%)" in text and "Warning" not in text
    assert "![test F1 against alpha](f1_vs_alpha.png)" in text
    assert (tmp_path / "f1_vs_alpha.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    runs, axes, unfinished = load_runs(out)
    assert axes == {"alpha": ["0", "0.2"], "seed": ["1", "2"]} and not unfinished
    [table], _ = build_tables(runs, axes, parse_reference("alpha=0.20", axes), samples=200)
    other, reference = table.rows
    assert reference.is_reference and reference.label == "0.2" and other.label == "0"
    result = other.comparison
    assert all(map(math.isfinite, (result.low, result.difference, result.high)))
    assert result.low <= result.difference <= result.high and result.seeds == 2 and result.sentences == 16
    assert f"| {result.verdict} |" in text and "- alpha=0: test F1 " in text and f": {result.verdict}.\n" in text
    test_f1 = [run.results["test_f1"] for run in other.runs]
    assert other.stats["test_f1"][0] == pytest.approx(sum(test_f1) / 2)


def test_a_single_seed_shows_its_score_without_a_spread():
    def row(label, seeds, is_reference=False):
        runs = [Run(f"{label},seed={seed}", {"seed": str(seed)}, {}) for seed in seeds]
        return Row(label, runs, {"test_f1": (0.8315, 0.003 if len(seeds) > 1 else 0.0)}, is_reference, note="n/a")

    table = AxisTable("alpha", {}, [row("0.2", [1, 2, 3], is_reference=True), row("0", [1])])
    reference_line, one_seed_line = markdown_table(table, ["test_f1"]).splitlines()[2:]
    assert "| 83.15 ± 0.30 |" in reference_line
    assert "| 83.15 |" in one_seed_line and "±" not in one_seed_line


def test_shapley_heatmap_of_a_grid_checkpoint(grid_runs, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason='needs the sweep extra: pip install -e ".[sweep]"')

    checkpoint = grid_runs[0] / "alpha=0.2,seed=1"  # its run_config.json gives the data settings
    record = shapley_heatmap.main(
        ["--model_name_or_path", str(checkpoint), "--num_examples", "4", "--out", str(tmp_path)]
    )
    assert record["method"] == "exact" and len(record["examples"]) == 4
    for game in ("context_text", "context_image"):  # the demo model reads images
        values = np.array(record[game]["values"], dtype=float)
        assert values.shape == (4, 4) and np.isfinite(values).all()
        assert (tmp_path / f"shapley_{game}.png").stat().st_size > 0
    assert json.loads((tmp_path / "shapley_values.json").read_text())["context_text"]["rows"] == "texts"

    larger = shapley_heatmap.main(
        [
            "--model_name_or_path",
            str(checkpoint),
            "--num_examples",
            str(MAX_EXACT_PLAYERS + 1),
            "--out",
            str(tmp_path / "13"),
        ]
    )
    assert larger["method"] == "cyclic"

    drawn = []  # a figure for publication: the examples' indices, no corpus text
    monkeypatch.setattr(shapley_heatmap, "heatmap_figure", lambda *args: drawn.append(args[1:3]))
    shapley_heatmap.main(["--model_name_or_path", str(checkpoint), "--num_examples", "3", "--start", "2",
                          "--labels", "index", "--out", str(tmp_path / "index")])  # fmt: skip
    assert drawn and all(rows == columns == ["test #2", "test #3", "test #4"] for rows, columns in drawn)


def test_report_names_a_results_file_it_cannot_read(tmp_path):
    from shapca_training.experiments.report import load_runs

    folder = tmp_path / "grid" / "alpha=0"
    folder.mkdir(parents=True)
    (folder / "grid_run.json").write_text(
        json.dumps({"name": "alpha=0", "axes": {"alpha": ["0"]}, "values": {"alpha": 0}})
    )
    (folder / "all_results.json").write_text('{"test_f1": 0.')
    with pytest.raises(ValueError, match=r"alpha=0/all_results\.json is not valid JSON"):
        load_runs(tmp_path / "grid")


def test_last_error_line_of_a_run_log(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("step 1\nTraceback (most recent call last):\n  File x\nValueError: alpha must be positive\nbye\n")
    assert last_error_line(log) == "ValueError: alpha must be positive"
    assert last_error_line(tmp_path / "missing.log") is None


def test_a_failed_run_reports_the_reason_from_its_log(ray_session, tmp_path, caplog):

    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"base_config": str(ROOT / "configs" / "demo.json"), "axes": {"max_length": [4]}}))
    with caplog.at_level("ERROR", logger="run_grid"):
        status = run_grid.main([str(grid), "--output_dir", str(tmp_path / "runs"), *TINY])
    assert status == {"max_length=4": "failed"}
    assert (
        "FAILED max_length=4: shapca_training.errors.UsageError: --max_length 4 cannot hold a word and its context"
        in caplog.text
    )


@pytest.mark.slow
def test_a_terminated_grid_stops_its_runs(tmp_path):
    """SIGTERM to scripts/run_grid.py (a scheduler, `kill`) stops the Ray worker that trains, not only the driver."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pytest.importorskip("ray", reason='needs the sweep extra: pip install -e ".[sweep]"')
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"base_config": str(ROOT / "configs" / "demo.json"), "axes": {"seed": [1]}}))
    lock = tmp_path / "runs" / "seed=1" / ".run_mie.lock"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", RAY_worker_niceness="0")
    command = [sys.executable, "scripts/run_grid.py", str(grid), "--output_dir", str(tmp_path / "runs"), "--num_cpus", "1",
               "--cache_dir", str(tmp_path / "cache"), "--demo_train_size", "56", "--num_train_epochs", "1000"]  # fmt: skip
    driver = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while not lock.is_file() and time.time() < deadline and driver.poll() is None:
            time.sleep(1)
        assert lock.is_file(), "the run never started"
        worker = int(lock.read_text().split()[0])
        driver.send_signal(signal.SIGTERM)
        assert driver.wait(timeout=120) == 128 + signal.SIGTERM
        said = driver.stderr.read()
        assert "Interrupted: 1 run(s) stopped" in said and "Traceback" not in said, said
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            time.sleep(1)
        else:
            pytest.fail(f"the Ray worker {worker} still runs after the grid was terminated")
    finally:
        if driver.poll() is None:
            driver.kill()
