"""Screen a JSON request body before any parser sees it (issue 11: pathological JSON).

The bodies that reach the portal before authentication (the heartbeat, the JSON login) are
parsed by pydantic and, on the heartbeat's tolerant path, by :func:`json.loads`. Both recurse
per nesting level (Python's raises ``RecursionError``: a 500), turn digit runs into ``int``
(refused over 4300 digits) and take ``NaN``/``Infinity``/``1e999``; :func:`json.loads` also
guesses UTF-16/32 from the bytes. :func:`check` refuses all of that first with
``422 invalid_json`` (422 as for every body the portal cannot read as its JSON).

Cost: the common body passes on whole-body tests done by C code (one ``bytes.translate``,
substring searches, byte counts) in a few microseconds; only a body that trips one of them
(many ``[``/``{``, a long digit run, ``NaN``, a 3-digit exponent) has its strings taken out for
the exact test, still in linear passes.

Soundness: strings are found after removing the ``\\\\`` and ``\\"`` escape pairs (every quote
left is a delimiter in valid JSON). What follows the first syntax error of an invalid body may
be misread, but no parser reads past that error; a body that is not JSON at all may pass, and
the parser after the screen refuses it.
"""

from __future__ import annotations

import math
import re

from platebridge.portal.errors import ApiError

#: Deepest nesting of arrays and objects accepted (a heartbeat needs 3).
MAX_DEPTH = 32
#: Longest run of digits accepted in one number (its integer, fraction or exponent part).
MAX_DIGITS = 100

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def _classes() -> bytes:
    """A ``bytes.translate`` table: raw control characters -> NUL, digits -> ``0``,
    ``e``/``E`` -> ``e``, ``[``/``{`` -> ``[``, ``N``/``I`` -> ``N`` (``NaN``, ``Infinity``),
    everything else -> space (``+`` is deleted: ``1e+400`` reads ``0e000``)."""
    table = bytearray(b" " * 256)
    for byte in range(0x20):
        if byte not in b"\t\n\r":
            table[byte] = 0
    table[ord("0") : ord("9") + 1] = b"0" * 10
    table[ord("e")] = table[ord("E")] = ord("e")
    table[ord("[")] = table[ord("{")] = ord("[")
    table[ord("N")] = table[ord("I")] = ord("N")
    return bytes(table)


# Raw control characters are never valid JSON (outside strings only \t \n \r are whitespace,
# inside strings they must be escaped); refusing them also refuses UTF-16/32 without a BOM.
_CLASSES = _classes()
_DIGIT_RUN = b"0" * (MAX_DIGITS + 1)
#: A mantissa has at most MAX_DIGITS integer digits, so an infinite float needs an exponent of
#: three digits or more.
_BIG_EXPONENT = b"e000"
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_SQUARE = bytes.maketrans(b"{}", b"[]")
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_ESCAPE = re.compile(rb"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_LONG_DIGITS = re.compile(rb"[0-9]{%d}" % (MAX_DIGITS + 1))
_NON_FINITE = re.compile(rb"NaN|Infinity")
_NUMBER_WITH_EXPONENT = re.compile(rb"-?[0-9.]*[eE][+-]?[0-9]+")


def invalid_json(detail: str) -> ApiError:
    return ApiError(422, "invalid_json", f"request body refused: {detail}")


def check(body: bytes) -> None:
    """Raise ``422 invalid_json`` if ``body`` could make a JSON parser recurse deeper than
    :data:`MAX_DEPTH`, build a huge or non-finite number, or read anything but UTF-8."""
    if body.startswith(_BOMS):
        raise invalid_json("byte order mark; send UTF-8 without a BOM")
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid_json("not valid UTF-8") from None
    classes = body.translate(_CLASSES, b"+")
    if b"\0" in classes:
        raise invalid_json("raw control character (UTF-16 or UTF-32 text?)")
    escaped = b"\\" in body
    if escaped and _MAYBE_SURROGATE.search(body):
        _check_surrogates(body)
    deep = classes.count(b"[") > MAX_DEPTH  # cannot nest deeper than it has openers
    long_digits = _DIGIT_RUN in classes
    big_exponent = _BIG_EXPONENT in classes
    non_finite = b"N" in classes and (b"NaN" in body or b"Infinity" in body)
    if not (deep or long_digits or big_exponent or non_finite):
        return  # the common case
    if escaped:  # a run of backslashes pairs up left to right; then \" is an escape
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    if deep:
        _check_depth(body)
    if long_digits or big_exponent or non_finite:
        _check_numbers(b" ".join(body.split(b'"')[0::2]))  # the text outside strings


def _check_surrogates(body: bytes) -> None:
    """Every ``\\uD800``-``\\uDBFF`` escape must be followed by a ``\\uDC00``-``\\uDFFF`` one
    (a lone surrogate is no character: it cannot be stored or encoded)."""
    high_end = -1  # where the pending high surrogate escape ended
    for m in _ESCAPE.finditer(body):
        token = m.group(1)
        unit = int(token[1:], 16) if len(token) == 5 else -1
        is_low = 0xDC00 <= unit <= 0xDFFF
        if high_end >= 0:
            if not (is_low and m.start() == high_end):
                raise invalid_json("lone surrogate escape in a string")
            high_end = -1
        elif is_low:
            raise invalid_json("lone surrogate escape in a string")
        elif 0xD800 <= unit <= 0xDBFF:
            high_end = m.end()
    if high_end >= 0:
        raise invalid_json("lone surrogate escape in a string")


def _check_depth(body: bytes) -> None:
    """Nesting of the brackets outside strings (``body`` has no escaped quotes left)."""
    # Only brackets and quotes; two adjacent quotes enclose nothing outside a string, so
    # dropping them keeps the rest as it was and leaves only strings that hold brackets.
    structure = body.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    brackets = b"".join(structure.split(b'"')[0::2]).translate(_SQUARE)
    # Each pass removes the innermost pairs: the passes needed are the balanced depth.
    passes = 0
    while b"[]" in brackets:
        passes += 1
        if passes > MAX_DEPTH:
            break
        brackets = brackets.replace(b"[]", b"")
    # What is left is unmatched: "]" (no parser reads past it) and unclosed "[" levels.
    if passes + brackets.count(b"[") > MAX_DEPTH:
        raise invalid_json(f"nested deeper than {MAX_DEPTH} levels")


def _check_numbers(outside: bytes) -> None:
    if _LONG_DIGITS.search(outside):
        raise invalid_json(f"number with more than {MAX_DIGITS} digits")
    if _NON_FINITE.search(outside):
        raise invalid_json("NaN and Infinity are not JSON")
    for m in _NUMBER_WITH_EXPONENT.finditer(outside):
        try:
            value = float(m.group(0))
        except ValueError:
            continue  # not a number: the parser refuses it
        if not math.isfinite(value):
            raise invalid_json("number out of range")
