"""The ``tunekit`` command as a user meets it: the installed entry point run in their project folder,
``python -m tunekit``, fast help, results on stdout and messages on stderr, and the reading commands' defaults."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from tests.cli.helpers import run_in
from tests.search.helpers import write_config

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
# what pip writes as the console script: run from its bin/ folder, so sys.path[0] is bin/, not the project
ENTRY_POINT = "import sys\nfrom tunekit.cli import main\nsys.exit(main())\n"
HEAVY = ("torch", "lightning", "optuna", "matplotlib", "sklearn", "wandb", "rich.console")  # not needed by --help


def _tunekit(args, cwd, bin_dir):
    script = bin_dir / "tunekit"
    script.write_text(ENTRY_POINT)
    return subprocess.run([sys.executable, str(script), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                                            "PYTHONDONTWRITEBYTECODE": "1"})  # no __pycache__ in their folder


def test_help_imports_nothing_heavy_and_shows_no_type_on_flags():
    code = ("import sys; sys.argv = ['tunekit', 'search', '--help']\nfrom tunekit.cli import main\ntry:\n main()\n"
            f"except SystemExit:\n pass\nprint([m for m in {HEAVY!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.stdout.strip().endswith("[]"), done.stdout[-500:]  # torch, Lightning, Optuna wait for a command
    assert "--json " in done.stdout and "<bool>" not in done.stdout
    assert "Usage: tunekit search [OPTIONS] {CONFIG}" in done.stdout


def test_python_dash_m_tunekit_is_the_command():
    done = subprocess.run([sys.executable, "-m", "tunekit", "--help"], capture_output=True, text=True, cwd=REPO,
                          timeout=60)
    assert done.returncode == 0 and "lr-find" in done.stdout and "python -m tunekit" in done.stdout


@pytest.fixture
def project(tmp_path):
    """A user's project folder: their module beside their config, the command installed elsewhere."""
    (tmp_path / "bin").mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (work / "mymodel.py").write_text("from tunekit.examples import MLP\n\n\nclass Net(MLP):\n    pass\n")
    (work / "broken.py").write_text("import package_nobody_installed  # noqa\n")
    return work


def test_the_installed_command_imports_the_users_module_from_the_working_folder(project):
    (project / "cfg.yaml").write_text("model:\n  class_path: mymodel.Net\ndata:\n  class_path: "
                                      "tunekit.examples.DigitsDataModule\nmonitor: val_loss\n")
    done = _tunekit(["search", "cfg.yaml", "--print-config"], project, project.parent / "bin")
    assert done.returncode == 0, done.stderr
    assert "class_path: mymodel.Net" in done.stdout


@pytest.mark.parametrize(("class_path", "fix"), [
    ("elsewhere.Net", "run tunekit from the folder that holds elsewhere.py (or the elsewhere/ package), or add that "
                      "folder to PYTHONPATH"),
    ("broken.Net", "broken imports 'package_nobody_installed', which is not installed here"),
])
def test_a_module_that_cannot_be_imported_says_how_to_fix_it_in_one_line(project, class_path, fix):
    (project / "cfg.yaml").write_text(f"model:\n  class_path: {class_path}\nmonitor: val_loss\n")
    done = _tunekit(["search", "cfg.yaml", "--n-trials", "1"], project, project.parent / "bin")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and fix in done.stderr
    assert sorted(p.name for p in project.iterdir()) == ["broken.py", "cfg.yaml", "mymodel.py"]  # nothing written


def test_lr_find_with_an_empty_plot_writes_nothing_and_puts_the_result_on_stdout(tmp_path):
    cfg = write_config(tmp_path)
    result = run_in(tmp_path, ["lr-find", cfg.name, "--plot", "", "--max-steps", "60", "--sweep-steps", "20"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [cfg.name]  # no ./.png
    found = re.fullmatch(r"suggested lr (\S+) for (\w+) \(range test bounds (\S+) \.\. (\S+); `lr: auto` searches a "
                         r"range as wide centred on the suggestion, (\S+) \.\. (\S+); \d+ optimizer steps, candidates "
                         r"scored on val_loss\)\n", result.stdout)  # one line, unwrapped, nothing before it
    assert found is not None, result.stdout
    lr, _, low, high, lo, hi = (float(v) if i != 1 else v for i, v in enumerate(found.groups()))
    half = math.sqrt(high / low)  # as wide as the range test's bounds, centred (log) on the suggestion
    assert math.isclose(lo, lr / half, rel_tol=0.01) and math.isclose(hi, lr * half, rel_tol=0.01)
    assert "suggested" not in result.stderr and "plot saved" not in result.stderr


def test_best_and_report_read_the_storages_only_study_without_a_name(tmp_path):
    cfg = write_config(tmp_path)
    assert run_in(tmp_path, ["search", cfg.name, "--n-trials", "1", "--json"]).exit_code == 0
    best = run_in(tmp_path, ["best"])
    assert best.exit_code == 0, best.output
    assert best.stdout.startswith(f"# study {cfg.stem}, trial 0: val_loss = ")
    report = run_in(tmp_path, ["report", "-o", "r.html"])
    assert report.exit_code == 0 and (tmp_path / "r.html").stat().st_size > 10_000
    assert report.stdout == "" and "report written to" in report.stderr
    optuna.create_study(study_name="other", storage=f"sqlite:///{tmp_path / 'tunekit.db'}")
    for command in (["best"], ["report", "-o", "r2.html"]):
        result = run_in(tmp_path, command)
        assert result.exit_code == 2 and not (tmp_path / "r2.html").exists()
        assert result.stderr == f"error: sqlite:///tunekit.db holds studies {cfg.stem}, other: give --study-name NAME\n"


def test_search_puts_its_summary_on_stdout_and_messages_on_stderr(tmp_path):
    cfg = write_config(tmp_path)
    result = run_in(tmp_path, ["search", cfg.name, "--n-trials", "1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"study {cfg.stem} in sqlite:///tunekit.db: 1 complete")
    assert "best recipe: trial 0" in result.stdout
    assert "# tunekit best" in result.stderr and "# tunekit best" not in result.stdout
    json.dumps(result.stdout)  # plain text, no progress bar frames
    assert "\x1b" not in result.stdout
