"""A storage URL with a mistake in it: one line naming the mistake and the fix, exit 2, nothing created."""

import uuid

import optuna
import pytest

from tests.cli.helpers import run_in
from tests.search.helpers import write_config

TYPOS = [
    ("sqlte:///x.db", "unknown storage scheme sqlte:// in sqlte:///x.db: did you mean sqlite://?"),
    ("mysq://u@localhost/db", "unknown storage scheme mysq://"),
    ("x.db", "storage 'x.db' is not a storage URL: use sqlite:///FILE.db"),
]


def _one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(result.stderr.splitlines()) == 1 and len(lines) == 1, result.stderr  # not even a blank line
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(("url", "message"), TYPOS, ids=[t[0] for t in TYPOS])
@pytest.mark.parametrize("command", ["search", "best", "report"])
def test_a_misspelled_storage_scheme_is_named_with_the_valid_ones(tmp_path, url, message, command):
    cfg = write_config(tmp_path)
    args = {"search": ["search", str(cfg), "--n-trials", "1"], "best": ["best"],
            "report": ["report", "--study-name", "s", "-o", "r.html"]}[command]
    result = run_in(tmp_path, [*args, "--storage", url])
    assert result.exit_code == 2, result.output
    line = _one_error_line(result)
    assert message in line and "Can't load plugin" not in line
    assert "postgresql://USER@HOST/DB" in line and "journal:///FILE.log" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == [cfg.name]  # no x.db, no tunekit.db, no report


def test_postgres_scheme_gets_the_postgresql_spelling_and_no_study(tmp_path, postgres_url):
    name = f"h_{uuid.uuid4().hex[:8]}"
    url = postgres_url.replace("postgresql://", "postgres://", 1)
    result = run_in(tmp_path, ["search", str(write_config(tmp_path)), "--n-trials", "1", "--storage", url,
                               "--study-name", name])
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert line == f"error: storage scheme postgres:// is not a SQLAlchemy name: write {postgres_url}."
    assert name not in {s.study_name for s in optuna.get_all_study_summaries(postgres_url)}


def test_an_unreachable_database_is_one_line_even_with_a_progress_display(tmp_path):
    # a module without a Recipe: the search has a note to print, which must not come before the error
    cfg = write_config(tmp_path, model={"class_path": "tests.search.fixtures.NoRecipeModel"},
                       monitor="tunekit/train_loss", search={"lr": [0.01, 0.1]})
    result = run_in(tmp_path, ["search", str(cfg), "--n-trials", "1", "--storage",
                               "postgresql://nobody@127.0.0.1:1/none"])
    assert result.exit_code == 2
    assert _one_error_line(result).startswith("error: cannot open storage postgresql://nobody@127.0.0.1:1/none")
    assert sorted(p.name for p in tmp_path.iterdir()) == [cfg.name]
