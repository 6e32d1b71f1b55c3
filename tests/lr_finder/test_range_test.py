"""lr_range_test on real fits: a suggestion users can trust, and the model left exactly as found."""

import random

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from scipy.ndimage import median_filter
from torch import nn

from tunekit import Recipe, lr_range_test
from tunekit.callbacks import LRRangeTest
from tunekit.examples import MLP, DigitsDataModule, SequenceGRU, SequenceSumDataModule
from tunekit.exceptions import ConfigError


class BatchNormMLP(MLP):
    """Has buffers (BatchNorm running stats) and a plain ``lr`` attribute too."""

    def __init__(self):
        super().__init__(hidden=(32,))
        self.net.insert(1, nn.BatchNorm1d(32))
        self.lr = 0.123


def test_model_is_restored_bit_for_bit():
    torch.manual_seed(0)
    model = BatchNormMLP()
    model.eval()
    model.net[0].train()  # a mix of modes
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = {n: m.training for n, m in model.named_modules()}
    recipe = model.recipe
    rng = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    result = lr_range_test(model, datamodule=DigitsDataModule(), max_steps=120, sweep_steps=40)
    assert result.steps > 0
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and running stats
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert model.recipe is recipe and model.lr == 0.123
    assert model._trainer is None
    assert torch.equal(torch.get_rng_state(), rng[0])
    assert np.array_equal(np.random.get_state()[1], rng[1]) and random.getstate() == rng[2]


def test_suggestion_on_an_ordinary_task(tmp_path):
    result = lr_range_test(MLP(), datamodule=DigitsDataModule())
    assert result.suggestion is not None and result.reason is None
    # the ladder: the sweep's lowest point of the 7-step running median (before it diverged), times LADDER
    lrs, losses = np.asarray(result.lrs), np.where(np.isfinite(result.losses), result.losses, np.inf)
    stop = result.lrs.index(result.diverged_at) if result.diverged_at is not None else len(lrs)
    bottom = lrs[int(np.argmin(median_filter(losses, size=7, mode="nearest")[:stop]))]
    rung0 = [c for c in result.candidates if c.rung == 0]
    assert [c.lr for c in sorted(rung0, key=lambda c: c.lr)] == pytest.approx(
        sorted(bottom * f for f in (1.0, 0.316, 0.1, 0.0316, 0.01)))
    # the pick: the lowest finalist LR scoring within 15% of the best finalist (no notch diverged here)
    final = [c for c in result.candidates if c.rung == 1]
    best = min(c.score for c in final)
    assert all(np.isfinite(c.score) for c in rung0)
    assert result.suggestion == min(c.lr for c in final if c.score <= 1.15 * best)
    assert 1e-3 <= result.suggestion <= 1e-2  # Adam on digits: the grid's best is 3e-3 (benchmarks/lr_suggestion.py)
    assert result.steps <= 300
    low, high = result.bounds
    assert low < result.suggestion < high
    assert result.scored_on == "val_loss"
    assert {c.rung for c in result.candidates} == {0, 1}
    assert len(result.lrs) == len(result.losses) > 10
    fig = result.plot()
    fig.savefig(tmp_path / "lr.png")
    assert (tmp_path / "lr.png").stat().st_size > 10_000


def test_no_suggestion_with_a_reason_on_a_model_that_cannot_learn():
    dead = MLP(hidden=(64, 64), init_std=0.0)  # all-zero ReLU network: no gradient reaches the hidden layers
    result = lr_range_test(dead, datamodule=DigitsDataModule(), max_steps=120, sweep_steps=60)
    assert result.suggestion is None and result.flat
    assert "did not fall at any learning rate" in result.reason
    assert result.steps <= 60  # no budget left for a longer sweep


def test_a_loss_that_starts_on_a_plateau_gets_a_longer_sweep_and_a_wide_fallback_range_not_a_tiny_lr():
    # a GRU summing a 64-step sequence: its loss sits near 1.0 for the first ~80 steps at any LR below the edge
    # (about 0.1 learns, to a validation loss near 0.07 in 4 epochs); a short sweep sees only noise there
    data = SequenceSumDataModule(batch_size=16, length=64)
    result = lr_range_test(SequenceGRU(length=64, hidden=16), datamodule=data, max_steps=300, sweep_steps=60)
    assert result.steps > 60  # it swept again, longer
    assert result.suggestion is None and result.flat
    low, high = result.fallback_bounds()
    assert low < 0.01 and high > 0.1  # the good LR is inside the range a search falls back to


