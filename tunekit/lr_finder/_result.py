"""``LRRangeResult``: what the LR range test found, with a plot."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.ndimage import median_filter

from tunekit.lr_finder._curve import MEDIAN_WIDTH


@dataclass
class Candidate:
    """One confirmation run: an LR trained for ``steps`` optimizer steps from the initial weights, and its score."""

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
        lrs, losses: the range-test sweep: the LR and training loss of each optimizer step (under gradient
            accumulation, the mean loss of the step's micro-batches).
        steps: optimizer steps spent in all (sweep and confirmation runs).
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
    flat: bool = False  # the sweep saw no fall at any LR (no suggestion)

    def fallback_bounds(self) -> tuple[float, float]:
        """A wide LR range to search when there is no suggestion: three decades below half the LR where the sweep
        blew up, or, when it never did, the top four decades below a tenth of the highest LR swept.

        Example:
            >>> LRRangeResult(None, "flat", [1e-7, 10.0], [1.0, 1.0], 60, diverged_at=1.0).fallback_bounds()
            (0.0005, 0.5)
        """
        top = self.diverged_at / 2 if self.diverged_at else max(self.lrs, default=10.0) / 10
        return (top / 1000, top) if self.diverged_at else (top / 10_000, top)

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
                   diverged_at=data.get("diverged_at"), scored_on=data.get("scored_on", "train_loss"),
                   flat=bool(data.get("flat", False)))

    def plot(self, ax: Any = None, title: str | None = None) -> Any:
        """A matplotlib figure: the sweep's loss against the LR (log axis), the confirmation runs and the
        suggestion."""
        import matplotlib.pyplot as plt  # here, not at the top: importing it costs the CLI's --help a second
        if ax is None:
            fig, ax = plt.subplots(figsize=(7, 5.2), dpi=110)
        else:
            fig = ax.figure
        lrs, losses = np.asarray(self.lrs), np.asarray(self.losses, dtype=float)
        finite = np.isfinite(losses)
        ax.plot(lrs[finite], losses[finite], color="#c7d3e3", lw=1, label="sweep: loss per step")
        if finite.sum() >= MEDIAN_WIDTH:  # the curve the sweep is read from: a centred median, no lag
            ax.plot(lrs[finite], median_filter(losses[finite], size=MEDIAN_WIDTH, mode="nearest"), color="#1f4e99",
                    lw=2, label=f"sweep: running median of {MEDIAN_WIDTH}")
        ok = [c for c in self.candidates if np.isfinite(c.score)]
        on = ax
        if ok:  # what decided the suggestion: each confirmation run and its score
            on = ax if self.scored_on == "train_loss" else ax.twinx()
            for rung, marker in ((0, "o"), (1, "s")):
                runs = [c for c in ok if c.rung == rung]
                if runs:
                    on.scatter([c.lr for c in runs], [c.score for c in runs], marker=marker, color="#e07b00",
                               zorder=3, s=26 if rung else 18,
                               label=f"confirmation runs, rung {rung + 1} ({self.scored_on})")
            final = sorted((c for c in ok if c.rung == max(x.rung for x in ok)), key=lambda c: c.lr)
            for i, c in enumerate(final):  # the scores the pick was made from, labelled apart (above, below)
                on.annotate(f"{c.score:.3g}", (c.lr, c.score), textcoords="offset points",
                            xytext=(5, 6 if i % 2 == 0 else -11), fontsize=7, color="#a35500")
            if on is not ax:
                on.set_ylabel(f"confirmation score ({self.scored_on})", color="#a35500", fontsize=8)
        if self.diverged_at:
            ax.axvline(self.diverged_at, color="#b22222", ls=":", lw=1.2, label=f"diverged at {self.diverged_at:.2g}")
        if self.suggestion is not None:
            from tunekit.lr_finder._range_test import TOLERANCE  # the rule lives with the algorithm

            ax.axvline(self.suggestion, color="#2a9d3a", lw=2,
                       label=f"suggestion {self.suggestion:.3g}: the lowest LR scoring within "
                             f"{TOLERANCE:.0%} of the best")
        if self.bounds:
            ax.axvspan(*self.bounds, color="#2a9d3a", alpha=0.08,
                       label=f"search bounds {self.bounds[0]:.2g} .. {self.bounds[1]:.2g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        clipped = ""
        if finite.any():  # frame the useful part: from the lowest loss to a little above where it started
            start = float(np.max(losses[finite][:10]))
            top = min(float(np.percentile(losses[finite], 95)), 1.5 * start)
            bottom = float(losses[finite].min())
            ax.set_ylim(bottom - 0.05 * (top - bottom), top + 0.1 * (top - bottom))
            if float(losses[finite].max()) > top + 0.1 * (top - bottom):
                clipped = f" (loss axis cut at {top:.3g}; the sweep reached {float(losses[finite].max()):.3g})"
        ax.set_title(title or (f"LR range test: {self.steps} optimizer steps" if self.suggestion else
                               f"LR range test: no suggestion ({self.reason})"), fontsize=10)
        ax.grid(alpha=0.3, which="both", lw=0.5)
        handles, labels = ax.get_legend_handles_labels()
        if on is not ax:
            more = on.get_legend_handles_labels()
            handles, labels = handles + more[0], labels + more[1]
        # below the axes, where it covers no point
        ax.legend(handles, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2,
                  frameon=False, title=clipped.strip(" ()") or None, title_fontsize=7)
        fig.tight_layout()
        return fig
