"""The randomized diagnosis zoo: labelled broken and healthy runs over nine model families, scored with each family
held out in turn.

    python benchmarks/zoo/run.py --quick          # one seed, two causes per family (development, a few minutes)
    python benchmarks/zoo/run.py                  # the whole zoo (9 seeds: ~410 runs; about an hour on 2 cores)
    python benchmarks/zoo/run.py --seeds 3 --workers 2 --out benchmarks/results/zoo.txt

Every fit is cached under ``benchmarks/zoo/cache/`` by its spec, so a second run only scores. What it does:

1. fits each run of the plan (``spec.plan``) and its control with a ``Diagnoser`` (probes on, default budget);
2. labels each run by its control (``label.py``) and drops the ones whose control fails too;
3. scores the diagnosis (replayed offline from the recorded series and probe outcomes, ``replay.py``) with each
   family held out: the constants ``tune.py`` may choose are chosen on the other families, then the held-out
   family is scored with them (the headline), and the same with everything in sample beside it;
4. refits every broken run with its first remedy applied (``Recipe.apply``; for remedies that are not recipe
   changes, the stand-in: the default init, ReLU, stopping at the step named) and counts it fixed when its
   validation loss ends at least 5% lower (or finite where it was not);
5. refits every run the Diagnoser stopped as critical without the stop, and counts those that would have ended
   better than they started.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from execute import execute  # noqa: E402
from label import label  # noqa: E402
from primer import primer  # noqa: E402
from replay import Setting, replay, verdict  # noqa: E402
from spec import CAUSES, Spec, plan  # noqa: E402
from tune import choose  # noqa: E402

CACHE = Path(__file__).parent / "cache"
FIXED = 0.95  # a remedy fixed a run when its validation loss ended at least 5% lower


def _suffix(stop: bool, auto: bool) -> str:
    return ("" if stop else "-nostop") + ("-auto" if auto else "")


def _job(args: tuple[dict[str, Any], bool, bool]) -> dict[str, Any]:
    spec_dict, stop, auto = args
    spec = Spec(**spec_dict)
    path = CACHE / f"{spec.key()}{_suffix(stop, auto)}.json"
    if path.exists():
        return json.loads(path.read_text())
    result = execute(spec, stop_on_critical=stop, auto_remedy=auto)
    path.write_text(json.dumps(result))
    return result


def run_all(specs: list[Spec], workers: int, stop: bool = True, label_: str = "fits",
            auto: bool = False) -> list[dict[str, Any]]:
    CACHE.mkdir(exist_ok=True)
    todo = [(dataclasses.asdict(s), stop, auto) for s in specs]
    missing = sum(not (CACHE / f"{s.key()}{_suffix(stop, auto)}.json").exists() for s in specs)
    print(f"{label_}: {len(specs)} ({missing} to run, the rest cached)", file=sys.stderr, flush=True)
    if workers <= 1 or missing <= 1:
        return [_job(t) for t in todo]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        out = []
        for i, result in enumerate(pool.imap(_job, todo)):
            out.append(result)
            if (i + 1) % 20 == 0:
                print(f"  {i + 1}/{len(todo)}", file=sys.stderr, flush=True)
        return out


def with_remedy(spec: Spec, remedy: dict[str, Any], control: Spec | None) -> Spec | None:
    """The run again with ``remedy`` applied, or None when the remedy changes nothing a refit can try."""
    code, change = remedy["code"], dict(remedy["change"])
    recipe, model, data, steps = dict(spec.recipe), dict(spec.model), dict(spec.data), spec.steps
    if code == "change_init":
        model.pop("init_std", None), model.pop("init_scale", None)
    elif code == "change_architecture":
        if model.get("norm") == "batch":
            model["norm"] = "layer"  # BatchNorm on tiny batches: a norm that does not depend on the batch
        else:
            model["activation"] = "relu"
    elif code == "check_pipeline":
        if not data.get("nan_rows"):
            return None
        data["nan_rows"] = None  # the data fixed: the rows with NaN dropped (the stand-in: no NaN put in)
    elif code == "early_stop":
        steps = max(1, int(change.get("max_steps", steps)))
    elif code == "raise_batch_size":
        data["batch_size"] = change["batch_size"]
    elif change:
        recipe.update({k: v for k, v in change.items() if k not in ("batch_size", "max_steps")})
        if recipe.get("optimizer") == "sgd":
            recipe.pop("switch_to_sgd_at", None)
    else:
        return None
    if (recipe, model, data, steps) == (spec.recipe, spec.model, spec.data, spec.steps):
        return None
    return dataclasses.replace(spec, recipe=recipe, model=model, data=data, steps=steps, role="remedy", control=None)


def _top(f: Any) -> str:
    return f.code.value if f is not None else "healthy"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one seed, two causes per family")
    parser.add_argument("--seeds", type=int, default=9)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-fix", action="store_true", help="skip the remedy and no-stop refits")
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    parser.add_argument("--causes", default=None, help="comma-separated causes to run (healthy runs included "
                        "when named), e.g. healthy,momentum_high,bn_tiny_batch,nan_rows")
    args = parser.parse_args()
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    specs = plan(args.seeds, quick=args.quick, causes=tuple(args.causes.split(",")) if args.causes else None)
    controls = {s.key(): s.as_control() for s in specs if s.control is not None}
    results = run_all(specs, args.workers, label_="runs")
    control_results = dict(zip(controls, run_all(list(controls.values()), args.workers, label_="controls"),
                               strict=True))
    runs, dropped = [], Counter()
    for spec, result in zip(specs, results, strict=True):
        lab, why = label(result, control_results.get(spec.key()))
        if lab is None:
            dropped[(spec.cause, why.split(" (")[0])] += 1
            continue
        runs.append({**result, "label": lab, "family": spec.family})
    say(f"# python benchmarks/zoo/run.py {' '.join(sys.argv[1:])}")
    counts = Counter(r["label"] for r in runs)
    say(f"labelled runs: {len(runs)} ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}); healthy share "
        f"{counts['healthy'] / max(1, len(runs)):.0%}; dropped {sum(dropped.values())}: "
        + "; ".join(f"{c} ({why}) {n}" for (c, why), n in sorted(dropped.items())))

    families = sorted({r["family"] for r in runs})
    held_out: dict[str, Any] = {}
    in_sample: dict[str, Any] = {}
    settings: dict[str, Setting] = {}
    for family in families:
        train = [r for r in runs if r["family"] != family]
        settings[family] = choose(train)
        for r in runs:
            if r["family"] == family:
                held_out[r["key"]] = verdict(replay(r, settings[family]))
    everything = choose(runs)
    for r in runs:
        in_sample[r["key"]] = verdict(replay(r, everything))
    say(f"constants chosen on all families: {everything.label()}")
    for family in families:
        say(f"  held out {family}: chosen on the others: {settings[family].label()}")

    fixes = {} if args.no_fix else _fixes(runs, held_out, args.workers)
    for name, verdicts in (("HELD-OUT FAMILY (each family scored with constants chosen on the others)", held_out),
                           ("in sample (constants chosen on all families)", in_sample)):
        say(f"\n## {name}")
        _score(runs, verdicts, fixes if verdicts is held_out else {}, say)
    baseline = {r["key"]: primer(r) for r in runs}
    say("\n## the primer's loss-pattern table applied to the loss curves alone (the baseline; no constants tuned)")
    _score(runs, baseline, {} if args.no_fix else _fixes(runs, baseline, args.workers), say)
    if not args.no_fix:
        _criticals(specs, results, args.workers, say)
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")


def _fixes(runs: list[dict[str, Any]], verdicts: dict[str, Any], workers: int) -> dict[str, tuple[float, float]]:
    """Refit every broken run with its first remedy: (val before, val after) by run key."""
    jobs = {}
    for r in runs:
        f = verdicts[r["key"]]
        if r["label"] == "healthy" or f is None or not f.remedies:
            continue
        spec = Spec(**r["spec"])
        fixed = with_remedy(spec, f.remedies[0].to_dict(), spec.as_control())
        if fixed is not None:
            jobs[r["key"]] = fixed
    done = run_all(list(jobs.values()), workers, label_="remedy refits")
    by_key = {r["key"]: r for r in runs}
    return {k: (by_key[k]["val"], d["val"]) for k, d in zip(jobs, done, strict=True)}


def _score(runs: list[dict[str, Any]], verdicts: dict[str, Any], fixes: dict[str, tuple[float, float]],
           say: Any) -> None:
    classes = [c for c in CAUSES if c != "healthy" and any(r["label"] == c for r in runs)]
    codes = sorted({_top(verdicts[r["key"]]) for r in runs} | {"healthy"})
    matrix: dict[str, Counter] = defaultdict(Counter)
    for r in runs:
        matrix[r["label"]][_top(verdicts[r["key"]])] += 1
    say("recall by class (the top warning/critical finding names the cause; healthy: no warning at all):")
    broken = [r for r in runs if r["label"] != "healthy"]
    for c in classes + ["healthy"]:
        mine = [r for r in runs if r["label"] == c]
        hit = sum(_top(verdicts[r["key"]]) in (CAUSES[c]["findings"] or ("healthy",)) for r in mine)
        families = ", ".join(f"{k} {v}" for k, v in sorted(Counter(r["family"] for r in mine).items()))
        say(f"  {c:<12} {hit:>3}/{len(mine):<3} {hit / max(1, len(mine)):>5.0%}   ({families})")
    healthy = [r for r in runs if r["label"] == "healthy"]
    alarms = sum(verdicts[r["key"]] is not None for r in healthy)
    say(f"false alarms on healthy runs: {alarms}/{len(healthy)} ({alarms / max(1, len(healthy)):.1%})")
    say("precision by finding (runs whose top finding it is, that carry a cause it names):")
    for code in codes:
        if code == "healthy":
            continue
        named = [r for r in runs if _top(verdicts[r["key"]]) == code]
        right = sum(code in CAUSES[r["label"]]["findings"] for r in named)
        say(f"  {code:<22} {right:>3}/{len(named):<3} {right / max(1, len(named)):.0%}")
    say("confusion matrix (rows: the injected cause; columns: the top finding):")
    short = {c: c[:9] for c in codes}
    say("  " + f"{'':<12}" + "".join(f"{short[c]:>10}" for c in codes))
    for lab in classes + ["healthy"]:
        say("  " + f"{lab:<12}" + "".join(f"{matrix[lab][c] or '.':>10}" for c in codes))
    right = sum(verdicts[r["key"]] is not None and bool(verdicts[r["key"]].remedies)
                and verdicts[r["key"]].remedies[0].code.value in CAUSES[r["label"]]["fixes"] for r in broken)
    say(f"first remedy among the cause's fixes: {right}/{len(broken)} ({right / max(1, len(broken)):.0%})")
    if fixes:
        fixed = sum(_fixed(*fixes[r["key"]]) for r in broken if r["key"] in fixes)
        say(f"first remedy fixes the run (refit with it: validation loss 5% lower, or finite): {fixed}/{len(broken)} "
            f"broken runs ({fixed / max(1, len(broken)):.0%}; {len(broken) - len(fixes)} had no remedy a refit can "
            "try, or no finding)")
        for c in classes:
            mine = [r for r in broken if r["label"] == c]
            got = sum(_fixed(*fixes[r["key"]]) for r in mine if r["key"] in fixes)
            say(f"  {c:<12} {got}/{len(mine)}")


def _fixed(before: float, after: float) -> bool:
    return (not math.isfinite(before) and math.isfinite(after)) or (math.isfinite(after) and after < FIXED * before)


RECOVERED = 0.8  # a run that ends below this share of its initial loss learned something (the rules' wrecked level)


def _criticals(specs: list[Spec], results: list[dict[str, Any]], workers: int, say: Any) -> None:
    """Runs stopped as critical, refitted without the stop: how many would have ended better than they started."""
    stopped = [(s, r) for s, r in zip(specs, results, strict=True)
               if any(f["severity"] == "critical" for f in r["diagnosis"]["findings"]) and r["steps"] < s.steps]
    finite = [(s, r) for s, r in stopped if r["record"]["first_nonfinite_step"] is None]
    refits = run_all([s for s, _ in finite], workers, stop=False, label_="critical stops refitted without the stop")
    ended = [(s, full) for (s, r), full in zip(finite, refits, strict=True) if math.isfinite(full["val"])]
    recovered = [s for s, full in ended if full["val"] < RECOVERED * full["initial_loss"]]
    below = [(s, full) for s, full in ended if RECOVERED * full["initial_loss"] <= full["val"] < full["initial_loss"]]
    say(f"\nruns stopped as critical: {len(stopped)} ({len(stopped) - len(finite)} on a non-finite loss); of the "
        f"{len(finite)} stopped on a finite loss, {len(recovered)} would have recovered (validation loss below "
        f"{RECOVERED:.0%} of the initial loss) had they run on"
        + (": " + ", ".join(f"{s.family}/{s.cause}/{s.seed}" for s in recovered) if recovered else "")
        + (f"; {len(below)} ended a little below their initial loss without learning: "
           + ", ".join(f"{s.family}/{s.cause}/{s.seed} ({full['val']:.3g} from {full['initial_loss']:.3g})"
                       for s, full in below) if below else ""))


if __name__ == "__main__":
    main()
