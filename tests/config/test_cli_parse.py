"""The LightningCLI sections are parsed once per distinct content, and each caller gets its own copy."""

import pytest

from tunekit.config._cli import PARSED_KEPT, _parse_once, parse
from tunekit.exceptions import ConfigError

SECTIONS = {"model": {"class_path": "tunekit.examples.MLP", "init_args": {"hidden": [8]}},
            "trainer": {"max_epochs": 1}}


def test_equal_sections_are_parsed_once_and_copied():
    _parse_once.cache_clear()
    first = parse(SECTIONS, "a.yaml")
    again = parse({"trainer": {"max_epochs": 1}, "model": dict(SECTIONS["model"])}, "b.yaml")  # same content
    assert _parse_once.cache_info().misses == 1 and _parse_once.cache_info().hits == 1
    assert first == again and first is not again
    first.trainer.max_epochs = 7
    assert parse(SECTIONS, "a.yaml").trainer.max_epochs == 1
    assert _parse_once.cache_info().maxsize == PARSED_KEPT


def test_a_bad_section_is_one_config_error_naming_the_source():
    bad = {"model": {"class_path": "tunekit.examples.MLP", "init_args": {"hidden": "abc"}}}
    with pytest.raises(ConfigError, match=r"^c\.yaml: model\.init_args\.hidden"):
        parse(bad, "c.yaml")
