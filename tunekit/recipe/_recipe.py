"""``Recipe``: the optimizer and schedule vocabulary (docs/contracts.md, "Recipe vocabulary") as one validated,
serializable value."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tunekit.diagnose import Remedy
from tunekit.exceptions import ConfigError
from tunekit.recipe._optimizers import OPTIMIZERS, SCHEDULE_FREE, check_installed
from tunekit.recipe._schedule import SCHEDULES

SCHEDULE_KEYS = {"step": ("step_every", "decay_factor"), "exponential": ("decay_rate",),
                 "cosine_restarts": ("cycle_steps", "restart_mult"),
                 "plateau": ("plateau_patience", "plateau_factor")}  # the keys each schedule reads
BETAS_OPTIMIZERS = ("adam", "adamw", "radam", "nadam", "lamb", "adabound", "prodigy", "schedulefree_adamw")
MOMENTUM_OPTIMIZERS = ("sgd", "rmsprop", "schedulefree_sgd")
SWITCHABLE = ("adam", "adamw", "rmsprop", "adagrad", "radam", "nadam", "lamb", "adabound", "prodigy")  # the
# adaptive optimizers the two-stage switch can hand over to SGD (it replaces the optimizer object, so not a Lookahead
# wrapper, not L-BFGS's closure loop, not schedule-free's averaged iterate)
PRODIGY_MIN_LR = 0.01  # Prodigy's lr multiplies its own step-size estimate (1.0 is its default); an Adam-sized LR
# (1e-3) would shrink every step a thousandfold, which is never what was meant


@dataclass(frozen=True)
class Recipe:
    """How to optimize: optimizer, LR, its schedule, and the two-stage Adam-then-SGD switch.

    The fields are the recipe vocabulary that remedies (``Remedy.change``) and the search space use.

    Args:
        optimizer: ``sgd``, ``adam``, ``adamw``, ``rmsprop``, ``adagrad``, ``radam``, ``nadam``, ``lbfgs`` (torch);
            ``lamb``, ``adabound``, ``prodigy``, ``schedulefree_adamw``, ``schedulefree_sgd`` (the ``optimizers``
            extra: ``pip install 'tunekit-lightning[optimizers]'``).
        lr: the base learning rate (the peak, after warmup; one-cycle's peak). For ``prodigy`` a multiplier of
            its own estimate (>= 0.01; 1.0 is its default).
        momentum: SGD's and RMSprop's momentum; also the momentum of the SGD stage after ``switch_to_sgd_at``.
        nesterov: Nesterov momentum for SGD (needs ``momentum > 0``).
        beta1, beta2: Adam's betas; RMSprop's smoothing constant ``alpha`` is ``beta2``.
        weight_decay: applied to weight matrices, not to biases and normalization gains (decoupled for
            AdamW, L2 for SGD and Adam).
        batch_size: the training batch size (given to the data module; ``None`` leaves it alone).
        warmup_steps: linear warmup over this many optimizer steps.
        schedule: ``constant``, ``cosine`` (to 0 at the last step), ``step`` (times ``decay_factor`` every
            ``step_every`` optimizer steps), ``exponential`` (times ``decay_rate`` every step), ``one_cycle`` (up to
            ``lr`` over the first 30% of steps from lr/25, then down to lr/25e4), ``cosine_restarts`` (a cosine
            over ``cycle_steps``, restarting, each cycle ``restart_mult`` times longer) or ``plateau`` (torch's
            ``ReduceLROnPlateau`` on the monitored metric: times ``plateau_factor`` after ``plateau_patience``
            validation epochs without improvement). Schedule-free optimizers take ``constant`` only.
        step_every, decay_factor: the step schedule's period (optimizer steps) and factor, in (0, 1).
        decay_rate: the exponential schedule's factor per step, in (0, 1).
        cycle_steps, restart_mult: the first cycle of ``cosine_restarts`` and how much longer each next one is.
        plateau_patience, plateau_factor: ``plateau``'s patience (validation epochs, >= 0) and factor, in (0, 1).
        d_coef: Prodigy's scale of its own step-size estimate (> 0; 1.0 is its default).
        lookahead, lookahead_k, lookahead_alpha: wrap the optimizer in Lookahead (Zhang et al. 2019): every
            ``lookahead_k`` steps the slow weights move ``lookahead_alpha`` of the way to the fast ones.
        grad_noise: Gaussian noise added to the gradients before each optimizer step (Neelakantan et al. 2015):
            its standard deviation at step ``t`` is ``grad_noise / (1 + t) ** 0.275`` (the variance anneals as
            ``eta / (1 + t) ** 0.55`` with ``eta = grad_noise ** 2``); ``None`` adds none.
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
    plateau_patience: int = 10
    plateau_factor: float = 0.1
    d_coef: float = 1.0
    lookahead: bool = False
    lookahead_k: int = 5
    lookahead_alpha: float = 0.5
    grad_noise: float | None = None

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
        unused = set() if self.optimizer in BETAS_OPTIMIZERS else {"beta1", "beta2"}
        if self.optimizer == "rmsprop":
            unused.discard("beta2")
        if self.optimizer not in MOMENTUM_OPTIMIZERS and self.switch_to_sgd_at is None:
            unused.add("momentum")
        if self.optimizer != "prodigy":
            unused.add("d_coef")
        if not self.lookahead:
            unused.update(("lookahead", "lookahead_k", "lookahead_alpha"))
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
    def configure_optimizers(self, module: Any, total_steps: int | None = None, monitor: str = "val_loss") -> Any:
        """What ``LightningModule.configure_optimizers`` returns: the optimizer and a per-step LR schedule (for
        ``schedule: plateau``: ``([optimizer], [warmup config, plateau config])``).

        Args:
            module: the module whose parameters to optimize.
            total_steps: the steps a decaying schedule spans when the recipe sets no ``max_steps``
                (``tunekit.RecipeMixin`` passes the Trainer's ``estimated_stepping_batches``).
            monitor: the logged metric ``schedule: plateau`` watches.

        Some keys need a callback in the Trainer as well (``RecipeMixin`` adds them; ``tunekit.callbacks.
        recipe_callbacks`` lists them): ``switch_to_sgd_at`` (``SwitchToSGD``), ``grad_noise`` (``GradientNoise``),
        a schedule-free optimizer (``ScheduleFreeModes``).

        Example:
            >>> import torch
            >>> recipe = Recipe(optimizer="sgd", lr=0.1, schedule="cosine")
            >>> out = recipe.configure_optimizers(torch.nn.Linear(2, 1), total_steps=100)
            >>> type(out["optimizer"]).__name__, out["lr_scheduler"]["interval"]
            ('SGD', 'step')
        """
        from tunekit.recipe._build import configure_optimizers

        return configure_optimizers(self, module, total_steps, monitor)

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
        if r.optimizer not in SWITCHABLE or r.lookahead:
            what = "lookahead: true" if r.lookahead else f"optimizer={r.optimizer!r}"
            raise ConfigError(f"switch_to_sgd_at cannot hand {what} over to SGD (it replaces a plain adaptive "
                              f"optimizer: one of {', '.join(SWITCHABLE)}): set switch_to_sgd_at=null.")
    _check_new_keys(r)


def _check_new_keys(r: Recipe) -> None:
    """The checks of the plateau schedule, Prodigy, Lookahead, gradient noise and the optimizers' own limits."""
    if not _integer(r.plateau_patience) or r.plateau_patience < 0:
        raise ConfigError(f"plateau_patience must be an integer >= 0 (validation epochs), but got "
                          f"plateau_patience={r.plateau_patience!r}.")
    if not _number(r.plateau_factor) or not 0 < r.plateau_factor < 1:
        raise ConfigError(f"plateau_factor must be in (0, 1), but got plateau_factor={r.plateau_factor!r}.")
    if not _number(r.d_coef) or r.d_coef <= 0:
        raise ConfigError(f"d_coef must be > 0 (Prodigy's scale of its step size; 1.0 is its default), but got "
                          f"d_coef={r.d_coef!r}.")
    if not isinstance(r.lookahead, bool):
        raise ConfigError(f"lookahead must be true or false, but got lookahead={r.lookahead!r}.")
    check_installed(r.optimizer, r.lookahead)
    if not _integer(r.lookahead_k) or r.lookahead_k < 1:
        raise ConfigError(f"lookahead_k must be an integer >= 1 (steps between syncs), but got "
                          f"lookahead_k={r.lookahead_k!r}.")
    if not _number(r.lookahead_alpha) or not 0 < r.lookahead_alpha <= 1:
        raise ConfigError(f"lookahead_alpha must be in (0, 1], but got lookahead_alpha={r.lookahead_alpha!r}.")
    if r.grad_noise is not None and (not _number(r.grad_noise) or r.grad_noise <= 0):
        raise ConfigError(f"grad_noise must be > 0 (the noise's standard deviation at step 0) or null, but got "
                          f"grad_noise={r.grad_noise!r}.")
    if r.optimizer == "prodigy" and r.lr < PRODIGY_MIN_LR:
        raise ConfigError(f"prodigy's lr multiplies its own step-size estimate, but got lr={r.lr!r}: set lr: 1.0 "
                          "(its default) and scale the step with d_coef instead.")
    if r.optimizer == "lbfgs":
        if r.weight_decay:
            raise ConfigError("lbfgs takes no weight decay (torch's LBFGS has none): set weight_decay: 0.")
        if r.grad_noise is not None:
            raise ConfigError("grad_noise would break lbfgs's curvature pairs and line of descent: set "
                              "grad_noise: null or another optimizer.")
    if r.optimizer in SCHEDULE_FREE:
        if r.schedule != "constant":
            raise ConfigError(f"{r.optimizer} replaces the LR schedule by its own averaging: set schedule: constant "
                              f"(its warmup_steps still apply), but got schedule={r.schedule!r}.")
        if r.lookahead:
            raise ConfigError(f"lookahead cannot wrap {r.optimizer}: its weights are derived from its own averaged "
                              "iterates, which Lookahead's resets would break; set lookahead: false.")
        if r.optimizer == "schedulefree_sgd" and r.momentum <= 0:
            raise ConfigError("schedulefree_sgd needs momentum > 0 (its interpolation weight), e.g. momentum: 0.9.")
        if r.optimizer == "schedulefree_adamw" and r.beta1 <= 0:
            raise ConfigError("schedulefree_adamw needs beta1 > 0 (its interpolation weight), e.g. beta1: 0.9.")


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # NaN != NaN
