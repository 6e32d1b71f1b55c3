"""The HTML report: self-contained, and rendered by a real headless Chromium with no errors or fetches."""

import json
import re
import subprocess

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.callbacks.helpers import fit
from tests.search.helpers import write_config
from tunekit.callbacks import Diagnoser
from tunekit.cli import app
from tunekit.config import load_config
from tunekit.dashboards.report import run_report, study_report, write_report
from tunekit.search import run_search


@pytest.fixture(scope="module")
def study_html(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    cfg = load_config(write_config(folder, search={"optimizer": "adamw", "lr": "auto", "weight_decay": [1e-6, 1e-2],
                                                   "batch_size": [32, 64]}))
    url = f"sqlite:///{folder / 'study.db'}"
    run_search(cfg, n_trials=4, storage=url, study_name="r")
    return study_report(url, "r"), folder


def _render(chromium: str, page, tmp_path):
    shot, netlog = tmp_path / "shot.png", tmp_path / "net.json"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           "--enable-logging=stderr", "--v=0", f"--log-net-log={netlog}", "--window-size=1280,2400",
           "--hide-scrollbars", f"--screenshot={shot}", page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return proc, shot, netlog


def _page_requests(netlog) -> list[str]:
    """Network requests the page started (Chromium's own background requests have no origin)."""
    text = netlog.read_text().rstrip()
    data = json.loads(text if text.endswith("}") else text.rstrip(",") + "]}")
    names = {v: k for k, v in data["constants"]["logEventTypes"].items()}
    return [e["params"]["url"] for e in data["events"] if "url" in e.get("params", {})
            and names.get(e["type"]) == "URL_REQUEST_START_JOB" and e["params"].get("initiator") != "not an origin"
            and not e["params"]["url"].startswith(("file:", "data:", "about:", "chrome"))]


def test_study_report_is_one_self_contained_file(study_html):
    page, _ = study_html
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", page)  # nothing to fetch
    assert "<script src" not in page and "@import" not in page
    assert page.count("<svg") >= 5  # history, importances, LR range test, best trials' curves
    for part in ("Optimization history", "Parameter importances", "LR range test", "Best recipe", "optimizer: adamw"):
        assert part in page


def test_study_report_renders_in_headless_chromium(study_html, chromium, tmp_path):
    page, _ = study_html
    path = write_report(page, tmp_path / "report.html")
    proc, shot, netlog = _render(chromium, path, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console_errors = [line for line in proc.stderr.splitlines() if "CONSOLE" in line and "rror" in line]
    assert console_errors == []
    assert _page_requests(netlog) == []  # the browser's own update/time pings are not the page's
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[0] >= 2000
    background = np.all(np.abs(pixels - pixels[5, 5]) < 0.02, axis=-1)
    assert pixels.std() > 0.05 and (~background).mean() > 0.15  # charts and tables drew, not a blank page


def test_run_report_from_a_diagnosis_json(tmp_path, chromium):
    d = Diagnoser(verbose=False)
    fit(tmp_path, {"optimizer": "sgd", "lr": 50.0}, [d], epochs=3)
    html = run_report(d.saved_path)
    assert "divergence" in html and html.count("<svg") == 1 and "lower_lr" in html
    signals = json.loads(d.saved_path.with_name("signals.json").read_text())
    assert signals["layers"] and len(signals["steps"]) == len(signals["loss"])
    proc, shot, _ = _render(chromium, write_report(html, tmp_path / "run.html"), tmp_path)
    assert proc.returncode == 0 and shot.stat().st_size > 20_000


def test_report_command(study_html, tmp_path, monkeypatch):
    _, folder = study_html
    runner = CliRunner()
    out = tmp_path / "r.html"
    ok = runner.invoke(app, ["report", "--storage", f"sqlite:///{folder / 'study.db'}", "--study-name", "r",
                             "-o", str(out)])
    assert ok.exit_code == 0 and out.stat().st_size > 50_000
    missing = runner.invoke(app, ["report", "--storage", f"sqlite:///{folder / 'study.db'}", "--study-name", "x"])
    assert missing.exit_code == 2 and "no study 'x'" in missing.stderr
    monkeypatch.chdir(tmp_path)  # no tunekit.db here: without a name, report reads the default storage's only study
    neither = runner.invoke(app, ["report"])
    assert neither.exit_code == 2 and "no study storage at sqlite:///tunekit.db" in neither.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


def test_run_report_shows_the_interventions_of_an_auto_remedied_run(tmp_path, chromium):
    d = Diagnoser(verbose=False, auto_remedy=True)
    fit(tmp_path, {"optimizer": "sgd", "lr": 50.0}, [d], epochs=3)
    html = run_report(d.saved_path)
    assert "Interventions (auto-remedy)" in html and "rolled back to step" in html
    assert "&quot;lr&quot;: 0.05" in html  # the change, in the interventions table
    assert html.count("lower_lr") >= 2  # the table row, and the marker on the chart (text drawn as paths: not found)
    proc, shot, _ = _render(chromium, write_report(html, tmp_path / "run.html"), tmp_path)
    assert proc.returncode == 0 and shot.stat().st_size > 20_000
