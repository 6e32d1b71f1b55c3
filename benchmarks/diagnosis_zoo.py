"""How often the Diagnoser names the right problem and the right first remedy, and stays silent on
healthy runs: the scenarios of ``scenarios.py`` (real Trainer fits on sklearn data), over several seeds.

    python benchmarks/diagnosis_zoo.py [--seeds 3] [--only NAME ...]

For each run it prints the expected finding, the top finding and first remedy the Diagnoser gave, and at
the end: detection accuracy (top finding = expected) and first-remedy accuracy on broken runs, the false
alarm rate (any warning or critical finding) on healthy runs, and whether the first remedy fixes the run: each
broken run is fitted again with its first remedy applied (the recipe change; for a remedy that is not a
recipe change, the scenario's stand-in: ReLU for change_architecture, the default init for change_init) and
its validation loss compared with the original's.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from scenarios import SCENARIOS, run_scenario  # noqa: E402

FIXED = 0.95  # a remedy "fixed" a run when the validation loss fell by at least 5%


def _val(trainer: Any) -> float:
    """The run's last validation loss (inf when it never validated or went non-finite)."""
    value = trainer.callback_metrics.get("val_loss")
    value = float(value) if value is not None else math.inf
    return value if math.isfinite(value) else math.inf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--no-fix", action="store_true", help="skip re-running broken runs with their remedy")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    broken = found = remedied = healthy = alarms = 0
    fixes: list[tuple[str, int, str, float, float]] = []
    print(f"{'scenario':<28}{'seed':>5}  {'expected':<20}{'top finding':<22}{'first remedy':<22}ok")
    for scenario in SCENARIOS:
        if args.only and scenario.name not in args.only:
            continue
        for seed in range(args.seeds):
            d, trainer = run_scenario(scenario, seed)
            top = d.diagnosis.findings[0] if d.diagnosis.findings else None
            code = top.code.value if top else "-"
            remedy = top.remedies[0].code.value if top and top.remedies else "-"
            if scenario.expected is None:
                healthy += 1
                alarm = not d.diagnosis.is_healthy
                alarms += alarm
                ok = not alarm
            else:
                broken += 1
                hit = code == scenario.expected
                found += hit
                remedied += hit and remedy == scenario.remedy
                ok = hit and remedy == scenario.remedy
            print(f"{scenario.name:<28}{seed:>5}  {scenario.expected or 'healthy':<20}{code:<22}{remedy:<22}"
                  f"{'yes' if ok else 'NO'}", flush=True)
            if scenario.expected is not None and top is not None and top.remedies and not args.no_fix:
                first = top.remedies[0]
                if first.change or first.code.value in scenario.manual_fix:
                    before = _val(trainer)
                    fixed, fixed_trainer = run_scenario(scenario, seed, remedy=first)
                    fixes.append((scenario.name, seed, first.code.value, before, _val(fixed_trainer)))
    if broken:
        print(f"\nbroken runs: top finding right {found}/{broken} ({found / broken:.0%}), "
              f"first remedy right {remedied}/{broken} ({remedied / broken:.0%})")
    if healthy:
        print(f"healthy runs: false alarms {alarms}/{healthy} ({alarms / healthy:.0%})")
    if fixes:
        print("\nbroken runs re-run with their first remedy applied (val_loss before -> after):")
        for name, seed, code, before, after in fixes:
            print(f"  {name:<28}{seed:>3}  {code:<22}{before:>10.4g} -> {after:<10.4g}"
                  f"{'better' if after < FIXED * before else 'NOT better'}")
        better = sum(after < FIXED * before for *_, before, after in fixes)
        ratios = sorted(after / before for *_, before, after in fixes if math.isfinite(before) and before > 0)
        median = ratios[len(ratios) // 2] if ratios else float("nan")
        print(f"the first remedy lowered the validation loss by 5% or more on {better}/{len(fixes)} re-runs "
              f"(median after/before {median:.3f}; a run that had diverged counts as inf before)")


if __name__ == "__main__":
    main()
