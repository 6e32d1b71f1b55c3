"""The Diagnoser's pipeline checks over the diagnosis zoo: false alarms on the zoo's runs as they are, and each
pipeline fault injected into every family, named (with the object at fault) or missed.

Each run is the zoo's spec (``benchmarks/zoo/spec.py``, one seed of every family and cause) fitted for its first
``STEPS`` optimizer steps (one epoch of ``STEPS`` batches; the checks decide within 8 steps), with probes off. The
faults, injected without touching the model's code:

* ``no_gradient``: an extra ``nn.Linear`` registered on the module and never called (named ``aux.weight``);
* ``not_in_optimizer``: the module's last parameter taken out of the optimizer's param groups;
* ``gradients_never_cleared``: an ``optimizer_zero_grad`` override that does nothing;
* ``repeated_batch``: a training loader whose dataset returns its first item for every index;
* ``eval_mode``: the module put in eval mode before the fit (only where it holds BatchNorm or dropout; the count of
  families where the mode does not matter is printed);
* ``schedule_interval``: a OneCycleLR over the planned steps returned without ``"interval": "step"``;
* ``input_scale``: one feature column of a 1-D-per-sample float input (the first sample's largest) multiplied by
  1000, as an unscaled raw feature would be (not applicable to images, sequences or token ids).

The one-batch fit (it needs a stall of 80 steps) and the DDP replica check (several processes) are not run here:
their real-fit tests are ``tests/callbacks/test_pipeline_values.py`` and ``tests/callbacks/test_ddp.py``.

    python benchmarks/pipeline_faults.py
"""

from __future__ import annotations

import logging
import sys
import types
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).parent / "zoo"))

from execute import build  # noqa: E402
from spec import FAMILIES, plan  # noqa: E402

from tunekit.callbacks import Diagnoser  # noqa: E402
from tunekit.signals._pipeline import eval_mode_modules  # noqa: E402

STEPS = 12  # optimizer steps per fit: past every check's window
FAULTS = ("no_gradient", "not_in_optimizer", "gradients_never_cleared", "repeated_batch", "eval_mode",
          "schedule_interval", "input_scale")
RAW_SCALE = 1000.0  # the injected column's factor: raw features in the hundreds or thousands (breast cancer's area)


class FirstItem(Dataset):
    def __init__(self, data: Any) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        return self.data[0]


class OneColumnScaled(Dataset):
    def __init__(self, data: Any, column: int) -> None:
        self.data, self.column = data, column

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        x, *rest = self.data[index]
        x = x.clone()
        x[self.column] *= RAW_SCALE
        return (x, *rest)


def _optimizer(out: Any) -> torch.optim.Optimizer:
    return out["optimizer"] if isinstance(out, dict) else out


def inject(fault: str, model: pl.LightningModule, dm: pl.LightningDataModule) -> str | None:
    """Inject ``fault``; returns the name the finding should hold, or None where the fault does not apply."""
    if fault == "no_gradient":
        model.add_module("aux", nn.Linear(4, 4))
        return "aux.weight"
    if fault == "not_in_optimizer":
        name, last = list(model.named_parameters())[-1]
        original = model.configure_optimizers

        def configure_without_last(self: Any) -> Any:
            out = original()
            for group in _optimizer(out).param_groups:
                group["params"] = [p for p in group["params"] if p is not last]
            return out

        model.configure_optimizers = types.MethodType(configure_without_last, model)  # type: ignore[method-assign]
        return name
    if fault == "gradients_never_cleared":
        model.optimizer_zero_grad = lambda *args, **kwargs: None  # type: ignore[method-assign]
        return "gradients are never cleared"
    if fault == "repeated_batch":
        loader = dm.train_dataloader

        def repeating() -> DataLoader:
            real = loader()
            return DataLoader(FirstItem(real.dataset), batch_size=real.batch_size, shuffle=True)

        dm.train_dataloader = repeating  # type: ignore[method-assign]
        return "same batch every step"
    if fault == "eval_mode":
        model.eval()
        (found,) = eval_mode_modules(model, type(model).__name__)
        return type(model).__name__ if found["affected"] else None
    if fault == "schedule_interval":
        original = model.configure_optimizers

        def one_cycle(self: Any) -> Any:
            optimizer = _optimizer(original())
            for group in optimizer.param_groups:
                group.pop("initial_lr", None)
            steps = self.trainer.estimated_stepping_batches
            lr = optimizer.param_groups[0]["lr"]
            return {"optimizer": optimizer,
                    "lr_scheduler": torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)}

        model.configure_optimizers = types.MethodType(one_cycle, model)  # type: ignore[method-assign]
        return "OneCycleLR"
    if fault == "input_scale":
        loader = dm.train_dataloader
        x = loader().dataset[0][0]
        if not (isinstance(x, torch.Tensor) and x.is_floating_point() and x.ndim == 1):
            return None
        column = int(x.abs().argmax())

        def scaled() -> DataLoader:
            real = loader()
            return DataLoader(OneColumnScaled(real.dataset, column), batch_size=real.batch_size, shuffle=True)

        dm.train_dataloader = scaled  # type: ignore[method-assign]
        return f": {column} ("
    raise ValueError(fault)


def fit(spec: Any, fault: str | None) -> tuple[Any, str | None]:
    pl.seed_everything(spec.seed, verbose=False)
    model, dm, args = build(spec)
    expect = inject(fault, model, dm) if fault else None
    if fault and expect is None:
        return None, None
    args = {k: v for k, v in args.items() if k != "max_steps"}
    d = Diagnoser(verbose=False, save=False, probes=False, stop_on_critical=False)
    trainer = pl.Trainer(callbacks=[d], logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=1,
                         **{**args, "max_epochs": 1, "limit_train_batches": STEPS})
    trainer.fit(model, datamodule=dm)
    return d.diagnosis.get("pipeline_fault"), expect


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    specs = plan(seeds=1)
    alarms = [(s.family, s.cause, f.message) for s in specs if (f := fit(s, None)[0]) is not None]
    print(f"zoo runs as they are: {len(specs)} ({Counter(s.cause for s in specs)['healthy']} healthy), "
          f"{len(alarms)} with a pipeline_fault")
    for alarm in alarms:
        print("  false alarm:", *alarm)
    healthy = {s.family: s for s in specs if s.cause == "healthy"}
    for fault in FAULTS:
        named, missed, not_applicable = 0, [], 0
        for family in FAMILIES:
            finding, expect = fit(healthy[family], fault)
            if expect is None:
                not_applicable += 1
                continue
            checks = [f["check"] for f in finding.evidence["faults"]] if finding else []
            if fault in checks and expect in finding.message:
                named += 1
            else:
                missed.append((family, checks))
        total = named + len(missed)
        print(f"{fault}: named {named}/{total}" + (f" (not applicable: {not_applicable})" if not_applicable else "")
              + "".join(f"; missed {family}: {checks}" for family, checks in missed))


if __name__ == "__main__":
    main()
