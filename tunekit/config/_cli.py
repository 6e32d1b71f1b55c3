"""The LightningCLI part of a config (``model``, ``data``, ``trainer``, ``optimizer``, ``lr_scheduler``), parsed and
instantiated by Lightning's own ``LightningArgumentParser`` (jsonargparse): type checks, nested ``class_path``s,
callbacks and loggers made fresh for every trial."""

from __future__ import annotations

import functools
import json
import re
from types import MethodType
from typing import Any

import lightning.pytorch as pl

from tunekit.exceptions import ConfigError

PARSED_KEPT = 16  # parsed configs kept (a search uses one or two: with and without its batch-size override)


@functools.lru_cache(maxsize=2)
def _parser(with_data: bool) -> Any:
    from lightning.pytorch.cli import LightningArgumentParser

    parser = LightningArgumentParser(exit_on_error=False)
    parser.add_lightning_class_args(pl.LightningModule, "model", subclass_mode=True)
    if with_data:
        parser.add_lightning_class_args(pl.LightningDataModule, "data", subclass_mode=True)
    parser.add_lightning_class_args(pl.Trainer, "trainer")
    return parser


def _one_line(err: Exception) -> str:
    r"""jsonargparse's nested message as one line: the key path, what was expected, what was given.

    Example:
        >>> _one_line(ValueError('Parser key "model":\n  Errors:\n    - Problem with given class_path \'m.M\':\n'
        ...                      '        Parser key "hidden":\n          Expected a <class \'int\'>. Got value: abc'))
        "model.init_args.hidden: expected int, but got 'abc'"
    """
    text = str(err)
    keys = re.findall(r'Parser key "([^"]+)"', text)
    expected = re.search(r"Expected a <class '(?:[\w.]+\.)?([\w]+)'>", text)
    given = re.search(r"(?:Got value|Given value): (.*)", text)
    if not keys:
        return text.strip().splitlines()[0] if text.strip() else type(err).__name__
    path = keys[0] + "".join(f".init_args.{k}" for k in keys[1:])
    why = f"expected {expected.group(1)}" if expected else "not a valid value"
    return f"{path}: {why}" + (f", but got {given.group(1).strip()!r}" if given else "")


class _Sections:
    """Config sections as an ``lru_cache`` key: equal when their JSON is (the dicts themselves are unhashable)."""

    def __init__(self, sections: dict[str, Any]) -> None:
        self.sections = sections
        self.key = json.dumps(sections, sort_keys=True, default=repr)

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Sections) and other.key == self.key


@functools.lru_cache(maxsize=PARSED_KEPT)
def _parse_once(sections: _Sections) -> Any:
    parser = _parser("data" in sections.sections)
    return parser.parse_object({k: v for k, v in sections.sections.items() if v is not None})


def parse(sections: dict[str, Any], source: str) -> Any:
    """The parsed namespace (every default filled in, every type checked); a mistake is one ``ConfigError`` line.

    A search builds the model, data and Trainer arguments from the same sections several times per trial, and a
    parse costs about 0.2 s, so the namespace is parsed once per distinct sections and handed out as a copy.
    """
    try:
        parsed = _parse_once(_Sections(sections))
    except Exception as err:  # jsonargparse's ArgumentError, raised for any parse or type failure
        raise ConfigError(f"{source}: {_one_line(err)}") from None
    return parsed.clone()


def instantiate(sections: dict[str, Any], source: str) -> Any:
    """The config's objects, made fresh: ``.model``, ``.data`` (when given) and ``.trainer`` (a mapping of Trainer
    arguments whose callbacks and logger are instances)."""
    parser = _parser("data" in sections)
    try:
        return parser.instantiate_classes(parse(sections, source))
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{source}: {_one_line(err)}") from None


def dump(sections: dict[str, Any], source: str) -> str:
    """The config as Lightning's parser reads it, every default filled in (``--print-config``)."""
    return str(_parser("data" in sections).dump(parse(sections, source), skip_none=False))


def attach_optimizer(model: pl.LightningModule, optimizer: tuple[type, dict[str, Any]],
                     lr_scheduler: tuple[type, dict[str, Any]] | None) -> None:
    """Give ``model`` the optimizer (and LR scheduler) of LightningCLI's ``optimizer:`` (``lr_scheduler:``) section
    in place of its own ``configure_optimizers``, as LightningCLI does."""
    from lightning.pytorch.cli import LightningCLI

    opt_cls, opt_args = optimizer

    def configure_optimizers(self: pl.LightningModule) -> Any:
        opt = opt_cls(self.parameters(), **opt_args)
        sched = lr_scheduler[0](opt, **lr_scheduler[1]) if lr_scheduler is not None else None
        return LightningCLI.configure_optimizers(self, opt, sched)

    model.configure_optimizers = MethodType(configure_optimizers, model)  # type: ignore[method-assign]
