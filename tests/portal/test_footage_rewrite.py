"""The portal's footage helpers without processes: time and range parsing (400, never 500),
a footage token held to its range, and the VOD playlist rewrite (the POD's token and anything
but start/duration/part dropped; a URI the portal cannot place is a 502, not a relay)."""

from __future__ import annotations

import pytest

from platebridge.portal.errors import ApiError
from platebridge.portal.streaming.footage import (
    parse_duration,
    parse_range,
    parse_time,
    rewrite_vod,
    wire_time,
)
from platebridge.portal.streaming.relay_errors import UpstreamError

BASE = "/api/footage/pod-1/media?camera_id=cam-1&token=VIEWER"
POD_PLAYLIST = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:7
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="media?start=1764700000.000&duration=1.000&part=init&token=PODSECRET"
#EXT-X-PROGRAM-DATE-TIME:2025-12-02T18:26:40.000Z
#EXTINF:6.000,
media?start=1764700000.000&duration=6.000&part=fragments&token=PODSECRET
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="media?start=1764700006.000&duration=1.000&part=init&token=PODSECRET"
#EXTINF:6.000,
media?start=1764700006.000&duration=6.000&part=fragments&token=PODSECRET&evil=1
#EXT-X-ENDLIST
"""


def test_rewrite_points_every_uri_at_the_portal_without_the_pods_token() -> None:
    out = rewrite_vod(POD_PLAYLIST, BASE)
    assert "PODSECRET" not in out and "evil" not in out
    lines = out.splitlines()
    uris = [ln for ln in lines if ln and not ln.startswith("#")]
    assert uris == [
        f"{BASE}&start=1764700000&duration=6&part=fragments",
        f"{BASE}&start=1764700006&duration=6&part=fragments",
    ]
    maps = [ln for ln in lines if ln.startswith("#EXT-X-MAP")]
    assert maps[0] == f'#EXT-X-MAP:URI="{BASE}&start=1764700000&duration=1&part=init"'
    # every tag is kept, in order
    tags = [ln.split(":", 1)[0] for ln in lines if ln.startswith("#")]
    assert tags == [ln.split(":", 1)[0] for ln in POD_PLAYLIST.splitlines() if ln.startswith("#")]


@pytest.mark.parametrize(
    "uri",
    [
        "media?duration=6&token=x",  # no start
        "media?start=nan&duration=6",
        "media?start=1764700000&duration=600",  # longer than a media request may be
        "media?start=1764700000&part=everything",
        "https://evil.example/media?start=1&duration=2&part=init",  # its host is dropped anyway
    ],
)
def test_a_uri_the_portal_cannot_place_is_502(uri: str) -> None:
    text = f"#EXTM3U\n#EXTINF:6.0,\n{uri}\n#EXT-X-ENDLIST\n"
    if uri.startswith("https://"):
        out = rewrite_vod(text, BASE)  # only start/duration/part survive: the host is gone
        assert "evil" not in out and out.splitlines()[2].startswith(BASE)
        return
    with pytest.raises(UpstreamError) as exc:
        rewrite_vod(text, BASE)
    assert exc.value.status == 502 and exc.value.code == "upstream_bad_playlist"


@pytest.mark.parametrize(
    ("start", "end"),
    [("", "10"), ("x", "10"), ("inf", "10"), ("10", "5"), ("5", "5"), ("0", str(7 * 86400 + 1))],
)
def test_bad_ranges_are_400(start: str, end: str) -> None:
    with pytest.raises(ApiError) as exc:
        parse_range(start, end)
    assert exc.value.status == 400 and exc.value.code == "bad_request"


def test_parsing_and_wire_format() -> None:
    assert parse_range("1764700000.5", "1764700010") == (1764700000.5, 1764700010.0)
    assert parse_time("start", 12.25) == 12.25
    assert parse_duration(None) == 10.0 and parse_duration("60") == 60.0
    for bad in ("0.5", "61", "nan", "ten"):
        with pytest.raises(ApiError):
            parse_duration(bad)
    assert wire_time(1764700000.0) == "1764700000"
    assert wire_time(1764700000.1234) == "1764700000.123"
    assert "e" not in wire_time(1e10)
