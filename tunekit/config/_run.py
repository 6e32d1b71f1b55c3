"""The run configuration the CLI reads: a LightningCLI config (``model``, ``data``, ``trainer`` with its callbacks
and logger, ``optimizer``, ``lr_scheduler``, ``seed_everything``) plus tunekit's own sections.

```yaml
model: {class_path: tunekit.examples.MLP, init_args: {hidden: [128]}}
data: {class_path: tunekit.examples.DigitsDataModule, init_args: {batch_size: 64}}
trainer: {max_epochs: 5}
monitor: val_loss
direction: minimize                         # left out: read from the monitor's name (val_acc: maximize)
search: {optimizer: [adamw, sgd], lr: auto, batch_size: [32, 64, 128]}
```

``data:`` may be left out when the module brings its own loaders. The LightningCLI part is parsed by Lightning's
own ``LightningArgumentParser`` (jsonargparse: nested ``class_path``s, type checks); every problem is a
``ConfigError`` with a one-line message naming the key and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from tunekit.config import _cli
from tunekit.config._checks import check_optimizer_sections, check_trainer, component
from tunekit.config._direction import infer_direction
from tunekit.exceptions import ConfigError

SHORT_RUN_TRAINER_ARGS = ("accelerator", "precision", "gradient_clip_val", "gradient_clip_algorithm",
                          "accumulate_grad_batches", "deterministic")  # what the LR range test's short runs keep
LIGHTNING_CLI_KEYS = ("model", "data", "trainer", "optimizer", "lr_scheduler", "seed_everything")
TUNEKIT_KEYS = ("monitor", "direction", "recipe", "search", "sampler", "pruner", "seed")
TOP_LEVEL = LIGHTNING_CLI_KEYS + TUNEKIT_KEYS
DIRECTIONS = ("minimize", "maximize")
LIGHTNING_DEFAULT_EPOCHS = 1000  # what Lightning trains for when neither max_epochs nor max_steps is set
TRAIN_LOSS = "tunekit/train_loss"  # a monitor tunekit computes itself (for modules that log nothing)


@dataclass
class RunConfig:
    """A parsed, checked configuration."""

    model_class: type[pl.LightningModule]
    model_args: dict[str, Any]
    data_class: type[pl.LightningDataModule] | None
    data_args: dict[str, Any]
    trainer: dict[str, Any] = field(default_factory=dict)
    monitor: str = "val_loss"
    direction: str = "minimize"
    direction_reason: str | None = None  # why, when the direction was read from the monitor's name (None: given)
    search: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    sampler: dict[str, Any] = field(default_factory=dict)
    pruner: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    source: str = "<config>"
    sections: dict[str, Any] = field(default_factory=dict)  # the LightningCLI part as written (for jsonargparse)
    optimizer: tuple[type, dict[str, Any]] | None = None  # LightningCLI's optimizer: section
    lr_scheduler: tuple[type, dict[str, Any]] | None = None

    def _objects(self, data_overrides: dict[str, Any] | None = None) -> Any:
        sections = dict(self.sections)
        if data_overrides and "data" in sections:
            data = dict(sections["data"])
            data["init_args"] = {**(data.get("init_args") or {}), **data_overrides}
            sections["data"] = data
        return _cli.instantiate(sections, self.source)

    def make_model(self) -> pl.LightningModule:
        """The model (nested ``class_path``s instantiated), training with the config's ``recipe:`` when it has one
        (a module without a tunekit Recipe keeps its own optimizer unless ``recipe:`` names one), else with its
        ``optimizer:``/``lr_scheduler:`` sections (as LightningCLI), else as written."""
        return self._with_optimizer(self._objects().model)

    def fit_objects(self, **data_overrides: Any) -> tuple[pl.LightningModule, dict[str, Any], dict[str, Any]]:
        """``make_model()``, ``data_kwargs(**data_overrides)`` and ``trainer_args()`` from one instantiation of the
        config (each of those makes every object of the config afresh: a search trial needs all three, and the
        instantiation is ~20 ms of its fixed cost)."""
        made = self._objects(data_overrides)
        data = made.data if self.data_class is not None else None
        return (self._with_optimizer(made.model), {"datamodule": data} if data is not None else {},
                {k: made.trainer[k] for k in self.trainer if k in made.trainer})

    def _with_optimizer(self, model: pl.LightningModule) -> pl.LightningModule:
        if self.recipe:
            from tunekit.callbacks.adopt import adopt_recipe
            from tunekit.recipe import Recipe

            base = getattr(model, "recipe", None)
            if isinstance(base, Recipe):
                model.recipe = base.replace(**self.recipe)  # type: ignore[assignment]
                return model
            if self.optimizer is not None and "optimizer" not in self.recipe:
                _cli.attach_optimizer(model, self.optimizer, self.lr_scheduler)
            adopt_recipe(model, Recipe.from_dict(self.recipe), replace="optimizer" in self.recipe, keys=self.recipe)
        elif self.optimizer is not None:
            _cli.attach_optimizer(model, self.optimizer, self.lr_scheduler)
        return model

    def make_data(self, **overrides: Any) -> pl.LightningDataModule | None:
        """The data module (None when the module brings its own loaders)."""
        return self._objects(overrides).data if self.data_class is not None else None

    def data_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """``datamodule=`` for ``Trainer.fit`` (nothing when the module brings its own loaders)."""
        data = self.make_data(**overrides)
        return {"datamodule": data} if data is not None else {}

    def range_test_data(self, model: pl.LightningModule) -> dict[str, Any]:
        """The training data for ``lr_range_test``: the data module, or the module's own loaders."""
        data = self.make_data()
        if data is not None:
            return {"datamodule": data}
        model.prepare_data()
        return {"train_dataloaders": model.train_dataloader()}

    @property
    def range_test_monitor(self) -> str:
        """The metric the LR range test's confirmation runs are scored on. It takes the lowest score as the best, so
        a maximized monitor (val_acc) is not it: those runs are scored on ``val_loss`` (or, when the module logs no
        ``val_loss``, on their training loss)."""
        return self.monitor if self.direction == "minimize" else "val_loss"

    def trainer_args(self) -> dict[str, Any]:
        """The ``Trainer`` arguments the config sets, its own callbacks and logger instantiated afresh (the
        parser's filled-in defaults left out, so the caller's own defaults stand)."""
        made = self._objects().trainer
        return {k: made[k] for k in self.trainer if k in made}

    def short_run_trainer_args(self) -> dict[str, Any]:
        """The Trainer arguments that also shape the LR range test's short runs (device, precision, clipping)."""
        return {k: v for k, v in self.trainer.items() if k in SHORT_RUN_TRAINER_ARGS}

    def print_config(self) -> str:
        """The config as Lightning's parser reads it, every default filled in, with tunekit's sections."""
        import yaml

        tunekit = {"monitor": self.monitor, "direction": self.direction, "seed": self.seed, "recipe": self.recipe,
                   "search": self.search, "sampler": self.sampler, "pruner": self.pruner}
        return _cli.dump(self.sections, self.source) + yaml.safe_dump(tunekit, sort_keys=False)

    def resolved_trainer(self) -> pl.Trainer:
        """A Trainer built from the config's arguments (devices, strategy and limits resolved as Lightning resolves
        them); it never fits."""
        from tunekit.utilities.lightning import quiet_lightning

        plain = {k: v for k, v in self.trainer.items() if k not in ("callbacks", "logger")}
        with quiet_lightning():
            return pl.Trainer(**{**plain, "logger": False, "enable_checkpointing": False,
                                 "enable_progress_bar": False, "enable_model_summary": False})

    def devices(self) -> tuple[str, int]:
        """The accelerator (``cpu``, ``cuda``, ...) and the number of processes one fit runs on (its world size)."""
        trainer = self.resolved_trainer()
        return type(trainer.accelerator).__name__.replace("Accelerator", "").lower(), trainer.world_size

    def planned_steps(self) -> int | None:
        """Optimizer steps a fit with these Trainer arguments will take, before any fit runs.

        The same arithmetic as Lightning's ``Trainer.estimated_stepping_batches`` (which needs a running fit), on
        a ``Trainer`` built from the config (so devices, accumulation, limits and ``max_steps`` are resolved as
        Lightning resolves them) and the training loader as each rank sees it. None when it cannot be told (an
        iterable loader without ``max_steps``).
        """
        trainer = self.resolved_trainer()
        epochs = trainer.max_epochs
        if epochs is None:  # Lightning's default at fit time: 1000 epochs, or none when max_steps is set
            epochs = LIGHTNING_DEFAULT_EPOCHS if trainer.max_steps == -1 else -1
        if epochs == -1:  # no epoch limit: max_steps decides, or nothing does
            return trainer.max_steps if trainer.max_steps > 0 else None
        try:
            data = self.make_data()
            if data is not None:
                data.setup("fit")
                loader = data.train_dataloader()
            else:
                model = self.make_model()
                model.prepare_data()
                loader = model.train_dataloader()
            batches = _batches_per_rank(loader, trainer.world_size)
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
        from tunekit.config._checks import accepted, open_kwargs

        if self.data_class is None:
            return False
        return "batch_size" in accepted(self.data_class) or open_kwargs(self.data_class)


