"""Run by test_ddp.py and the probe tests: a two-process CPU (gloo) DDP fit with the Diagnoser; each rank reports
as JSON.

    python ddp_fit.py OUT LR [EPOCHS] [PROBE_BUDGET] [auto]   (auto: Diagnoser(auto_remedy=True))
"""

import json
import sys
import warnings

import lightning.pytorch as pl

from tunekit.callbacks import Diagnoser
from tunekit.examples import MLP, DigitsDataModule

if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    out, lr = sys.argv[1], float(sys.argv[2])
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    budget = float(sys.argv[4]) if len(sys.argv) > 4 else 0.05
    auto = len(sys.argv) > 5 and sys.argv[5] == "auto"
    pl.seed_everything(0)
    d = Diagnoser(verbose=False, dirpath=out, probe_budget=budget, auto_remedy=auto)
    trainer = pl.Trainer(accelerator="cpu", strategy="ddp", devices=2, max_epochs=epochs, callbacks=[d], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(MLP(optimizer="sgd", lr=lr), datamodule=DigitsDataModule())
    report = {"rank": trainer.global_rank, "global_step": trainer.global_step, "codes": d.diagnosis.codes,
              "first_nonfinite_step": d.recorder.first_nonfinite_step,
              "first_remedy": d.diagnosis.findings[0].remedies[0].to_dict() if d.diagnosis.findings else None,
              "diagnosis": d.diagnosis.to_dict(), "probe_steps": d.probe_steps,
              "interventions": [e.to_dict() for e in d.interventions],
              "lr": trainer.optimizers[0].param_groups[0]["lr"], "clip": trainer.gradient_clip_val,
              "weights": [float(p.detach().double().sum()) for p in trainer.lightning_module.parameters()]}
    with open(f"{out}/rank{trainer.global_rank}.json", "w") as f:
        json.dump(report, f)
