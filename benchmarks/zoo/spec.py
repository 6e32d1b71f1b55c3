"""The zoo's generator: model families, their known-good recipes, and runs with one cause of trouble injected.

A ``Spec`` is one fit, described by plain data (so it hashes, caches and travels to worker processes). ``sample``
draws labelled runs: a family, a data set, a seed and nuisance settings (batch size, optimizer, depth, width,
raw or normalized inputs), and a cause injected by a sampled parameter (an LR far above or below the family's
good one, a small init, saturating activations, a tiny training set, a constant LR at a noise floor, no warmup
on a post-LN transformer; SGD momentum near 1, BatchNorm on tiny batches, NaN cells in the data; weight decay far too
strong, clipping far too tight, an LR schedule that decays early, a warmup over most of the plan), or none (healthy).
Every cause has a control: the same fit with the cause removed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STEPS = 600  # optimizer steps a zoo fit is planned for (long enough for the default 5% probe budget to fork)
GOOD_LRS = Path(__file__).with_name("good_lrs.json")  # measured by calibrate.py: the best LR of a grid per family,
# data set and optimizer (the priors in FAMILIES are only the grid's centres)

# cause -> the finding codes that name it (the pathology class), and the remedies that are among its fixes
CAUSES: dict[str, dict[str, tuple[str, ...]]] = {
    "healthy": {"findings": (), "fixes": ()},
    # a too-high LR shows as a blow-up, spikes, swings, or (Adam, clipping, LayerNorm) a high noise floor
    "lr_high": {"findings": ("divergence", "exploding_gradients", "oscillation", "early_instability", "plateau"),
                "fixes": ("lower_lr", "clip_gradients", "decay_lr")},
    "lr_low": {"findings": ("slow_convergence",), "fixes": ("raise_lr", "switch_optimizer")},
    "saddle": {"findings": ("saddle_stall",), "fixes": ("change_init", "raise_momentum", "raise_lr")},
    "vanishing": {"findings": ("vanishing_gradients",),
                  "fixes": ("change_architecture", "change_init", "switch_optimizer")},
    "overfit": {"findings": ("generalization_gap",), "fixes": ("early_stop", "add_weight_decay", "switch_to_sgd")},
    "noise_floor": {"findings": ("plateau",), "fixes": ("decay_lr", "lower_lr", "raise_batch_size")},
    "no_warmup": {"findings": ("early_instability", "exploding_gradients", "divergence"),
                  "fixes": ("add_warmup", "lower_lr", "clip_gradients")},
    # causes that are not the LR (issue 23): the LR remedy is the wrong answer for them
    "momentum_high": {"findings": ("divergence", "exploding_gradients", "oscillation", "early_instability"),
                      "fixes": ("lower_momentum",)},
    "bn_tiny_batch": {"findings": ("exploding_gradients", "oscillation", "divergence", "early_instability",
                                   "plateau"),
                      "fixes": ("raise_batch_size", "change_architecture")},
    "nan_rows": {"findings": ("data_fault",), "fixes": ("check_pipeline",)},
    # settings that hold the step down or the weights back (issue 23, the second round): the run learns slowly
    # weights held small also pass a vanishing gradient back, or (behind normalization) take larger effective steps
    "wd_high": {"findings": ("slow_convergence", "plateau", "vanishing_gradients", "exploding_gradients",
                             "oscillation"), "fixes": ("lower_weight_decay",)},
    "clip_tight": {"findings": ("slow_convergence", "plateau"), "fixes": ("loosen_clipping",)},
    "decay_early": {"findings": ("slow_convergence", "plateau"), "fixes": ("postpone_decay",)},
    "warmup_long": {"findings": ("slow_convergence", "plateau"), "fixes": ("shorten_warmup",)},
}
NOT_LR = ("momentum_high", "bn_tiny_batch", "nan_rows")  # the causes added for issue 23
SETTINGS = ("wd_high", "clip_tight", "decay_early", "warmup_long")  # ... and in its second round


@dataclass(frozen=True)
class Family:
    name: str
    model: str  # builder name in run.py
    datasets: tuple[str, ...]
    good: dict[str, dict[str, Any]]  # optimizer -> the known-good recipe (lr, momentum, ...)
    knobs: dict[str, Any] = field(default_factory=dict)  # model arguments
    causes: tuple[str, ...] = ("healthy", "lr_high", "lr_low")


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("mlp", "mlp", ("digits", "wine", "breast_cancer", "iris"),
           {"adam": {"lr": 3e-3}, "sgd": {"lr": 0.05, "momentum": 0.9}}, {"hidden": [64, 64]},
           ("healthy", "lr_high", "lr_low", "vanishing", "overfit", "noise_floor", "momentum_high", "nan_rows",
            *SETTINGS)),
    Family("cnn", "cnn", ("digits",), {"adam": {"lr": 3e-3}, "sgd": {"lr": 0.05, "momentum": 0.9}}, {},
           ("healthy", "lr_high", "lr_low", "overfit", "momentum_high", *SETTINGS)),
    Family("rnn", "rnn", ("digits_seq", "seqsum"), {"adam": {"lr": 3e-3}, "sgd": {"lr": 0.1, "momentum": 0.9}},
           {"hidden": 32}, ("healthy", "lr_high", "lr_low", "overfit", "momentum_high", *SETTINGS)),
    Family("transformer_pre", "transformer", ("text",), {"adamw": {"lr": 3e-3}}, {"norm_first": True},
           ("healthy", "lr_high", "lr_low", "wd_high", "decay_early", "warmup_long")),
    Family("transformer_post", "transformer", ("text",), {"adamw": {"lr": 1e-3, "warmup_steps": 60}},
           {"norm_first": False}, ("healthy", "lr_high", "lr_low", "no_warmup")),
    Family("deep_linear", "mlp", ("digits", "diabetes"), {"sgd": {"lr": 0.02, "momentum": 0.9}, "adam": {"lr": 1e-3}},
           {"activation": "identity"}, ("healthy", "lr_high", "lr_low", "saddle")),
    Family("resmlp", "resmlp", ("digits", "wine"), {"adam": {"lr": 2e-3}, "sgd": {"lr": 0.05, "momentum": 0.9}},
           {"width": 64, "blocks": 3},
           ("healthy", "lr_high", "lr_low", "overfit", "momentum_high", "bn_tiny_batch", "nan_rows", *SETTINGS)),
    Family("linear", "mlp", ("breast_cancer", "iris", "diabetes"),
           {"sgd": {"lr": 0.1, "momentum": 0.0}, "adam": {"lr": 1e-2}}, {"hidden": []},
           ("healthy", "lr_high", "lr_low", "noise_floor", "nan_rows", "wd_high", "clip_tight", "decay_early")),
    Family("autoencoder", "autoencoder", ("digits",), {"adam": {"lr": 3e-3}, "sgd": {"lr": 0.05, "momentum": 0.9}},
           {"hidden": 32, "bottleneck": 8},
           ("healthy", "lr_high", "lr_low", "saddle", "nan_rows", *SETTINGS)),
)}


@dataclass(frozen=True)
class Spec:
    """One fit. ``cause`` is what was injected; ``control`` the same fit with it removed (None for healthy)."""

    family: str
    dataset: str
    cause: str
    seed: int
    recipe: dict[str, Any]
    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    steps: int = STEPS
    control: dict[str, Any] | None = None  # the fields that differ in the control
    role: str = "run"  # "run", "control", or "remedy"

    def key(self) -> str:
        return hashlib.sha1(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def as_control(self) -> Spec | None:
        if self.control is None:
            return None
        changes = self.control
        return dataclasses.replace(self, cause="healthy", control=None, role="control",
                                   recipe={**self.recipe, **changes.get("recipe", {})},
                                   model={**self.model, **changes.get("model", {})},
                                   data={**self.data, **changes.get("data", {})})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return float(f"{math.exp(rng.uniform(math.log(low), math.log(high))):.3g}")


def good_lr(family: Family, dataset: str, optimizer: str) -> float:
    """The calibrated best LR (``calibrate.py``), or the family's prior before calibration."""
    measured = json.loads(GOOD_LRS.read_text()) if GOOD_LRS.exists() else {}
    return float(measured.get(family.name, {}).get(dataset, {}).get(optimizer, family.good[optimizer]["lr"]))