def test_train_loaders_only_scores_on_training_loss():
    dm = DigitsDataModule()
    result = lr_range_test(MLP(), train_dataloaders=dm.train_dataloader(), max_steps=150, sweep_steps=40)
    assert result.suggestion is not None and result.scored_on == "train_loss"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"min_lr": 1.0, "max_lr": 0.1}, "need 0 < min_lr < max_lr"),
    ({"max_steps": 50}, "leaves too few steps"),
    ({"sweep_steps": 3}, "sweep_steps must be >= 10"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        lr_range_test(MLP(), datamodule=DigitsDataModule(), **kwargs)
    with pytest.raises(ConfigError, match="exactly one of"):
        lr_range_test(MLP())


def test_callback_trains_with_the_suggestion(tmp_path):
    model = MLP()
    model.recipe = Recipe(optimizer="adam", lr=1.0)  # a bad LR the callback replaces
    finder = LRRangeTest(max_steps=150, sweep_steps=40)
    trainer = pl.Trainer(max_epochs=2, callbacks=[finder], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, datamodule=DigitsDataModule())
    assert finder.result.suggestion is not None
    assert model.recipe.lr == finder.result.suggestion
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(finder.result.suggestion)
    assert trainer.global_step == 46 and model.trainer is trainer
    assert trainer.callback_metrics["val_loss"] < 1.0


def test_under_ddp_rank_zero_runs_the_test_and_every_rank_trains_with_its_pick(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).with_name("ddp_range_test.py")
    result = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    zero, one = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert (zero["ran_here"], one["ran_here"]) == (True, False)
    assert zero["suggestion"] is not None and zero["suggestion"] == one["suggestion"]
    assert zero["recipe_lr"] == one["recipe_lr"] == zero["suggestion"]
    assert zero["trained_lr"] == pytest.approx(one["trained_lr"])


class CountingMLP(MLP):
    """Counts the optimizer steps it really takes and the micro-batches it trains on."""

    def __init__(self):
        super().__init__(hidden=(32,))
        self.optimizer_steps = self.micro_batches = 0

    def training_step(self, batch, batch_idx):
        self.micro_batches += 1
        return super().training_step(batch, batch_idx)

    def optimizer_step(self, *args, **kwargs):
        self.optimizer_steps += 1
        return super().optimizer_step(*args, **kwargs)


def test_under_gradient_accumulation_every_step_is_an_optimizer_step():
    model = CountingMLP()
    result = lr_range_test(model, datamodule=DigitsDataModule(batch_size=16), max_steps=60, sweep_steps=20,
                           trainer_kwargs={"accumulate_grad_batches": 4})
    assert result.steps == model.optimizer_steps <= 60
    assert model.micro_batches >= 3.5 * model.optimizer_steps  # 4 per step, less the short window at an epoch's end
    sweep = len(result.losses)
    assert sweep == len(result.lrs) == len(set(result.lrs)) <= 20  # one point, and one LR, per optimizer step
    assert 1.9 < result.losses[0] < 2.8  # a step's loss is its micro-batches' mean: ln(10) at init, not ln(10) / 4
    first_rung = {c.steps for c in result.candidates if c.rung == 0}
    assert first_rung == {(60 - sweep) // 2 // 5}  # half of what the sweep left, over the 5 LRs of the ladder
    assert result.suggestion is not None


def test_the_callback_runs_the_test_with_the_fits_accumulation():
    model = CountingMLP()
    finder = LRRangeTest(max_steps=30, sweep_steps=20)
    trainer = pl.Trainer(max_steps=5, accumulate_grad_batches=4, callbacks=[finder], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=16))
    assert model.optimizer_steps == finder.result.steps + trainer.global_step
    assert model.micro_batches >= 3.5 * model.optimizer_steps
