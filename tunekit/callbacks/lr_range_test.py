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

    Args:
        **kwargs: passed to ``lr_range_test`` (``max_steps``, ``min_lr``, ``max_lr``, ``monitor``, ...).

    Example:
        >>> trainer = pl.Trainer(max_epochs=10, callbacks=[LRRangeTest(max_steps=300)])  # doctest: +SKIP
    """

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.result: LRRangeResult | None = None

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
        try:
            self.result = lr_range_test(pl_module, **data, **self.kwargs)
        finally:
            if datamodule is not None:
                datamodule.trainer = owner
        suggestion = self.result.suggestion
        if suggestion is None:
            rank_zero_warn(f"tunekit: no LR suggestion ({self.result.reason}); training with the module's own LR.")
            return
        set_lr(pl_module, suggestion)
        rank_zero_info(f"tunekit: LR range test suggests {suggestion:.3g} ({self.result.steps} steps); "
                       "training with it")


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
