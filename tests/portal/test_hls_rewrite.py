"""Playlist rewriting: every URI goes back through the portal, nothing else changes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platebridge.portal.streaming.hls_rewrite import (
    MAX_PLAYLIST_BYTES,
    PlaylistError,
    rewrite_playlist,
    segment_name_from_uri,
    segment_uri_for,
)

TOKEN = "eyJ1c2VyX2lkIjoidSJ9.c2lnbmF0dXJl"

FFMPEG_LIVE = f"""#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:118
#EXT-X-PROGRAM-DATE-TIME:2026-05-09T07:35:25.120+0000
#EXTINF:2.000000,
stream/gate-camera-1/seg_00118.ts?token={TOKEN}
#EXT-X-PROGRAM-DATE-TIME:2026-05-09T07:35:27.120+0000
#EXTINF:2.000000,
stream/gate-camera-1/seg_00119.ts?token={TOKEN}
#EXT-X-DISCONTINUITY
#EXTINF:1.960000,
/stream/gate-camera-1/seg_00120.ts?token={TOKEN}
"""

FMP4 = f"""#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:3
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="stream/cam-2/init.mp4?token={TOKEN}",BYTERANGE="720@0"
#EXTINF:4.000,
#EXT-X-BYTERANGE:1024@720
stream/cam-2/seg-3.m4s?token={TOKEN}
#EXT-X-PART:DURATION=1.0,URI="stream/cam-2/seg-4.1.m4s?token={TOKEN}",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="stream/cam-2/seg-4.2.m4s?token={TOKEN}"
#EXT-X-RENDITION-REPORT:URI="stream/cam-2/seg-9.m4s?token={TOKEN}",LAST-MSN=4
#EXT-X-ENDLIST
"""

MASTER = """#EXTM3U
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English, main",DEFAULT=YES,URI="{audio}"
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="cc1",INSTREAM-ID="CC1"
#EXT-X-STREAM-INF:BANDWIDTH=1280000,CODECS="avc1.4d401f,mp4a.40.2",RESOLUTION=1280x720,AUDIO="aud"
stream/cam-3/hi.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,CODECS="avc1.4d401f",URI="stream/cam-3/iframe.m3u8"
# a comment mentioning http://example.invalid/ stays
""".replace("{audio}", "stream/cam-3/audio.m3u8")


def tagged(uri: str) -> str:
    return f"P[{uri}]"


def test_ffmpeg_live_playlist_segments_go_through_the_portal() -> None:
    uri_for = segment_uri_for("main-gate-pod", "gate-camera-1", extra_query={"st": "abc"})
    out = rewrite_playlist(FFMPEG_LIVE, uri_for=uri_for)
    assert TOKEN not in out
    assert "stream/gate-camera-1" not in out
    expected = [
        "/api/pod/proxy-stream/main-gate-pod/segment/seg_00118.ts?camera_id=gate-camera-1&st=abc",
        "/api/pod/proxy-stream/main-gate-pod/segment/seg_00119.ts?camera_id=gate-camera-1&st=abc",
        "/api/pod/proxy-stream/main-gate-pod/segment/seg_00120.ts?camera_id=gate-camera-1&st=abc",
    ]
    assert [line for line in out.splitlines() if not line.startswith("#")] == expected
    # every tag line is untouched, in order
    assert [line for line in out.splitlines() if line.startswith("#")] == [
        line for line in FFMPEG_LIVE.splitlines() if line.startswith("#")
    ]
    assert out.endswith("\n")


def test_fmp4_playlist_uri_attributes_are_rewritten() -> None:
    out = rewrite_playlist(FMP4, uri_for=segment_uri_for("p1", "cam-2"))
    assert TOKEN not in out
    lines = out.splitlines()
    assert lines[5] == (
        '#EXT-X-MAP:URI="/api/pod/proxy-stream/p1/segment/init.mp4?camera_id=cam-2",'
        'BYTERANGE="720@0"'
    )
    assert lines[7] == "#EXT-X-BYTERANGE:1024@720"
    assert lines[8] == "/api/pod/proxy-stream/p1/segment/seg-3.m4s?camera_id=cam-2"
    assert lines[9] == (
        "#EXT-X-PART:DURATION=1.0,"
        'URI="/api/pod/proxy-stream/p1/segment/seg-4.1.m4s?camera_id=cam-2",INDEPENDENT=YES'
    )
    assert 'URI="/api/pod/proxy-stream/p1/segment/seg-4.2.m4s?camera_id=cam-2"' in lines[10]
    assert lines[11].endswith(",LAST-MSN=4")
    assert lines[12] == "#EXT-X-ENDLIST"


def test_master_playlist() -> None:
    out = rewrite_playlist(MASTER, uri_for=tagged)
    lines = out.splitlines()
    # quoted commas inside NAME do not confuse the attribute parser
    assert lines[2] == (
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English, main",DEFAULT=YES,'
        'URI="P[stream/cam-3/audio.m3u8]"'
    )
    assert lines[3] == MASTER.splitlines()[3]
    assert lines[4] == MASTER.splitlines()[4]
    assert lines[5] == "P[stream/cam-3/hi.m3u8]"
    assert lines[6].endswith('URI="P[stream/cam-3/iframe.m3u8]"')
    assert lines[7] == "# a comment mentioning http://example.invalid/ stays"


def test_crlf_is_kept() -> None:
    text = FFMPEG_LIVE.replace("\n", "\r\n")
    out = rewrite_playlist(text, uri_for=tagged)
    assert out.count("\r\n") == text.count("\r\n")
    assert "P[stream/gate-camera-1/seg_00118.ts?token=" in out
    assert "\r\r" not in out and "]\r\n" in out


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "<html><body>502 Bad Gateway</body></html>",
        "\ufeff#EXTM3U\nseg.ts\n",  # BOM
        " #EXTM3U\n",
        "#EXTINF:2,\n#EXTM3U\n",
        '{"error": "not_found"}',
    ],
)
def test_not_a_playlist(text: str) -> None:
    with pytest.raises(PlaylistError):
        rewrite_playlist(text, uri_for=tagged)


def test_size_bound() -> None:
    line = "#EXTINF:2.0,\n"
    big = "#EXTM3U\n" + line * (MAX_PLAYLIST_BYTES // len(line) + 1)
    with pytest.raises(PlaylistError, match="larger"):
        rewrite_playlist(big, uri_for=tagged)
    # multi-byte characters count as bytes
    wide = "#EXTM3U\n#" + "\u20ac" * (MAX_PLAYLIST_BYTES // 3 + 1) + "\n"
    assert len(wide) < MAX_PLAYLIST_BYTES
    with pytest.raises(PlaylistError, match="larger"):
        rewrite_playlist(wide, uri_for=tagged)


@pytest.mark.parametrize(
    "text",
    [
        "#EXTM3U\n#EXTINF:2,\n" + "a" * 5000 + "\n",  # huge URI line
        "#EXTM3U\n#EXT-X-MAP:URI=stream/c/init.mp4\n",  # unquoted URI
        '#EXTM3U\n#EXT-X-MAP:URI="stream/c/init.mp4",,BYTERANGE="1@0"\n',
        '#EXTM3U\n#EXT-X-MAP:URI="stream/c/init.mp4"junk\n',
        '#EXTM3U\n#EXT-X-MAP:URI="unterminated\n',
        '#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=""\n',
        '#EXTM3U\n#EXT-X-CONTENT-STEERING:SERVER-URI="http://169.254.169.254/x"\n',
        '#EXTM3U\n#EXT-X-DATERANGE:ID="a",X-ASSET-URI="http://10.0.0.1/ad"\n',
        "#EXTM3U\nseg.ts\rhttp://169.254.169.254/\n",  # stray CR hides a second line
    ],
)
def test_hostile_playlists_are_refused(text: str) -> None:
    with pytest.raises(PlaylistError):
        rewrite_playlist(text, uri_for=tagged)


@pytest.mark.parametrize(
    "uri",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://10.0.0.5:8000/stream/cam/seg.ts",
        "//169.254.169.254/stream/cam/seg.ts",
        "http:stream/cam/seg.ts",
        "file:///etc/passwd",
        "stream/cam/../../etc/passwd",
        "stream/cam/..",
        "stream/cam/.hidden",
        "stream/../cam/seg.ts",
        "stream/cam/seg%2F..%2F.ts",
        "stream/cam/seg.ts/extra",
        "stream/cam/",
        "stream/seg.ts",
        "seg.ts",
        "other/cam/seg.ts",
        "stream//seg.ts",
        "stream/cam/seg ts",
        "stream/cam/seg.ts\n",
        "stream/cam/seg\\x.ts",
        "stream/cam/" + "a" * 129,
        "stream/cam/seg.ts#frag",
        "",
    ],
)
def test_hostile_segment_uris(uri: str) -> None:
    with pytest.raises(PlaylistError) as info:
        segment_name_from_uri(uri)
    assert "169.254" not in str(info.value)
    playlist = f"#EXTM3U\n#EXTINF:2,\n{uri}\n"
    if uri.strip() and "\n" not in uri:
        with pytest.raises(PlaylistError):
            rewrite_playlist(playlist, uri_for=segment_uri_for("pod", "cam"))


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("stream/cam/seg_00001.ts?token=abc.def", "seg_00001.ts"),
        ("/stream/cam/seg_00001.ts?token=abc.def", "seg_00001.ts"),
        ("stream/cam/init.mp4", "init.mp4"),
        ("stream/cam/seg-4.1.m4s?token=x&other=1", "seg-4.1.m4s"),
        ("stream/cam/" + "a" * 128, "a" * 128),
    ],
)
def test_segment_names(uri: str, name: str) -> None:
    assert segment_name_from_uri(uri) == name
    assert segment_name_from_uri(uri, camera_id="cam") == name


def test_segment_of_another_camera_is_refused() -> None:
    with pytest.raises(PlaylistError, match="another camera"):
        segment_name_from_uri("stream/cam-2/seg.ts", camera_id="cam-1")
    with pytest.raises(PlaylistError):
        rewrite_playlist("#EXTM3U\nstream/cam-2/seg.ts\n", uri_for=segment_uri_for("pod", "cam-1"))


def test_uri_for_must_return_one_line() -> None:
    with pytest.raises(PlaylistError):
        rewrite_playlist("#EXTM3U\nseg.ts\n", uri_for=lambda u: "a\nhttp://evil/")
    with pytest.raises(PlaylistError):
        rewrite_playlist('#EXTM3U\n#EXT-X-MAP:URI="i.mp4"\n', uri_for=lambda u: 'a",X="b')


def test_segment_uri_for_quotes_pod_id() -> None:
    uri_for = segment_uri_for("pod/../x", "cam", extra_query={"st": "a&b=c"})
    assert uri_for("stream/cam/s.ts") == (
        "/api/pod/proxy-stream/pod%2F..%2Fx/segment/s.ts?camera_id=cam&st=a%26b%3Dc"
    )


# Lines that are not URIs: tags without URI attributes, comments, blank lines.
non_uri_line = st.one_of(
    st.sampled_from(
        [
            "#EXTINF:2.000000,",
            "#EXT-X-TARGETDURATION:2",
            "#EXT-X-DISCONTINUITY",
            "",
            "   ",
            '#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS="avc1,mp4a"',
        ]
    ),
    st.from_regex(r"\A#EXT-X-PROGRAM-DATE-TIME:[0-9T:.+-]{1,30}\Z"),
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"))).map(lambda s: "# " + s),
)
uri_line = st.from_regex(r"\Astream/cam/[A-Za-z0-9_-]{1,20}\.ts(\?token=[A-Za-z0-9.]{1,30})?\Z")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(non_uri_line, uri_line), max_size=40), st.sampled_from(["\n", "\r\n"]))
def test_roundtrip_preserves_non_uri_lines(body: list[str], eol: str) -> None:
    text = eol.join(["#EXTM3U", *body]) + eol
    seen: list[str] = []

    def uri_for(uri: str) -> str:
        seen.append(uri)
        return f"/p/{segment_name_from_uri(uri)}"

    out = rewrite_playlist(text, uri_for=uri_for)
    in_lines = text.split(eol)
    out_lines = out.split(eol)
    assert len(out_lines) == len(in_lines)
    uris = []
    for before, after in zip(in_lines, out_lines, strict=True):
        if before.strip() and not before.startswith("#"):
            uris.append(before)
            assert after == "/p/" + before.split("/")[2].split("?")[0]
        else:
            assert after == before
    assert seen == uris
    # identity rewrite gives back the very same text
    assert rewrite_playlist(text, uri_for=lambda u: u) == text


def test_the_pod_agents_playlist_is_understood() -> None:
    """The POD agent's own rewriting (``stream/{camera}/{segment}?token=…``) fits ours."""
    from platebridge.pod.playlist import rewrite_playlist as pod_rewrite
    from tests.support.builders import stream_token

    token = stream_token("gate-camera-1", pod_id="main-gate-pod", user_id="u1", secret="s" * 32)
    ffmpeg_text = (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:41\n"
        "#EXTINF:2.000000,\nseg_41.ts\n#EXTINF:2.000000,\nseg_42.ts\n"
    )
    from_pod = pod_rewrite(ffmpeg_text, "gate-camera-1", token)
    out = rewrite_playlist(from_pod, uri_for=segment_uri_for("main-gate-pod", "gate-camera-1"))
    assert token not in out
    assert [line for line in out.splitlines() if not line.startswith("#")] == [
        "/api/pod/proxy-stream/main-gate-pod/segment/seg_41.ts?camera_id=gate-camera-1",
        "/api/pod/proxy-stream/main-gate-pod/segment/seg_42.ts?camera_id=gate-camera-1",
    ]
