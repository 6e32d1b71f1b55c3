"""Small real data sets as LightningDataModules (sklearn's bundled data: nothing is downloaded)."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset


class ArrayDataModule(pl.LightningDataModule):
    """Features and labels held in memory, split into train/validation with a fixed seed.

    Args:
        batch_size: training batch size (validation uses the whole split in batches of 512).
        val_fraction: share of the examples held out for validation.
        train_size: keep only this many training examples (a small set makes a model overfit).
        seed: the split's seed.
        standardize: scale features to zero mean, unit variance (fitted on the training split).
        feature_scale: multiply the features by this (a large value makes unnormalized inputs).
        label_noise: share of training labels replaced by random ones (a noise floor no model beats).
    """

    def __init__(self, batch_size: int = 64, val_fraction: float = 0.2, train_size: int | None = None,
                 seed: int = 0, standardize: bool = True, feature_scale: float = 1.0,
                 label_noise: float = 0.0) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, but got {batch_size=}.")
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be between 0 and 1, but got {val_fraction=}.")
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.train_size = train_size
        self.seed = seed
        self.standardize = standardize
        if not 0 <= label_noise <= 1:
            raise ValueError(f"label_noise must be between 0 and 1, but got {label_noise=}.")
        self.feature_scale = feature_scale
        self.label_noise = label_noise
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None

    task = "classification"  # or "regression": float targets, standardized on the training split

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    @property
    def num_features(self) -> int:
        return int(self.load_arrays()[0].shape[1])

    @property
    def num_outputs(self) -> int:
        """Classes for a classification set, 1 for regression."""
        return int(self.load_arrays()[1].max()) + 1 if self.task == "classification" else 1

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        x, y = self.load_arrays()
        order = np.random.default_rng(self.seed).permutation(len(x))
        n_val = int(round(self.val_fraction * len(x)))
        val_idx, train_idx = order[:n_val], order[n_val:]
        if self.train_size is not None:
            train_idx = train_idx[: self.train_size]
        x = x.astype(np.float32)
        if self.standardize:
            mean, std = x[train_idx].mean(0), x[train_idx].std(0)
            std[std < 1e-3] = 1.0  # constant features (always-blank pixels) stay put, as in sklearn's scaler
            x = (x - mean) / std
        x = x * self.feature_scale
        y = y.copy()
        if self.task == "regression":
            y = ((y - y[train_idx].mean()) / y[train_idx].std()).astype(np.float32)
        elif self.label_noise:
            rng = np.random.default_rng(self.seed + 1)
            noisy = train_idx[rng.random(len(train_idx)) < self.label_noise]
            y[noisy] = rng.integers(0, int(y.max()) + 1, len(noisy))
        target = torch.from_numpy(y).float() if self.task == "regression" else torch.from_numpy(y).long()
        self.train_set = TensorDataset(torch.from_numpy(x[train_idx]), target[train_idx])
        self.val_set = TensorDataset(torch.from_numpy(x[val_idx]), target[val_idx])

    def train_dataloader(self) -> DataLoader[Any]:
        self.setup()
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, generator=generator)  # type: ignore[arg-type]

    def val_dataloader(self) -> DataLoader[Any]:
        self.setup()
        return DataLoader(self.val_set, batch_size=512)  # type: ignore[arg-type]


class DigitsDataModule(ArrayDataModule):
    """sklearn's 8x8 handwritten digits: 1,797 images, 64 features, 10 classes."""

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        return x, y


class BreastCancerDataModule(ArrayDataModule):
    """sklearn's Wisconsin breast cancer data: 569 examples, 30 features, 2 classes."""

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.datasets import load_breast_cancer

        x, y = load_breast_cancer(return_X_y=True)
        return x, y


class DiabetesDataModule(ArrayDataModule):
    """sklearn's diabetes progression data: 442 patients, 10 features, a real-valued target (regression)."""

    task = "regression"

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.datasets import load_diabetes

        x, y = load_diabetes(return_X_y=True)
        return x, y


class WineDataModule(ArrayDataModule):
    """sklearn's wine recognition data: 178 examples, 13 features, 3 classes."""

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.datasets import load_wine

        x, y = load_wine(return_X_y=True)
        return x, y


class IrisDataModule(ArrayDataModule):
    """sklearn's iris data: 150 examples, 4 features, 3 classes."""

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.datasets import load_iris

        x, y = load_iris(return_X_y=True)
        return x, y


class SequenceSumDataModule(ArrayDataModule):
    """A synthetic sequence task: ``length`` steps of ``width`` random features; the target is the scaled sum of
    the first feature over the sequence (a recurrent model must carry a running total; the loss sits on a
    plateau before it learns to). Features are given flattened, ``length * width`` per example.

    Args:
        examples: sequences to draw (with ``seed``).
        length, width: the sequence shape.
    """

    task = "regression"

    def __init__(self, examples: int = 2000, length: int = 16, width: int = 4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.examples, self.length, self.width = examples, length, width

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(1234)  # the task is the same for every seed; the split follows ``seed``
        x = rng.normal(size=(self.examples, self.length, self.width))
        y = x[:, :, 0].sum(axis=1) / np.sqrt(self.length)
        return x.reshape(self.examples, -1), y
