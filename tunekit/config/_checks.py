"""The checks that give a bad config one line naming the key and the fix, before jsonargparse sees it (its own
messages are correct but long)."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import lightning.pytorch as pl
import torch

from tunekit.exceptions import ConfigError

_LIGHTNING_INITS = (pl.LightningModule.__init__, pl.LightningDataModule.__init__)
_SHORT_NAMES = ("torch.optim", "torch.optim.lr_scheduler")  # where a bare ``Adam`` or ``StepLR`` is looked up


def import_class(path: Any, key: str = "class_path", source: str = "<config>") -> Any:
    """Import ``package.module.Name`` (or a torch optimizer/scheduler by its bare name); a failure names the part
    that is missing."""
    if isinstance(path, str) and "." not in path:
        for module_name in _SHORT_NAMES:
            found = getattr(importlib.import_module(module_name), path, None)
            if inspect.isclass(found):
                return found
    if not isinstance(path, str) or "." not in path:
        raise ConfigError(f"{source}: {key}.class_path must be a dotted path like package.module.Class, "
                          f"but got {path!r}.")
    module_name, _, name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"{source}: {key}.class_path {path!r}: cannot import module {module_name!r} "
                          f"({err}){_import_fix(module_name, err)}.") from err
    if not hasattr(module, name):
        raise ConfigError(f"{source}: {key}.class_path {path!r}: module {module_name!r} has no {name!r}.")
    return getattr(module, name)


def _import_fix(module_name: str, err: ImportError) -> str:
    """How to make the import work: the config's own module not found is a path problem (tunekit looks in the
    working directory and on PYTHONPATH); a module it imports that is missing is a package to install."""
    missing = getattr(err, "name", None)
    if not isinstance(err, ModuleNotFoundError) or not missing:
        return ""
    if module_name == missing or module_name.startswith(missing + "."):
        if "." in missing:  # the package was found, a module in it was not: a misspelt path, nothing to move
            return ""
        return (f": run tunekit from the folder that holds {missing}.py (or the {missing}/ package), or add that "
                "folder to PYTHONPATH")
    return f": {module_name} imports {missing!r}, which is not installed here"


def accepted(cls: type, skip: tuple[str, ...] = ()) -> list[str]:
    return [n for n, p in inspect.signature(cls).parameters.items()
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and n not in skip]


def open_kwargs(cls: type) -> bool:
    """``**kwargs`` the class itself declares (Lightning's base ``__init__`` takes any and uses none)."""
    if cls.__init__ in _LIGHTNING_INITS:  # type: ignore[misc]
        return False
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(cls).parameters.values())


def check_args(cls: type, args: dict[str, Any], key: str, source: str, skip: tuple[str, ...] = ()) -> None:
    if open_kwargs(cls):
        return
    params = accepted(cls, skip)
    unknown = sorted(set(args) - set(params))
    if unknown:
        known = ", ".join(params) or "no arguments"
        raise ConfigError(f"{source}: {key}.init_args: {cls.__name__} takes no argument {unknown[0]!r} "
                          f"(it takes: {known}).")


def component(spec: Any, key: str, base: type | tuple[type, ...], source: str,
              skip: tuple[str, ...] = ()) -> tuple[Any, dict[str, Any]]:
    """``{class_path: ..., init_args: {...}}`` (or a bare class path): the class, checked against ``base``, and its
    arguments, checked against its signature."""
    if isinstance(spec, str):
        spec = {"class_path": spec}
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise ConfigError(f"{source}: {key}: needs class_path: (e.g. {key}: {{class_path: my_pkg.MyClass}}).")
    extra = sorted(set(spec) - {"class_path", "init_args", "dict_kwargs"})
    if extra:
        raise ConfigError(f"{source}: {key}: unknown key {extra[0]!r}; use class_path: and init_args:.")
    cls = import_class(spec["class_path"], key, source)
    bases = base if isinstance(base, tuple) else (base,)
    if not (inspect.isclass(cls) and issubclass(cls, bases)):
        names = " or ".join(b.__name__ for b in bases)
        raise ConfigError(f"{source}: {key}.class_path {spec['class_path']!r} is not a {names} subclass.")
    args = spec.get("init_args") or {}
    if not isinstance(args, dict):
        raise ConfigError(f"{source}: {key}.init_args must be a mapping of constructor arguments.")
    check_args(cls, args, key, source, skip)
    return cls, dict(args)


def check_trainer(trainer: dict[str, Any], source: str) -> None:
    """Trainer argument names; the classes its ``callbacks`` and ``logger`` name."""
    params = inspect.signature(pl.Trainer.__init__).parameters
    unknown = sorted(set(trainer) - set(params))
    if unknown:
        raise ConfigError(f"{source}: trainer: unknown Trainer argument {unknown[0]!r}.")
    callbacks = trainer.get("callbacks") or []
    for i, spec in enumerate(callbacks if isinstance(callbacks, list) else [callbacks]):
        component(spec, f"trainer.callbacks[{i}]", pl.Callback, source)
    logger = trainer.get("logger")
    if isinstance(logger, (dict, str)) and logger not in ("true", "false"):
        from lightning.pytorch.loggers import Logger

        component(logger, "trainer.logger", Logger, source)
    elif isinstance(logger, list):
        from lightning.pytorch.loggers import Logger

        for i, spec in enumerate(logger):
            component(spec, f"trainer.logger[{i}]", Logger, source)


def check_optimizer_sections(optimizer: Any, lr_scheduler: Any, source: str) -> None:
    """LightningCLI's ``optimizer:`` and ``lr_scheduler:`` sections."""
    if optimizer is not None:
        component(optimizer, "optimizer", torch.optim.Optimizer, source, skip=("params",))
    if lr_scheduler is not None:
        if optimizer is None:
            raise ConfigError(f"{source}: lr_scheduler: needs an optimizer: section beside it (as in LightningCLI).")
        component(lr_scheduler, "lr_scheduler", (torch.optim.lr_scheduler.LRScheduler,
                                                 torch.optim.lr_scheduler.ReduceLROnPlateau), source,
                  skip=("optimizer",))
