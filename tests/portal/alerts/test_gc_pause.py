"""``runner.cyclic_gc_paused``: no cyclic collection during a pass, restored after it, whatever
happens (docs/alerts.md, Benchmark)."""

from __future__ import annotations

import gc

import pytest

from platebridge.portal.alerts.runner import cyclic_gc_paused


def test_paused_inside_and_enabled_after() -> None:
    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_enabled_again_after_an_error() -> None:
    with pytest.raises(RuntimeError), cyclic_gc_paused():
        raise RuntimeError("a failed pass")
    assert gc.isenabled()


def test_left_off_when_it_was_off_before() -> None:
    gc.disable()
    try:
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
