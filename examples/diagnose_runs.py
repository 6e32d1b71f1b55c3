"""Diagnose two real training runs on sklearn's digits: a healthy one and a broken one.

    python examples/diagnose_runs.py

Each run trains an MLP with a ``Diagnoser`` attached, which writes ``diagnosis.json`` under the run's log
directory and prints the findings with their remedies, best first.
"""

from __future__ import annotations

import logging
import warnings

import lightning.pytorch as pl
from rich.console import Console

from tunekit.callbacks import Diagnoser
from tunekit.examples import MLP, DigitsDataModule

RUNS = {
    "healthy: Adam at lr 1e-3": {"optimizer": "adam", "lr": 1e-3},
    "broken: SGD at lr 50": {"optimizer": "sgd", "lr": 50.0},
    "broken: a deep linear network from a small init (Saxe et al. 2014)": {
        "hidden": (32,) * 6, "activation": "identity", "init_std": 0.05, "optimizer": "sgd", "lr": 0.05},
}


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    console = Console()
    for title, settings in RUNS.items():
        console.rule(f"[bold]{title}")
        pl.seed_everything(0, verbose=False)
        diagnoser = Diagnoser(verbose=False)
        trainer = pl.Trainer(max_epochs=8, callbacks=[diagnoser], enable_progress_bar=False,
                             enable_model_summary=False, default_root_dir="lightning_logs/examples")
        trainer.fit(MLP(**settings), datamodule=DigitsDataModule())
        console.print(diagnoser.diagnosis)
        console.print(f"trained {trainer.global_step} steps; diagnosis written to {diagnoser.saved_path}\n")


if __name__ == "__main__":
    main()
