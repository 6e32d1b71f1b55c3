"""SWATS' SGD learning rate against its formula: gamma = p.p / -(p.g) for Adam's step p and the gradient g it was
taken on (Keskar & Socher 2017, eq. 3), capped at STEP_CAP |p| / |g|, the median over the steps seen."""

import numpy as np
import pytest
import torch
from torch.nn.utils import parameters_to_vector

from tunekit.recipe import SwatsEstimate
from tunekit.recipe._swats import STEP_CAP


def test_each_sample_is_the_projection_of_adams_step_on_the_gradient():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = torch.randn(32, 5), torch.randn(32, 1)
    est = SwatsEstimate(1)
    expected = []
    for _ in range(6):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        before = parameters_to_vector(model.parameters()).detach().clone()
        g = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).double()
        est.before_step(opt)
        opt.step()
        est.after_step(opt)
        p = (parameters_to_vector(model.parameters()).detach() - before).double()
        gamma = float(p @ p / -(p @ g))
        expected.append(min(gamma, STEP_CAP * float(p.norm() / g.norm())))
    assert est.samples[0] == pytest.approx(expected, rel=1e-4)
    assert est.lrs() == [pytest.approx(float(np.median(expected)), rel=1e-4)]
