"""A fork trains exactly as the run does: the same steps from the same state on the same batches end at the same
weights, clipping included (by value when the Trainer clips by value)."""

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from tunekit.examples import MLP, DigitsDataModule
from tunekit.probes import Fork, TrainingState

STEPS = 4
CLIP = 1e-3  # far under the gradients' entries and norm: every step is clipped, by either rule


class _Keep(Callback):
    def __init__(self):
        self.batches, self.state = [], None

    def on_train_start(self, trainer, pl_module):
        self.state = TrainingState.take(pl_module, trainer.optimizers[0], [])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append([t.clone() for t in batch])


@pytest.mark.parametrize("algorithm", ["value", "norm"])
def test_a_fork_clips_as_the_trainer_does(tmp_path, algorithm):
    pl.seed_everything(0, verbose=False)
    keep = _Keep()
    model = MLP(optimizer="sgd", lr=0.5, momentum=0.9)
    trainer = pl.Trainer(max_steps=STEPS, gradient_clip_val=CLIP, gradient_clip_algorithm=algorithm,
                         callbacks=[keep], logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, num_sanity_val_steps=0,
                         limit_val_batches=0)
    trainer.fit(model, datamodule=DigitsDataModule())
    run = [p.detach().clone() for p in model.parameters()]
    optimizer = trainer.optimizers[0]

    def fork(clip_algorithm):
        keep.state.restore(model, optimizer, [], grads=False)
        Fork(model, optimizer, trainer.precision_plugin, CLIP, 1, clip_algorithm).train({}, keep.batches, STEPS)
        return [p.detach().clone() for p in model.parameters()]

    same, other = fork(algorithm), fork("norm" if algorithm == "value" else "value")
    for a, b in zip(same, run, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert any((a - b).abs().max() > 1e-4 for a, b in zip(other, run, strict=True))  # the other rule differs
