"""Curvature estimates against exact answers: quadratics with a known Hessian, a saddle, the exact Hessian of small
MLPs, and the negative curvature of a deep linear network at a small init."""

import numpy as np
import pytest
import torch
from torch.func import functional_call

from tunekit.signals import adam_preconditioner, curvature
from tunekit.signals._curvature import _ritz


class Vector(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.x = torch.nn.Parameter(torch.randn(n))


def _quadratic(h):
    return lambda m, batch: 0.5 * m.x @ h @ m.x


def test_quadratic_extremes_and_trace():
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(40, 40))
    eigenvalues = torch.linspace(-3.0, 10.0, 40)
    h = q @ torch.diag(eigenvalues) @ q.T
    c = curvature(Vector(40), _quadratic(h), None, max_hvps=40, trace_samples=400)
    assert c.top == pytest.approx(10.0, rel=1e-3) and c.bottom == pytest.approx(-3.0, rel=1e-3)
    assert c.trace == pytest.approx(float(eigenvalues.sum()), abs=0.15 * float(h.abs().sum()) / 40)
    assert c.hvps <= 40 + 399 and c.skipped is None


def test_a_saddle_has_one_negative_eigenvalue():
    class XY(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.tensor([0.3, -0.2]))

    c = curvature(XY(), lambda m, b: m.p[0] ** 2 - m.p[1] ** 2, None)
    assert (round(c.top, 4), round(c.bottom, 4), round(c.trace, 4)) == (2.0, -2.0, 0.0)


def _mlp(seed, widths=(6, 8, 8, 3)):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(widths[:-1], widths[1:], strict=False):
        layers += [torch.nn.Linear(a, b), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers[:-1])


def _exact_hessian(model, loss_fn, batch):
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss_of(vector):
        params, i = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            n = shape.numel()
            params[name] = vector[i : i + n].view(shape)
            i += n
        return loss_fn(lambda x: functional_call(model, params, (x,)), batch)

    return torch.autograd.functional.hessian(loss_of, flat)


@pytest.mark.parametrize("seed", range(3))
def test_small_mlp_extremes_within_5_percent_of_the_exact_hessian(seed):
    model = _mlp(seed)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))

    def loss_fn(m, batch):
        return torch.nn.functional.cross_entropy(m(batch[0]), batch[1])

    exact = torch.linalg.eigvalsh(_exact_hessian(model, loss_fn, (x, y)))
    c = curvature(model, loss_fn, (x, y), max_hvps=60)
    assert c.top == pytest.approx(float(exact[-1]), rel=0.05)
    assert c.bottom == pytest.approx(float(exact[0]), rel=0.05, abs=0.05 * float(exact[-1]))


def test_adam_preconditioned_eigenvalues_are_those_of_p_inverse_h():
    h = torch.diag(torch.tensor([4.0, 1.0, 9.0]))
    model = Vector(3)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model.x.grad = torch.tensor([2.0, 1.0, 3.0])
    opt.step()
    p = adam_preconditioner(opt)
    c = curvature(model, _quadratic(h), None, preconditioner=p)
    expected = torch.diag(h) / p[0]
    assert c.preconditioned and c.top == pytest.approx(float(expected.max()), rel=1e-4)
    assert c.bottom == pytest.approx(float(expected.min()), rel=1e-4)
    assert adam_preconditioner(torch.optim.SGD(model.parameters(), lr=0.1)) is None


def test_a_deep_linear_network_from_a_small_init_sits_at_a_saddle():
    torch.manual_seed(0)
    widths = [8] * 6
    model = torch.nn.Sequential(*[torch.nn.Linear(a, b, bias=False) for a, b in zip(widths[:-1], widths[1:],
                                                                                      strict=False)])
    for layer in model:
        torch.nn.init.normal_(layer.weight, std=0.05)
    x = torch.randn(64, 8)
    y = x @ torch.randn(8, 8)

    def loss_fn(m, batch):
        return torch.nn.functional.mse_loss(m(batch[0]), batch[1])

    c = curvature(model, loss_fn, (x, y), max_hvps=30)
    assert c.bottom < -0.1 * c.top < 0  # clearly negative curvature (Saxe et al.: the origin is a saddle)


