"""Run by test_ddp.py: a two-process CPU (gloo) DDP fit with the Diagnoser; rank zero reports as JSON."""

import json
import sys
import warnings

import lightning.pytorch as pl

from tunekit.callbacks import Diagnoser
from tunekit.examples import MLP, DigitsDataModule

if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    out, lr = sys.argv[1], float(sys.argv[2])
    pl.seed_everything(0)
    d = Diagnoser(verbose=False, dirpath=out)
    trainer = pl.Trainer(accelerator="cpu", strategy="ddp", devices=2, max_epochs=4, callbacks=[d], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(MLP(optimizer="sgd", lr=lr), datamodule=DigitsDataModule())
    report = {"rank": trainer.global_rank, "global_step": trainer.global_step, "codes": d.diagnosis.codes,
              "first_nonfinite_step": d.recorder.first_nonfinite_step,
              "first_remedy": d.diagnosis.findings[0].remedies[0].to_dict() if d.diagnosis.findings else None}
    with open(f"{out}/rank{trainer.global_rank}.json", "w") as f:
        json.dump(report, f)
