"""Run by test_range_test.py: the LRRangeTest callback in a two-process CPU (gloo) DDP fit; each rank reports its
suggestion, the LR it trained with and whether it ran the test itself.

    python ddp_range_test.py OUT
"""

import json
import sys
import warnings

import lightning.pytorch as pl

from tunekit.callbacks import LRRangeTest
from tunekit.examples import MLP, DigitsDataModule

if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    out = sys.argv[1]
    pl.seed_everything(0)
    finder = LRRangeTest(max_steps=120, sweep_steps=40)
    trainer = pl.Trainer(accelerator="cpu", strategy="ddp", devices=2, max_epochs=1, callbacks=[finder], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    model = MLP(optimizer="adamw", lr=1e-5)
    trainer.fit(model, datamodule=DigitsDataModule())
    report = {"rank": trainer.global_rank, "suggestion": finder.result.suggestion, "ran_here": finder.ran_here,
              "trained_lr": trainer.optimizers[0].param_groups[0]["lr"], "recipe_lr": model.recipe.lr}
    with open(f"{out}/rank{trainer.global_rank}.json", "w") as f:
        json.dump(report, f)
