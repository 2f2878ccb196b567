"""A folder of grid runs -> settings, statistics over seeds, comparisons, Markdown tables.

A *setting* is a run's values on every axis but ``seed``; its runs are its seeds. One table
per axis: that axis's values, the other axes at the reference setting (the slice through the
reference, as in the paper's Figure 3: alpha varies with beta fixed, and the other way round).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .grid import RESULTS_FILE, RUN_FILE, is_number, label_matches, value_label
from .stats import ONE_SEED_VERDICT, BootstrapResult, count_matrix, f1_from_counts, hierarchical_bootstrap

SEED_AXIS = "seed"
PREDICTIONS_FILE = "predictions_test.jsonl"
# Columns of the tables, in order, each shown when the runs have it.
METRICS = {
    "eval_f1": "dev F1",
    "test_f1": "test F1",
    "test_precision": "test P",
    "test_recall": "test R",
    "test_strict_f1": "test strict F1",
    "test_entity_f1": "test entity F1",
    "test_accuracy": "test accuracy",
}


@dataclass
class Run:
    """A finished run: its axis values (as labels), results and test predictions (as counts)."""

    name: str
    labels: dict[str, str]
    results: dict
    sentence_ids: list | None = None
    counts: np.ndarray | None = None


@dataclass
class Row:
    """One setting in an axis table."""

    label: str
    runs: list[Run]
    stats: dict[str, tuple[float, float]]  # metric -> (mean, standard deviation) over seeds
    is_reference: bool = False
    comparison: BootstrapResult | None = None
    note: str = ""  # why there is no comparison


@dataclass
class AxisTable:
    axis: str
    fixed: dict[str, str]  # the other axes, at the reference
    rows: list[Row] = field(default_factory=list)

    @property
    def numeric(self) -> bool:
        return all(is_number(row.label) for row in self.rows)


def read_json(path: Path, text: str | None = None):
    """The JSON in ``path`` (or its line ``text``), or an error that names the file: a run killed
    while writing, or a file edited by hand, must not end the report with a bare JSONDecodeError."""
    try:
        return json.loads(path.read_text(encoding="utf-8") if text is None else text)
    except ValueError as error:
        raise ValueError(
            f"{path} is not valid JSON ({error}). Delete the run's folder and run the grid again to redo it."
        ) from None


def load_runs(folder: str | Path) -> tuple[list[Run], dict[str, list[str]], list[str]]:
    """The finished runs of a grid folder, the grid's axes (value labels in grid order) and the
    names of the unfinished runs."""
    folder = Path(folder)
    runs, unfinished, axes = [], [], None
    for run_file in sorted(folder.glob(f"*/{RUN_FILE}")):
        record = read_json(run_file)
        if axes is None:
            axes = record["axes"]
        elif list(record["axes"]) != list(axes):
            raise ValueError(f"{folder} mixes runs of different grids (axes {list(axes)} and {list(record['axes'])}).")
        results_path = run_file.parent / RESULTS_FILE
        if not results_path.is_file():
            unfinished.append(record["name"])
            continue
        labels = {axis: value_label(value) for axis, value in record["values"].items()}
        run = Run(record["name"], labels, read_json(results_path))
        predictions = run_file.parent / PREDICTIONS_FILE
        if predictions.is_file():
            records = [
                read_json(predictions, line) for line in predictions.read_text(encoding="utf-8").splitlines() if line
            ]
            run.sentence_ids = [record.get("id") for record in records]
            run.counts = count_matrix(records)
        runs.append(run)
    if axes is None:
        raise FileNotFoundError(f"No run of scripts/run_grid.py in {folder} (no */{RUN_FILE}).")
    return runs, axes, unfinished


def parse_reference(text: str | None, axes: dict[str, list[str]]) -> dict[str, str]:
    """``"alpha=0.2,beta=0.4"`` -> the reference setting; an axis not named takes its first value."""
    reference = {axis: labels[0] for axis, labels in axes.items() if axis != SEED_AXIS}
    for part in filter(None, (text or "").split(",")):
        axis, _, wanted = part.partition("=")
        if axis not in reference:
            raise ValueError(f"--reference names {axis!r}; the axes of these runs are {sorted(reference)}.")
        matches = [label for label in axes[axis] if label_matches(label, wanted)]
        if not matches:
            raise ValueError(f"--reference {axis}={wanted}: {axis} takes the values {axes[axis]}.")
        reference[axis] = matches[0]
    return reference


def setting_of(run: Run) -> tuple:
    return tuple((axis, label) for axis, label in run.labels.items() if axis != SEED_AXIS)


def mean_and_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def compare(system: list[Run], reference: list[Run], samples: int) -> tuple[BootstrapResult | None, str]:
    """Two-level bootstrap of the test F1 of two settings (seeds and test sentences resampled),
    over all the seeds of each; seeds paired when both settings have the same seeds."""
    runs = [*system, *reference]
    if any(run.counts is None for run in runs):
        return None, f"no {PREDICTIONS_FILE}"
    if any(run.sentence_ids != runs[0].sentence_ids for run in runs):
        return None, "different test sentences"
    ours, theirs, paired = order_seeds(system, reference)
    result = hierarchical_bootstrap([run.counts for run in ours], [run.counts for run in theirs], paired, samples)
    return result, ""


def seed_key(run: Run) -> tuple:
    """Sorts seed labels as numbers when they are."""
    label = run.labels.get(SEED_AXIS) or ""
    return (0, float(label), label) if is_number(label) else (1, 0.0, label)


def order_seeds(system: list[Run], reference: list[Run]) -> tuple[list[Run], list[Run], bool]:
    """Both settings' runs in seed order, and whether their seeds pair up (the same seed values
    on both sides, so that ``system[i]`` and ``reference[i]`` were trained with the same seed)."""
    ours, theirs = sorted(system, key=seed_key), sorted(reference, key=seed_key)
    paired = [run.labels.get(SEED_AXIS) for run in ours] == [run.labels.get(SEED_AXIS) for run in theirs]
    return ours, theirs, paired


def build_tables(runs: list[Run], axes: dict[str, list[str]], reference: dict[str, str], samples: int = 1000):
    """One :class:`AxisTable` per axis but ``seed`` (one table of all runs if there is none)."""
    settings: dict[tuple, list[Run]] = {}
    for run in runs:
        settings.setdefault(setting_of(run), []).append(run)
    reference_key = tuple(reference.items())
    reference_runs = settings.get(reference_key, [])
    metrics = [key for key in METRICS if all(key in run.results for run in runs)]
    comparisons: dict[tuple, tuple[BootstrapResult | None, str]] = {}
    tables = []
    for axis in [axis for axis in axes if axis != SEED_AXIS] or [None]:
        fixed = {a: label for a, label in reference.items() if a != axis}
        table = AxisTable(axis or "setting", fixed)
        labels = axes[axis] if axis else ["all runs"]
        if all(map(is_number, labels)):
            labels = sorted(labels, key=float)
        for label in labels:
            key = tuple((a, label if a == axis else reference[a]) for a in reference)
            if key not in settings:
                continue
            row = Row(label, settings[key], {m: mean_and_std([r.results[m] for r in settings[key]]) for m in metrics})
            row.is_reference = key == reference_key
            if not row.is_reference:
                if not reference_runs:
                    comparisons[key] = (None, "reference setting has no finished run")
                elif key not in comparisons:
                    comparisons[key] = compare(settings[key], reference_runs, samples)
                row.comparison, row.note = comparisons[key]
            table.rows.append(row)
        tables.append(table)
    return tables, metrics


def prediction_mismatches(runs: list[Run], tolerance: float = 1e-6) -> list[str]:
    """Runs whose ``predictions_test.jsonl`` gives another test F1 than their ``all_results.json``."""
    mismatches = []
    for run in runs:
        if run.counts is None or "test_f1" not in run.results:
            continue
        f1 = float(f1_from_counts(run.counts.sum(axis=0)))
        if abs(f1 - run.results["test_f1"]) > tolerance:
            mismatches.append(
                f"{run.name}: {PREDICTIONS_FILE} gives {f1:.4f}, {RESULTS_FILE} says {run.results['test_f1']:.4f}"
            )
    return mismatches


def percent(value: float, signed: bool = False) -> str:
    return f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"


def markdown_table(table: AxisTable, metrics: list[str]) -> str:
    header = [table.axis, "seeds", *(f"{METRICS[m]} (%)" for m in metrics), "Δ test F1 [95% CI] (points)", "verdict"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.rows:
        cells = [f"**{row.label}** (reference)" if row.is_reference else row.label, str(len(row.runs))]
        one_seed = len(row.runs) == 1  # no spread to show: the score alone, not "± 0.00"
        for mean, std in (row.stats[m] for m in metrics):
            cells.append(percent(mean) + ("" if one_seed else f" ± {percent(std)}"))
        if row.is_reference:
            cells += ["—", "reference"]
        elif row.comparison is None:
            cells += ["—", row.note]
        else:
            c = row.comparison
            cells += [f"{percent(c.difference, True)} [{percent(c.low, True)}, {percent(c.high, True)}]", c.verdict]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict_sentences(table: AxisTable) -> list[str]:
    """One plain sentence per compared setting: how far from the reference, whether it matters,
    and, with one seed on a side, why the verdict can say no more."""
    sentences = []
    for row in table.rows:
        if row.comparison is None:
            continue
        c = row.comparison
        direction = "higher" if c.difference > 0 else "lower" if c.difference < 0 else "no different"
        amount = f"{abs(100 * c.difference):.2f} points {direction}" if c.difference else direction
        sentence = (
            f"- {table.axis}={row.label}: test F1 {amount} than the reference "
            f"(95% interval {percent(c.low, True)} to {percent(c.high, True)}): {c.verdict}."
        )
        if not c.seed_noise_measured:
            sentence += f" {one_seed_reason(c)}"
        elif not c.seeds_paired:
            sentence += " The two settings have different seeds, so each one's seeds were drawn on their own."
        sentences.append(sentence)
    return sentences


def one_seed_reason(result: BootstrapResult) -> str:
    """Why a comparison with a single seed on a side measures only the test set's noise."""
    seeds = {"this setting": result.system_seeds, "the reference": result.reference_seeds}
    sides = [side for side, count in seeds.items() if count == 1]
    who = " and ".join(sides) + (" have" if len(sides) > 1 else " has")
    return (
        f"Only the test set's noise is measured: {who} a single seed, so how much a retrained model "
        "would move is unknown."
    )


