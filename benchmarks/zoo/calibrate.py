"""The zoo's known-good learning rates, measured: for every family, data set and optimizer, an LR grid around the
family's prior, each fitted for the zoo's 600 steps; the LR with the lowest final validation loss is the one the
zoo's healthy runs sit near and its causes are injected around.

    python benchmarks/zoo/calibrate.py [--workers 2]     # writes benchmarks/zoo/good_lrs.json (committed)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from run import run_all  # noqa: E402
from spec import FAMILIES, GOOD_LRS, Spec  # noqa: E402

GRID = (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)  # decades around the family's prior LR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    specs, where = [], []
    for family in FAMILIES.values():
        for dataset in family.datasets:
            for optimizer, prior in family.good.items():
                for decade in GRID:
                    lr = float(f"{prior['lr'] * 10**decade:.3g}")
                    batch = 16 if dataset in ("wine", "iris") else 32
                    specs.append(Spec(family.name, dataset, "healthy", 0, {"optimizer": optimizer, **prior, "lr": lr},
                                      dict(family.knobs) | ({"hidden": [16]} if family.name == "mlp" and batch == 16
                                                            else {}), {"batch_size": batch}, role="calibration"))
                    where.append((family.name, dataset, optimizer, lr))
    results = run_all(specs, args.workers, label_="calibration fits")
    best: dict[str, dict[str, dict[str, float]]] = {}
    for (family, dataset, optimizer, lr), result in zip(where, results, strict=True):
        slot = best.setdefault(family, {}).setdefault(dataset, {})
        val = result["val"] if math.isfinite(result["val"]) else math.inf
        if val < slot.get(f"{optimizer}:val", math.inf):
            slot[optimizer], slot[f"{optimizer}:val"] = lr, val
    GOOD_LRS.write_text(json.dumps(best, indent=1, sort_keys=True) + "\n")
    for family, datasets in best.items():
        for dataset, slot in datasets.items():
            print(f"{family:<18}{dataset:<14}" + "  ".join(f"{k} {v:.3g}" for k, v in sorted(slot.items())))
    _ = dataclasses  # the specs are plain dataclasses (see spec.py)


if __name__ == "__main__":
    main()
