"""The recipe's optimizers: torch's own, and those of three optional packages (the ``optimizers`` extra).

| ``optimizer`` | class | the recipe keys it reads |
|---|---|---|
| ``sgd`` | ``torch.optim.SGD`` | ``lr``, ``momentum``, ``nesterov`` |
| ``adam``, ``adamw`` | ``torch.optim.Adam``, ``AdamW`` | ``lr``, ``beta1``, ``beta2`` |
| ``rmsprop`` | ``torch.optim.RMSprop`` | ``lr``, ``beta2`` (its ``alpha``), ``momentum`` |
| ``adagrad`` | ``torch.optim.Adagrad`` | ``lr`` |
| ``radam``, ``nadam`` | ``torch.optim.RAdam``, ``NAdam`` | ``lr``, ``beta1``, ``beta2`` |
| ``lbfgs`` | ``torch.optim.LBFGS`` (one param group, no weight decay; Lightning passes the closure) | ``lr`` |
| ``lamb``, ``adabound`` | ``pytorch_optimizer.Lamb``, ``AdaBound`` (their own defaults otherwise) | ``lr``, betas |
| ``prodigy`` | ``prodigyopt.Prodigy`` (``lr`` multiplies its own step-size estimate) | ``lr``, ``d_coef``, betas |
| ``schedulefree_adamw`` | ``schedulefree.AdamWScheduleFree`` (its own warmup) | ``lr``, betas, ``warmup_steps`` |
| ``schedulefree_sgd`` | ``schedulefree.SGDScheduleFree`` (its own warmup) | ``lr``, ``momentum``, ``warmup_steps`` |

``weight_decay`` goes to every one but L-BFGS, per param group (never on biases and gains). ``lookahead: true`` wraps
any of them but the schedule-free pair in ``pytorch_optimizer.Lookahead(k=lookahead_k, alpha=lookahead_alpha)``.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

import torch

from tunekit.exceptions import ConfigError
from tunekit.utilities.imports import MissingDependency, require

if TYPE_CHECKING:
    from tunekit.recipe._recipe import Recipe

TORCH_OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "radam", "nadam", "lbfgs")
PACKAGE_OF = {"lamb": "pytorch_optimizer", "adabound": "pytorch_optimizer", "prodigy": "prodigyopt",
              "schedulefree_adamw": "schedulefree", "schedulefree_sgd": "schedulefree"}  # optimizer -> its module
PIP_NAME = {"pytorch_optimizer": "pytorch-optimizer", "prodigyopt": "prodigyopt", "schedulefree": "schedulefree"}
EXTRA = "optimizers"  # the extra of pyproject.toml that installs the three packages
SCHEDULE_FREE = ("schedulefree_adamw", "schedulefree_sgd")  # train()/eval() switched by tunekit.callbacks.ScheduleFree
OPTIMIZERS = TORCH_OPTIMIZERS + tuple(PACKAGE_OF)


def check_installed(optimizer: str, lookahead: bool = False) -> None:
    """Raise ``ConfigError`` with the install command when the package of ``optimizer`` (or of Lookahead) is missing;
    finds it without importing it (cheap)."""
    needed = [m for m in (PACKAGE_OF.get(optimizer), "pytorch_optimizer" if lookahead else None) if m is not None]
    for module in needed:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken install
            found = False
        if not found:
            what = "lookahead" if module == "pytorch_optimizer" and lookahead and PACKAGE_OF.get(
                optimizer) != module else f"optimizer={optimizer!r}"
            raise ConfigError(f"{what} needs {PIP_NAME[module]}, which is not installed: "
                              f"pip install 'tunekit-lightning[{EXTRA}]'")


def _package(name: str) -> Any:
    try:
        return require(name, PIP_NAME[name], EXTRA)
    except MissingDependency as err:
        raise ConfigError(str(err)) from None


def build_optimizer(recipe: Recipe, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """The recipe's optimizer over ``groups`` (``param_groups``' output), wrapped in Lookahead when asked."""
    optimizer = _build(recipe, groups)
    if recipe.lookahead:
        optimizer = _package("pytorch_optimizer").Lookahead(optimizer, k=recipe.lookahead_k,
                                                             alpha=recipe.lookahead_alpha)
    return optimizer


def _build(r: Recipe, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    name, betas = r.optimizer, (r.beta1, r.beta2)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=r.lr, momentum=r.momentum, nesterov=r.nesterov)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=r.lr, alpha=r.beta2, momentum=r.momentum)
    if name in ("adam", "adamw", "radam", "nadam"):
        cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "radam": torch.optim.RAdam,
               "nadam": torch.optim.NAdam}[name]
        return cls(groups, lr=r.lr, betas=betas)
    if name == "adagrad":
        return torch.optim.Adagrad(groups, lr=r.lr)
    if name == "lbfgs":  # one param group only (torch's limit); the recipe refuses weight decay with it
        return torch.optim.LBFGS([p for g in groups for p in g["params"]], lr=r.lr)
    if name in ("lamb", "adabound"):
        package = _package("pytorch_optimizer")
        return (package.Lamb if name == "lamb" else package.AdaBound)(groups, lr=r.lr, betas=betas)
    if name == "prodigy":
        return _package("prodigyopt").Prodigy(groups, lr=r.lr, betas=betas, d_coef=r.d_coef)
    package = _package("schedulefree")
    if name == "schedulefree_adamw":
        return package.AdamWScheduleFree(groups, lr=r.lr, betas=betas, warmup_steps=r.warmup_steps)
    return package.SGDScheduleFree(groups, lr=r.lr, momentum=r.momentum, warmup_steps=r.warmup_steps)


def inner_optimizer(optimizer: Any) -> Any:
    """The optimizer a Lookahead wraps (else ``optimizer`` itself)."""
    inner = getattr(optimizer, "optimizer", None)
    return inner if isinstance(inner, torch.optim.Optimizer) else optimizer
