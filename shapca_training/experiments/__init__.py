"""The logic behind the experiment scripts, as plain functions.

- `grid`: grid files, their runs, run folders (used by ``scripts/run_grid.py``).
- `on_ray`: a grid's runs as Ray tasks, each logged to its folder.
- `stats`: per-sentence counts and the paired bootstrap of F1 differences.
- `report`: runs of a folder -> settings, Markdown tables (used by ``scripts/report_mie.py``).
- `plots`: the PNG figures, F1 curves and bars and Shapley heatmaps (matplotlib).
- `stock`: the stock references of the benchmark (``bench/stock_*.py``).
"""
