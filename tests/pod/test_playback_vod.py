"""The HLS VOD playlist: keyframe-aligned segments inside the range, one EXT-X-MAP per file,
discontinuities between files (pure); and in-process, every URI of the playlist fetched: the
init and fragment parts put back together are each file's fragments once, in order."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from platebridge.core.fmp4 import split
from platebridge.pod.recording.index import RecordedFile
from platebridge.pod.recording.mp4scan import scan_file
from platebridge.pod.recording.recorder import Recording
from platebridge.pod.recording.vod import playlist, segments
from tests.pod.test_http_routes import make_config
from tests.pod.test_playback_plan import T0, index_row, recording
from tests.pod.test_playback_routes import CAM, _app, tok


def _file(start: float, seconds: float, gop: float = 2.0, name: str = "a.mp4") -> RecordedFile:
    keys = tuple((start + i * gop, 100 + i) for i in range(int(seconds / gop + 0.999)))
    return RecordedFile(CAM, Path(f"/rec/{name}"), start, start + seconds, 1000, keys, 100)


def test_segments_cut_at_keyframes() -> None:
    f = _file(T0, 20)
    whole = [(T0, T0 + 6), (T0 + 6, T0 + 12), (T0 + 12, T0 + 18), (T0 + 18, T0 + 20)]
    assert segments(f, T0, T0 + 20) == whole
    # inside the range only: from the first keyframe at or after `from`, whole segments
    assert segments(f, T0 + 3, T0 + 17) == [(T0 + 4, T0 + 10), (T0 + 10, T0 + 16)]
    # a short tail joins the segment before it
    assert segments(_file(T0, 12.5), T0, T0 + 20) == [(T0, T0 + 6), (T0 + 6, T0 + 12.5)]
    assert segments(_file(T0, 0.5), T0, T0 + 20) == []
    assert segments(f, T0 + 30, T0 + 40) == []


def test_playlist_text() -> None:
    files = [_file(T0, 12, name="a.mp4"), _file(T0 + 60, 6, gop=1.0, name="b.mp4")]
    text = playlist(files, T0 - 10, T0 + 100, "p.q-_")
    lines = text.splitlines()
    assert lines[:6] == [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-TARGETDURATION:6",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="media?start={T0:.3f}&duration=1.000&part=init&token=p.q-_"',
    ]
    assert lines[-1] == "#EXT-X-ENDLIST"
    assert lines.count("#EXT-X-DISCONTINUITY") == 1
    assert sum(line.startswith("#EXT-X-MAP") for line in lines) == 2
    assert "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:06.000Z" in lines
    uris = [line for line in lines if line.startswith("media?")]
    assert uris == [
        f"media?start={T0:.3f}&duration=6.000&part=fragments&token=p.q-_",
        f"media?start={T0 + 6:.3f}&duration=6.000&part=fragments&token=p.q-_",
        f"media?start={T0 + 60:.3f}&duration=6.000&part=fragments&token=p.q-_",
    ]
    assert [float(x[8:-1]) for x in lines if x.startswith("#EXTINF")] == [6.0, 6.0, 6.0]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = make_config(tmp_path, recording_dir=str(tmp_path / "rec"))
    rec = Recording(config)
    assert rec.index is not None
    day = tmp_path / "rec" / CAM / "2026-01-01"
    day.mkdir(parents=True)
    for name, start, seconds in (("000000.mp4", T0, 15), ("000100.mp4", T0 + 60, 9)):
        path = day / name
        path.write_bytes(recording(seconds, media0=0.0, wall0=start))
        rec.index.put(index_row(path, start))
    async with _app(config, rec) as c:
        yield c
    rec.close()


async def test_every_uri_of_the_playlist(client: httpx.AsyncClient, tmp_path: Path) -> None:
    base = f"/recordings/{CAM}/"
    token = tok()  # one token: tok() is signed with an expiry of now + n (seconds)
    r = await client.get(base + "vod.m3u8", params={"token": token, "from": T0, "to": T0 + 100})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert r.headers["cache-control"] == "no-store"
    pieces: list[bytes] = []
    per_file: list[bytes] = []
    for line in r.text.splitlines():
        uri = re.fullmatch(r'#EXT-X-MAP:URI="(.*)"', line)
        target = uri.group(1) if uri else line if line.startswith("media?") else None
        if target is None:
            continue
        query = parse_qs(urlsplit(target).query)
        assert query["token"] == [token]
        got = await client.get(base + target)
        assert got.status_code == 200, got.text
        assert int(got.headers["content-length"]) == len(got.content)
        if uri:
            if pieces:
                per_file.append(b"".join(pieces))
            pieces = [got.content]
            assert split(got.content).fragments == []  # the init segment alone
        else:
            assert got.content[4:8] in (b"prft", b"moof")  # fragments alone
            pieces.append(got.content)
    per_file.append(b"".join(pieces))
    assert len(per_file) == 2
    for n, (data, seconds) in enumerate(zip(per_file, (15, 9), strict=True)):
        path = tmp_path / f"joined-{n}.mp4"
        path.write_bytes(data)
        starts = [f.media_start for f in scan_file(path).fragments]
        assert starts == [float(i) for i in range(seconds)]  # each fragment once, file timeline
    empty = await client.get(
        base + "vod.m3u8", params={"token": tok(), "from": T0 + 20, "to": T0 + 50}
    )
    assert empty.status_code == 404 and empty.json()["error"] == "no_recording"
    bad = await client.get(base + "media", params={"token": tok(), "start": T0, "part": "x"})
    assert bad.status_code == 400 and bad.json()["error"] == "bad_request"
