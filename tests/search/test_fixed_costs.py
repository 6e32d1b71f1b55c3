"""What a trial costs beyond its fit: SQLite commits without an fsync each (write-ahead log), a gc that skips what
was alive before the first trial; and a study removed for bad input still leaves no file behind."""

import gc
import sqlite3

from typer.testing import CliRunner

from tests.search.helpers import write_config
from tunekit.cli import app
from tunekit.config import load_config
from tunekit.search import run_search

runner = CliRunner()
TINY = {"max_epochs": 1, "limit_train_batches": 4, "limit_val_batches": 1}


def test_a_sqlite_study_is_written_ahead_and_the_collector_is_thawed_after_the_search(tmp_path):
    cfg = load_config(write_config(tmp_path, trainer=TINY, search={"optimizer": "sgd", "lr": [1e-3, 1e-1]}))
    result = run_search(cfg, n_trials=2, storage=f"sqlite:///{tmp_path}/s.db", study_name="s")
    assert result.complete == 2
    assert gc.get_freeze_count() == 0  # the objects frozen for the trials' collections are collectable again
    with sqlite3.connect(tmp_path / "s.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_study_removed_after_its_first_trial_leaves_no_log_or_shared_memory_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, trainer=TINY, monitor="val_nothing", direction="minimize",
                          search={"optimizer": "sgd", "lr": [0.01, 0.1]})
    result = runner.invoke(app, ["search", str(config), "--n-trials", "2"])
    assert result.exit_code == 2, result.output
    assert "monitor 'val_nothing' was never logged in the first trial" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [config.name]  # no tunekit.db, -wal or -shm

