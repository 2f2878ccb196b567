#!/usr/bin/env python
"""Run every combination of a grid file's axes with run_mie.py, as Ray tasks.

    python scripts/run_grid.py configs/grid_alpha_beta.json --output_dir runs/grid_alpha_beta
    python scripts/run_grid.py configs/grid_twitter2017_alpha.json --output_dir runs/t17 --gpus_per_trial 1
    python scripts/run_grid.py configs/grid_alpha_beta.json --output_dir runs/grid --address auto   # a running cluster
    python scripts/run_grid.py configs/grid_alpha_beta.json --output_dir runs/grid --dry_run        # list the runs
    python scripts/run_grid.py configs/grid_demo.json --output_dir runs/grid_demo --num_train_epochs 2  # + run_mie flags

Each run writes what run_mie.py writes (``all_results.json``, ``predictions_*.jsonl``, model card)
into ``<output_dir>/<axis values>`` (e.g. ``runs/grid/alpha=0.2,seed=1``), with its config
(``run_config.json``) and its log (``run.log``); its weights are deleted at the end unless
``--save_checkpoints``. Started again, the grid skips the finished runs; an interrupted run goes
on from its last checkpoint (an epoch's, as ``run_mie.py --resume_from_checkpoint true`` does).
A run the grid now gives another config starts from scratch, but a checkpoint of the old config is
deleted only with ``--restart_changed`` (without it the grid refuses to start and says what
changed). One grid at a time writes into an ``--output_dir``. The grid file format is described in
``shapca_training/experiments/grid.py``; ``run_mie.py`` flags after the grid file override its fixed
flags (data paths, the encoder), not its axes.

Ray starts on this machine by default (one run per ``--cpus_per_trial`` cores, or per
``--gpus_per_trial`` GPUs); ``--address`` joins a running cluster instead, whose nodes must see
this repository, the data and ``--output_dir`` at the same paths (a shared file system).
``--only seed=1`` runs a slice of the grid (the runs with those axis values).
Needs the sweep extra: ``pip install -e ".[sweep]"``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from shapca_training.errors import UsageError
from shapca_training.experiments.grid import (
    check_flags,
    check_nothing_is_lost,
    check_output_dir,
    config_changed,
    expand_grid,
    hold_output_dir,
    is_finished,
    load_grid,
    override_flags,
    parse_overrides,
    run_mie_flags,
    select_runs,
    unfinished_run_plan,
)
from shapca_training.experiments.on_ray import import_ray, run_on_ray, start_ray

logger = logging.getLogger("run_grid")
RUN_MIE = Path(__file__).resolve().parents[1] / "run_mie.py"  # what each run runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("grid", help="A grid file (JSON), e.g. configs/grid_alpha_beta.json.")
    parser.add_argument("--output_dir", required=True, help="Folder of the runs, one subfolder each.")
    parser.add_argument("--address", help="Address of a running Ray cluster ('auto', 'ray://host:10001'); "
                        "default: start Ray on this machine.")  # fmt: skip
    parser.add_argument("--num_cpus", type=int, help="Cores a local Ray may use (default: all).")
    parser.add_argument("--cpus_per_trial", type=float, default=1, help="Cores per run (default 1).")
    parser.add_argument("--gpus_per_trial", type=float, default=0, help="GPUs per run; 0.5 shares a GPU by two.")
    parser.add_argument("--only", help="Run only the runs with these axis values, e.g. seed=1 or alpha=0.2,seed=1.")
    parser.add_argument("--save_checkpoints", action="store_true", help="Keep each run's weights.")
    parser.add_argument(
        "--dry_run", action="store_true", help="List the runs and whether they are finished; run nothing."
    )
    parser.add_argument(
        "--restart_changed",
        action="store_true",
        help="Train again from scratch the runs that stopped with a checkpoint made with another config than "
        "the grid now gives them, deleting that checkpoint (without it the grid refuses to start).",
    )
    args, run_mie_args = parser.parse_known_args(argv)
    args.overrides = parse_overrides(run_mie_args)
    return args


# The signal that stopped the grid, for its exit status (Ray's wait turns the handler's
# exception into a KeyboardInterrupt of its own, so the exception cannot carry it).
stopped_by = [signal.SIGINT]


def _interrupt(signum, frame):
    """SIGTERM (a scheduler, `kill`) stops the runs as Ctrl-C does."""
    stopped_by[0] = signum
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> dict[str, str]:
    """Run the unfinished runs of a grid; returns each run's status: skipped, finished or failed."""
    args = parse_args(argv)
    grid = override_flags(load_grid(args.grid), args.overrides)
    # Each run computes with the cores it is given, and its run_config.json says so: rerun directly,
    # it uses the same number of threads, hence sums in the same order (see the README).
    variant_flags = {flag for flags in grid["variants"].values() for flag in flags}
    if "torch_num_threads" not in {*grid["base"], *grid["axes"][0], *variant_flags}:  # a choice already made stays
        grid["flags"].setdefault("torch_num_threads", max(1, int(args.cpus_per_trial)))
    check_flags(grid, run_mie_flags())
    runs = select_runs(expand_grid(grid), args.only)
    output_dir = Path(args.output_dir).resolve()
    check_output_dir(output_dir)
    if args.dry_run:
        status, _ = finished_and_todo(runs, output_dir, args.grid)
        for run in runs:
            if run.name in status:
                logger.info("  %s: finished", output_dir / run.name)
            else:
                plan = unfinished_run_plan(run, output_dir / run.name)
                logger.info("  %s: %s", output_dir / run.name, plan.describe(args.restart_changed))
        return status
    with hold_output_dir(output_dir):
        status, todo = finished_and_todo(runs, output_dir, args.grid)
        if todo:
            check_nothing_is_lost(todo, output_dir, args.restart_changed)
            status.update(run_on_local_or_joined_ray(todo, grid, output_dir, args))
    failed = [name for name, state in status.items() if state == "failed"]
    if failed:
        logger.error("%d run(s) failed: %s. Start the grid again to retry them.", len(failed), ", ".join(failed))
    if todo:
        logger.info("Report: python scripts/report_mie.py %s", args.output_dir)
    return status