def method_text(samples: int, sentences: int) -> str:
    """The report's paragraph on how the scores, intervals and verdicts are made."""
    return (
        "Scores are percentages, mean ± standard deviation over seeds. Δ test F1 is the setting minus the "
        "reference, in F1 points (the mean over its seeds minus the mean over the reference's seeds). Its 95% "
        "interval comes from a two-level bootstrap that counts both sources of noise: each of the "
        f"{samples} resamples draws the seeds of each setting with replacement (seed noise: the same setting "
        f"trained again scores differently) and the {sentences or 'scored'} test sentences of "
        f"`{PREDICTIONS_FILE}` with replacement (test-set noise: other sentences would score differently), then "
        "recomputes each drawn run's micro F1 from the drawn sentences' counts. The same sentences are drawn "
        "for both settings and every seed. When both settings have the same seeds, the seeds are drawn for both "
        "at once (seed 1 against seed 1); otherwise each setting's seeds are drawn on their own. "
        "*significant*: the interval leaves out 0; *within noise*: it contains 0. With a single seed on a side "
        "there is no seed spread to draw from and the interval measures only the test set's noise, so an "
        f"interval that leaves out 0 gets *{ONE_SEED_VERDICT}* instead of *significant*. The seed level can be "
        "no wider than the spread of the seeds at hand, so with two or three seeds the interval is on the narrow "
        "side; more seeds make it sturdier. Error bars in the figures: standard deviation over seeds, cut at 0 "
        "and 100."
    )


