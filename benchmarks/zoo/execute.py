"""One zoo fit: build the model and data of a ``Spec``, fit it with the ``Diagnoser``, and keep what scoring needs
(the recorded series, the run's settings, the probes' outcomes, the final validation loss)."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import warnings
from typing import Any

import lightning.pytorch as pl
import torch

from tunekit.callbacks import Diagnoser
from tunekit.examples import (
    MLP,
    BreastCancerDataModule,
    CharTransformer,
    DiabetesDataModule,
    DigitsCNN,
    DigitsDataModule,
    IrisDataModule,
    PythonSourceDataModule,
    SequenceSumDataModule,
    WineDataModule,
)

try:
    from .models import AutoEncoder, ResMLP, SeqRNN
    from .spec import Spec
except ImportError:  # run as a script from this folder
    from models import AutoEncoder, ResMLP, SeqRNN  # type: ignore[no-redef]
    from spec import Spec  # type: ignore[no-redef]

DATA = {"digits": DigitsDataModule, "digits_seq": DigitsDataModule, "wine": WineDataModule,
        "breast_cancer": BreastCancerDataModule, "iris": IrisDataModule, "diabetes": DiabetesDataModule,
        "seqsum": SequenceSumDataModule}
TEXT = {"context": 32, "train_windows": 2048, "val_windows": 256}  # a small char LM: 64 steps per epoch at batch 32


def build(spec: Spec) -> tuple[pl.LightningModule, pl.LightningDataModule, dict[str, Any]]:
    """The module, the data module and the Trainer arguments of a spec."""
    recipe = dict(spec.recipe)
    data_args = {k: v for k, v in spec.data.items() if v is not None}
    if spec.dataset == "text":
        dm: Any = PythonSourceDataModule(seed=spec.seed, batch_size=data_args.get("batch_size", 32), **TEXT)
        model: pl.LightningModule = CharTransformer(vocab_size=dm.vocab_size, context=TEXT["context"], d_model=32,
                                                    n_layers=2, n_heads=2, weight_decay=0.0, **spec.model)
        model.recipe = model.recipe.replace(**recipe)  # type: ignore[assignment]
        per_epoch = math.ceil(TEXT["train_windows"] / dm.batch_size)
    else:
        nan_rows = data_args.pop("nan_rows", None)
        dm = DATA[spec.dataset](seed=spec.seed, **data_args)
        dm.setup()
        if nan_rows:
            _poison(dm, int(nan_rows), spec.seed)
        n_in, n_out, task = dm.num_features, dm.num_outputs, dm.task
        knobs = {k: v for k, v in spec.model.items() if v is not None}
        if spec.model.get("init_std", 0) is None:
            knobs.pop("init_std", None)
        if spec.family in ("mlp", "deep_linear", "linear"):
            hidden = tuple(knobs.pop("hidden", (64,)))
            model = MLP(in_features=n_in, out_features=n_out, task=task, hidden=hidden, **knobs)
            model.recipe = model.recipe.replace(**recipe)  # type: ignore[assignment]
        elif spec.family == "cnn":
            model = DigitsCNN(**{k: v for k, v in knobs.items() if k != "init_scale"})
            model.recipe = model.recipe.replace(**recipe)  # type: ignore[assignment]
        elif spec.family == "rnn":
            steps = 8 if spec.dataset == "digits_seq" else dm.length
            model = SeqRNN(n_in, n_out, task, steps=steps, cell="gru" if spec.seed % 2 == 0 else "lstm", **knobs,
                           **recipe)
        elif spec.family == "resmlp":
            knobs.setdefault("norm", "layer" if spec.seed % 2 == 0 else "batch")
            model = ResMLP(n_in, n_out, task, **knobs, **recipe)
        elif spec.family == "autoencoder":
            model = AutoEncoder(n_in, **knobs, **recipe)
        else:
            raise ValueError(f"unknown family {spec.family!r}")
        per_epoch = math.ceil(len(dm.train_set) / dm.batch_size)
    epochs = max(1, math.ceil(spec.steps / per_epoch))
    # ~8-12 validations whatever the epoch length (the generalization-gap rule needs a few)
    every = max(1, epochs // 10)
    trainer_args = {"max_epochs": epochs, "max_steps": spec.steps, "check_val_every_n_epoch": every,
                    **({"gradient_clip_val": recipe["gradient_clip_val"]} if recipe.get("gradient_clip_val") else {})}
    return model, dm, trainer_args


def _poison(dm: Any, rows: int, seed: int) -> None:
    """One NaN cell in each of ``rows`` training rows (spread over the table, a column drawn by the seed)."""
    x = dm.train_set.tensors[0]
    picked = torch.linspace(0, len(x) - 1, rows + 2)[1:-1].long()
    x[picked, seed % x.shape[1]] = float("nan")


def _val(trainer: pl.Trainer) -> float:
    value = trainer.callback_metrics.get("val_loss")
    value = float(value) if value is not None else math.inf
    return value if math.isfinite(value) else math.inf


def execute(spec: Spec, probes: bool = True, stop_on_critical: bool = True,
            auto_remedy: bool = False) -> dict[str, Any]:
    """Fit ``spec`` with a ``Diagnoser``; the result is JSON-ready."""
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    pl.seed_everything(spec.seed, verbose=False)
    model, dm, trainer_args = build(spec)
    d = Diagnoser(verbose=False, save=False, probes=probes, stop_on_critical=stop_on_critical, auto_remedy=auto_remedy)
    trainer = pl.Trainer(callbacks=[d], logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, **trainer_args)
    started = time.time()
    trainer.fit(model, datamodule=dm)
    record = d.recorder.record()
    vals = [v for v in record.val_loss.tolist() if math.isfinite(v)]
    return {
        "spec": spec.to_dict(), "key": spec.key(), "val": _val(trainer), "best_val": min(vals) if vals else math.inf,
        "steps": trainer.global_step, "seconds": round(time.time() - started, 2),
        "initial_loss": record.initial_loss, "diagnosis": d.diagnosis.to_dict(),
        "record": record.to_dict(), "context": dataclasses.asdict(d._context),
        "probes": d._prober.state_dict(), "probe_steps": d.probe_steps,
        "interventions": [e.to_dict() for e in d.interventions],
    }
