"""Grid files, the runs they describe and the folders the runs live in (no Ray here: see scripts/run_grid.py).

A grid file is JSON::

    {
      "description": "free text, optional",
      "base_config": "configs/demo.json",
      "flags": {"num_train_epochs": 2},
      "axes": {"alpha": [0, 0.2], "seed": [1, 2]}
    }

Every combination of the axis values is one run of ``run_mie.py``: the base config, overridden by
the fixed ``flags``, overridden by the run's axis values. Any ``run_mie.py`` flag can be a fixed
flag or an axis. ``axes`` may also be a list of such objects, all naming the same axes: the runs
are then the union of their combinations (one-at-a-time sweeps, or a text-only setting next to
a grid). Paths are relative to the working directory, as in the configs.

An ablation changes several flags at once, or different flags from one row to the next. Give it
a name under ``variants`` and make ``variant`` an axis: a variant's flags override the fixed
flags, and its name is the run's value on that axis (``variant=no_alignment,seed=1``)::

    "variants": {"shapca": {}, "no_alignment": {"alpha": 0, "beta": 0}},
    "axes": [{"variant": ["shapca"], "seed": [1, 2, 3]}, {"variant": ["no_alignment"], "seed": [1, 2]}]

Each run lives in ``<output_dir>/<name>``, its name made of its axis values
(``alpha=0.2,seed=1``), so that the grid started again finds it. A run is finished once its
``all_results.json`` exists (``run_mie.py`` writes it after training and testing); a folder
without it is an interrupted run. It goes on from its last checkpoint when the grid gives it the
config it was started with (its ``run_config.json``); with another config it is run again from
scratch, but a checkpoint it left is deleted only when asked (``--restart_changed``). One grid at a
time writes into a folder (``hold_output_dir``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePath

from shapca_training.errors import UsageError

logger = logging.getLogger("run_grid")
RESULTS_FILE = "all_results.json"
RUN_FILE = "grid_run.json"  # the run's axis values (and the grid's), written before the run starts
CONFIG_FILE = "run_config.json"  # the run's run_mie.py config: `python run_mie.py <run>/run_config.json`
LOG_FILE = "run.log"
LOCK_FILE = ".run_grid.lock"  # held by the grid writing into the folder
GRID_KEYS = ("description", "base_config", "flags", "variants", "axes")
VARIANT_AXIS = "variant"  # the axis whose values name sets of flags (the grid's "variants")
RESERVED_FLAGS = {
    "output_dir": "the grid gives every run its own folder",
    "seeds": "make `seed` an axis instead",
}


@dataclass(frozen=True)
class GridRun:
    """One run of a grid: its folder name, its axis values and its full ``run_mie.py`` config."""

    name: str
    values: dict
    config: dict


def load_grid(path: str | Path) -> dict:
    """Read and check a grid file; ``axes`` always comes back as a list of ``{axis: [values]}``."""
    path = Path(path)
    try:
        grid = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"{path}: cannot read this grid file ({error}).") from None
    if not isinstance(grid, dict):
        raise UsageError(f"{path}: a grid file holds one JSON object (see shapca_training/experiments/grid.py).")
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {unknown}; a grid file has {list(GRID_KEYS)}.")
    if "base_config" not in grid or "axes" not in grid:
        raise UsageError(f"{path}: a grid file needs 'base_config' (a run_mie.py config) and 'axes'.")
    products = grid["axes"] if isinstance(grid["axes"], list) else [grid["axes"]]
    if not products or not all(isinstance(axes, dict) and axes for axes in products):
        raise UsageError(f"{path}: 'axes' must be an object {{axis: [values]}} or a non-empty list of them.")
    names = list(products[0])
    for axes in products:
        if list(axes) != names:
            raise UsageError(f"{path}: every object of 'axes' must name the same axes in the same order, "
                             f"{names} vs {list(axes)}.")  # fmt: skip
        for axis, values in axes.items():
            if not isinstance(values, list) or not values:
                raise UsageError(f"{path}: axis {axis!r} needs a non-empty list of values, got {values!r}.")
    variants = grid.get("variants", {})
    check_variants(path, variants, products)
    from shapca_training.arguments import (
        read_config_file,  # the run_mie.py config reader: broken JSON and bad keys named
    )

    return {
        "path": str(path),
        "base_config": grid["base_config"],
        "base": read_config_file(grid["base_config"]),  # read once, here
        "flags": grid.get("flags", {}),
        "variants": variants,
        "axes": products,
    }


def check_variants(path: Path, variants: dict, products: list[dict]) -> None:
    """``variants`` is ``{name: {flag: value}}``, and the ``variant`` axis names only those, while the
    other axes set flags no variant sets (a run's flags would otherwise depend on their order)."""
    if not isinstance(variants, dict) or not all(isinstance(flags, dict) for flags in variants.values()):
        raise UsageError(f'{path}: "variants" must be an object {{name: {{flag: value}}}}, got {variants!r}.')
    named = {name for axes in products for name in axes.get(VARIANT_AXIS, [])}
    if (VARIANT_AXIS in products[0]) != bool(variants):
        raise UsageError(f'{path}: "variants" and the {VARIANT_AXIS!r} axis go together: give both or neither.')
    unknown = sorted(map(str, named - set(variants)))
    if unknown:
        raise UsageError(f"{path}: the {VARIANT_AXIS!r} axis names {unknown}; the variants are {sorted(variants)}.")
    shared = sorted({flag for flags in variants.values() for flag in flags} & set(products[0]))
    if shared:
        raise UsageError(f"{path}: {shared} set by a variant and an axis at once; keep each flag in one place.")


def parse_overrides(args: list[str]) -> dict:
    """Command-line flags -> fixed flags: ``["--epochs", "2", "--files", "a", "b"]`` -> ``{"epochs": "2",
    "files": ["a", "b"]}`` (``run_mie.py`` parses the strings as it parses its own command line).
    A flag given no value, or an empty one, is refused: it is how an unset shell variable
    (``--text_model_name_or_path $ENC``) arrives, and the runs would train another model."""
    overrides: dict = {}
    name = None
    for arg in args:
        if arg.startswith("--"):
            name = arg[2:]
            overrides[name] = []
        elif name is None:
            raise UsageError(f"Unexpected argument {arg!r}: run_mie.py flags go as --name value.")
        elif not arg:
            raise UsageError(f"--{name} was given an empty value (an unset shell variable?): give it a value "
                             "or leave it out.")  # fmt: skip
        else:
            overrides[name].append(arg)
    valueless = [f"--{name}" for name, values in overrides.items() if not values]
    if valueless:
        raise UsageError(f"{', '.join(valueless)} given no value (an unset shell variable?): give each one a value "
                         "(a switch too: --do_predict true).")  # fmt: skip
    return {key: values[0] if len(values) == 1 else values for key, values in overrides.items()}


def override_flags(grid: dict, overrides: dict) -> dict:
    """The grid with ``overrides`` on top of its fixed flags (an axis or a variant's flag cannot be
    overridden)."""
    varied = {*grid["axes"][0], *(flag for flags in grid["variants"].values() for flag in flags)}
    on_axes = sorted(set(overrides) & varied)
    if on_axes:
        raise UsageError(f"{on_axes} {'varies' if len(on_axes) == 1 else 'vary'} in {grid['path']} (axes, variants); "
                         "change the grid file to change the values.")  # fmt: skip
    return {**grid, "flags": {**grid["flags"], **overrides}}


def check_flags(grid: dict, valid_flags: set[str]) -> None:
    """Refuse fixed flags and axes that ``run_mie.py`` does not know, with the list of those it does."""
    variant_flags = [flag for flags in grid["variants"].values() for flag in flags]
    names = [*grid["flags"], *(axis for axis in grid["axes"][0] if axis != VARIANT_AXIS), *variant_flags]
    for name in names:
        if name in RESERVED_FLAGS:
            raise UsageError(f"{grid['path']}: {name!r} cannot be set in a grid: {RESERVED_FLAGS[name]}.")
    unknown = [name for name in names if name not in valid_flags]
    if unknown:
        raise UsageError(
            f"{grid['path']}: {unknown} {'is not a' if len(unknown) == 1 else 'are not'} run_mie.py flag"
            f"{'' if len(unknown) == 1 else 's'}. Valid flags: {', '.join(sorted(valid_flags))}."
        )


def check_output_dir(output_dir: Path) -> None:
    """The grid's ``--output_dir`` must be a folder, or a path where one can be made."""
    blocking = next((path for path in (output_dir, *output_dir.parents) if path.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise UsageError(f"--output_dir {output_dir}: {blocking} is a file, not a folder: give a folder for the runs.")
    if blocking is not None and not os.access(blocking, os.W_OK | os.X_OK):
        raise UsageError(f"--output_dir {output_dir}: {blocking} cannot be written to: give a folder you can write.")


@contextlib.contextmanager
def hold_output_dir(output_dir: Path):
    """Hold the grid's folder for as long as the grid runs: a second grid started on it (the same
    command twice, in two terminals) would train the same unfinished runs into the same folders, or
    delete one that another grid is training. Refused with a message; the lock goes with the
    process, however it ends. An advisory ``flock``: where the system or the file system has none,
    the grid runs unguarded, with a warning."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system
        logger.warning("No file locks on this system: a second grid on %s would not be refused.", output_dir)
        yield
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        try:
            lock = stack.enter_context(open(output_dir / LOCK_FILE, "w"))
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"Another scripts/run_grid.py is running on {output_dir}: wait for it to end, or stop it "
                "(Ctrl-C or kill; its runs resume when a grid is started again)."
            ) from None
        except OSError as error:  # a file system without flock (some network ones), a lock file not ours
            logger.warning("Cannot lock %s (%s): a second grid on it would not be refused.", output_dir, error)
        yield


def last_error_line(log: Path) -> str | None:
    """The last line of a run's log that names an exception (``ValueError: ...``), or None."""
    if not log.is_file():
        return None
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    tracebacks = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    lines = lines[tracebacks[-1] :] if tracebacks else lines  # the last failure's lines only
    errors = [line.strip() for line in lines if re.match(r"^[\w.]*(Error|Exception|Interrupt)\b.*", line.strip())]
    return errors[-1] if errors else None


def run_mie_flags() -> set[str]:
    """The flags ``run_mie.py`` accepts: the fields of its argument classes (`shapca_training.arguments`)."""
    from shapca_training.arguments import flag_names

    return flag_names()


def value_label(value) -> str:
    """A short, filesystem-safe text for an axis value: ``0.2``, ``true``, a file's name, ``none`` for ``[]``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "+".join(value_label(item) for item in value) or "none"
    if isinstance(value, dict):
        value = json.dumps(value, sort_keys=True)
    text = str(value)
    if "/" in text:  # a path: its file name is enough to tell runs apart (names are checked unique)
        text = PurePath(text).name
    return re.sub(r"[^A-Za-z0-9._+-]", "-", text)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def label_matches(label: str, wanted: str) -> bool:
    """An axis label is the value asked for on a command line: the same text, or the same number (0.2 and 0.20)."""
    return label == wanted or (is_number(label) and is_number(wanted) and float(label) == float(wanted))


def run_name(values: dict) -> str:
    """The folder name of a run: ``alpha=0.2,seed=1`` (axes in the grid's order)."""
    return ",".join(f"{axis}={value_label(value)}" for axis, value in values.items())


def expand_grid(grid: dict) -> list[GridRun]:
    """Every run of a grid, in order, each once (a combination listed twice is one run)."""
    base = grid["base"]
    runs: dict[str, GridRun] = {}
    for axes in grid["axes"]:
        for combination in itertools.product(*axes.values()):
            values = dict(zip(axes, combination))
            name = run_name(values)
            if name in runs and runs[name].values != values:
                raise UsageError(f"{grid['path']}: {runs[name].values} and {values} both give the run name "
                                 f"{name!r}; make the values differ in their file names.")  # fmt: skip
            flags = {**grid["flags"], **grid["variants"].get(values.get(VARIANT_AXIS), {})}
            on_axes = {axis: value for axis, value in values.items() if axis != VARIANT_AXIS}
            runs.setdefault(name, GridRun(name, values, {**base, **flags, **on_axes}))
    return list(runs.values())


def select_runs(runs: list[GridRun], only: str | None) -> list[GridRun]:
    """The runs whose axis values match ``only``, e.g. ``"seed=1"`` or ``"alpha=0.2,seed=1"`` (all of them if None)."""
    wanted = dict(part.partition("=")[::2] for part in filter(None, (only or "").split(",")))
    axes = {axis for run in runs for axis in run.values}
    unknown = sorted(set(wanted) - axes)
    if unknown:
        raise UsageError(f"--only names {unknown}; the axes of this grid are {sorted(axes)}.")

    def selected(run: GridRun) -> bool:
        return all(axis in run.values and label_matches(value_label(run.values[axis]), label)
                   for axis, label in wanted.items())  # fmt: skip

    chosen = [run for run in runs if selected(run)]
    if wanted and not chosen:
        raise UsageError(f"--only {only}: no run of this grid has these values.")
    return chosen


def axis_labels(grid: dict) -> dict[str, list[str]]:
    """The labels of every axis's values, in the order the grid file gives them."""
    labels: dict[str, list[str]] = {axis: [] for axis in grid["axes"][0]}
    for axes in grid["axes"]:
        for axis, values in axes.items():
            labels[axis] += [label for label in map(value_label, values) if label not in labels[axis]]
    return labels


def is_finished(folder: Path) -> bool:
    """A run is finished when its results file, written last, holds a whole JSON object (a file a
    killed run left half-written means the run must be done again)."""
    try:
        return isinstance(json.loads((folder / RESULTS_FILE).read_text(encoding="utf-8")), dict)
    except (OSError, ValueError):
        return False


def run_config(run: GridRun, folder: Path) -> dict:
    """The ``run_mie.py`` config of a run writing into ``folder``."""
    return {**run.config, "output_dir": str(folder)}


def config_changes(run: GridRun, folder: Path) -> dict[str, tuple] | None:
    """``{flag: (value then, value now)}`` for each flag whose value in the run's saved config
    (``run_config.json``) differs from what the grid now gives it; None when there is no saved
    config to read (never written, or torn by a kill)."""
    try:
        before = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    now = run_config(run, folder)
    return {flag: (before.get(flag), now.get(flag)) for flag in sorted(before.keys() | now.keys())
            if before.get(flag) != now.get(flag)}  # fmt: skip


def config_changed(run: GridRun, folder: Path) -> bool:
    """True when a run was made with another config than the grid now gives it."""
    return bool(config_changes(run, folder))


@dataclass(frozen=True)
class RunPlan:
    """What the grid does with a run that is not finished: ``"to run"`` (never started), ``"resumes"``
    (from its last complete checkpoint) or ``"starts over"`` (``why``; ``drops_checkpoint`` when
    that deletes a checkpoint made with another config, which the grid does only when told)."""

    action: str
    why: str = ""
    drops_checkpoint: bool = False

    def describe(self, restart_changed: bool = False) -> str:
        if self.drops_checkpoint and not restart_changed:
            return f"has a checkpoint of another config ({self.why}): kept; starts over only with --restart_changed"
        if self.drops_checkpoint:
            return f"starts over, its checkpoint deleted (--restart_changed; {self.why})"
        return f"{self.action} ({self.why})" if self.why else self.action


def unfinished_run_plan(run: GridRun, folder: Path) -> RunPlan:
    """What the grid does with an unfinished run. A folder that holds only the files the grid writes
    before a run starts is a run never started."""
    from shapca_training.records import last_complete_checkpoint  # torch: imported only when asked

    if not folder.exists() or {path.name for path in folder.iterdir()} <= {RUN_FILE, CONFIG_FILE}:
        return RunPlan("to run")
    changes = config_changes(run, folder)
    checkpoint = last_complete_checkpoint(folder)
    if changes is None:
        return RunPlan("starts over", f"no readable {CONFIG_FILE} says how it was made", checkpoint is not None)
    if changes:
        values = ", ".join(f"{flag} {then!r} -> {now!r}" for flag, (then, now) in changes.items())
        return RunPlan("starts over", f"the grid now gives other values: {values}", checkpoint is not None)
    if checkpoint is None:
        return RunPlan("starts over", "no complete checkpoint")
    return RunPlan("resumes")


def check_nothing_is_lost(runs: list[GridRun], output_dir: Path, restart_changed: bool) -> None:
    """Refuse to start, naming each run, when preparing the runs would delete what should stay:
    a checkpoint made with another config than the grid now gives (hours of training, often lost
    to a flag given by mistake) unless ``restart_changed``; a run folder a live ``run_mie.py`` is
    writing into (started by hand, or left by a grid that was killed)."""
    from shapca_training.records import OutputDirLock  # torch: imported only when asked

    plans = {run.name: unfinished_run_plan(run, output_dir / run.name) for run in runs}
    owners = {
        name: OutputDirLock.live_owner(output_dir / name) for name, plan in plans.items() if plan.action != "to run"
    }
    in_use = [f"  {name}: process and host {owner} ({output_dir / name / OutputDirLock.FILE})"
              for name, owner in owners.items() if owner]  # fmt: skip
    if in_use:
        raise UsageError("A run_mie.py is writing into these runs' folders:\n" + "\n".join(in_use)
                         + "\nWait for it to end or stop it, then start the grid again; if no such run is going on "
                         "(a run killed on another machine), delete the lock file named.")  # fmt: skip
    kept = [f"  {name}: {plan.describe()}" for name, plan in plans.items() if plan.drops_checkpoint]
    if kept and not restart_changed:
        raise UsageError(
            "These runs stopped with a checkpoint made with another config than the grid now gives them:\n"
            + "\n".join(kept)
            + "\nGive the same values to resume them, or --restart_changed to train them again from scratch "
            "(their checkpoints are deleted)."
        )


def prepare_run_folder(run: GridRun, folder: Path, grid: dict, restart_changed: bool = False) -> tuple[Path, bool]:
    """Make the run's folder ready, write its axis values and config.

    An interrupted run of the same config that left a checkpoint keeps its folder and goes on
    from there; any other folder the grid made is emptied and the run starts from scratch, except
    one with a checkpoint of another config, refused unless ``restart_changed`` (the grid checks
    every run first, ``check_nothing_is_lost``, so that it refuses before starting any).
    Returns the path of the config (the one argument ``run_mie.py`` needs) and whether the run
    resumes.
    """
    if folder.exists():
        if not (folder / RUN_FILE).is_file() and any(folder.iterdir()):
            raise FileExistsError(
                f"{folder} exists and was not made by scripts/run_grid.py; move it or pick another --output_dir."
            )
        plan = unfinished_run_plan(run, folder)
        if plan.action == "resumes":
            return folder / CONFIG_FILE, True
        if plan.drops_checkpoint and not restart_changed:
            raise UsageError(f"{run.name} {plan.describe()}.")
        if plan.action != "to run":
            logger.warning("%s %s.", run.name, plan.describe(restart_changed))
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    record = {"name": run.name, "values": run.values, "axes": axis_labels(grid), "grid": grid["path"]}
    (folder / RUN_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    config_path = folder / CONFIG_FILE
    config_path.write_text(json.dumps(run_config(run, folder), indent=2) + "\n", encoding="utf-8")
    return config_path, False


def remove_checkpoints(folder: Path) -> None:
    """Delete the weights of a finished run (its ``checkpoint-*`` folders and ``*.safetensors``)."""
    for path in folder.glob("checkpoint-*"):
        shutil.rmtree(path)
    for path in folder.glob("*.safetensors"):
        path.unlink()
