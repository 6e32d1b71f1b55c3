"""The new optimizers as search choices: one LR range test per family, Prodigy searching d_coef instead of an LR,
and every drawn trial a recipe the recipe checks accept."""

import sys

import optuna
import pytest

from tunekit.config import parse_config
from tunekit.exceptions import ConfigError
from tunekit.search import plan_search, run_search
from tunekit.search._lr_bounds import range_test_recipe
from tunekit.search._space import PRODIGY_D_COEF, SearchSpace, family

pytest.importorskip("pytorch_optimizer")
pytest.importorskip("prodigyopt")
pytest.importorskip("schedulefree")

ALL = ["sgd", "adamw", "adagrad", "radam", "nadam", "lbfgs", "lamb", "adabound", "prodigy", "schedulefree_adamw",
       "schedulefree_sgd", "adam_then_sgd"]
BOUNDS = {"sgd": (1e-2, 1.0), "adam": (1e-4, 1e-2), "adagrad": (1e-3, 1e-1), "lbfgs": (1e-2, 1.0),
          "lamb": (1e-3, 1e-1), "schedulefree_adamw": (1e-3, 1e-1), "schedulefree_sgd": (1e-1, 10.0)}


def test_each_family_gets_its_own_range_test_and_prodigy_none():
    space = SearchSpace.parse({"optimizer": ALL, "lr": "auto"})
    assert space.families() == sorted(BOUNDS)
    assert SearchSpace.parse({"optimizer": ["prodigy"], "lr": "auto"}).families() == []
    assert [family(o) for o in ("radam", "nadam", "adabound", "rmsprop", "adamw_then_sgd")] == ["adam"] * 5


def test_every_drawn_trial_is_a_valid_recipe_within_its_familys_bounds():
    space = SearchSpace.parse({"optimizer": ALL, "lr": "auto", "weight_decay": [1e-5, 1e-2],
                               "schedule": ["constant", "cosine", "plateau"], "lookahead": [True, False],
                               "grad_noise": [1e-3, 1e-1], "momentum": [0.5, 0.95]}, )
    space.lr_bounds, space.total_steps = BOUNDS, 100
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = {}
    for _ in range(120):
        trial = study.ask()
        recipe = space.sample(trial)  # the Recipe constructor checks every combination
        seen.setdefault(recipe.optimizer, []).append(recipe)
        study.tell(trial, 0.0)
    assert set(seen) == {o.replace("adam_then_sgd", "adam") for o in ALL}
    for name, recipes in seen.items():
        for r in recipes:
            if name == "prodigy":
                assert r.lr == 1.0 and PRODIGY_D_COEF[0] <= r.d_coef <= PRODIGY_D_COEF[1]
            else:
                low, high = BOUNDS[family(name)]
                assert low <= r.lr <= high and r.d_coef == 1.0
    assert all(r.schedule == "constant" and not r.lookahead for o in ("schedulefree_adamw", "schedulefree_sgd")
               for r in seen[o])
    assert all(r.weight_decay == 0 and r.grad_noise is None for r in seen["lbfgs"])
    assert any(r.lookahead for r in seen["lamb"] + seen["radam"])  # the others do draw Lookahead
    assert {r.schedule for r in seen["sgd"] + seen["adagrad"]} == {"constant", "cosine", "plateau"}


def test_prodigy_takes_d_coef_from_the_space_when_it_is_searched():
    space = SearchSpace.parse({"optimizer": ["prodigy", "adamw"], "lr": "auto", "d_coef": [0.5, 2.0]})
    recipe = space.sample(optuna.trial.FixedTrial({"optimizer": "prodigy", "d_coef": 1.5, "beta1": 0.9,
                                                   "beta2": 0.999}))
    assert (recipe.optimizer, recipe.lr, recipe.d_coef) == ("prodigy", 1.0, 1.5)


def test_the_range_test_recipe_of_each_family():
    from tunekit import Recipe

    base = Recipe(optimizer="radam", weight_decay=0.01, warmup_steps=20, schedule="cosine", switch_to_sgd_at=0.8)
    picks = {fam: range_test_recipe(base, fam) for fam in BOUNDS}
    assert {fam: r.optimizer for fam, r in picks.items()} == {
        "sgd": "sgd", "adam": "radam", "adagrad": "adagrad", "lbfgs": "lbfgs", "lamb": "lamb",
        "schedulefree_adamw": "schedulefree_adamw", "schedulefree_sgd": "schedulefree_sgd"}
    assert all(r.switch_to_sgd_at is None for r in picks.values())
    assert picks["lbfgs"].weight_decay == 0.0 and picks["lamb"].weight_decay == 0.01
    assert (picks["schedulefree_sgd"].schedule, picks["schedulefree_sgd"].warmup_steps) == ("constant", 0)


@pytest.mark.parametrize(("section", "match"), [
    ({"optimizer": ["adamw", "shampoo"]}, r"search: optimizer: 'shampoo' is not one of sgd, adam, adamw, rmsprop, "
                                          r"adagrad"),
    ({"lookahead": ["yes"]}, r"search: lookahead takes true or false"),
    ({"d_coef": [0.0, 2.0]}, r"search: d_coef must be > 0 \(Prodigy's scale of its step size"),
    ({"plateau_factor": [0.1, 1.5]}, r"plateau_factor must be in \(0, 1\)"),
])
def test_bad_search_values_are_one_clear_error(section, match):
    with pytest.raises(ConfigError, match=match):
        SearchSpace.parse(section)


def test_a_choice_whose_package_is_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "schedulefree", None)
    with pytest.raises(ConfigError, match=r"search: optimizer='schedulefree_sgd' needs schedulefree, which is not "
                                          r"installed: pip install 'tunekit-lightning\[optimizers\]'"):
        SearchSpace.parse({"optimizer": ["adamw", "schedulefree_sgd"]})


@pytest.mark.slow
def test_a_search_over_lr_free_and_new_optimizers_range_tests_each_family_once(tmp_path):
    config = parse_config({
        "model": {"class_path": "tunekit.examples.MLP", "init_args": {"hidden": [32]}},
        "data": {"class_path": "tunekit.examples.DigitsDataModule", "init_args": {"batch_size": 64}},
        "trainer": {"max_epochs": 1, "limit_train_batches": 5, "limit_val_batches": 2},
        "search": {"optimizer": ["prodigy", "schedulefree_adamw", "lamb"], "lr": "auto"}})
    url = f"sqlite:///{tmp_path}/opt.db"
    result = run_search(plan_search(config), n_trials=5, storage=url, study_name="opt")
    study = optuna.load_study(study_name="opt", storage=url)
    measured = sorted(k.rsplit(".", 1)[1] for k in study.user_attrs if k.startswith("tunekit.lr_range."))
    assert measured == ["lamb", "schedulefree_adamw"]  # Prodigy has no LR to range-test
    assert result.complete + result.pruned == 5
    for trial in study.trials:
        name = trial.params["optimizer"]
        if name == "prodigy":
            assert "d_coef" in trial.params and not any(p.startswith("lr_") for p in trial.params)
        else:
            low, high = study.user_attrs[f"tunekit.lr_range.{name}"]["bounds"]
            assert low <= trial.params[f"lr_{name}"] <= high
