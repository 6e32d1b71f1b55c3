"""Run by test_ddp.py and the probe tests: a two-process CPU (gloo) DDP fit with the Diagnoser; each rank reports
as JSON.

    python ddp_fit.py OUT LR [EPOCHS] [PROBE_BUDGET] [MODE]

MODE: ``auto`` (Diagnoser(auto_remedy=True)); ``ranks`` (replicas compared every 10 steps); ``desync`` (the same,
and rank 1 adds noise to the first weight after step 15, under torch.no_grad(), as a rank-dependent edit would).
"""

import json
import sys
import warnings

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from tunekit.callbacks import Diagnoser
from tunekit.examples import MLP, DigitsDataModule

DESYNC_STEP = 15


class Desync(Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_rank == 1 and trainer.global_step == DESYNC_STEP:
            with torch.no_grad():
                weight = next(pl_module.parameters())
                weight.add_(1e-3 * torch.randn_like(weight))


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    out, lr = sys.argv[1], float(sys.argv[2])
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    budget = float(sys.argv[4]) if len(sys.argv) > 4 else 0.05
    mode = sys.argv[5] if len(sys.argv) > 5 else ""
    pl.seed_everything(0)
    d = Diagnoser(verbose=False, dirpath=out, probe_budget=budget, auto_remedy=mode == "auto",
                  rank_check_every=10 if mode in ("ranks", "desync") else 100)
    callbacks = [d, Desync()] if mode == "desync" else [d]
    trainer = pl.Trainer(accelerator="cpu", strategy="ddp", devices=2, max_epochs=epochs, callbacks=callbacks,
                         logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(MLP(optimizer="sgd", lr=lr), datamodule=DigitsDataModule())
    report = {"rank": trainer.global_rank, "global_step": trainer.global_step, "codes": d.diagnosis.codes,
              "first_nonfinite_step": d.recorder.first_nonfinite_step,
              "first_remedy": d.diagnosis.findings[0].remedies[0].to_dict() if d.diagnosis.findings else None,
              "diagnosis": d.diagnosis.to_dict(), "probe_steps": d.probe_steps,
              "interventions": [e.to_dict() for e in d.interventions],
              "rank_checks": d._pipeline.values.rank_checks, "one_batch_steps": d._pipeline.values.probe_steps,
              "first_parameter": next(n for n, _ in trainer.lightning_module.named_parameters()),
              "lr": trainer.optimizers[0].param_groups[0]["lr"], "clip": trainer.gradient_clip_val,
              "weights": [float(p.detach().double().sum()) for p in trainer.lightning_module.parameters()]}
    with open(f"{out}/rank{trainer.global_rank}.json", "w") as f:
        json.dump(report, f)
