"""The bundled example models and data modules train (the benchmarks and the demo rely on them)."""

import lightning.pytorch as pl
import pytest

from tunekit.examples import (
    MLP,
    BreastCancerDataModule,
    CharTransformer,
    DiabetesDataModule,
    DigitsCNN,
    DigitsDataModule,
    PythonSourceDataModule,
)


def _fit(model, data, steps=30):
    pl.seed_everything(0)
    trainer = pl.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, val_check_interval=steps, check_val_every_n_epoch=None)
    trainer.fit(model, datamodule=data)
    return trainer.callback_metrics


@pytest.mark.parametrize("norm_first", [True, False])
def test_char_transformer_learns_python_source(norm_first):
    data = PythonSourceDataModule(train_windows=512, val_windows=64)
    first = data.train_dataloader().dataset[0]
    assert first[0].shape == (64,) and (first[0][1:] == first[1][:-1]).all()  # next-character targets
    metrics = _fit(CharTransformer(vocab_size=data.vocab_size, lr=3e-3, norm_first=norm_first), data, steps=40)
    assert metrics["val_loss"] < 4.0  # from ln(158) = 5.06 at the start


def test_cnn_and_the_sklearn_data_modules_train():
    assert _fit(DigitsCNN(lr=3e-3), DigitsDataModule())["val_acc"] > 0.5
    cancer = BreastCancerDataModule(batch_size=32)
    assert (cancer.num_features, cancer.num_outputs) == (30, 2)
    assert _fit(MLP(in_features=30, out_features=2, hidden=()), cancer)["val_loss"] < 0.69
    diabetes = DiabetesDataModule()
    assert diabetes.num_outputs == 1 and diabetes.task == "regression"
    assert _fit(MLP(in_features=10, out_features=1, task="regression", lr=3e-3), diabetes, 60)["val_loss"] < 1.2


def test_label_noise_and_bad_arguments():
    noisy, clean = DigitsDataModule(label_noise=0.5), DigitsDataModule()
    noisy.setup(), clean.setup()
    changed = (noisy.train_set.tensors[1] != clean.train_set.tensors[1]).float().mean()
    assert 0.3 < changed < 0.6  # half replaced at random, a tenth of those by the same label
    assert (noisy.val_set.tensors[1] == clean.val_set.tensors[1]).all()  # validation stays clean
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        DigitsDataModule(batch_size=0)
    with pytest.raises(ValueError, match="activation must be one of"):
        MLP(activation="swish")
