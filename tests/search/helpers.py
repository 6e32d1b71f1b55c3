import uuid
from pathlib import Path

import yaml

BASE = {
    "model": {"class_path": "tunekit.examples.MLP", "init_args": {"hidden": [32]}},
    "data": {"class_path": "tunekit.examples.DigitsDataModule", "init_args": {"batch_size": 64}},
    "trainer": {"max_epochs": 2, "limit_train_batches": 10, "limit_val_batches": 2},
    "monitor": "val_loss",
    "search": {"optimizer": ["adamw", "sgd"], "lr": [1e-3, 1e-1], "weight_decay": [1e-6, 1e-2],
               "batch_size": [32, 64]},
}


def write_config(folder: Path, **changes) -> Path:
    config = {**BASE, **changes}
    config = {k: v for k, v in config.items() if v is not None}
    path = folder / f"cfg_{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
