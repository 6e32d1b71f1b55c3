"""One-cycle training seeded by the LR range test: the test's suggestion is the cycle's peak (the way fastai's
``lr_find`` feeds ``fit_one_cycle``), against a constant LR at the same suggestion, with the plot saved.

    python examples/one_cycle.py [--out one_cycle.png]

A small CNN on sklearn's digits with plain SGD and momentum, 8 epochs (184 steps). The figure shows the range
test, the two LR schedules, and the validation loss of both runs.
"""

from __future__ import annotations

import argparse
import logging
import warnings

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from tunekit import lr_range_test
from tunekit.examples import DigitsCNN, DigitsDataModule

EPOCHS = 8


class ValLog(Callback):
    def __init__(self) -> None:
        self.steps: list[int] = []
        self.vals: list[float] = []
        self.lrs: list[tuple[int, float]] = []

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer) -> None:
        self.lrs.append((trainer.global_step, optimizer.param_groups[0]["lr"]))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.steps.append(trainer.global_step)
            self.vals.append(float(trainer.callback_metrics["val_loss"]))


def fit(lr: float, schedule: str) -> ValLog:
    pl.seed_everything(0, verbose=False)
    model = DigitsCNN(optimizer="sgd", lr=lr, momentum=0.9)
    model.recipe = model.recipe.replace(schedule=schedule)
    log = ValLog()
    pl.Trainer(max_epochs=EPOCHS, callbacks=[log], logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False).fit(model, datamodule=DigitsDataModule())
    return log


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="one_cycle.png")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    data = DigitsDataModule()
    data.setup()
    result = lr_range_test(DigitsCNN(optimizer="sgd", lr=0.01, momentum=0.9), datamodule=data, progress=True)
    peak = result.suggestion
    if peak is None:
        raise SystemExit(f"no suggestion: {result.reason}")
    runs = {"one-cycle, peak at the suggestion": fit(peak, "one_cycle"),
            "constant at the suggestion": fit(peak, "constant")}
    for name, log in runs.items():
        print(f"{name:<36} final val_loss {log.vals[-1]:.4f} (best {min(log.vals):.4f})")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.4), dpi=100)
    result.plot(ax=axes[0], title=f"LR range test: suggestion {peak:.3g}")
    for name, log in runs.items():
        axes[1].plot(*zip(*log.lrs, strict=True), label=name)
        axes[2].plot(log.steps, log.vals, marker="o", label=name)
    axes[1].set(xlabel="step", ylabel="learning rate", title="schedules")
    axes[2].set(xlabel="step", ylabel="val_loss", yscale="log", title="validation loss")
    for ax in axes[1:]:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"plot saved to {args.out}")


if __name__ == "__main__":
    main()
