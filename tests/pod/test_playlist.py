from __future__ import annotations

from platebridge.pod.playlist import newest_segment, rewrite_playlist

PLAYLIST = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:1700000000
#EXTINF:1.000000,
seg_1700000000.ts
#EXTINF:1.000000,
seg_1700000001.ts
../../etc/passwd
"""


def test_rewrite_carries_token_forward_relative_to_stream() -> None:
    out = rewrite_playlist(PLAYLIST, "gate-camera-1", "abc.def")
    lines = out.splitlines()
    assert lines[0] == "#EXTM3U"
    assert "stream/gate-camera-1/seg_1700000000.ts?token=abc.def" in lines
    assert "stream/gate-camera-1/seg_1700000001.ts?token=abc.def" in lines
    assert not any("passwd" in ln for ln in lines)
    assert "#EXT-X-MEDIA-SEQUENCE:1700000000" in lines


def test_newest_segment() -> None:
    assert newest_segment(PLAYLIST) == "seg_1700000001.ts"
    assert newest_segment("#EXTM3U\n") is None
