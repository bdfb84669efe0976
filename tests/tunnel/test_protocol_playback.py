"""The tunnel's allow-list grew by exactly the four recorded-footage paths (issue 13), and the
footage headers cross it."""

from __future__ import annotations

import pytest

from platebridge.core import tunnel as proto

FOOTAGE = [
    "/recordings/gate-camera-1",
    "/recordings/gate-camera-1/media",
    "/recordings/gate-camera-1/export",
    "/recordings/gate-camera-1/vod.m3u8",
]


@pytest.mark.parametrize("path", FOOTAGE)
def test_footage_paths_are_allowed(path: str) -> None:
    assert proto.allowed_path(path)
    assert proto.stream_window(path, proto.DEFAULT_WINDOW) == proto.DEFAULT_WINDOW  # not live


@pytest.mark.parametrize(
    "path",
    [
        "/recordings",
        "/recordings/",
        "/recordings/gate-camera-1/",
        "/recordings/gate-camera-1/list",
        "/recordings/gate-camera-1/media/x",
        "/recordings/gate-camera-1/vodxm3u8",
        "/recordings/../health",
        "/recordings/gate-camera-1/../../etc/passwd",
        "/recordings/gate camera/media",
        "/recordings/index.sqlite3/../x",
    ],
)
def test_other_recording_paths_are_refused(path: str) -> None:
    assert not proto.allowed_path(path)


def test_exactly_four_paths_more_than_live() -> None:
    assert len(proto._ALLOWED_PATHS) == 9  # 5 of the live paths + the 4 above


def test_queries_of_the_footage_routes() -> None:
    assert proto.allowed_query("token=a.b&start=1764700000.5&duration=10")
    assert proto.allowed_query("token=a.b&from=1764700000&to=1764700600.25")


def test_footage_headers_cross() -> None:
    head = {
        "x-platebridge-media-start": "1764700000.000",
        "x-platebridge-next": "1764700010.000",
        "content-disposition": 'attachment; filename="gate-camera-1-20261203T000000Z.mp4"',
        "set-cookie": "x=1",
    }
    kept = dict(proto.response_headers((k.title(), v) for k, v in head.items()))
    assert kept == {k: v for k, v in head.items() if k != "set-cookie"}
