"""``tunekit search CONFIG``: an Optuna study over recipes, with progress, a summary, and JSON output."""

from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from tunekit.cli._common import EXIT_FAILED, fail, handle_errors, messages, quiet, results
from tunekit.utilities.defaults import DEFAULT_STORAGE


class _Progress:
    """A rich progress line: trials done, pruned, failed, the best value so far, elapsed time."""

    def __init__(self, total: int | None, monitor: str, enabled: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.monitor, self.counts = monitor, {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}
        self.best: float | None = None
        self.bar = Progress(TextColumn("[bold]search[/]"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=messages(),
                            disable=not enabled or not messages().is_terminal, transient=True)  # a bar that
        # cannot be erased (output to a file or pipe) would leave its last frame, a blank line, behind an error
        self.task = self.bar.add_task("search", total=total, info="")

    def note(self, message: str) -> None:
        self.bar.console.print(message)

    def __call__(self, study: Any, trial: Any) -> None:
        self.counts[trial.state.name] = self.counts.get(trial.state.name, 0) + 1
        with contextlib.suppress(ValueError):  # no finished trial yet
            self.best = study.best_value
        best = f"best {self.monitor} {self.best:.4g}" if self.best is not None else "no finished trial yet"
        info = f"pruned {self.counts['PRUNED']}  failed {self.counts['FAIL']}  {best}"
        self.bar.update(self.task, advance=1, info=info)


@handle_errors
def search(
    config: Annotated[Path, typer.Argument(metavar="CONFIG", help="YAML config: model:, data:, trainer:, "
                                           "monitor:, search:.")],
    n_trials: Annotated[int | None, typer.Option("--n-trials", help="Trials to run now (added to the study).")] = None,
    timeout: Annotated[float | None, typer.Option(help="Stop starting trials after this many seconds.")] = None,
    storage: Annotated[str | None, typer.Option(help=f"Optuna storage URL (default {DEFAULT_STORAGE}).")] = None,
    study_name: Annotated[str | None, typer.Option("--study-name", help="Study name (default: the config's name).")]
    = None,
    n_jobs: Annotated[int, typer.Option("--n-jobs", help="Worker processes on this machine.")] = 1,
    wandb: Annotated[bool, typer.Option("--wandb", help="Log each trial and the study to Weights & Biases.")] = False,
    auto_remedy: Annotated[bool, typer.Option("--auto-remedy", help="Repair a diverging trial inside its fit (roll "
                                              "back, cut the LR, clip) and score it, instead of pruning it.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    search_file: Annotated[Path | None, typer.Option("--search", help="A second YAML file with the search: section "
                                                     "(so a LightningCLI config is used unchanged).")] = None,
    print_config: Annotated[bool, typer.Option("--print-config", help="Print the config as it is read (every "
                                               "default filled in) and stop.")] = False,
    heartbeat_interval: Annotated[int, typer.Option(hidden=True)] = 20,
    grace_period: Annotated[int, typer.Option(hidden=True)] = 60,
) -> None:
    """Search optimizer recipes for the config's model: an Optuna study, resumable, with pruning."""
    from tunekit.config import load_config
    from tunekit.search import plan_search, run_search
    from tunekit.search._ddp import is_follower

    quiet()
    cfg = load_config(config, search=search_file)
    if print_config:
        typer.echo(cfg.print_config(), nl=False)
        return
    if n_trials is None and timeout is None:
        raise fail("give --n-trials N or --timeout SECONDS (or both) so the search knows when to stop")
    plan = plan_search(cfg)  # bad input ends here, before any display or storage
    name = study_name or config.stem
    if is_follower():  # a rank Lightning started for a trial's DDP group: it joins rank zero's fits, silently
        run_search(plan, n_trials=n_trials, timeout=timeout, storage=storage, study_name=name,
                   auto_remedy=auto_remedy)
        return
    progress = _Progress(n_trials, cfg.monitor, enabled=not as_json)
    extra = None
    on_trial: Any = progress
    if wandb:
        if n_jobs > 1:
            raise fail("--wandb logs from this process: use it with --n-jobs 1 (run more commands for more workers)")
        from tunekit.dashboards.wandb import StudyLogger

        extra = StudyLogger(name, storage or DEFAULT_STORAGE)

        def on_trial(study: Any, trial: Any) -> None:
            extra.on_trial(study, trial)
            progress(study, trial)
    started = time.time()
    interrupted = False
    try:
        with progress.bar:
            result = run_search(plan, n_trials=n_trials, timeout=timeout, storage=storage, study_name=name,
                                n_jobs=n_jobs, on_trial=on_trial, extra_callbacks=extra,
                                note=None if as_json else progress.note,
                                heartbeat=(heartbeat_interval, grace_period), auto_remedy=auto_remedy)
    except KeyboardInterrupt:
        interrupted = True
        from tunekit.search import StudyView, summarize

        result = summarize(StudyView.load(storage or DEFAULT_STORAGE, name), time.time() - started)
    if extra is not None:
        extra.finish(result)
    done = sum(progress.counts.values())  # trials this run finished (the one interrupted is not among them)
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), "interrupted": interrupted, "finished_this_run": done}))
    else:
        if interrupted:
            messages().print(_interrupted(done, n_trials, timeout))
        _print_summary(result, interrupted and result.complete == 0)
    if interrupted:
        raise typer.Exit(130)
    if result.complete == 0:
        raise typer.Exit(EXIT_FAILED)


