"""ISO BMFF (MP4) boxes: the incremental top-level reader and child-box walking. Pure.

The building blocks of :mod:`platebridge.core.fmp4` (import from there); kept apart so each
module stays short.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

#: Larger top-level boxes are refused (a 4K keyframe is a few MiB; this is a corrupt stream).
MAX_BOX_SIZE = 64 * 1024 * 1024


class Fmp4Error(ValueError):
    """The byte stream is not the fragmented MP4 it should be."""


@dataclass(frozen=True)
class Box:
    type: str
    data: bytes  # the whole box, header included
    header_size: int

    @property
    def payload(self) -> bytes:
        return self.data[self.header_size :]


def box_header(buf: bytes | bytearray, pos: int, end: int) -> tuple[str, int, int] | None:
    """(type, header size, box size) of the box at ``pos``, or None if the header is incomplete."""
    if end - pos < 8:
        return None
    size, raw = struct.unpack_from(">I4s", buf, pos)
    box_type = raw.decode("latin-1")
    header = 8
    if size == 1:
        if end - pos < 16:
            return None
        (size,) = struct.unpack_from(">Q", buf, pos + 8)
        header = 16
    elif size == 0:
        raise Fmp4Error(f"box {box_type!r} has size 0 ('to end of file'), not allowed in a stream")
    if size < header:
        raise Fmp4Error(f"box {box_type!r} declares size {size}, smaller than its header")
    if size > MAX_BOX_SIZE:
        raise Fmp4Error(
            f"box {box_type!r} declares {size} bytes, more than the {MAX_BOX_SIZE} allowed"
        )
    return box_type, header, size


class BoxReader:
    """Incremental top-level box reader: ``feed(chunk)`` returns the boxes completed by it."""

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete box (at most one box, so at most :data:`MAX_BOX_SIZE`)."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[Box]:
        self._buf += chunk
        boxes: list[Box] = []
        pos = 0
        end = len(self._buf)
        while True:
            head = box_header(self._buf, pos, end)
            if head is None or end - pos < head[2]:
                break
            box_type, header, size = head
            boxes.append(Box(box_type, bytes(self._buf[pos : pos + size]), header))
            pos += size
        if pos:
            del self._buf[:pos]
        return boxes


def iter_boxes(
    data: bytes, start: int = 0, end: int | None = None
) -> Iterator[tuple[str, int, int]]:
    """Child boxes of ``data[start:end]`` as (type, payload start, box end); must fit exactly."""
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        head = box_header(data, pos, end)
        if head is None or pos + head[2] > end:
            raise Fmp4Error(f"truncated box at offset {pos}")
        box_type, header, size = head
        yield box_type, pos + header, pos + size
        pos += size


def child(data: bytes, start: int, end: int, box_type: str) -> tuple[int, int] | None:
    for kind, body, stop in iter_boxes(data, start, end):
        if kind == box_type:
            return body, stop
    return None


def children(data: bytes, start: int, end: int, box_type: str) -> list[tuple[int, int]]:
    return [(b, s) for kind, b, s in iter_boxes(data, start, end) if kind == box_type]


def u32(data: bytes, pos: int, end: int) -> int:
    if pos + 4 > end:
        raise Fmp4Error(f"box field at offset {pos} is truncated")
    return int.from_bytes(data[pos : pos + 4], "big")
