"""``LRRangeResult``: what the LR range test found, with a plot."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tunekit.lr_finder._curve import smoothed


@dataclass
class Candidate:
    """One confirmation run: an LR trained for some steps from the initial weights, and its score."""

    lr: float
    steps: int
    score: float  # the loss it reached (lower is better); inf when it diverged
    rung: int


@dataclass
class LRRangeResult:
    """The outcome of ``lr_range_test``.

    Attributes:
        suggestion: the suggested (base) learning rate, or None; ``reason`` then says why.
        reason: why there is no suggestion (None when there is one).
        lrs, losses: the range-test sweep: the LR and training loss of each step.
        steps: training steps spent in all (sweep and confirmation runs).
        bounds: a (low, high) LR range to search around the suggestion, or None.
        candidates: the confirmation runs, in the order they ran.
        diverged_at: the LR at which the sweep's loss blew up, if it did.
        scored_on: what the candidates were scored on (``val_loss`` or ``train_loss``).
    """

    suggestion: float | None
    reason: str | None
    lrs: list[float]
    losses: list[float]
    steps: int
    bounds: tuple[float, float] | None = None
    candidates: list[Candidate] = field(default_factory=list)
    diverged_at: float | None = None
    scored_on: str = "train_loss"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["losses"] = [x if np.isfinite(x) else None for x in self.losses]
        data["candidates"] = [{**c, "score": c["score"] if np.isfinite(c["score"]) else None}
                              for c in data["candidates"]]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LRRangeResult:
        """Back from ``to_dict`` (extra keys, such as the time a study stored it, are ignored)."""
        candidates = [Candidate(**{**c, "score": float("inf") if c["score"] is None else c["score"]})
                      for c in data.get("candidates", [])]
        bounds = tuple(data["bounds"]) if data.get("bounds") else None
        losses = [float("nan") if x is None else x for x in data["losses"]]
        return cls(suggestion=data["suggestion"], reason=data.get("reason"), lrs=list(data["lrs"]), losses=losses,
                   steps=int(data["steps"]), bounds=bounds, candidates=candidates,
                   diverged_at=data.get("diverged_at"), scored_on=data.get("scored_on", "train_loss"))

    def plot(self, ax: Any = None, title: str | None = None) -> Any:
        """A matplotlib figure: the sweep's loss against the LR (log axis), the confirmation runs and the
        suggestion. Needs matplotlib (``pip install tunekit-lightning[plot]``)."""
        from tunekit.utilities.imports import require

        plt = require("matplotlib.pyplot", "matplotlib", extra="plot")
        if ax is None:
            fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        else:
            fig = ax.figure
        lrs, losses = np.asarray(self.lrs), np.asarray(self.losses, dtype=float)
        finite = np.isfinite(losses)
        ax.plot(lrs[finite], losses[finite], color="#c7d3e3", lw=1, label="loss per step")
        if finite.any():
            ax.plot(lrs[finite], smoothed(losses[finite]), color="#1f4e99", lw=2, label="smoothed")
        ok = [c for c in self.candidates if np.isfinite(c.score)]
        if ok and self.scored_on == "train_loss":
            ax.scatter([c.lr for c in ok], [c.score for c in ok], color="#e07b00", zorder=3, s=22,
                       label=f"confirmation runs ({self.scored_on})")
        if self.diverged_at:
            ax.axvline(self.diverged_at, color="#b22222", ls=":", lw=1.2, label=f"diverged at {self.diverged_at:.2g}")
        if self.suggestion is not None:
            ax.axvline(self.suggestion, color="#2a9d3a", lw=2, label=f"suggestion {self.suggestion:.2g}")
        if self.bounds:
            ax.axvspan(*self.bounds, color="#2a9d3a", alpha=0.08, label="search bounds")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        if finite.any():  # frame the useful part: from the lowest loss to a little above where it started
            start = float(np.max(losses[finite][:10]))
            top = min(float(np.percentile(losses[finite], 95)), 1.5 * start)
            bottom = float(losses[finite].min())
            ax.set_ylim(bottom - 0.05 * (top - bottom), top + 0.1 * (top - bottom))
        ax.set_title(title or (f"LR range test: {self.steps} steps" if self.suggestion else
                               f"LR range test: no suggestion ({self.reason})"), fontsize=10)
        ax.grid(alpha=0.3, which="both", lw=0.5)
        ax.legend(fontsize=8, loc="upper left")
        fig.tight_layout()
        return fig