def test_a_model_without_curvature_gets_a_reason():
    model = torch.nn.Linear(3, 1, bias=False)
    c = curvature(model, lambda m, b: m(torch.ones(1, 3)).sum(), None)
    assert c.skipped is not None and "gradient does not depend on the parameters" in c.skipped
    assert c.top != c.top  # NaN


def test_the_global_random_state_is_untouched():
    model = _mlp(0)
    state = torch.get_rng_state()
    curvature(model, lambda m, b: m(torch.ones(2, 6)).pow(2).sum(), None)
    assert torch.equal(state, torch.get_rng_state())


def _cross_entropy(m, batch):
    return torch.nn.functional.cross_entropy(m(batch[0]), batch[1])


def test_a_float64_model_gets_the_exact_hessians_extremes():
    model = _mlp(0).double()
    x, y = torch.randn(32, 6, dtype=torch.float64), torch.randint(0, 3, (32,))
    exact = torch.linalg.eigvalsh(_exact_hessian(model, _cross_entropy, (x, y)))
    c = curvature(model, _cross_entropy, (x, y), max_hvps=155)  # as many HVPs as parameters
    assert c.skipped is None
    width = float(exact[-1] - exact[0])
    assert c.top == pytest.approx(float(exact[-1]), abs=1e-3 * width)  # CONVERGED: within 0.1% of the width
    assert c.bottom == pytest.approx(float(exact[0]), abs=1e-3 * width)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_half_precision_model_gets_a_finite_answer_near_its_float32_twin(dtype):
    model = _mlp(0)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    full = curvature(model, _cross_entropy, (x, y), max_hvps=60)
    half = curvature(model.to(dtype), _cross_entropy, (x.to(dtype), y), max_hvps=60)
    assert half.skipped is None
    # the HVPs run in the model's dtype (bf16: 8 bits of mantissa), the Lanczos vectors in float32
    assert half.top == pytest.approx(full.top, rel=0.02)
    assert half.bottom == pytest.approx(full.bottom, rel=0.02) and half.bottom < 0


def test_an_hvp_that_overflows_in_fp16_gets_a_reason_not_a_wrong_number():
    model = Vector(3).half()
    with torch.no_grad():
        model.x.fill_(0.01)  # the loss (90) and the gradient (6000 per entry) are finite; H v (3.5e5 per entry) is not
    h = torch.diag(torch.full((3,), 6e4)).half()
    c = curvature(model, lambda m, b: 0.5 * (m.x @ h @ m.x) * 10, None)
    assert c.skipped is not None and "not finite" in c.skipped and "float16" in c.skipped
    assert c.top != c.top  # NaN


def test_ritz_values_are_the_tridiagonal_matrix_eigenpairs():
    """The Lanczos tridiagonal solve (scipy's) against a dense eigendecomposition of the same matrix."""
    alphas, betas = [2.0, -1.0, 0.5, 3.0], [0.7, 0.2, -1.1, 9.0]  # the last beta is the next step's: not used
    dense = np.diag(alphas) + np.diag(betas[:3], 1) + np.diag(betas[:3], -1)
    values, vectors = _ritz(alphas, betas)
    np.testing.assert_allclose(values, np.linalg.eigvalsh(dense), rtol=1e-12)
    np.testing.assert_allclose(dense @ vectors, vectors * values, atol=1e-12)
    assert _ritz([5.0], [])[0].tolist() == [5.0]


def test_channels_last_convolutions_are_measured():
    """The flattening reshapes (``parameters_to_vector`` views, and a channels-last weight cannot be viewed flat)."""
    torch.manual_seed(0)
    model = torch.nn.Conv2d(2, 3, 3).to(memory_format=torch.channels_last)
    x = torch.randn(4, 2, 5, 5).to(memory_format=torch.channels_last)
    c = curvature(model, lambda m, b: m(b).square().mean(), x, max_hvps=40)
    assert c.skipped is None
    # the loss is quadratic in the weights: its Hessian is 2 J^T J / n, J the Jacobian of the outputs
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def outputs(v):
        w, b = v[: model.weight.numel()].view_as(model.weight), v[model.weight.numel() :]
        return torch.nn.functional.conv2d(x.contiguous(), w, b).reshape(-1)

    jac = torch.autograd.functional.jacobian(outputs, flat)
    eig = torch.linalg.eigvalsh(2 * jac.T @ jac / jac.shape[0])
    assert c.top == pytest.approx(float(eig[-1]), rel=1e-3)
