"""The machine-readable clock the test camera burns into each picture (no dependencies).

Layout: 48 square blocks, two rows of 24, the top-left block at (B, B) where B is the block
size in pixels (16, or 8 for pictures narrower than 480 px). Block i (row-major) is white when
bit i is 1 and black when it is 0. Bits 0-39 are the wall-clock time in milliseconds since the
Unix epoch modulo 2**40 (most significant bit first); bits 40-47 are a CRC-8 (polynomial 0x07)
of those five bytes XOR 0xA5, so a misread picture is rejected, not reported as a wrong time
(the XOR makes all-black and all-white pictures fail the check).

The decoder (bench/clock_reader.js) samples the middle of each block of the decoded frame;
16 px blocks of full black/white survive H.264/H.265 at low bitrates.
"""

from __future__ import annotations

from collections.abc import Callable

BITS = 48
PER_ROW = 24
VALUE_BITS = 40
MODULUS = 1 << VALUE_BITS
Y_WHITE, Y_BLACK, C_NEUTRAL = 235, 16, 128  # limited-range luma, neutral chroma
CHECK_XOR = 0xA5


def block_size(width: int) -> int:
    return 16 if width >= 480 else 8


def crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def encode(ms: int) -> list[int]:
    """The 48 bits for a time in ms since the epoch."""
    value = ms % MODULUS
    raw = value.to_bytes(5, "big")
    word = (value << 8) | (crc8(raw) ^ CHECK_XOR)
    return [(word >> (BITS - 1 - i)) & 1 for i in range(BITS)]


def decode(bits: list[int]) -> int | None:
    """The time (mod 2**40) for 48 bits, or None when the check fails."""
    if len(bits) != BITS:
        return None
    word = 0
    for b in bits:
        word = (word << 1) | (1 if b else 0)
    value, check = word >> 8, word & 0xFF
    return value if crc8(value.to_bytes(5, "big")) ^ CHECK_XOR == check else None


def luma_rows(ms: int, width: int) -> list[bytes]:
    """One row of luma bytes per block row (24 blocks wide), to be repeated B times."""
    size = block_size(width)
    bits = encode(ms)
    rows = []
    for r in range(BITS // PER_ROW):
        row = bytearray()
        for bit in bits[r * PER_ROW : (r + 1) * PER_ROW]:
            row += bytes([Y_WHITE if bit else Y_BLACK]) * size
        rows.append(bytes(row))
    return rows


def paint_i420(fill: Callable[[int, bytes], object], width: int, height: int, ms: int) -> None:
    """Write the clock into an I420 frame through ``fill(offset, data)`` (GStreamer's strides:
    luma rows rounded up to 4 bytes, chroma rows to 4 of half the width)."""
    size = block_size(width)
    y_stride = (width + 3) // 4 * 4
    c_width = (width + 1) // 2
    c_stride = (c_width + 3) // 4 * 4
    c_height = (height + 1) // 2
    u_plane = y_stride * height
    v_plane = u_plane + c_stride * c_height
    for r, row in enumerate(luma_rows(ms, width)):
        top = size * (1 + r)
        for dy in range(size):
            fill((top + dy) * y_stride + size, row)
    neutral = bytes([C_NEUTRAL]) * (PER_ROW * size // 2)
    for plane in (u_plane, v_plane):
        for cy in range(size // 2, size // 2 + size * (BITS // PER_ROW) // 2):
            fill(plane + cy * c_stride + size // 2, neutral)


def paint_gray(width: int, height: int, ms: int, background: int = 128) -> bytearray:
    """A grey picture (one byte a pixel) with the clock, for the decoder's round-trip test."""
    img = bytearray([background]) * (width * height)

    def fill(offset: int, data: bytes) -> None:
        if offset < width * height:
            img[offset : offset + len(data)] = data

    size = block_size(width)
    for r, row in enumerate(luma_rows(ms, width)):
        top = size * (1 + r)
        for dy in range(size):
            fill((top + dy) * width + size, row)
    return img
