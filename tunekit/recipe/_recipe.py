"""``Recipe``: the optimizer and schedule vocabulary of DESIGN.md as one validated, serializable value."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tunekit.diagnose import Remedy
from tunekit.exceptions import ConfigError
from tunekit.recipe._schedule import SCHEDULES

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULE_KEYS = {"step": ("step_every", "decay_factor"), "exponential": ("decay_rate",),
                 "cosine_restarts": ("cycle_steps", "restart_mult")}  # the keys each schedule reads


@dataclass(frozen=True)
class Recipe:
    """How to optimize: optimizer, LR, its schedule, and the two-stage Adam-then-SGD switch.

    The fields are the recipe vocabulary that remedies (``Remedy.change``) and the search space use.

    Args:
        optimizer: ``sgd``, ``adam``, ``adamw`` or ``rmsprop``.
        lr: the base learning rate (the peak, after warmup; one-cycle's peak).
        momentum: SGD's and RMSprop's momentum; also the momentum of the SGD stage after ``switch_to_sgd_at``.
        nesterov: Nesterov momentum for SGD (needs ``momentum > 0``).
        beta1, beta2: Adam's betas; RMSprop's smoothing constant ``alpha`` is ``beta2``.
        weight_decay: applied to weight matrices, not to biases and normalization gains (decoupled for
            AdamW, L2 for SGD and Adam).
        batch_size: the training batch size (given to the data module; ``None`` leaves it alone).
        warmup_steps: linear warmup over this many optimizer steps.
        schedule: ``constant``, ``cosine`` (to 0 at the last step), ``step`` (times ``decay_factor`` every
            ``step_every`` optimizer steps), ``exponential`` (times ``decay_rate`` every step), ``one_cycle`` (up to
            ``lr`` over the first 30% of steps from lr/25, then down to lr/25e4) or ``cosine_restarts`` (a cosine
            over ``cycle_steps``, restarting, each cycle ``restart_mult`` times longer).
        step_every, decay_factor: the step schedule's period (optimizer steps) and factor, in (0, 1).
        decay_rate: the exponential schedule's factor per step, in (0, 1).
        cycle_steps, restart_mult: the first cycle of ``cosine_restarts`` and how much longer each next one is.
        gradient_clip_val: clip the gradient norm at this value (a ``Trainer`` argument).
        switch_to_sgd_at: fraction of training after which Adam/AdamW is replaced by SGD with momentum.
        max_steps: optimizer steps to train (a ``Trainer`` argument; the cosine spans it). ``None`` takes
            the Trainer's own plan.

    Example:
        >>> r = Recipe(optimizer="adamw", lr=3e-3, warmup_steps=100, schedule="cosine")
        >>> r.apply({"lr": 3e-4}).lr
        0.0003
        >>> Recipe.from_dict(r.to_dict()) == r
        True
        >>> Recipe(lr=-1)
        Traceback (most recent call last):
        ...
        tunekit.exceptions.ConfigError: lr must be > 0, but got lr=-1.
    """

    optimizer: str = "adamw"
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    weight_decay: float = 0.0
    batch_size: int | None = None
    warmup_steps: int = 0
    schedule: str = "constant"
    step_every: int | None = None
    decay_factor: float = 0.1
    decay_rate: float = 0.999
    cycle_steps: int | None = None
    restart_mult: int = 1
    gradient_clip_val: float | None = None
    switch_to_sgd_at: float | None = None
    max_steps: int | None = None

    def __post_init__(self) -> None:
        _check(self)

    # ------------------------------------------------------------------ changes
    def replace(self, **changes: Any) -> Recipe:
        """A new recipe with some fields changed (checked like the constructor)."""
        unknown = sorted(set(changes) - set(FIELDS))
        if unknown:
            raise ConfigError(f"unknown recipe key {unknown[0]!r}; the recipe keys are: {', '.join(FIELDS)}.")
        return dataclasses.replace(self, **changes)

    def apply(self, remedy: Remedy | Mapping[str, Any]) -> Recipe:
        """The recipe with a remedy's ``change`` applied (a remedy without a change returns it unchanged)."""
        change = remedy.change if isinstance(remedy, Remedy) else remedy
        return self.replace(**dict(change))

    # ------------------------------------------------------------------ serialization
    def to_dict(self, compact: bool = False) -> dict[str, Any]:
        """All fields; ``compact`` leaves out unset ones and those the optimizer does not use (momentum for
        Adam without the SGD switch, betas for SGD), for display and for pasting into a config."""
        data = dataclasses.asdict(self)
        if not compact:
            return data
        unused = {"sgd": {"beta1", "beta2"}, "rmsprop": {"beta1"}}.get(self.optimizer, set())
        if self.optimizer in ("adam", "adamw") and self.switch_to_sgd_at is None:
            unused.add("momentum")
        if self.optimizer != "sgd" or not self.nesterov:
            unused.add("nesterov")
        for schedule, keys in SCHEDULE_KEYS.items():
            if schedule != self.schedule:
                unused.update(keys)
        return {k: v for k, v in data.items() if v is not None and k not in unused}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        """Build from a mapping; unknown keys are an error naming the known ones."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a recipe must be a mapping of recipe keys, but got {type(data).__name__}.")
        return cls().replace(**dict(data))

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text_or_path: str | Path) -> Recipe:
        """Read YAML text, or a ``.yaml``/``.yml`` file."""
        import yaml

        text = str(text_or_path)
        if isinstance(text_or_path, Path) or text.endswith((".yaml", ".yml")):
            text = Path(text_or_path).read_text()
        return cls.from_dict(yaml.safe_load(text) or {})

    # ------------------------------------------------------------------ building
    def configure_optimizers(self, module: Any, total_steps: int | None = None) -> Any:
        """What ``LightningModule.configure_optimizers`` returns: the optimizer and a per-step LR schedule.

        Args:
            module: the module whose parameters to optimize.
            total_steps: the steps a decaying schedule spans when the recipe sets no ``max_steps``
                (``tunekit.RecipeMixin`` passes the Trainer's ``estimated_stepping_batches``).

        With ``switch_to_sgd_at`` the Trainer needs ``tunekit.callbacks.SwitchToSGD`` as well (``RecipeMixin``
        adds it).

        Example:
            >>> import torch
            >>> recipe = Recipe(optimizer="sgd", lr=0.1, schedule="cosine")
            >>> out = recipe.configure_optimizers(torch.nn.Linear(2, 1), total_steps=100)
            >>> type(out["optimizer"]).__name__, out["lr_scheduler"]["interval"]
            ('SGD', 'step')
        """
        from tunekit.recipe._build import configure_optimizers

        return configure_optimizers(self, module, total_steps)

    def trainer_kwargs(self) -> dict[str, Any]:
        """The ``Trainer`` arguments the recipe sets (clipping, step count); ``None`` fields are left out."""
        kwargs = {"gradient_clip_val": self.gradient_clip_val, "max_steps": self.max_steps}
        return {k: v for k, v in kwargs.items() if v is not None}


FIELDS = tuple(f.name for f in fields(Recipe))


def _check(r: Recipe) -> None:
    """Argument checks, each naming the field and what it must be."""
    if r.optimizer not in OPTIMIZERS:
        raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, but got optimizer={r.optimizer!r}.")
    if r.schedule not in SCHEDULES:
        raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, but got schedule={r.schedule!r}.")
    if not _number(r.lr) or r.lr <= 0:
        raise ConfigError(f"lr must be > 0, but got lr={r.lr!r}.")
    for name in ("momentum", "beta1", "beta2"):
        value = getattr(r, name)
        if not _number(value) or not 0 <= value < 1:
            raise ConfigError(f"{name} must be in [0, 1), but got {name}={value!r}.")
    if not _number(r.weight_decay) or r.weight_decay < 0:
        raise ConfigError(f"weight_decay must be >= 0, but got weight_decay={r.weight_decay!r}.")
    for name in ("batch_size", "max_steps"):
        value = getattr(r, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ConfigError(f"{name} must be a positive integer or null, but got {name}={value!r}.")
    if not isinstance(r.nesterov, bool):
        raise ConfigError(f"nesterov must be true or false, but got nesterov={r.nesterov!r}.")
    if r.nesterov and not (r.optimizer == "sgd" and r.momentum > 0):
        raise ConfigError("nesterov needs SGD with momentum > 0: set optimizer='sgd' and momentum (e.g. 0.9), or "
                          "nesterov=false.")
    for name in ("decay_factor", "decay_rate"):
        value = getattr(r, name)
        if not _number(value) or not 0 < value < 1:
            raise ConfigError(f"{name} must be in (0, 1), but got {name}={value!r}.")
    for name in ("step_every", "cycle_steps"):
        value = getattr(r, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ConfigError(f"{name} must be a positive number of steps or null, but got {name}={value!r}.")
    if not isinstance(r.restart_mult, int) or isinstance(r.restart_mult, bool) or r.restart_mult < 1:
        raise ConfigError(f"restart_mult must be an integer >= 1, but got restart_mult={r.restart_mult!r}.")
    if r.schedule == "step" and r.step_every is None:
        raise ConfigError("schedule='step' needs step_every (optimizer steps between cuts), e.g. step_every: 1000.")
    if r.schedule == "cosine_restarts" and r.cycle_steps is None:
        raise ConfigError("schedule='cosine_restarts' needs cycle_steps (the first cycle's length), e.g. "
                          "cycle_steps: 500.")
    if not isinstance(r.warmup_steps, int) or isinstance(r.warmup_steps, bool) or r.warmup_steps < 0:
        raise ConfigError(f"warmup_steps must be an integer >= 0, but got warmup_steps={r.warmup_steps!r}.")
    if r.gradient_clip_val is not None and (not _number(r.gradient_clip_val) or r.gradient_clip_val <= 0):
        raise ConfigError(f"gradient_clip_val must be > 0 or null, but got gradient_clip_val={r.gradient_clip_val!r}.")
    if r.switch_to_sgd_at is not None:
        if not _number(r.switch_to_sgd_at) or not 0 < r.switch_to_sgd_at < 1:
            raise ConfigError("switch_to_sgd_at must be a fraction of training in (0, 1), e.g. 0.8, but got "
                              f"switch_to_sgd_at={r.switch_to_sgd_at!r}.")
        if r.optimizer == "sgd":
            raise ConfigError("switch_to_sgd_at hands Adam/AdamW over to SGD, but optimizer='sgd' already: "
                              "set optimizer='adam' or 'adamw', or switch_to_sgd_at=null.")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # NaN != NaN
