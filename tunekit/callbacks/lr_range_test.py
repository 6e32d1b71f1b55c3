"""The LR range test as a callback: find the LR at the start of the fit, then train with it."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.parsing import lightning_hasattr, lightning_setattr

from tunekit.lr_finder import LRRangeResult, lr_range_test
from tunekit.utilities.lightning import fit_train_loaders


class LRRangeTest(Callback):
    """Runs ``tunekit.lr_range_test`` when the fit starts and trains with the suggestion (like Lightning's
    ``LearningRateFinder``).

    The suggestion goes where the module keeps its LR: ``recipe.lr`` (a ``Recipe``), else ``lr`` or
    ``learning_rate`` as Lightning's own LR finder looks for them (on the module, in ``hparams``, on the data
    module). Without a suggestion the module is left as it was and the reason is logged.

    Args (as for ``lr_range_test``; typed, so LightningCLI configs can set them):
        min_lr, max_lr: the range swept.
        max_steps: training steps the whole test may take.
        sweep_steps: steps of each sweep.
        The test's runs take the fit's gradient accumulation, clipping and precision, so its steps are the fit's
        optimizer steps.
        monitor: the validation metric the test's short runs compare.
        seed: the seed of the test's short runs.

    Example:
        >>> trainer = pl.Trainer(max_epochs=10, callbacks=[LRRangeTest(max_steps=300)])  # doctest: +SKIP
    """

    def __init__(self, *, min_lr: float = 1e-7, max_lr: float = 10.0, max_steps: int = 300, sweep_steps: int = 60,
                 monitor: str = "val_loss", seed: int = 0) -> None:
        self.kwargs: dict[str, Any] = {"min_lr": min_lr, "max_lr": max_lr, "max_steps": max_steps,
                                       "sweep_steps": sweep_steps, "monitor": monitor,
                                       "seed": seed}
        self.result: LRRangeResult | None = None
        self.ran_here = False  # this process ran the test (rank zero); the other ranks received its result

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or self.result is not None:
            return
        datamodule = trainer.datamodule  # type: ignore[attr-defined]
        data: dict[str, Any]
        if datamodule is not None:
            data = {"datamodule": datamodule}
        else:  # loaders passed to fit()
            data = {"train_dataloaders": fit_train_loaders(trainer)}
        owner = getattr(datamodule, "trainer", None)
        kwargs = dict(self.kwargs)
        kwargs["trainer_kwargs"] = same_steps(trainer)
        result: LRRangeResult | None = None
        if trainer.is_global_zero:  # under DDP rank zero runs the test (on one device) and the others take its pick
            try:
                result = lr_range_test(pl_module, **data, **kwargs)
            finally:
                if datamodule is not None:
                    datamodule.trainer = owner
            self.ran_here = True
        if trainer.world_size > 1:
            shared: dict[str, Any] = trainer.strategy.broadcast(result.to_dict() if result is not None else {}, src=0)
            result = LRRangeResult.from_dict(shared)
        assert result is not None
        self.result = result
        suggestion = self.result.suggestion
        if suggestion is None:
            rank_zero_warn(f"tunekit: no LR suggestion ({self.result.reason}); training with the module's own LR.")
            return
        set_lr(pl_module, suggestion)
        rank_zero_info(f"tunekit: LR range test suggests {suggestion:.3g} ({self.result.steps} steps); "
                       "training with it")


def same_steps(trainer: pl.Trainer) -> dict[str, Any]:
    """The Trainer settings that make the test's optimizer steps those of the fit: the accumulation (a step of 8
    micro-batches is a different step from one of 1), the clipping and the precision."""
    return {"accumulate_grad_batches": trainer.accumulate_grad_batches, "gradient_clip_val": trainer.gradient_clip_val,
            "gradient_clip_algorithm": trainer.gradient_clip_algorithm, "precision": trainer.precision}


def set_lr(module: Any, lr: float) -> None:
    """Put ``lr`` where the module keeps its learning rate: its ``recipe``, else ``lr``/``learning_rate`` wherever
    Lightning's ``lightning_setattr`` finds them."""
    recipe = getattr(module, "recipe", None)
    if recipe is not None and hasattr(recipe, "replace"):
        module.recipe = recipe.replace(lr=lr)
        return
    for name in ("lr", "learning_rate"):
        if lightning_hasattr(module, name):
            lightning_setattr(module, name, lr)
            return
    raise AttributeError(f"{type(module).__name__} keeps its LR in no attribute tunekit knows (recipe, lr, "
                         "learning_rate): read LRRangeTest.result.suggestion and set it yourself.")
