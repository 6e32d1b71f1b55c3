"""The report's charts: matplotlib figures rendered to inline SVG (text as paths: no font or file to fetch).

The history and importance charts are drawn here, not by ``optuna.visualization.matplotlib``: its
``plot_optimization_history`` draws complete trials only (a search that prunes most trials would show a few dots;
here a pruned trial is drawn at its last reported value, and a diverged one's 1e14 at the chart's edge instead of
stretching the axis), and ``plot_param_importances`` computes the importances again from the study (fANOVA, seconds
per report) where the report already holds them; both are marked experimental (a warning in every report).
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

BLUE, ORANGE, GREEN, GREY, RED, GOLD, CYAN = "#1f4e99", "#e07b00", "#2a9d3a", "#9aa3ad", "#c0392b", "#d4a017", "#2b8cbe"
SEVERITY_COLOR = {"critical": RED, "warning": GOLD, "info": CYAN}
OFF_CHART = 100.0  # a loss above 100x the 90th percentile of the run's losses is cut off the loss axis (and said)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    plt.rcParams.update({"svg.fonttype": "path", "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.5})
    return plt


def svg(fig: Any) -> str:
    """The figure as an inline ``<svg>`` element (and closed, so figures do not pile up)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    _plt().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def history(trials: list[dict[str, Any]], monitor: str, minimize: bool) -> str:
    """Each trial's value by trial number (pruned ones grey at their last reported value), best so far."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    done = [t for t in trials if t["state"] == "complete" and t["value"] is not None]
    pruned = [t for t in trials if t["state"] == "pruned" and t.get("last") is not None]
    if pruned:
        # A diverged trial's last value can be 1e14: drawn at the chart's edge (a triangle, said in the legend), not
        # stretching the axis.
        cap = 3 * max((abs(t["value"]) for t in done), default=1.0)
        inside = [t for t in pruned if math.isfinite(t["last"]) and t["last"] <= cap]
        beyond = [t for t in pruned if t not in inside]
        if inside:
            ax.scatter([t["number"] for t in inside], [t["last"] for t in inside], marker="x", color=GREY, s=22,
                       label="pruned (its last value)")
        if beyond:
            ax.scatter([t["number"] for t in beyond], [cap] * len(beyond), marker="^", color=GREY, s=26,
                       label=f"pruned, last value above {cap:.3g} (off the chart)")
    if done:
        ax.scatter([t["number"] for t in done], [t["value"] for t in done], color=BLUE, s=22, zorder=3,
                   label="complete")
        best, xs, ys = math.inf if minimize else -math.inf, [], []
        for t in sorted(done, key=lambda t: t["number"]):
            best = min(best, t["value"]) if minimize else max(best, t["value"])
            xs.append(t["number"])
            ys.append(best)
        ax.step(xs, ys, where="post", color=GREEN, lw=2, label="best so far")
        values = [t["value"] for t in done]
        if min(values) > 0 and max(values) / min(values) > 20:
            ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel(monitor)
    ax.legend(fontsize=8, frameon=False)
    return svg(fig)


def importances(values: dict[str, float]) -> str:
    plt = _plt()
    names = list(values)[::-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(names) + 0.9))
    ax.barh(names, [values[n] for n in names], color=BLUE)
    ax.set_xlabel("importance (fANOVA share of the objective's variance)")
    ax.grid(axis="y", alpha=0)
    return svg(fig)


def lr_ranges(results: dict[str, Any]) -> str:
    """One LR range test per optimizer family, one above the other (each legend sits below its own plot)."""
    from tunekit.search import family_label

    plt = _plt()
    fig, axes = plt.subplots(len(results), 1, figsize=(7.5, 5.2 * len(results)), squeeze=False)
    for ax, (name, result) in zip(axes[:, 0], results.items(), strict=True):
        result.plot(ax=ax, title=f"LR range test ({family_label(name)})")
    fig.tight_layout()
    return svg(fig)


def curves(series: dict[str, Any], findings: list[dict[str, Any]], title: str, layers: bool = False,
           interventions: list[dict[str, Any]] | None = None) -> str:
    """Loss (with validation) and gradient norm against the step; each finding marked where it began, and each
    auto-remedy intervention where it was applied (a green line, its remedy named)."""
    plt = _plt()
    rows = 3 if layers and series.get("layers") else 2
    fig, axes = plt.subplots(rows, 1, figsize=(7.5, 2.3 * rows + 0.4), sharex=True)
    steps = np.asarray(series.get("steps", []), dtype=float)
    loss = np.asarray([np.nan if v is None else v for v in series.get("loss", [])], dtype=float)
    grad = np.asarray([np.nan if v is None else v for v in series.get("grad_norm", [])], dtype=float)
    ax = axes[0]
    ax.plot(steps, loss, color=BLUE, lw=1.2, label="training loss")
    if series.get("val_steps"):
        val = [np.nan if v is None else v for v in series["val_loss"]]
        ax.plot(series["val_steps"], val, color=ORANGE, marker="o", ms=3, lw=1.2, label="validation loss")
    finite = loss[np.isfinite(loss)]
    note = ""
    if len(finite) and finite.min() > 0 and finite.max() / finite.min() > 30:
        ax.set_yscale("log")
    if len(finite) > 10 and finite.max() > OFF_CHART * np.percentile(finite, 90):
        # one blow-up to 1e25 would flatten everything else: the axis is cut and the title says where
        top = OFF_CHART * float(np.percentile(finite, 90))
        ax.set_ylim(top=top)
        note = f" (loss axis cut at {top:.3g}; it reached {finite.max():.3g})"
    ax.set_ylabel("loss")
    ax.set_title(title + note, fontsize=10, loc="left", pad=26 if findings or interventions else 6)
    ax.legend(fontsize=8, frameon=False, loc="upper right")
    ax = axes[1]
    ax.plot(steps, grad, color=ORANGE, lw=1.2, label="global gradient norm")
    if np.isfinite(grad).any() and np.nanmin(grad) > 0:
        ax.set_yscale("log")
    ax.set_ylabel("gradient norm")
    if rows == 3:
        ax = axes[2]
        cmap = plt.get_cmap("viridis")
        names = list(series["layers"])
        table = {name: np.asarray([np.nan if v is None else v for v in series["layers"][name]], dtype=float)
                 for name in names}
        positive = [v[v > 0] for v in table.values() if (v > 0).any()]
        floor = min(float(v.min()) for v in positive) if positive else 1.0
        for i, name in enumerate(names):
            ax.plot(steps, table[name], lw=1, color=cmap(i / max(1, len(names) - 1)), label=name)
        # a layer with no gradient at all (dead units) has norm 0: a log axis would drop it, so the axis is
        # linear below the smallest positive norm and a zero shows as the bottom line
        ax.set_yscale("symlog", linthresh=floor)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("per layer (0: no gradient)" if any((v == 0).any() for v in table.values()) else "per layer")
        ax.legend(fontsize=7, frameon=False, ncol=min(4, len(names)), loc="best")
    axes[-1].set_xlabel("optimizer step")
    # each finding and intervention named above the chart, level, in a row of its own when two would overlap
    marks = [(f["step"], f["code"], SEVERITY_COLOR.get(f["severity"], GREY), "--") for f in findings]
    marks += [(e["step"], str(e["remedy"]), GREEN, "-.") for e in interventions or []]
    for row, (step, label, color, style) in enumerate(sorted(marks, key=lambda m: m[0])):
        for a in axes:
            a.axvline(step, color=color, lw=1.4, ls=style)
        axes[0].annotate(label, (step, 1.0), xycoords=("data", "axes fraction"), xytext=(2, 2 + 9 * (row % 2)),
                         textcoords="offset points", color=color, fontsize=7, va="bottom", ha="left")
    fig.tight_layout()
    return svg(fig)
