"""``tunekit.signals.curvature`` against the exact Hessian of small MLPs, and what a curvature probe costs.

    python benchmarks/curvature.py [--seeds 3] [--max-hvps 20]

For each MLP (sklearn's digits, a batch of 128, cross-entropy, at its init and after 100 Adam steps) it prints
the exact extreme eigenvalues (``torch.autograd.functional.hessian`` over the flattened parameters), the
estimates, their relative errors, the HVPs spent, and the probe's wall time as a multiple of one training step
(forward, backward, optimizer step) of the same model on the same batch.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from sklearn.datasets import load_digits
from torch.func import functional_call

from tunekit.signals import curvature

WIDTHS = {"64-16-10 tanh": (64, 16, 10), "64-32-32-10 tanh": (64, 32, 32, 10), "64-48-48-10 relu": (64, 48, 48, 10)}


def _mlp(widths: tuple[int, ...], act: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:], strict=False):
        layers += [torch.nn.Linear(a, b), torch.nn.Tanh() if act == "tanh" else torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def _loss(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(model(batch[0]), batch[1])


def _exact(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss_of(vector: torch.Tensor) -> torch.Tensor:
        params, i = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            params[name] = vector[i : i + shape.numel()].view(shape)
            i += shape.numel()
        return torch.nn.functional.cross_entropy(functional_call(model, params, (batch[0],)), batch[1])

    return torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss_of, flat).double())


def _step_seconds(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    times = []
    for _ in range(30):
        start = time.perf_counter()
        opt.zero_grad()
        _loss(model, batch).backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[5:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-hvps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    x, y = load_digits(return_X_y=True)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    data = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    print(f"{'model':<18}{'when':<8}{'seed':>4}{'params':>7}  {'exact top':>10}{'est.':>10}{'err':>7}  "
          f"{'exact bottom':>12}{'est.':>10}{'err':>7}  {'hvps':>5}{'cost (steps)':>13}")
    errors: list[float] = []
    costs: list[float] = []
    for name, widths in WIDTHS.items():
        for when in ("init", "trained"):
            for seed in range(args.seeds):
                model = _mlp(widths, name.rsplit(" ", 1)[1], seed)
                if when == "trained":
                    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
                    for step in range(100):
                        i = torch.randint(0, len(data[0]), (64,), generator=torch.Generator().manual_seed(step))
                        opt.zero_grad()
                        _loss(model, (data[0][i], data[1][i])).backward()
                        opt.step()
                idx = torch.randperm(len(data[0]), generator=torch.Generator().manual_seed(100 + seed))[:128]
                batch = (data[0][idx], data[1][idx])
                exact = _exact(model, batch)
                c = curvature(model, _loss, batch, max_hvps=args.max_hvps)
                top_err = abs(c.top - float(exact[-1])) / abs(float(exact[-1]))
                bottom_err = abs(c.bottom - float(exact[0])) / max(abs(float(exact[0])), 1e-12)
                cost = c.seconds / _step_seconds(model, batch)
                errors += [top_err, bottom_err]
                costs.append(cost)
                n = sum(p.numel() for p in model.parameters())
                print(f"{name:<18}{when:<8}{seed:>4}{n:>7}  {float(exact[-1]):>10.4g}{c.top:>10.4g}{top_err:>7.1%}  "
                      f"{float(exact[0]):>12.4g}{c.bottom:>10.4g}{bottom_err:>7.1%}  {c.hvps:>5}{cost:>13.1f}",
                      flush=True)
    print(f"\nrelative error of the extreme eigenvalues: median {statistics.median(errors):.2%}, worst "
          f"{max(errors):.2%}; a probe costs {statistics.median(costs):.1f} training steps (median; worst "
          f"{max(costs):.1f}) with max_hvps={args.max_hvps}")


if __name__ == "__main__":
    main()