def load_config(path: str | Path, search: str | Path | None = None) -> RunConfig:
    """Read and check a YAML configuration file (a LightningCLI config with tunekit's sections); ``search`` is an
    optional second file holding the ``search:`` section (and ``monitor:``, ``direction:``, ``sampler:``,
    ``pruner:``), or just the search mapping (with any of those keys beside it)."""
    raw = _read_yaml(path, "config")
    if search is not None:
        extra = _read_yaml(search, "search file")
        if not isinstance(extra, dict):
            raise ConfigError(f"search file {str(search)!r} must be a YAML mapping of recipe keys (or a search: "
                              "section).")
        if "search" not in extra:  # the recipe keys are the search; monitor:, direction: ... stay beside it
            extra = {**{k: v for k, v in extra.items() if k in TUNEKIT_KEYS},
                     "search": {k: v for k, v in extra.items() if k not in TUNEKIT_KEYS}}
        unknown = sorted(set(extra) - set(TUNEKIT_KEYS))
        if unknown:
            raise ConfigError(f"search file {str(search)!r}: unknown key {unknown[0]!r}; it may hold "
                              f"{', '.join(TUNEKIT_KEYS)}.")
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the config must be a YAML mapping with model: and trainer: keys.")
        raw = {**raw, **extra}
    return parse_config(raw, source=str(path))


