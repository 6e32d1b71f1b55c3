"""How often the Diagnoser names the right problem and the right first remedy, and stays silent on
healthy runs: the scenarios of ``scenarios.py`` (real Trainer fits on sklearn data), over several seeds.

    python benchmarks/diagnosis_zoo.py [--seeds 3] [--only NAME ...]

For each run it prints the expected finding, the top finding and first remedy the Diagnoser gave, and at
the end: detection accuracy (top finding = expected) and first-remedy accuracy on broken runs, and the false
alarm rate (any warning or critical finding) on healthy runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from scenarios import SCENARIOS, run_scenario  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    broken = found = remedied = healthy = alarms = 0
    print(f"{'scenario':<28}{'seed':>5}  {'expected':<20}{'top finding':<22}{'first remedy':<22}ok")
    for scenario in SCENARIOS:
        if args.only and scenario.name not in args.only:
            continue
        for seed in range(args.seeds):
            d, _ = run_scenario(scenario, seed)
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
    if broken:
        print(f"\nbroken runs: top finding right {found}/{broken} ({found / broken:.0%}), "
              f"first remedy right {remedied}/{broken} ({remedied / broken:.0%})")
    if healthy:
        print(f"healthy runs: false alarms {alarms}/{healthy} ({alarms / healthy:.0%})")


if __name__ == "__main__":
    main()
