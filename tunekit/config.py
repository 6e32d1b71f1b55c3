"""The run configuration the CLI reads: YAML in LightningCLI's style.

```yaml
model: {class_path: tunekit.examples.MLP, init_args: {hidden: [128]}}
data: {class_path: tunekit.examples.DigitsDataModule, init_args: {batch_size: 64}}
trainer: {max_epochs: 5}
monitor: val_loss
direction: minimize
search: {optimizer: [adamw, sgd], lr: auto, batch_size: [32, 64, 128]}
```

Every problem is a ``ConfigError`` with a one-line message naming the key and the fix.
"""

from __future__ import annotations

import importlib
import inspect
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from tunekit.exceptions import ConfigError

SHORT_RUN_TRAINER_ARGS = ("accelerator", "precision", "gradient_clip_val", "gradient_clip_algorithm",
                         "accumulate_grad_batches", "deterministic")  # what the LR range test's short runs keep
TOP_LEVEL = ("model", "data", "trainer", "monitor", "direction", "recipe", "search", "sampler", "pruner", "seed")
DIRECTIONS = ("minimize", "maximize")
LIGHTNING_DEFAULT_EPOCHS = 1000  # what Lightning trains for when neither max_epochs nor max_steps is set


@dataclass
class RunConfig:
    """A parsed, checked configuration."""

    model_class: type[pl.LightningModule]
    model_args: dict[str, Any]
    data_class: type[pl.LightningDataModule]
    data_args: dict[str, Any]
    trainer: dict[str, Any] = field(default_factory=dict)
    monitor: str = "val_loss"
    direction: str = "minimize"
    search: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    sampler: dict[str, Any] = field(default_factory=dict)
    pruner: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    source: str = "<config>"

    def make_model(self) -> pl.LightningModule:
        """The model, with the config's ``recipe:`` applied over its own recipe (when it has one)."""
        model = _instantiate(self.model_class, self.model_args, "model")
        if self.recipe:
            from tunekit.recipe import Recipe

            base = getattr(model, "recipe", None)
            base = base if isinstance(base, Recipe) else Recipe()
            model.recipe = base.replace(**self.recipe)
        return model

    def make_data(self, **overrides: Any) -> pl.LightningDataModule:
        return _instantiate(self.data_class, {**self.data_args, **overrides}, "data")

    def short_run_trainer_args(self) -> dict[str, Any]:
        """The Trainer arguments that also shape the LR range test's short runs (device, precision, clipping)."""
        return {k: v for k, v in self.trainer.items() if k in SHORT_RUN_TRAINER_ARGS}

    def planned_steps(self) -> int | None:
        """Optimizer steps a fit with these Trainer arguments will take, before any fit runs.

        The same arithmetic as Lightning's ``Trainer.estimated_stepping_batches`` (which needs a running fit), on
        a ``Trainer`` built from the config (so devices, accumulation, limits and ``max_steps`` are resolved as
        Lightning resolves them) and the data module's training loader as each rank sees it. None when it cannot
        be told (an iterable loader without ``max_steps``).
        """
        from tunekit.utilities.lightning import quiet_lightning

        with quiet_lightning():
            trainer = pl.Trainer(**{**self.trainer, "logger": False, "enable_checkpointing": False,
                                    "enable_progress_bar": False, "enable_model_summary": False})
        epochs = trainer.max_epochs
        if epochs is None:  # Lightning's default at fit time: 1000 epochs, or none when max_steps is set
            epochs = LIGHTNING_DEFAULT_EPOCHS if trainer.max_steps == -1 else -1
        if epochs == -1:  # no epoch limit: max_steps decides, or nothing does
            return trainer.max_steps if trainer.max_steps > 0 else None
        data = self.make_data()
        try:
            data.setup("fit")
            batches = _batches_per_rank(data.train_dataloader(), trainer.world_size)
        except (TypeError, NotImplementedError):  # an iterable loader has no length
            return trainer.max_steps if trainer.max_steps > 0 else None
        limit = trainer.limit_train_batches
        if isinstance(limit, int) and not isinstance(limit, bool):
            batches = min(batches, limit)
        elif isinstance(limit, float) and limit < 1.0:
            batches = int(batches * limit)
        steps = math.ceil(batches / trainer.accumulate_grad_batches) * max(epochs, 1)
        return min(steps, trainer.max_steps) if trainer.max_steps > 0 else steps

    @property
    def data_takes_batch_size(self) -> bool:
        return "batch_size" in _accepted(self.data_class) or _open_kwargs(self.data_class)


