"""Adam alone against Adam for the first 80% of training and SGD with momentum for the rest (Step 8 of
the "Dynaxx Precision" optimization guide), on the same task, same seeds. Reports honestly which generalizes better.

    python examples/two_stage.py [--seeds 3]

Task: an MLP 64-256-256-10 on 500 of sklearn's digits (a small training set, where generalization is the
question), 600 steps, AdamW at lr 1e-3 with cosine decay; the two-stage run switches at 80% with the SWATS
estimate of the SGD LR.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import warnings

import lightning.pytorch as pl

from tunekit import Recipe
from tunekit.callbacks import SwitchToSGD
from tunekit.examples import MLP, DigitsDataModule


def run(recipe: Recipe, seed: int) -> tuple[float, float, list[float]]:
    pl.seed_everything(seed, verbose=False)
    model = MLP(hidden=(256, 256))
    model.recipe = recipe
    trainer = pl.Trainer(max_steps=600, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, check_val_every_n_epoch=1000)
    data = DigitsDataModule(train_size=500, batch_size=32, seed=seed)
    trainer.fit(model, datamodule=data)
    metrics = pl.Trainer(logger=False, enable_progress_bar=False).validate(model, datamodule=data, verbose=False)[0]
    switch = [cb for cb in trainer.callbacks if isinstance(cb, SwitchToSGD)]
    return metrics["val_loss"], metrics["val_acc"], switch[0].sgd_lrs if switch else []


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    base = Recipe(optimizer="adamw", lr=1e-3, weight_decay=0.01, schedule="cosine", max_steps=600)
    variants = {"AdamW alone": base, "AdamW, then SGD at 80%": base.replace(switch_to_sgd_at=0.8)}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for seed in range(args.seeds):
        for name, recipe in variants.items():
            loss, acc, sgd_lrs = run(recipe, seed)
            results[name].append((loss, acc))
            extra = f" (SWATS SGD lr {', '.join(f'{x:.3g}' for x in sgd_lrs)})" if sgd_lrs else ""
            print(f"seed {seed}  {name:<24} val_loss {loss:.4f}  val_acc {acc:.4f}{extra}", flush=True)
    print()
    for name, rows in results.items():
        losses, accs = [r[0] for r in rows], [r[1] for r in rows]
        print(f"{name:<24} val_loss {statistics.mean(losses):.4f} +- {statistics.pstdev(losses):.4f}   "
              f"val_acc {statistics.mean(accs):.4f} +- {statistics.pstdev(accs):.4f}")
    alone, two = results.values()
    diffs = [t[0] - a[0] for a, t in zip(alone, two, strict=True)]  # paired by seed
    mean = statistics.mean(diffs)
    se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("inf")
    if abs(mean) < 2 * se:
        verdict = "is no clearly better or worse than"
    else:
        verdict = "generalizes better than" if mean < 0 else "generalizes worse than"
    print(f"\nOn this task the two-stage run {verdict} AdamW alone: val_loss difference {mean:+.4f} "
          f"(two-stage minus alone, paired by seed; standard error {se:.4f}).")


if __name__ == "__main__":
    main()
