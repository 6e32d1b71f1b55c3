"""What auto-remedy's snapshot of the training state costs, in training steps.

Model: the overhead benchmark's MLP 64-512-512-512-10 with Adam, batch 64, CPU, one thread; CPU time of 50
training steps against 50 ``TrainingState.take`` (weights cloned, optimizer state deep-copied).

    python benchmarks/snapshot_cost.py
"""

from __future__ import annotations

import time

import torch

from tunekit.examples import MLP
from tunekit.probes import TrainingState

REPEATS = 50


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = MLP(hidden=(512, 512, 512))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(64, 64), torch.randint(0, 10, (64,))

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    for _ in range(5):  # Adam's state exists, the allocator is warm
        step()
    started = time.process_time()
    for _ in range(REPEATS):
        step()
    step_s = (time.process_time() - started) / REPEATS
    started = time.process_time()
    for _ in range(REPEATS):
        TrainingState.take(model, opt, [])
    take_s = (time.process_time() - started) / REPEATS
    print(f"training step {step_s * 1e3:.2f} ms, snapshot {take_s * 1e3:.2f} ms = {take_s / step_s:.2f} steps")


if __name__ == "__main__":
    main()
