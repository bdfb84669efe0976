"""The burned-in clock's code (tools/clock_code.py): encode/decode round trip and the check."""

from __future__ import annotations

import time

from tests.camera._probe import clock_code

cc = clock_code()


def test_round_trip_and_modulus() -> None:
    now = int(time.time() * 1000)
    for ms in (0, 1, now, now + 1, cc.MODULUS - 1, cc.MODULUS + 5):
        bits = cc.encode(ms)
        assert len(bits) == cc.BITS and set(bits) <= {0, 1}
        assert cc.decode(bits) == ms % cc.MODULUS


def test_any_single_flipped_bit_is_rejected() -> None:
    bits = cc.encode(1_796_219_661_170)
    for i in range(cc.BITS):
        flipped = list(bits)
        flipped[i] ^= 1
        assert cc.decode(flipped) is None, i


def test_block_geometry_fits_small_and_large_pictures() -> None:
    for width, height in ((320, 240), (640, 360), (1920, 1080)):
        size = cc.block_size(width)
        assert size * (cc.PER_ROW + 1) <= width and size * 3 <= height
        rows = cc.luma_rows(0, width)
        assert [len(r) for r in rows] == [cc.PER_ROW * size] * 2


def test_paint_i420_writes_inside_the_frame_only() -> None:
    width, height = 640, 360
    frame = bytearray(width * height * 3 // 2)
    writes: list[tuple[int, int]] = []

    def fill(offset: int, data: bytes) -> None:
        writes.append((offset, len(data)))
        frame[offset : offset + len(data)] = data

    cc.paint_i420(fill, width, height, 123_456_789)
    assert all(o + n <= len(frame) for o, n in writes)
    size = cc.block_size(width)
    # Block 0's middle pixel carries bit 0, block 47's bit 47.
    bits = cc.encode(123_456_789)
    first = frame[(size + size // 2) * width + size + size // 2]
    last = frame[(2 * size + size // 2) * width + size * 24 + size // 2]
    assert (first == cc.Y_WHITE) == bool(bits[0]) and (last == cc.Y_WHITE) == bool(bits[47])


def test_uniform_pictures_fail_the_check() -> None:
    assert cc.decode([0] * cc.BITS) is None
    assert cc.decode([1] * cc.BITS) is None
