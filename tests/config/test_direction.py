"""The direction of a monitor without ``direction:``, read from its name."""

import pytest

from tests.search.helpers import BASE
from tunekit.config import parse_config
from tunekit.config._direction import infer_direction
from tunekit.exceptions import ConfigError

NAMES = [
    ("val_acc", "maximize"), ("val/accuracy", "maximize"), ("valid_f1_macro", "maximize"), ("valAUROC", "maximize"),
    ("val_IoU", "maximize"), ("test_r2", "maximize"), ("val_bleu", "maximize"), ("val_map_50", "maximize"),
    ("val_dice", "maximize"), ("val_precision", "maximize"), ("val_recall_epoch", "maximize"),
    ("val_loss", "minimize"), ("train_loss_epoch", "minimize"), ("tunekit/train_loss", "minimize"),
    ("val_mse", "minimize"), ("val/rmse", "minimize"), ("valid_perplexity", "minimize"), ("val_nll", "minimize"),
    ("mean_absolute_error", "minimize"), ("val_mae", "minimize"), ("val_wer", "minimize"),
]


@pytest.mark.parametrize(("monitor", "direction"), NAMES, ids=[n for n, _ in NAMES])
def test_the_direction_is_read_from_the_metric_name(monitor, direction):
    assert infer_direction(monitor)[0] == direction


@pytest.mark.parametrize("monitor", ["hp_metric", "val_los", "score", "val_loss_minus_acc"])
def test_a_name_that_says_nothing_or_both_needs_direction(monitor):
    with pytest.raises(ConfigError, match="direction: m"):
        infer_direction(monitor)


def test_a_config_without_direction_takes_it_from_the_monitor_and_says_why():
    cfg = parse_config({**BASE, "monitor": "val_acc"})
    assert cfg.direction == "maximize" and cfg.direction_reason.startswith("maximize val_acc (its name says acc")
    assert cfg.range_test_monitor == "val_loss"  # the range test ranks its runs lowest first: not on accuracy
    given = parse_config({**BASE, "monitor": "val_acc", "direction": "minimize"})  # what the user says stands
    assert given.direction == "minimize" and given.direction_reason is None and given.range_test_monitor == "val_acc"
    assert parse_config(BASE).direction == "minimize"  # the default monitor, val_loss
