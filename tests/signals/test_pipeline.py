"""The torch-side pipeline inspections on plain modules, optimizers and schedulers (no Trainer)."""

from __future__ import annotations

import torch
from torch import nn

from tunekit.signals._pipeline import (
    ClearingWatch,
    batch_fingerprint,
    eval_mode_modules,
    mark_gradients,
    rises,
    scheduler_horizon,
    trainable_parameters,
    unlearned_parameters,
    warmup_peak,
)


def test_eval_mode_modules_reports_the_outermost_ones_with_what_their_mode_changes():
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.BatchNorm1d(4), nn.ReLU(), nn.Dropout(0.5)),
                          nn.GRU(4, 4, num_layers=2, dropout=0.1), nn.InstanceNorm1d(4))
    assert eval_mode_modules(model) == []
    model[1].eval(), model[2].eval(), model[3].eval(), model[0].eval()
    found = eval_mode_modules(model)
    assert [f["module"] for f in found] == ["0", "1", "2", "3"]
    assert found[0]["affected"] == []  # a Linear behaves the same in both modes
    assert found[1]["affected"] == ["1.0 (BatchNorm1d)", "1.2 (Dropout)"] and found[1]["trainable"] == 2
    assert found[2]["affected"] == ["2 (GRU)"]
    assert found[3]["affected"] == []  # InstanceNorm without running statistics
    model.eval()
    (whole,) = eval_mode_modules(model, "Net")
    assert whole["module"] == "Net" and len(whole["affected"]) == 3


def test_scheduler_horizons_and_lambda_warmups():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = torch.optim.lr_scheduler
    assert scheduler_horizon(sched.OneCycleLR(opt, max_lr=0.1, total_steps=500)) == ("total_steps", 500)
    assert scheduler_horizon(sched.CosineAnnealingLR(opt, T_max=30)) == ("T_max", 30)
    warm, cos = sched.LinearLR(opt, 0.01, total_iters=100), sched.CosineAnnealingLR(opt, T_max=900)
    assert scheduler_horizon(sched.SequentialLR(opt, [warm, cos], milestones=[100]))[1] == 1000
    assert scheduler_horizon(sched.MultiStepLR(opt, milestones=[30, 80])) == ("last milestone", 80)
    assert scheduler_horizon(sched.StepLR(opt, step_size=10)) is None
    assert rises(sched.LinearLR(opt, 0.01, total_iters=5)) and rises(sched.ConstantLR(opt))
    assert not rises(sched.LinearLR(opt, 1.0, 0.01, total_iters=5)) and not rises(sched.OneCycleLR(opt, 0.1, 9))
    assert warmup_peak(lambda s: min(1.0, (s + 1) / 500), 10_000) in range(490, 560)  # probed on a log grid
    assert warmup_peak(lambda s: 0.95 ** s, 10_000) is None  # a decay is not a warmup
    assert warmup_peak(lambda s: 1 / 0 if s > 3 else 0.1, 100) is None  # a lambda that raises: no verdict


def test_batch_fingerprints_tell_batches_apart_and_see_integer_tensors():
    x = torch.arange(12.0).reshape(4, 3)
    same = batch_fingerprint({"x": x, "y": torch.tensor([1, 2, 3, 4])})
    assert same.tolist() == [5.5, 0.0, 2.5, 1.0]
    assert not torch.equal(same, batch_fingerprint({"x": x, "y": torch.tensor([1, 2, 3, 5])}))
    assert batch_fingerprint(["text", torch.zeros(0)]) is None
    assert torch.equal(batch_fingerprint(torch.ones(16, 3)), batch_fingerprint(torch.ones(5, 3)))  # a short last batch


def test_the_clearing_watch_sees_a_gradient_carried_into_the_next_step():
    def run(clear: str) -> list[bool]:
        torch.manual_seed(0)
        layer = nn.Linear(3, 1)
        opt = torch.optim.SGD(layer.parameters(), lr=0.1)
        watch = ClearingWatch("weight", layer.weight)
        for _ in range(4):
            if clear:
                opt.zero_grad(set_to_none=clear == "none")
            layer(torch.randn(8, 3)).pow(2).mean().backward()
            if watch.applied_by(opt):
                watch.arm()
            opt.step()
        watch.remove()
        return watch.carried()

    assert run("") == [True, True, True]
    assert run("none") == run("zeros") == [False, False, False]


def test_parameters_without_gradient_or_optimizer():
    model = nn.ModuleDict({"used": nn.Linear(2, 1), "unused": nn.Linear(2, 1), "left_out": nn.Linear(2, 1)})
    opt = torch.optim.SGD([*model["used"].parameters(), *model["unused"].parameters()], lr=0.1)
    (model["used"](torch.ones(1, 2)) + model["left_out"](torch.ones(1, 2))).sum().backward()
    params, seen = trainable_parameters(model), set()
    mark_gradients(params, seen)
    assert unlearned_parameters(params, seen, [opt]) == (["unused.weight", "unused.bias"],
                                                         ["left_out.weight", "left_out.bias"])