def describe_setting(setting: dict[str, str]) -> str:
    return ", ".join(f"{axis}={label}" for axis, label in setting.items()) or "the only setting"


def markdown_report(folder, runs, tables, metrics, reference, unfinished, figures: dict[str, str], samples) -> str:
    """The whole report: what was compared and how, then one table (and figure) per axis."""
    seeds = sorted({run.labels.get(SEED_AXIS, "-") for run in runs})
    sentences = next((len(run.counts) for run in runs if run.counts is not None), 0)
    lines = [
        f"# Report: {folder}",
        "",
        f"{len(runs)} finished runs, seeds {', '.join(seeds)}. Reference setting: {describe_setting(reference)}.",
        "",
        method_text(samples, sentences),
    ]
    if unfinished:
        lines += ["", f"Not finished (left out): {', '.join(unfinished)}."]
    for warning in prediction_mismatches(runs):
        lines += ["", f"Warning: {warning}."]
    for table in tables:
        lines += ["", f"## {table.axis}", ""]
        if table.fixed:
            lines += [f"Other axes at the reference: {describe_setting(table.fixed)}.", ""]
        lines.append(markdown_table(table, metrics))
        if verdict_sentences(table):
            lines += ["", *verdict_sentences(table)]
        if table.axis in figures:
            lines += ["", f"![test F1 against {table.axis}]({figures[table.axis]})"]
    return "\n".join(lines) + "\n"
