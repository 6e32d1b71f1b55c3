"""What a user reads about optimizer families: words, not the study's internal keys."""

from tunekit.search import family_label
from tunekit.search._space import OWN, lr_param


def test_a_family_is_named_in_words():
    assert [family_label(f) for f in ("sgd", "adam", OWN)] == ["SGD", "Adam/AdamW", "the module's own optimizer"]


def test_a_module_with_its_own_optimizer_has_its_lr_drawn_as_lr():
    assert [lr_param(f) for f in ("sgd", "adam", OWN)] == ["lr_sgd", "lr_adam", "lr"]
