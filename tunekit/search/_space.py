"""The search space: the config's ``search:`` section over the recipe vocabulary, sampled per Optuna trial.

```yaml
search:
  optimizer: [adamw, sgd, adamw_then_sgd]   # a list of names: one is chosen
  lr: auto                                  # the LR range test's bounds, per optimizer family
  beta1: [0.8, 0.95]                        # two numbers: a range (log scale for lr, weight_decay, clipping)
  weight_decay: [1.0e-6, 1.0e-1]
  batch_size: [32, 64, 128, 256]            # integers: a list of choices
  warmup_steps: {low: 0, high: 200}         # or an explicit range / {choices: [...]}
  schedule: [constant, cosine, one_cycle]   # step, exponential and cosine_restarts too
  nesterov: [true, false]                   # drawn only when the optimizer is SGD
  switch_to_sgd_at: [0.6, 0.9]
  lookahead: [true, false]                  # lookahead_k, lookahead_alpha drawn only with lookahead
  grad_noise: [1.0e-3, 1.0e-1]              # also: prodigy's d_coef, plateau_patience, plateau_factor
```

The optimizer choices are any of the recipe's (``adagrad``, ``radam``, ``nadam``, ``lbfgs``, ``lamb``, ``adabound``,
``prodigy``, ``schedulefree_adamw``, ``schedulefree_sgd`` too). ``lr: auto`` bounds each LR family by its own range
test (``LR_FAMILY``): Adam, AdamW, RAdam, NAdam, AdaBound and RMSprop share one (their LR sets a per-coordinate step
of about ``lr``); SGD, Adagrad, LAMB (a step of ``lr`` times each layer's weight norm), L-BFGS and each schedule-free
optimizer get their own. Prodigy has no LR to bound (its ``lr`` stays 1.0): it searches ``d_coef`` instead, on a log
scale over ``PRODIGY_D_COEF`` unless ``d_coef`` is in the space. A trial's draw never combines keys the recipe
refuses: a schedule-free trial runs a constant schedule without Lookahead, an L-BFGS trial no weight decay and no
gradient noise.

A schedule's own keys (``step_every``, ``decay_factor``, ``decay_rate``, ``cycle_steps``, ``restart_mult``) are drawn
only in trials that draw that schedule; a step or restart schedule without a searched period cuts at a third (and
cycles over a quarter) of the fit's planned steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tunekit.exceptions import ConfigError
from tunekit.recipe import FIELDS, OPTIMIZERS, SCHEDULE_FREE, SCHEDULE_KEYS, SCHEDULES, Recipe, check_installed

TWO_STAGE = {"adam_then_sgd": "adam", "adamw_then_sgd": "adamw"}  # optimizer names that mean a switch to SGD
FLOAT_FIELDS = ("lr", "momentum", "beta1", "beta2", "weight_decay", "gradient_clip_val", "switch_to_sgd_at",
                "decay_factor", "decay_rate", "plateau_factor", "d_coef", "lookahead_alpha", "grad_noise")
INT_FIELDS = ("batch_size", "warmup_steps", "max_steps", "step_every", "cycle_steps", "restart_mult",
              "plateau_patience", "lookahead_k")
LOG_SCALE = ("lr", "weight_decay", "gradient_clip_val", "batch_size", "max_steps", "step_every",
             "cycle_steps", "d_coef", "grad_noise")  # searched on a log scale
STEP_SHARE, CYCLE_SHARE = 1 / 3, 1 / 4  # default period of a step schedule, and first cycle of restarts
VALUE_CONTEXT: dict[str, dict[str, Any]] = {  # what a value of these keys is checked together with
    "nesterov": {"optimizer": "sgd", "momentum": 0.9},
    "step_every": {"schedule": "step"},
    "cycle_steps": {"schedule": "cosine_restarts"},
    "restart_mult": {"schedule": "cosine_restarts", "cycle_steps": 10},
}
DEFAULT_SWITCH_AT = 0.8  # a two-stage optimizer's switch when switch_to_sgd_at is not searched (Dynaxx Precision
# guide, Step 8: Adam for 80% of training)
OWN = "own"  # the LR family of a module that keeps its own optimizer
FAMILY_LABELS = {"sgd": "SGD", "adam": "Adam/AdamW", OWN: "the module's own optimizer"}  # a family in messages,
# plots and tables (the short keys stay in the study's data)
OWN_KEYS = ("lr", "momentum", "beta1", "beta2", "weight_decay", "batch_size", "gradient_clip_val", "max_steps")


BATCH_LR_EXPONENT = {"sgd": 1.0, "schedulefree_sgd": 1.0, "adam": 0.5, OWN: 0.5}  # the LR moves with the batch size
# to this power: linearly for SGD (Goyal et al. 2017), by the square root for Adam-family optimizers (Malladi et al.
# 2022); the other families and a module's own optimizer (not known) get the square root
LR_FAMILY = {"sgd": "sgd", "adam": "adam", "adamw": "adam", "rmsprop": "adam", "radam": "adam", "nadam": "adam",
             "adabound": "adam", "adagrad": "adagrad", "lamb": "lamb", "lbfgs": "lbfgs",
             "schedulefree_adamw": "schedulefree_adamw", "schedulefree_sgd": "schedulefree_sgd",
             "prodigy": "prodigy"}  # optimizers in one family share an LR range test
LR_FREE = ("prodigy",)  # families with no LR to range-test
PRODIGY_LR = 1.0  # Prodigy's lr in a search: its default multiplier of its own step-size estimate
PRODIGY_D_COEF = (0.25, 4.0)  # d_coef searched (log scale) around its default 1: Prodigy's authors scale it by 0.5-2
# to shrink or grow the estimated step; one more factor of two each way
NO_BETAS = ("sgd", "schedulefree_sgd", "adagrad", "lbfgs")  # optimizers whose trials draw no betas
WITH_MOMENTUM = ("sgd", "rmsprop", "schedulefree_sgd")  # optimizers whose trials draw momentum


def batch_lr_factor(fam: str, batch_size: int | None, reference: int | None) -> float:
    """How much the LR range test's LR moves at ``batch_size`` when the test ran at ``reference``.

    Example:
        >>> batch_lr_factor("sgd", 128, 32), batch_lr_factor("adam", 128, 32), batch_lr_factor("adam", None, 32)
        (4.0, 2.0, 1.0)
    """
    if not batch_size or not reference:
        return 1.0
    return float((batch_size / reference) ** BATCH_LR_EXPONENT.get(fam, 0.5))


def family(optimizer: str) -> str:
    """The LR family of an optimizer choice (``LR_FAMILY``; a two-stage name is its first stage's).

    Example:
        >>> family("adamw_then_sgd"), family("nadam"), family("lamb"), family("schedulefree_sgd")
        ('adam', 'adam', 'lamb', 'schedulefree_sgd')
    """
    return LR_FAMILY[TWO_STAGE.get(optimizer, optimizer)]


@dataclass(frozen=True)
class Dimension:
    name: str
    kind: str  # "fixed", "float", "int", "categorical", "auto"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    value: Any = None


@dataclass
class SearchSpace:
    """The parsed ``search:`` section. ``lr_bounds`` (per optimizer family) fill in ``lr: auto``."""

    dimensions: dict[str, Dimension]
    base: Recipe = field(default_factory=Recipe)
    lr_bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    total_steps: int | None = None  # the fit's planned steps (default periods of step and restart schedules)
    own_optimizer: bool = False  # the module keeps its own optimizer: only the searched group keys are drawn
    lr_batch_size: int | None = None  # the batch size the LR range test ran at (its bounds hold there)

    @classmethod
    def parse(cls, section: Mapping[str, Any], base: Recipe | None = None) -> SearchSpace:
        """The space of a config's ``search:`` section (the forms in this module's docstring).

        Args:
            section: recipe key -> a fixed value, ``[low, high]`` (two numbers of a float key: a range, on a log
                scale for ``LOG_SCALE`` keys), a list of choices, ``{low:, high:, log:}`` or ``{choices: [...]}``;
                ``lr: auto`` leaves the LR to the range test (``lr_bounds`` filled in later, per family).
            base: the recipe every key not searched keeps (the config's ``recipe:``; default ``Recipe()``).

        Raises:
            ConfigError: ``section`` is not a mapping; a key outside the recipe vocabulary; an empty, inverted or
                non-numeric range, a range of a key that takes choices, a non-positive log-scale bound; empty or
                repeated choices; a value the recipe refuses (an unknown optimizer or schedule, an optimizer whose
                package is not installed, ``switch_to_sgd_at`` outside (0, 1), ...). Each message starts with
                ``search:`` and the key.

        Example:
            >>> space = SearchSpace.parse({"optimizer": ["adamw", "sgd"], "lr": "auto", "beta1": [0.8, 0.95]})
            >>> space.families(), space.needs_lr_range_test, space.dimensions["beta1"].kind
            (['adam', 'sgd'], True, 'float')
        """
        if not isinstance(section, Mapping):
            raise ConfigError("search: must be a mapping of recipe keys to values, lists or ranges.")
        dims = {name: _dimension(name, spec) for name, spec in section.items()}
        space = cls(dims, base or Recipe())
        space.families()  # checks the optimizer choices
        return space

    @property
    def needs_lr_range_test(self) -> bool:
        return "lr" in self.dimensions and self.dimensions["lr"].kind == "auto"

    def families(self) -> list[str]:
        """The optimizer families the search can pick (the LR range test runs once for each); ``own`` for a module
        that keeps its own optimizer."""
        if self.own_optimizer:
            return [OWN]
        dim = self.dimensions.get("optimizer")
        names = list(dim.choices) if dim is not None and dim.kind == "categorical" else [
            dim.value if dim is not None else self.base.optimizer]
        return sorted({family(n) for n in names} - set(LR_FREE))

    def sample(self, trial: Any) -> Recipe:
        """The recipe for an Optuna trial (define-by-run: betas only for Adam, momentum only with SGD; for a module
        that keeps its own optimizer, only what is searched)."""
        if self.own_optimizer:
            return self._sample_own(trial)
        values: dict[str, Any] = {}
        optimizer = self._draw(trial, "optimizer", self.base.optimizer if self.base.switch_to_sgd_at is None
                               else f"{self.base.optimizer}_then_sgd")
        two_stage = optimizer in TWO_STAGE
        values["optimizer"] = TWO_STAGE.get(optimizer, optimizer)
        fam = family(values["optimizer"])
        if two_stage:
            values["switch_to_sgd_at"] = self._draw(trial, "switch_to_sgd_at", self.base.switch_to_sgd_at or
                                                    DEFAULT_SWITCH_AT)
        else:
            values["switch_to_sgd_at"] = None
        values["batch_size"] = self._draw(trial, "batch_size", self.base.batch_size)
        name = values["optimizer"]
        lr_dim = self.dimensions.get("lr")
        auto = lr_dim is not None and lr_dim.kind == "auto"
        if name in LR_FREE:
            values["lr"] = self.base.lr if self.base.optimizer == name else PRODIGY_LR
            values["d_coef"] = (self._draw(trial, "d_coef", self.base.d_coef) if "d_coef" in self.dimensions or
                                not auto else trial.suggest_float("d_coef", *PRODIGY_D_COEF, log=True))
        elif auto:
            values["lr"] = self._auto_lr(trial, fam, values["batch_size"])
        else:
            values["lr"] = self._draw(trial, "lr", self.base.lr)
        if name not in NO_BETAS:
            for key in ("beta1", "beta2"):
                values[key] = self._draw(trial, key, getattr(self.base, key))
        if name in WITH_MOMENTUM or two_stage:
            values["momentum"] = self._draw(trial, "momentum", self.base.momentum)
        values["nesterov"] = self._draw(trial, "nesterov", self.base.nesterov) if name == "sgd" else False
        for key in ("warmup_steps", "gradient_clip_val", "max_steps"):
            values[key] = self._draw(trial, key, getattr(self.base, key))
        # keys the recipe refuses with this optimizer are not drawn (define-by-run), so every trial is valid
        values["weight_decay"] = 0.0 if name == "lbfgs" else self._draw(trial, "weight_decay", self.base.weight_decay)
        values["grad_noise"] = None if name == "lbfgs" else self._draw(trial, "grad_noise", self.base.grad_noise)
        values["schedule"] = "constant" if name in SCHEDULE_FREE else self._draw(trial, "schedule",
                                                                                 self.base.schedule)
        values["lookahead"] = False if name in SCHEDULE_FREE or two_stage else self._draw(trial, "lookahead",
                                                                                           self.base.lookahead)
        if values["lookahead"]:
            for key in ("lookahead_k", "lookahead_alpha"):
                values[key] = self._draw(trial, key, getattr(self.base, key))
        total = values["max_steps"] or self.total_steps or 0
        for key in SCHEDULE_KEYS.get(values["schedule"], ()):
            default = getattr(self.base, key)
            if default is None and key == "step_every":
                default = max(1, round(STEP_SHARE * total)) if total else None
            if default is None and key == "cycle_steps":
                default = max(1, round(CYCLE_SHARE * total)) if total else None
            values[key] = self._draw(trial, key, default)
        try:
            return self.base.replace(**values)
        except ConfigError as err:
            raise ConfigError(f"search: {err} (the fit's length is unknown: give it in search: or recipe:)") from None

    def _sample_own(self, trial: Any) -> Recipe:
        values = {"batch_size": self._draw(trial, "batch_size", self.base.batch_size)}
        for name in self.dimensions:
            if name == "lr" and self.dimensions[name].kind == "auto":
                values["lr"] = self._auto_lr(trial, OWN, values["batch_size"])
            elif name != "batch_size":
                values[name] = self._draw(trial, name, getattr(self.base, name))
        return self.base.replace(**values)

    def _auto_lr(self, trial: Any, fam: str, batch_size: int | None) -> float:
        """``lr: auto``: drawn (as ``lr_<family>``) within the range test's bounds, which hold at the batch size
        the test ran at; at another batch size the LR moves with it (``batch_lr_factor``)."""
        if fam not in self.lr_bounds:
            raise ConfigError(f"lr: auto has no LR range for {fam}: the range test did not run for it.")
        low, high = self.lr_bounds[fam]
        lr = trial.suggest_float(lr_param(fam), low, high, log=True)
        return lr * batch_lr_factor(fam, batch_size, self.lr_batch_size)

    def _draw(self, trial: Any, name: str, default: Any) -> Any:
        dim = self.dimensions.get(name)
        if dim is None:
            return default
        if dim.kind == "fixed":
            return dim.value
        if dim.kind == "categorical":
            return trial.suggest_categorical(name, list(dim.choices))
        if dim.kind == "int":
            return trial.suggest_int(name, int(dim.low), int(dim.high), log=dim.log)  # type: ignore[arg-type]
        return trial.suggest_float(name, dim.low, dim.high, log=dim.log)


def _dimension(name: str, spec: Any) -> Dimension:
    if name not in FIELDS:
        raise ConfigError(f"search: unknown recipe key {name!r}; the recipe keys are: {', '.join(FIELDS)}.")
    if name == "lr" and spec == "auto":
        return Dimension(name, "auto")
    if isinstance(spec, Mapping):
        if "choices" in spec:
            return _categorical(name, spec["choices"])
        if "low" in spec and "high" in spec:
            return _range(name, spec["low"], spec["high"], spec.get("log"))
        raise ConfigError(f"search: {name}: a mapping needs choices: [...] or low: and high:.")
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise ConfigError(f"search: {name}: an empty list leaves nothing to search; give values or a range.")
        if name in FLOAT_FIELDS and len(spec) == 2 and all(_is_number(v) for v in spec):
            return _range(name, spec[0], spec[1], None)
        return _categorical(name, spec)
    _check_value(name, spec)
    return Dimension(name, "fixed", value=spec)


def _range(name: str, low: Any, high: Any, log: Any) -> Dimension:
    if name not in FLOAT_FIELDS + INT_FIELDS:
        raise ConfigError(f"search: {name}: takes a list of choices, not a range.")
    if not (_is_number(low) and _is_number(high)):
        raise ConfigError(f"search: {name}: a range needs two numbers, but got [{low!r}, {high!r}].")
    if not low < high:
        raise ConfigError(f"search: {name}: the range [{low}, {high}] is empty or inverted: write [low, high] "
                          "with low < high.")
    log = name in LOG_SCALE if log is None else bool(log)
    for value in (low, high):
        _check_value(name, int(value) if name in INT_FIELDS else value)
    if log and low <= 0:
        raise ConfigError(f"search: {name}: a log-scale range must be positive, but got low={low}.")
    kind = "int" if name in INT_FIELDS else "float"
    return Dimension(name, kind, low=float(low), high=float(high), log=log)


def _categorical(name: str, choices: Any) -> Dimension:
    if not isinstance(choices, (list, tuple)) or not choices:
        raise ConfigError(f"search: {name}: choices must be a non-empty list.")
    for value in choices:
        _check_value(name, value)
    if len(set(map(repr, choices))) != len(choices):
        raise ConfigError(f"search: {name}: the choices repeat a value.")
    return Dimension(name, "categorical", choices=tuple(choices))


def _check_value(name: str, value: Any) -> None:
    """One value of a recipe key, checked as the Recipe checks it (two-stage names allowed for optimizer)."""
    if name == "optimizer":
        if value not in OPTIMIZERS + tuple(TWO_STAGE):
            raise ConfigError(f"search: optimizer: {value!r} is not one of "
                              f"{', '.join(OPTIMIZERS + tuple(TWO_STAGE))}.")
        try:
            check_installed(value)
        except ConfigError as err:
            raise ConfigError(f"search: {err}") from None
        return
    if name == "schedule":  # its own keys come with it in a trial (or from the fit's length)
        if value not in SCHEDULES:
            raise ConfigError(f"search: schedule: {value!r} is not one of {', '.join(SCHEDULES)}.")
        return
    if name == "switch_to_sgd_at":
        if not _is_number(value) or not 0 < value < 1:
            raise ConfigError(f"search: switch_to_sgd_at must be in (0, 1), but got {value!r}.")
        return
    if name in ("nesterov", "lookahead") and not isinstance(value, bool):
        raise ConfigError(f"search: {name} takes true or false, but got {value!r}.")
    try:
        Recipe(**{"optimizer": "adamw", **VALUE_CONTEXT.get(name, {}), name: value})
    except ConfigError as err:
        raise ConfigError(f"search: {err}") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def family_label(fam: str) -> str:
    """How a user reads an optimizer family: ``SGD``, ``Adam/AdamW``, ``the module's own optimizer``."""
    return FAMILY_LABELS.get(fam, fam)


def lr_param(fam: str) -> str:
    """The Optuna parameter an ``lr: auto`` LR is drawn as: ``lr_sgd`` and ``lr_adam`` (each family has its own
    range, and Optuna needs one range per name), and plain ``lr`` for a module that keeps its own optimizer (the
    only family then)."""
    return "lr" if fam == OWN else f"lr_{fam}"
