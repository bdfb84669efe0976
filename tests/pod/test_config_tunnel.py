"""``tunnel`` is tri-state: unset/``auto`` follows the portal, true/false force it."""

from __future__ import annotations

from typing import Any

import pytest

from platebridge.pod.config import ConfigError, parse_config
from tests.pod.test_config import flat


def test_unset_means_follow_the_portal() -> None:
    assert parse_config(flat()).tunnel == "auto"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("auto", "auto"), (None, "auto"), ("true", True)],
)
def test_existing_and_new_values(value: Any, expected: object) -> None:
    assert parse_config(flat(tunnel=value)).tunnel == expected


@pytest.mark.parametrize("value", ["sometimes", 7, ["auto"]])
def test_bad_values_name_the_key(value: Any) -> None:
    with pytest.raises(ConfigError, match="tunnel"):
        parse_config(flat(tunnel=value))