def _interrupted(done: int, n_trials: int | None, timeout: float | None) -> str:
    """What an interrupt kept, and what the same command does when run again: it adds ``--n-trials`` trials (or
    runs for ``--timeout`` seconds) to the study again, whatever the interrupted run had left.

    Example:
        >>> _interrupted(3, 10, None)
        '[yellow]interrupted: 3 trials of this run finished and are kept[/]; the running trial is marked failed. \
The same command again adds 10 more trials to the study (--n-trials 7 runs only the ones this run had left).'
    """
    trials = f"{done} trials of this run finished and are" if done != 1 else "1 trial of this run finished and is"
    head = f"interrupted: {trials} kept" if done else "interrupted before a trial finished"
    if n_trials is not None:
        again = f"The same command again adds {n_trials} more trials to the study"
        if 0 < n_trials - done < n_trials:
            again += f" (--n-trials {n_trials - done} runs only the ones this run had left)"
    else:
        again = f"The same command again runs trials for another {timeout:g} s"
    return f"[yellow]{head}[/]; the running trial is marked failed. {again}."


def _print_summary(result: Any, interrupted_before_any: bool = False) -> None:
    from tunekit.search import family_label

    counts = f"{result.complete} complete, {result.pruned} pruned, {result.failed} failed" + (
        f" ({result.repaired} repaired by auto-remedy)" if result.repaired else "")
    results().print(f"study [bold]{result.study_name}[/] in {result.storage}: {counts} ({result.seconds:.0f} s)")
    for fam, lr in result.lr_range.items():
        low, high = lr["bounds"] or (math.nan, math.nan)
        pick = f"suggestion {lr['suggestion']:.3g}" if lr["suggestion"] is not None else "no suggestion"
        results().print(f"LR range test ({family_label(fam)}): {pick}, searched {low:.3g} .. {high:.3g}")
    if result.best_recipe is None:
        if interrupted_before_any:
            messages().print("no trial completed before the interrupt: no best recipe yet")
        else:
            results().print("[red]no trial finished[/]: see the failed or pruned trials' diagnoses")
        return
    from rich.table import Table

    from tunekit.recipe import Recipe

    table = Table(title=f"best recipe: trial {result.best_trial}, {result.monitor} {result.best_value:.4g}",
                  min_width=48, title_justify="left")
    table.add_column("recipe key")
    table.add_column("value", justify="right")
    shown = result.best_recipe if result.own_optimizer else Recipe.from_dict(result.best_recipe).to_dict(compact=True)
    for key, value in shown.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    results().print(table)
    from tunekit.diagnose import Diagnosis

    results().print(Diagnosis.from_dict(result.best_diagnosis or {}))
    typer.echo(f"# tunekit best --storage '{result.storage}' --study-name {result.study_name}", err=True)
