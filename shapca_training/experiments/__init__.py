"""The logic behind the experiment commands, as plain functions.

- `experiments.grid`: grid files, their runs, run folders (used by `scripts/run_grid.py`).
- `experiments.stats`: per-sentence counts and the paired bootstrap of F1 differences.
- `experiments.report`: runs of a folder -> settings, Markdown tables (used by `scripts/report_mie.py`).
- `experiments.plots`: the PNG figures, F1 curves and bars and Shapley heatmaps (matplotlib).
"""