def sample(family: Family, cause: str, seed: int) -> Spec:
    """A run of ``family`` with ``cause`` injected, nuisance settings drawn with ``seed``."""
    rng = random.Random(f"{family.name}/{cause}/{seed}")
    dataset = rng.choice(family.datasets)
    optimizer = rng.choice(sorted(family.good))
    recipe = {"optimizer": optimizer, **family.good[optimizer], "lr": good_lr(family, dataset, optimizer)}
    model = dict(family.knobs)
    data: dict[str, Any] = {"batch_size": rng.choice([16, 32, 64]) if dataset not in ("wine", "iris") else 16}
    control: dict[str, Any] | None = None
    if family.name in ("mlp", "resmlp", "cnn") and rng.random() < 0.3:
        model["dropout" if family.name == "mlp" else "init_scale"] = 0.1 if family.name == "mlp" else 1.0
    if family.name == "deep_linear":
        model["hidden"] = [32] * rng.choice([3, 4, 6])
    if family.name == "mlp" and dataset in ("wine", "iris"):  # 150 examples: a small net (600 steps = 80 epochs)
        model["hidden"] = [16]
    if cause == "healthy":  # near the calibrated best LR
        recipe["lr"] = _log_uniform(rng, recipe["lr"] / math.sqrt(2), recipe["lr"] * math.sqrt(2))
    elif cause == "lr_high":
        good = recipe["lr"]
        recipe["lr"] = _log_uniform(rng, good * 30, good * 1000)
        control = {"recipe": {"lr": good}}
    elif cause == "lr_low":
        good = recipe["lr"]
        recipe["lr"] = _log_uniform(rng, good * 1e-4, good * 1e-2)
        control = {"recipe": {"lr": good}}
    elif cause == "saddle":
        # plain SGD: Adam's normalized steps leave a small-init saddle within a few dozen steps
        recipe = {"optimizer": "sgd", "lr": good_lr(family, dataset, "sgd"), "momentum": rng.choice([0.0, 0.9])}
        scale = _log_uniform(rng, 0.02, 0.15)
        model.update({"init_std": scale} if family.model == "mlp" else {"init_scale": scale, "activation": "identity",
                                                                         "depth": rng.choice([2, 3])})
        if family.model == "mlp":
            model["hidden"] = [32] * rng.choice([4, 6])
        control = {"model": {"init_std": None} if family.model == "mlp" else {"init_scale": 1.0}}
    elif cause == "vanishing":
        depth = rng.choice([6, 8, 10])
        if family.model == "mlp":
            model.update({"hidden": [64] * depth, "activation": "sigmoid"})
        else:
            model.update({"depth": depth // 2, "activation": "sigmoid"})
        recipe = {"optimizer": "sgd", "lr": good_lr(family, dataset, "sgd"), "momentum": 0.9}
        control = {"model": {"activation": "relu"}}
    elif cause == "overfit":
        data.update({"train_size": rng.choice([40, 60, 100]), "batch_size": 16})
        model.pop("dropout", None)
        if family.model == "mlp":
            model["hidden"] = [256, 256]
        control = {"data": {"train_size": None}}
    elif cause == "noise_floor":  # small batches at a constant, high LR: the gradient noise sets the floor
        recipe = {"optimizer": "sgd", "lr": 5 * good_lr(family, dataset, "sgd"),
                  "momentum": family.good["sgd"]["momentum"]}
        data["batch_size"] = 8
        control = {"recipe": {"schedule": "cosine"}}
    elif cause == "no_warmup":  # the calibrated best LR was found with a warmup; well above it, without one
        good = recipe["lr"]
        recipe = {**recipe, "warmup_steps": 0, "lr": _log_uniform(rng, 2 * good, 6 * good)}
        control = {"recipe": {"warmup_steps": 60}}
    elif cause == "momentum_high":  # SGD at its good LR with Nesterov momentum 0.99 (a 100x effective step)
        recipe = {"optimizer": "sgd", "lr": good_lr(family, dataset, "sgd"), "momentum": rng.choice([0.99, 0.995]),
                  "nesterov": True}
        control = {"recipe": {"momentum": 0.9}}
    elif cause == "bn_tiny_batch":  # BatchNorm fed batches of 2-4 samples
        model["norm"] = "batch"
        data["batch_size"] = rng.choice([2, 4])
        control = {"data": {"batch_size": 32}}
    elif cause in SETTINGS:
        recipe, control = _setting_fault(cause, family, dataset, recipe, rng)
    elif cause == "nan_rows":  # a few rows of the training table hold a NaN cell (missing values read as NaN)
        data["nan_rows"] = rng.choice([1, 3])
        control = {"data": {"nan_rows": None}}
    return Spec(family.name, dataset, cause, seed, recipe, model, data, control=control)


def _setting_fault(cause: str, family: Family, dataset: str, recipe: dict[str, Any],
                   rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    """A recipe with one setting far off (and the control's fix), at the family's good LR."""
    if cause == "wd_high":  # SGD: L2 0.05-0.5 (100-1000x the usual 5e-4); AdamW: decoupled 0.5-3 (torch's 1e-2)
        if recipe["optimizer"] == "sgd":
            return {**recipe, "weight_decay": _log_uniform(rng, 0.05, 0.5)}, {"recipe": {"weight_decay": 5e-4}}
        adamw = {**recipe, "optimizer": "adamw", "weight_decay": _log_uniform(rng, 0.5, 3.0)}
        return adamw, {"recipe": {"weight_decay": 1e-2}}
    if cause == "clip_tight":  # SGD (Adam's step does not scale with the gradient, so clipping barely slows it)
        sgd = {"optimizer": "sgd", "lr": good_lr(family, dataset, "sgd"), "momentum": family.good["sgd"]["momentum"]}
        return {**sgd, "gradient_clip_val": _log_uniform(rng, 1e-3, 1e-2)}, {"recipe": {"gradient_clip_val": None}}
    if cause == "decay_early":  # the LR down to 1e-3 of its start within the first 5-20% of the planned steps
        at = rng.uniform(0.05, 0.2) * STEPS
        if rng.random() < 0.5:
            decayed = {"schedule": "exponential", "decay_rate": float(f"{1e-3 ** (1 / at):.5g}")}
        else:
            decayed = {"schedule": "step", "step_every": max(1, round(at / 3)), "decay_factor": 0.1}
        return {**recipe, **decayed}, {"recipe": {"schedule": "cosine"}}
    # warmup_long: a linear warmup over 60-90% of the planned steps, then a cosine over the rest
    warmup = round(rng.uniform(0.6, 0.9) * STEPS)
    return {**recipe, "warmup_steps": warmup, "schedule": "cosine"}, {"recipe": {"warmup_steps": round(0.05 * STEPS)}}


def plan(seeds: int, quick: bool = False, causes: tuple[str, ...] | None = None) -> list[Spec]:
    """The labelled runs: every family x its causes x ``seeds`` (healthy runs twice as often, so at least a quarter
    of the zoo is healthy); ``quick`` keeps one seed of each; ``causes`` keeps only those."""
    specs = []
    for family in FAMILIES.values():
        for cause in family.causes:
            if causes is not None and cause not in causes:
                continue
            for seed in range(1 if quick else seeds * (2 if cause == "healthy" else 1)):
                specs.append(sample(family, cause, seed))
    return specs