def load_config(path: str | Path) -> RunConfig:
    """Read and check a YAML configuration file."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {str(path)!r} does not exist: pass the path of a YAML file.")
    if not path.is_file():
        raise ConfigError(f"config path {str(path)!r} is not a file.")
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config file {str(path)!r}: {err.strerror}.") from err
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "not valid YAML"
        raise ConfigError(f"config file {str(path)!r} is not valid YAML{where}: {problem}.") from err
    return parse_config(raw, source=str(path))


def parse_config(raw: Any, source: str = "<config>") -> RunConfig:
    """Check a configuration already read into Python objects."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the config must be a YAML mapping with model:, data: and trainer: keys.")
    unknown = sorted(set(raw) - set(TOP_LEVEL))
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key {unknown[0]!r}; the keys are: {', '.join(TOP_LEVEL)}.")
    for key in ("model", "data"):
        if key not in raw:
            raise ConfigError(f"{source}: missing {key}: add {key}: {{class_path: ..., init_args: {{...}}}}.")
    model_class, model_args = _component(raw["model"], "model", pl.LightningModule, source)
    data_class, data_args = _component(raw["data"], "data", pl.LightningDataModule, source)
    trainer = raw.get("trainer") or {}
    if not isinstance(trainer, dict):
        raise ConfigError(f"{source}: trainer: must be a mapping of Trainer arguments, e.g. {{max_epochs: 5}}.")
    _check_trainer_args(trainer, source)
    monitor = raw.get("monitor", "val_loss")
    if not isinstance(monitor, str) or not monitor:
        raise ConfigError(f"{source}: monitor: must name a logged metric, e.g. monitor: val_loss.")
    direction = raw.get("direction", "minimize")
    if direction not in DIRECTIONS:
        raise ConfigError(f"{source}: direction: must be minimize or maximize, but got {direction!r}.")
    sections = {}
    for key in ("search", "recipe", "sampler", "pruner"):
        value = raw.get(key) or {}
        if isinstance(value, str) and key != "search":
            value = {"name": value}
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key}: must be a mapping.")
        sections[key] = value
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"{source}: seed: must be an integer, but got {seed!r}.")
    if sections["recipe"]:
        from tunekit.recipe import Recipe

        try:
            Recipe.from_dict(sections["recipe"])
        except ConfigError as err:
            raise ConfigError(f"{source}: recipe: {err}") from None
    return RunConfig(model_class, model_args, data_class, data_args, trainer, monitor, direction, sections["search"],
                     sections["recipe"], sections["sampler"], sections["pruner"], seed, source)


def _component(spec: Any, key: str, base: type, source: str) -> tuple[Any, dict[str, Any]]:
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise ConfigError(f"{source}: {key}: needs class_path: (e.g. {key}: {{class_path: my_pkg.MyClass}}).")
    extra = sorted(set(spec) - {"class_path", "init_args"})
    if extra:
        raise ConfigError(f"{source}: {key}: unknown key {extra[0]!r}; use class_path: and init_args:.")
    cls = import_class(spec["class_path"], key, source)
    if not (inspect.isclass(cls) and issubclass(cls, base)):
        raise ConfigError(f"{source}: {key}.class_path {spec['class_path']!r} is not a {base.__name__} subclass.")
    args = spec.get("init_args") or {}
    if not isinstance(args, dict):
        raise ConfigError(f"{source}: {key}.init_args must be a mapping of constructor arguments.")
    _check_args(cls, args, key, source)
    return cls, dict(args)


def import_class(path: Any, key: str = "class_path", source: str = "<config>") -> Any:
    """Import ``package.module.Name``; a failure names the part that is missing."""
    if not isinstance(path, str) or "." not in path:
        raise ConfigError(f"{source}: {key}.class_path must be a dotted path like package.module.Class, "
                          f"but got {path!r}.")
    module_name, _, name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"{source}: {key}.class_path {path!r}: cannot import module {module_name!r} "
                          f"({err}).") from err
    if not hasattr(module, name):
        raise ConfigError(f"{source}: {key}.class_path {path!r}: module {module_name!r} has no {name!r}.")
    return getattr(module, name)


_LIGHTNING_INITS = (pl.LightningModule.__init__, pl.LightningDataModule.__init__)


def _accepted(cls: type) -> list[str]:
    return [n for n, p in inspect.signature(cls).parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]


def _open_kwargs(cls: type) -> bool:
    """``**kwargs`` the class itself declares (Lightning's base ``__init__`` takes any and uses none)."""
    if cls.__init__ in _LIGHTNING_INITS:  # type: ignore[misc]
        return False
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(cls).parameters.values())


def _check_args(cls: type, args: dict[str, Any], key: str, source: str) -> None:
    if _open_kwargs(cls):
        return
    params = _accepted(cls)
    unknown = sorted(set(args) - set(params))
    if unknown:
        known = ", ".join(params) or "no arguments"
        raise ConfigError(f"{source}: {key}.init_args: {cls.__name__} takes no argument {unknown[0]!r} "
                          f"(it takes: {known}).")


def _check_trainer_args(trainer: dict[str, Any], source: str) -> None:
    params = inspect.signature(pl.Trainer.__init__).parameters
    unknown = sorted(set(trainer) - set(params))
    if unknown:
        raise ConfigError(f"{source}: trainer: unknown Trainer argument {unknown[0]!r}.")


def _instantiate(cls: type, args: dict[str, Any], key: str) -> Any:
    try:
        return cls(**args)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{key}: {cls.__name__}({', '.join(f'{k}=...' for k in args)}) failed: {err}") from err


def _batches_per_rank(loader: Any, world_size: int) -> int:
    """``len(loader)`` as one of ``world_size`` ranks sees it once Lightning gives it a ``DistributedSampler``."""
    if world_size <= 1:
        return len(loader)
    dataset, batch_size = getattr(loader, "dataset", None), getattr(loader, "batch_size", None)
    try:
        per_rank = math.ceil(len(dataset) / world_size)  # type: ignore[arg-type]
    except TypeError:
        return math.ceil(len(loader) / world_size)
    if not batch_size:
        return math.ceil(len(loader) / world_size)
    return per_rank // batch_size if loader.drop_last else math.ceil(per_rank / batch_size)