def finished_and_todo(runs: list, output_dir: Path, grid_path: str) -> tuple[dict[str, str], list]:
    """The finished runs ("skipped"), warned when the grid now gives them another config, and the rest."""
    status = {run.name: "skipped" for run in runs if is_finished(output_dir / run.name)}
    for run in runs:
        if run.name in status and config_changed(run, output_dir / run.name):
            logger.warning("%s finished with another config than the grid now gives; delete it to rerun it.", run.name)
    todo = [run for run in runs if run.name not in status]
    logger.info("%s: %d runs, %d finished before, %d to run.", grid_path, len(runs), len(status), len(todo))
    return status, todo


def run_on_local_or_joined_ray(todo: list, grid: dict, output_dir: Path, args: argparse.Namespace) -> dict[str, str]:
    """Train the runs on Ray (started here unless ``--address``), stopped by Ctrl-C or SIGTERM."""
    ray = import_ray()
    started = start_ray(ray, args)
    on_main_thread = threading.current_thread() is threading.main_thread()
    # SIGTERM (a scheduler, `kill`) stops the runs as Ctrl-C does, instead of orphaning Ray's
    # workers. Set after Ray starts: Ray's own handler would abort the driver.
    previous = signal.signal(signal.SIGTERM, _interrupt) if on_main_thread else None
    try:
        return run_on_ray(ray, RUN_MIE, todo, grid, output_dir, args)
    finally:
        if on_main_thread and previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if started:
            ray.shutdown()


if __name__ == "__main__":
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)
    try:
        outcome = main()
    except UsageError as refusal:  # a grid, a flag or a folder refused before any run started: the message says why
        logger.error("%s", refusal)
        sys.exit(2)
    except KeyboardInterrupt:  # any run started is stopped: say how to go on, without a traceback
        logger.error(
            "Start the grid again with the same command to go on: finished runs are skipped, stopped ones resume."
        )
        sys.exit(128 + stopped_by[0])
    sys.exit(1 if "failed" in outcome.values() else 0)
