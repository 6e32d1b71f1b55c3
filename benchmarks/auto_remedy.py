"""Does auto-remedy help? Broken recipes from the diagnosis zoo, each fitted with and without
``Diagnoser(auto_remedy=True)`` (same seeds), beside the family's healthy recipe; and the zoo's healthy runs fitted
with it, to count interventions where none is wanted.

    python benchmarks/auto_remedy.py [--seeds 3] [--workers 2] [--out benchmarks/results/auto_remedy.txt]

Prints the final validation loss of each pair and of the healthy recipe (the control: the same fit with the cause
removed), whether auto-remedy ended better, and whether it ended within 1.2x of the healthy recipe. Fits are cached
with the zoo's (``benchmarks/zoo/cache``).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "zoo"))

from label import HARMLESS, WORSE, label  # noqa: E402
from run import run_all  # noqa: E402
from spec import FAMILIES, Spec, good_lr, plan, sample  # noqa: E402

NEAR_HEALTHY = 1.2  # "rescued": within 1.2x of the healthy recipe's validation loss


def _cases(seeds: int) -> list[tuple[str, Spec]]:
    """The broken recipes the issue names, drawn from the zoo's generator."""
    out = []
    for seed in range(seeds):
        for name, family, cause, optimizer in (
                ("too-high LR, SGD (MLP)", "mlp", "lr_high", "sgd"),
                ("too-high LR, Adam (MLP)", "mlp", "lr_high", "adam"),
                ("too-high LR, SGD (CNN)", "cnn", "lr_high", "sgd"),
                ("exploding RNN (SGD, high LR)", "rnn", "lr_high", "sgd"),
                ("no warmup, post-LN transformer", "transformer_post", "no_warmup", None),
                ("noise-floor plateau (linear)", "linear", "noise_floor", None),
                ("overfitting Adam (MLP)", "mlp", "overfit", "adam"), ("too-low LR (MLP)", "mlp", "lr_low", None)):
            spec = sample(FAMILIES[family], cause, seed)
            if optimizer is not None and spec.recipe.get("optimizer") != optimizer:
                good = good_lr(FAMILIES[family], spec.dataset, optimizer)
                factor = spec.recipe["lr"] / spec.control["recipe"]["lr"] if cause == "lr_high" else 1.0
                recipe = {"optimizer": optimizer, **FAMILIES[family].good[optimizer], "lr": good * factor}
                control = {"recipe": {"lr": good}} if cause == "lr_high" else spec.control
                spec = dataclasses.replace(spec, recipe=recipe, control=control)
            out.append((name, spec))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    cases = _cases(args.seeds)
    specs = [s for _, s in cases]
    plain = run_all(specs, args.workers, label_="broken, without auto-remedy")
    auto = run_all(specs, args.workers, auto=True, label_="broken, with auto-remedy")
    healthy = run_all([s.as_control() for s in specs], args.workers, label_="their healthy recipes")  # type: ignore[misc]
    lines = [f"# python benchmarks/auto_remedy.py {' '.join(sys.argv[1:])}",
             f"{'broken recipe':<32}{'seed':>5}{'without':>10}{'with':>10}{'healthy':>10}  better  near healthy  "
             "interventions"]
    better = near = 0
    for (name, spec), p, a, h in zip(cases, plain, auto, healthy, strict=True):
        ok = _less(a["val"], p["val"])
        close = math.isfinite(a["val"]) and a["val"] <= NEAR_HEALTHY * h["val"]
        better += ok
        near += close
        events = "; ".join(f"{e['step']}: {e['finding']} -> {e['remedy']} {e['change']}" for e in a["interventions"])
        lines.append(f"{name:<32}{spec.seed:>5}{_fmt(p['val']):>10}{_fmt(a['val']):>10}{_fmt(h['val']):>10}  "
                     f"{'yes' if ok else 'NO':<6}  {'yes' if close else 'no':<11}  {events or '-'}")
    lines.append(f"\nauto-remedy ended better on {better}/{len(cases)} broken runs, within {NEAR_HEALTHY}x of the "
                 f"healthy recipe on {near}/{len(cases)} ({near / len(cases):.0%})")
    confirmed = [(p, a, h) for (_, spec), p, a, h in zip(cases, plain, auto, healthy, strict=True)
                 if label({**p, "spec": dataclasses.asdict(spec)}, h)[0] == spec.cause]
    fixed = sum(_less(a["val"], p["val"]) for p, a, _ in confirmed)
    close = sum(math.isfinite(a["val"]) and a["val"] <= NEAR_HEALTHY * h["val"] for _, a, h in confirmed)
    lines.append(f"of the {len(confirmed)} whose cause the zoo's labelling confirms (at least {WORSE - 1:.0%} worse "
                 f"than the healthy recipe, which trained well): better on {fixed}, within {NEAR_HEALTHY}x of the "
                 f"healthy recipe on {close}")
    zoo_healthy = [s for s in plan(args.seeds) if s.cause == "healthy"]
    alone = run_all(zoo_healthy, args.workers, label_="the zoo's healthy recipes, without auto-remedy")
    results = run_all(zoo_healthy, args.workers, auto=True, label_="the zoo's healthy recipes, with auto-remedy")
    healthy_runs = [(s, a, r) for s, a, r in zip(zoo_healthy, alone, results, strict=True)
                    if label({**a, "spec": dataclasses.asdict(s)}, None)[0] == "healthy"]
    touched = [(s, a, r) for s, a, r in healthy_runs if r["interventions"]]
    worse = sum(not r["val"] <= HARMLESS * a["val"] for _, a, r in touched)
    lines.append(f"interventions on the zoo's healthy runs (labelled healthy as the zoo labels them): "
                 f"{len(touched)}/{len(healthy_runs)}; of those, {worse} ended more than {HARMLESS - 1:.0%} worse "
                 "than without")
    lines += [f"  {s.family}/{s.seed} {s.dataset}: {_fmt(a['val'])} -> {_fmt(r['val'])}: "
              + "; ".join(f"{e['step']}: {e['finding']} -> {e['remedy']} {e['change']}" for e in r["interventions"])
              for s, a, r in touched]
    others = sum(bool(r["interventions"]) for r in results) - len(touched)
    lines.append(f"(healthy recipes the zoo drops, most of them overfitting on their own: interventions on {others}/"
                 f"{len(zoo_healthy) - len(healthy_runs)})")
    print("\n".join(lines))
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")


def _less(a: float, b: float) -> bool:
    return (math.isfinite(a) and not math.isfinite(b)) or (math.isfinite(a) and a < b)


def _fmt(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else "nan/inf"


if __name__ == "__main__":
    main()
