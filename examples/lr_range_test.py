"""The LR range test on a real task, with its plot saved.

    python examples/lr_range_test.py [--out lr_range_test.png]

An MLP on sklearn's digits with Adam: a 60-step sweep finds where the loss blows up, short confirmation runs
pick the LR, and the model is left exactly as it was.
"""

from __future__ import annotations

import argparse
import logging
import warnings

from tunekit import lr_range_test
from tunekit.examples import MLP, DigitsDataModule


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="lr_range_test.png")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    model = MLP(hidden=(128,), optimizer="adam")
    result = lr_range_test(model, datamodule=DigitsDataModule(), progress=True)
    print(f"suggested lr {result.suggestion:.3g} after {result.steps} training steps "
          f"(search bounds {result.bounds[0]:.3g} .. {result.bounds[1]:.3g})")
    for c in result.candidates:
        print(f"  rung {c.rung}: lr {c.lr:.3g} for {c.steps} steps -> {result.scored_on} {c.score:.4f}")
    result.plot(title="MLP on digits (Adam)").savefig(args.out)
    print(f"plot saved to {args.out}")


if __name__ == "__main__":
    main()
