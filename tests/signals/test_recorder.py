"""The recorder against torch's own norms, without Lightning."""

import numpy as np
import pytest
import torch

from tunekit.record import initial_loss_of
from tunekit.signals import SignalRecorder


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4), torch.nn.LayerNorm(4))


def _steps(rec: SignalRecorder, model: torch.nn.Module, n: int, accumulate: int = 1, lr: float = 0.1):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    x, y = torch.randn(64, 8), torch.randn(64, 4)
    reference = []
    ratios: list[float] = []  # ||w_after - w_before|| / ||w_before|| of every step, all parameters together
    batch = 0
    for step in range(n):
        losses = []
        for _ in range(accumulate):
            loss = torch.nn.functional.mse_loss(model(x[batch % 8 :: 8]), y[batch % 8 :: 8])
            (loss / accumulate).backward()
            losses.append(loss.item())
            if len(losses) < accumulate:
                rec.capture_loss(loss.detach() / accumulate, step)
                batch += 1
        per_layer = {
            "0": torch.linalg.vector_norm(model[0].weight.grad).item(),
            "2": torch.linalg.vector_norm(model[2].weight.grad).item(),
            "3": torch.linalg.vector_norm(torch.cat([model[3].weight.grad, model[3].bias.grad])).item(),
        }
        total = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]).item()
        rec.capture_gradients(step, [opt.param_groups[0]["lr"]])
        before = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()
        opt.step()
        after = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
        ratios.append(float(torch.linalg.vector_norm(after - before) / torch.linalg.vector_norm(before)))
        opt.zero_grad()
        rec.capture_loss(loss.detach() / accumulate, step + 1)
        batch += 1
        reference.append((float(np.mean(losses)), total, per_layer, ratios[-1]))
    return reference


@pytest.mark.parametrize("accumulate", [1, 3])
def test_norms_and_loss_match_torch(accumulate):
    model = _model()
    rec = SignalRecorder(flush_every=4, update_ratio_every=5)
    rec.bind(model, total_steps=None, grad_scaler=False, world_size=1)
    ref = _steps(rec, model, 10, accumulate=accumulate)
    record = rec.record()
    assert record.steps.tolist() == list(range(10))
    assert record.layer_names == ("0", "2", "3")
    np.testing.assert_allclose(record.loss, [r[0] for r in ref], rtol=1e-5)
    np.testing.assert_allclose(record.grad_norm, [r[1] for r in ref], rtol=1e-5)
    for j, name in enumerate(record.layer_names):  # weights only where a layer has them; LayerNorm whole
        np.testing.assert_allclose(record.layer_grad_norms[:, j], [r[2][name] for r in ref], rtol=1e-5)
    assert record.update_steps.tolist() == [0, 5]
    np.testing.assert_allclose(record.update_ratio, [ref[0][3], ref[5][3]], rtol=1e-4)
    assert record.initial_loss == pytest.approx(initial_loss_of(np.array([r[0] for r in ref])), rel=1e-5)
    assert record.lr.tolist() == [0.1] * 10


def test_nan_is_seen_on_the_step_it_happens():
    model = _model()
    rec = SignalRecorder(flush_every=8)
    rec.bind(model, total_steps=None, grad_scaler=False, world_size=1)
    _steps(rec, model, 3)
    model[0].weight.data[0, 0] = float("nan")
    out = model(torch.randn(4, 8)).sum()
    out.backward()
    rec.capture_gradients(3, [0.1])
    assert rec.capture_loss(out.detach(), 4) is True
    assert rec.first_nonfinite_step == 3
    assert rec.record().first_nonfinite_step == 3


def test_state_dict_round_trip_keeps_series():
    model = _model()
    rec = SignalRecorder(flush_every=4)
    rec.bind(model, total_steps=100, grad_scaler=False, world_size=1)
    _steps(rec, model, 6)
    state = rec.state_dict()
    fresh = SignalRecorder(flush_every=4)
    fresh.load_state_dict(state)
    fresh.bind(model, total_steps=100, grad_scaler=False, world_size=1)
    assert fresh.record().steps.tolist() == list(range(6))
    assert fresh.initial_loss == rec.initial_loss


def test_resume_with_another_model_is_refused():
    rec = SignalRecorder()
    rec.bind(_model(), total_steps=None, grad_scaler=False, world_size=1)
    rec2 = SignalRecorder()
    rec2.load_state_dict(rec.state_dict())
    with pytest.raises(ValueError, match="resume with the same model"):
        rec2.bind(torch.nn.Linear(3, 3), total_steps=None, grad_scaler=False, world_size=1)


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="flush_every must be >= 1"):
        SignalRecorder(flush_every=0)
    with pytest.raises(ValueError, match="no trainable parameters"):
        SignalRecorder().bind(torch.nn.ReLU(), total_steps=None, grad_scaler=False, world_size=1)
