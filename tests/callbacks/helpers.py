"""Real Trainer runs on sklearn's digits for the callback tests."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from tunekit.examples import MLP, DigitsDataModule


def fit(tmp_path, model_kwargs: dict[str, Any], callbacks: list, *, epochs: int = 5, data: dict | None = None,
        seed: int = 0, **trainer_kwargs: Any) -> pl.Trainer:
    pl.seed_everything(seed, verbose=False)
    trainer_kwargs.setdefault("logger", False)
    trainer_kwargs.setdefault("enable_checkpointing", False)
    trainer = pl.Trainer(max_epochs=epochs, callbacks=callbacks, default_root_dir=tmp_path,
                         enable_progress_bar=False, enable_model_summary=False, **trainer_kwargs)
    trainer.fit(MLP(**model_kwargs), datamodule=DigitsDataModule(seed=seed, **(data or {})))
    return trainer
