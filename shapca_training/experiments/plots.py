"""The report's figures and the Shapley heatmaps, as PNG files (matplotlib, no window needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .report import AxisTable

# What the usual axes mean, for the x-axis labels.
AXIS_TITLES = {
    "alpha": "alpha, weight of the context-text loss L_semantic",
    "beta": "beta, weight of the context-image loss L_modality",
    "context_files": "context generator (context file)",
    "use_context": "bridging context used",
    "use_image": "image used",
    "alignment_loss": "alignment loss",
    "tau": "tau, temperature of the Shapley utility",
}


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError('The figures need matplotlib: pip install -e ".[sweep]"') from None
    return Figure(figsize=(width, height), layout="constrained")


def bounded_errors(mean: np.ndarray, std: np.ndarray, low: float = 0.0, high: float = 100.0) -> np.ndarray:
    """``(2, n)`` lower and upper error-bar lengths of ``mean ± std``, cut so that the bars stay
    within ``[low, high]`` (the range of an F1 in percent): the form matplotlib's ``yerr`` takes."""
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    below = np.clip(np.minimum(std, mean - low), 0.0, None)
    above = np.clip(np.minimum(std, high - mean), 0.0, None)
    return np.stack([below, above])


def draw_axis_figure(table: AxisTable):
    """The figure of :func:`axis_figure`, not saved (a matplotlib ``Figure``)."""
    labels = [row.label for row in table.rows]
    test = np.array([[100 * v for v in row.stats["test_f1"]] for row in table.rows])
    dev = (
        np.array([[100 * v for v in row.stats["eval_f1"]] for row in table.rows])
        if "eval_f1" in table.rows[0].stats
        else None
    )
    test_err = bounded_errors(test[:, 0], test[:, 1])
    dev_err = bounded_errors(dev[:, 0], dev[:, 1]) if dev is not None else None
    figure = _figure(max(5.0, 0.9 * len(labels) + 2.5), 3.6)
    axes = figure.subplots()
    if table.numeric:
        x = np.array([float(label) for label in labels])
        axes.errorbar(x, test[:, 0], yerr=test_err, marker="o", capsize=4, label="test F1")
        if dev is not None:
            axes.errorbar(x, dev[:, 0], yerr=dev_err, marker="s", capsize=4, linestyle="--", alpha=0.6, label="dev F1")
        axes.set_xticks(x, labels)
    else:
        x = np.arange(len(labels))
        width = 0.4 if dev is not None else 0.6
        axes.bar(
            x - (width / 2 if dev is not None else 0), test[:, 0], width, yerr=test_err, capsize=4, label="test F1"
        )
        if dev is not None:
            axes.bar(x + width / 2, dev[:, 0], width, yerr=dev_err, capsize=4, alpha=0.6, label="dev F1")
        axes.set_xticks(
            x,
            labels,
            rotation=20 if max(map(len, labels)) > 12 else 0,
            ha="right" if max(map(len, labels)) > 12 else "center",
        )
        bottoms = (
            test[:, 0] - test_err[0]
            if dev is None
            else np.concatenate([test[:, 0] - test_err[0], dev[:, 0] - dev_err[0]])
        )
        # bars from near the lowest score: differences stay visible
        axes.set_ylim(max(0.0, np.nanmin(bottoms) - 5), None)
    reference = next((row for row in table.rows if row.is_reference), None)
    if reference is not None:
        axes.axhline(
            100 * reference.stats["test_f1"][0],
            color="grey",
            linestyle=":",
            label=f"reference test F1 ({reference.label})",
        )
    seeds = max(len(row.runs) for row in table.rows)
    fixed = ", ".join(f"{axis}={label}" for axis, label in table.fixed.items())
    title = f"F1 against {table.axis}" + (f" ({fixed})" if fixed else "")
    axes.set_title(f"{title}, mean ± std over {seeds} seed(s), cut at 0 and 100", fontsize=9)
    axes.set_xlabel(AXIS_TITLES.get(table.axis, table.axis))
    axes.set_ylabel("F1 (%)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return figure


def axis_figure(table: AxisTable, path: str | Path) -> Path:
    """Test F1 (and dev F1) against one axis, mean ± std over seeds, with the reference as a line.

    Numeric axes (alpha, beta) give a curve, as in the paper's Figure 3; other axes (context
    generators, switches) give bars, as its Table 3. The error bars are cut at 0 and 100, the
    range of an F1 (:func:`bounded_errors`).
    """
    draw_axis_figure(table).savefig(path, dpi=120)
    return Path(path)


def heatmap_figure(
    values: np.ndarray,
    row_labels: list[str],
    column_labels: list[str],
    title: str,
    row_title: str,
    column_title: str,
    path: str | Path,
) -> Path:
    """A heatmap of a ``(rows, columns)`` matrix on a colour scale centred on 0 (NaN left blank),
    with the numbers written in the cells when there are few."""
    values = np.asarray(values, dtype=float)
    rows, columns = values.shape
    figure = _figure(max(5.0, 0.55 * columns + 3.5), max(3.5, 0.4 * rows + 2.0))
    axes = figure.subplots()
    limit = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 1.0
    image = axes.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    figure.colorbar(image, ax=axes, label="Shapley value")
    axes.set_xticks(range(columns), column_labels, rotation=45, ha="right", fontsize=7)
    axes.set_yticks(range(rows), row_labels, fontsize=7)
    axes.set_xlabel(column_title)
    axes.set_ylabel(row_title)
    axes.set_title(title, fontsize=9)
    if rows * columns <= 144:
        for (row, column), value in np.ndenumerate(values):
            if np.isfinite(value):
                axes.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=6)
    figure.savefig(path, dpi=120)
    return Path(path)
