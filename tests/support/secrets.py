"""The secret grep of the leak tests: none of these secrets appears in any of these texts.

A failure names the secret and the text and shows where it was found, with every secret
value masked in the excerpt: the assertion message itself must not print what leaked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

#: characters of context either side of a hit in a failure message
CONTEXT = 60


def _masked(excerpt: str, secrets: Mapping[str, str]) -> str:
    for what, value in sorted(secrets.items(), key=lambda kv: -len(kv[1])):
        excerpt = excerpt.replace(value, f"<{what}>")
    return excerpt


def _where(text: str, start: int, end: int, secrets: Mapping[str, str], hit: str) -> str:
    """Line number and context of ``text[start:end]``, the hit shown as ``hit``."""
    line = text.count("\n", 0, start) + 1
    before = text[max(0, start - CONTEXT) : start]
    after = text[end : end + CONTEXT]
    return f"line {line}: …{_masked(before, secrets)!r} {hit} {_masked(after, secrets)!r}…"


def assert_no_secrets(
    texts: Mapping[str, str],
    secrets: Mapping[str, str],
    *,
    kind: str = "log",
    patterns: Iterable[re.Pattern[str]] = (),
    allowed: Iterable[str] = (),
) -> None:
    """Fail if a value of ``secrets`` occurs in a text of ``texts`` (both keyed by a name for
    the message), or a ``patterns`` match once the ``allowed`` strings (redaction masks such as
    ``pbk_***``) are taken out."""
    for what, value in secrets.items():
        assert value, f"empty secret {what!r}: the search would prove nothing"
    masks = list(allowed)
    for name, text in texts.items():
        for what, value in secrets.items():
            at = text.find(value)
            assert at < 0, f"{what} in the {name} {kind}, " + _where(
                text, at, at + len(value), secrets, f"<{what}>"
            )
        rest = text
        for mask in masks:
            rest = rest.replace(mask, "")
        for pattern in patterns:
            hit = pattern.search(rest)
            assert hit is None, f"unredacted {pattern.pattern!r} in the {name} {kind}, " + _where(
                rest, hit.start(), hit.end(), secrets, f"<{hit.group(0)[:8]}…>"
            )
