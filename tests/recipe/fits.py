"""A tiny real fit for the recipe tests: iris (shuffled once, fixed batches), a two-layer net with a recipe."""

import lightning.pytorch as pl
import torch
from sklearn.datasets import load_iris
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tunekit import Recipe
from tunekit.callbacks import RecipeMixin

BATCH, STEPS = 30, 10  # iris: 150 rows, 5 batches an epoch, 2 epochs


def iris():
    x, y = load_iris(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))  # iris is sorted by class
    return torch.tensor(x, dtype=torch.float32)[order], torch.tensor(y)[order]


def loader():
    return DataLoader(TensorDataset(*iris()), batch_size=BATCH, shuffle=False)


class Net(RecipeMixin, pl.LightningModule):
    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))
        self.recipe = recipe

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))


def fit(tmp_path, recipe, steps=STEPS, callbacks=(), val=False, ckpt=None, **kwargs):
    pl.seed_everything(0, verbose=False)
    model = Net(recipe)
    kwargs.setdefault("enable_checkpointing", False)
    trainer = pl.Trainer(max_steps=steps, callbacks=list(callbacks), logger=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path,
                         limit_val_batches=1.0 if val else 0, num_sanity_val_steps=0, **kwargs)
    trainer.fit(model, train_dataloaders=loader(), val_dataloaders=loader() if val else None, ckpt_path=ckpt)
    return model, trainer