def _read_yaml(path: str | Path, what: str) -> Any:
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{what} file {str(path)!r} does not exist: pass the path of a YAML file.")
    if not path.is_file():
        raise ConfigError(f"{what} path {str(path)!r} is not a file.")
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read {what} file {str(path)!r}: {err.strerror}.") from err
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "not valid YAML"
        raise ConfigError(f"{what} file {str(path)!r} is not valid YAML{where}: {problem}.") from err


def parse_config(raw: Any, source: str = "<config>") -> RunConfig:
    """Check a configuration already read into Python objects."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the config must be a YAML mapping with model: and trainer: keys.")
    unknown = sorted(set(raw) - set(TOP_LEVEL))
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key {unknown[0]!r}; the keys are: {', '.join(TOP_LEVEL)}.")
    if "model" not in raw:
        raise ConfigError(f"{source}: missing model: add model: {{class_path: ..., init_args: {{...}}}}.")
    model_class, model_args = component(raw["model"], "model", pl.LightningModule, source)
    data_class, data_args = (component(raw["data"], "data", pl.LightningDataModule, source) if raw.get("data")
                             else (None, {}))
    trainer = raw.get("trainer") or {}
    if not isinstance(trainer, dict):
        raise ConfigError(f"{source}: trainer: must be a mapping of Trainer arguments, e.g. {{max_epochs: 5}}.")
    check_trainer(trainer, source)
    check_optimizer_sections(raw.get("optimizer"), raw.get("lr_scheduler"), source)
    monitor = raw.get("monitor", "val_loss")
    if not isinstance(monitor, str) or not monitor:
        raise ConfigError(f"{source}: monitor: must name a logged metric, e.g. monitor: val_loss.")
    direction, reason = raw.get("direction"), None
    if direction is None and "monitor" not in raw:
        direction = "minimize"  # the default monitor, val_loss: nothing to read from a name the user did not write
    elif direction is None:
        direction, token = infer_direction(monitor, source)
        reason = f"{direction} {monitor} (its name says {token}; set direction: to choose)"
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
    if "seed" in raw and "seed_everything" in raw:
        raise ConfigError(f"{source}: seed: and seed_everything: say the same thing; keep one.")
    seed = raw.get("seed", raw.get("seed_everything", 0))
    if seed is True or seed is None:
        seed = 0
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"{source}: seed: must be an integer, but got {seed!r}.")
    if sections["recipe"]:
        from tunekit.recipe import Recipe

        try:
            Recipe.from_dict(sections["recipe"])
        except ConfigError as err:
            raise ConfigError(f"{source}: recipe: {err}") from None
    cli = {k: raw[k] for k in ("model", "data", "trainer") if raw.get(k) is not None}
    _cli.parse(cli, source)  # types and nested class paths, as LightningCLI would check them
    optimizer = component(raw["optimizer"], "optimizer", object, source) if raw.get("optimizer") else None
    scheduler = component(raw["lr_scheduler"], "lr_scheduler", object, source) if raw.get("lr_scheduler") else None
    return RunConfig(model_class, model_args, data_class, data_args, trainer, monitor, direction, reason,
                     sections["search"], sections["recipe"], sections["sampler"], sections["pruner"], seed, source, cli,
                     optimizer, scheduler)


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
