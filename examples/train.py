"""A plain LightningCLI script: tunekit is added from the command line with the config fragments in ``callbacks/``,
and nothing in the code knows about it.

    python examples/train.py fit --config callbacks/diagnose.yaml
    python examples/train.py fit --config examples/train.yaml --config callbacks/lr_range_test.yaml
    python examples/train.py fit --model lightning.pytorch.demos.boring_classes.BoringModel \
        --data lightning.pytorch.demos.boring_classes.BoringDataModule --config callbacks/diagnose.yaml

Without ``--config examples/train.yaml`` the model and data default to it (an MLP on sklearn's digits).
"""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

DEFAULTS = Path(__file__).with_name("train.yaml")
SUBCOMMANDS = ("fit", "validate", "test", "predict")


def main(args: list[str] | None = None) -> LightningCLI:
    defaults = {sub: {"default_config_files": [str(DEFAULTS)]} for sub in SUBCOMMANDS}
    return LightningCLI(LightningModule, LightningDataModule, subclass_mode_model=True, subclass_mode_data=True,
                        parser_kwargs=defaults, args=args, save_config_kwargs={"overwrite": True})


if __name__ == "__main__":
    main()
