#!/usr/bin/env python
"""Tables, significance and plots over a folder of runs made by scripts/run_grid.py.

    python scripts/report_mie.py runs/grid_alpha_beta --reference alpha=0.2,beta=0.4
    python scripts/report_mie.py runs/twitter2015_generators --reference context_files=twitter2015.blip2.jsonl --out report

Writes ``report.md`` (one Markdown table per grid axis: mean and standard deviation over seeds
of dev and test scores, and each setting's test F1 difference to the reference with the 95%
interval of a two-level bootstrap that resamples both the seeds and the test sentences, then
"significant", "within noise", or, with a single seed, "test-set noise only; run more seeds")
and one PNG per axis (``f1_vs_<axis>.png``, error bars cut at 0 and 100) into ``--out``
(default: ``<runs>/report``). The reference names values of the axes (``axis=value``, as in
the run folder names); an axis left out takes its first value.
Needs matplotlib: ``pip install -e ".[sweep]"``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from shapca_training.experiments.plots import axis_figure
from shapca_training.experiments.report import build_tables, load_runs, markdown_report, parse_reference

logger = logging.getLogger("report_mie")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", help="Folder of the runs (the --output_dir of scripts/run_grid.py).")
    parser.add_argument("--reference", help="The setting the others are compared with, e.g. alpha=0.2,beta=0.4.")
    parser.add_argument("--out", help="Folder of report.md and the figures (default: <runs>/report).")
    parser.add_argument("--samples", type=int, default=1000, help="Bootstrap resamples (default 1000).")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    """Write the report and its figures; returns the path of ``report.md``."""
    args = parse_args(argv)
    runs, axes, unfinished = load_runs(args.runs)
    if not runs:
        raise ValueError(f"No finished run in {args.runs} yet (unfinished: {', '.join(unfinished)}).")
    reference = parse_reference(args.reference, axes)
    tables, metrics = build_tables(runs, axes, reference, samples=args.samples)
    out = Path(args.out) if args.out else Path(args.runs) / "report"
    out.mkdir(parents=True, exist_ok=True)
    figures = {}
    for table in tables:
        if table.rows and "test_f1" in metrics:
            figures[table.axis] = axis_figure(table, out / f"f1_vs_{table.axis}.png").name
    report = out / "report.md"
    report.write_text(
        markdown_report(args.runs, runs, tables, metrics, reference, unfinished, figures, args.samples),
        encoding="utf-8",
    )
    logger.info("Wrote %s and %d figure(s)", report, len(figures))
    return report


if __name__ == "__main__":
    logging.basicConfig(format="%(message)s", level=logging.INFO)
    print(main().read_text(encoding="utf-8"))
