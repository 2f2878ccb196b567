"""Runs of a grid as Ray tasks: one ``run_mie.py`` run per task, logged to its folder.

Each run is a Ray task in a process of its own, which runs ``run_mie.py`` (`runpy`) from the
directory the grid was started in; the function Ray sends is this module's, so workers import it
from the installed package and need no ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import runpy
import sys
import traceback
from pathlib import Path

from .grid import LOG_FILE, last_error_line, prepare_run_folder, remove_checkpoints

logger = logging.getLogger("run_grid")
# The first line a run writes to its log: the process it runs in (each run has its own; a resumed
# run appends to the log, with its own such line).
RUN_PROCESS_LINE = "run_grid: this run's process is"


@contextlib.contextmanager
def output_to(path: Path):
    """Send this process's file descriptors 1 and 2 (stdout, stderr, C libraries included) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(path, "a", encoding="utf-8") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for descriptor, copy in zip((1, 2), saved):
            os.dup2(copy, descriptor)
            os.close(copy)


def train_one(script: str, config_path: str, workdir: str, save_checkpoints: bool, resume: bool = False) -> dict:
    """One run, inside a Ray worker: ``main([config])`` of the ``run_mie.py`` at ``script``, from
    the launch directory, logged to a file (appended to, when the run resumes from its last
    checkpoint)."""
    os.chdir(workdir)  # the configs' relative paths (data/...) are relative to where the grid was started
    folder = Path(config_path).parent
    arguments = [config_path, "--resume_from_checkpoint", "true"] if resume else [config_path]
    with output_to(folder / LOG_FILE):
        print(f"{RUN_PROCESS_LINE} {os.getpid()}", flush=True)
        try:
            results = runpy.run_path(script, run_name="run_mie")["main"](arguments)
        except BaseException:
            traceback.print_exc()  # into the run's log; Ray hands the error to the driver too
            raise
    if not save_checkpoints:
        remove_checkpoints(folder)
    return results


def import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError('scripts/run_grid.py runs the grid on Ray: pip install -e ".[sweep]"') from None
    return ray


def start_ray(ray, args: argparse.Namespace) -> bool:
    """Connect to the cluster of ``--address`` or start Ray here; True when this call started it."""
    if ray.is_initialized():  # e.g. a caller (a test, a notebook) started it
        return False
    if args.address:
        ray.init(address=args.address)
    else:
        # Ray starts its workers at niceness 15, below every other process, so a grid's runs would
        # wait behind anything else the machine does. They are the work: they run at the priority
        # `python run_mie.py` has (a RAY_worker_niceness of one's own is kept).
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(num_cpus=args.num_cpus, include_dashboard=False)
    return True


def run_on_ray(ray, script: Path, todo: list, grid: dict, output_dir: Path, args: argparse.Namespace) -> dict[str, str]:
    """Submit one Ray task per run, wait for them all; returns each run's status, finished or failed."""
    # One process per run (max_calls=1): a worker that ran one run and imported the library would
    # run the next with the code it imported then, not the code on disk (what all_results.json
    # records), when it changed during a grid of hours; a GPU's memory is freed after each run too.
    task = ray.remote(num_cpus=args.cpus_per_trial, num_gpus=args.gpus_per_trial, max_retries=0, max_calls=1)(train_one)
    pending, status = {}, {}
    try:
        for run in todo:
            config_path, resume = prepare_run_folder(run, output_dir / run.name, grid, args.restart_changed)
            if resume:
                logger.info("%s was interrupted: it goes on from its last checkpoint.", run.name)
            pending[task.remote(str(script), str(config_path), os.getcwd(), args.save_checkpoints, resume)] = run
        _wait_for_runs(ray, pending, status, output_dir)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (see main): stop the runs, even on a cluster that stays up
        for reference in pending:
            ray.cancel(reference, force=True)
        logger.error("Interrupted: %d run(s) stopped.", len(pending))
        raise
    return status


def _wait_for_runs(ray, pending: dict, status: dict, output_dir: Path) -> None:
    """Collect the runs as they end, into ``status``; ``pending`` keeps those still running."""
    while pending:
        [done], _ = ray.wait(list(pending), num_returns=1)
        run = pending.pop(done)
        try:
            results = ray.get(done)
        except ray.exceptions.RayError as error:
            status[run.name] = "failed"
            # Ray's own message is often "The worker died unexpectedly"; the run's log says why.
            log = output_dir / run.name / LOG_FILE
            reason = last_error_line(log) or str(error).strip().splitlines()[-1]
            logger.error("FAILED %s: %s\n  log: %s", run.name, reason, log)
            continue
        status[run.name] = "finished"
        scores = ", ".join(f"{key} {results[key]:.4f}" for key in ("eval_f1", "test_f1") if key in results)
        logger.info("finished %s (%d left): %s", run.name, len(pending), scores)
