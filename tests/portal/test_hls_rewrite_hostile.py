"""Hostile playlists: hidden line ends and fetchable attributes never reach the browser."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platebridge.portal.streaming.hls_rewrite import PlaylistError, rewrite_playlist

# The broadest line splitting any player may apply.
BROAD_LINES = re.compile("\r\n|\r|\n|\u2028|\u2029|\x85|\x0b|\x0c")
TERMINATORS = ["\r", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x00", "\x1c", "\x1e", "\x7f"]
EVIL = "http://169.254.169.254/latest/meta-data/"


def tagged(uri: str) -> str:
    return f"/p/{len(uri)}"


@pytest.mark.parametrize("term", TERMINATORS)
@pytest.mark.parametrize(
    "template",
    [
        "#EXTM3U\n#EXTINF:2,\nstream/c/s.ts{t}" + EVIL + "\n",
        "#EXTM3U\n#EXTINF:2,{t}" + EVIL + "\nstream/c/s.ts\n",
        "#EXTM3U\n# just a comment{t}" + EVIL + "\n",
        "#EXTM3U{t}" + EVIL + "\n",
        '#EXTM3U\n#EXT-X-MAP:URI="stream/c/i.mp4"{t}' + EVIL + "\n",
    ],
)
def test_hidden_line_ends_are_refused(term: str, template: str) -> None:
    with pytest.raises(PlaylistError):
        rewrite_playlist(template.replace("{t}", term), uri_for=tagged)


@pytest.mark.parametrize(
    "line",
    [
        '#EXT-X-DATERANGE:ID="ad",CLASS="com.apple.hls.interstitial",X-ASSET-URI="ad.m3u8"',
        '#EXT-X-DATERANGE:ID="ad",CLASS="com.apple.hls.interstitial",X-ASSET-LIST="ads.json"',
        '#EXT-X-DATERANGE:ID="ad",X-COM-EXAMPLE="//10.0.0.1/x"',
        '#EXT-X-DATERANGE:ID="ad",X-COM-EXAMPLE="/internal/x"',
        '#EXT-X-CONTENT-STEERING:SERVER-URI="steer.json",PATHWAY-ID="a"',
        '#ext-x-content-steering:SERVER-URI="http://10.0.0.1/"',
        '#EXT-X-DEFINE:NAME="h",VALUE="http://10.0.0.1"',
        '#EXT-X-SESSION-DATA:DATA-ID="a",VALUE="http://10.0.0.1/"',
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="x",URI="a.m3u8",X-URL="http://e/"',
        '#EXT-X-STREAM-INF:BANDWIDTH=1,X-NEXT="http://e/"',
        "#EXT-X-START:TIME-OFFSET=http://e/",
        "#EXT-X-PROGRAM-DATE-TIME:http://e/",
        "#EXT-X-VENDOR-THING:whatever",
    ],
)
def test_fetchable_attributes_are_refused(line: str) -> None:
    with pytest.raises(PlaylistError):
        rewrite_playlist(f"#EXTM3U\n{line}\n#EXTINF:2,\nstream/c/s.ts\n", uri_for=tagged)


def test_harmless_daterange_and_ll_hls_tags_pass() -> None:
    text = (
        "#EXTM3U\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=3.0\n"
        "#EXT-X-PART-INF:PART-TARGET=1.0\n"
        '#EXT-X-DATERANGE:ID="a",START-DATE="2026-05-09T07:35:25Z",DURATION=10\n'
        "#EXTINF:2,\nstream/c/s.ts\n"
    )
    out = rewrite_playlist(text, uri_for=tagged)
    assert out.splitlines()[:4] == text.splitlines()[:4]
    assert out.splitlines()[5] == "/p/13"


CHUNKS = [
    "#EXTINF:2,", "#EXT-X-KEY:", "#EXT-X-MAP:", "#EXT-X-DATERANGE:", "#EXT-X-STREAM-INF:",
    "#EXT-X-CONTENT-STEERING:", "#EXT-X-START:", "# c", 'URI="', 'X-ASSET-URI="', "ID=",
    'SERVER-URI="', "BANDWIDTH=1", '"', ",", "=", " ", "\t", "seg.ts", EVIL, "/abs", "//h/x",
    "\n", "\r\n", "\r", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x00",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(CHUNKS), max_size=30), st.sampled_from(["\n", "\r\n"]))
def test_output_hides_nothing_under_broad_line_splitting(chunks: list[str], eol: str) -> None:
    produced: set[str] = set()

    def uri_for(uri: str) -> str:
        out = f"/p/{len(produced)}"
        produced.add(out)
        return out

    try:
        out = rewrite_playlist("#EXTM3U" + eol + "".join(chunks), uri_for=uri_for)
    except PlaylistError:
        return
    for line in BROAD_LINES.split(out):
        if line.strip() and not line.startswith("#"):
            assert line in produced
        if line[:4].upper() == "#EXT":
            for value in re.findall(r'=("[^"]*"|[^,]*)', line):
                value = value.strip('"')
                if "://" in value or value.startswith(("/", "\\")):
                    assert value in produced


@pytest.mark.parametrize(
    "tag",
    ['#EXTINF:2,URI="/abs', "#EXTINF:2,/abs/seg.ts", "#EXTINF:2,x=//evil.example/a"],
)
def test_url_shaped_piece_of_a_plain_tag_is_refused(tag: str) -> None:
    """Found by the broad-splitting property: a URL hidden in an ``#EXTINF`` title."""
    with pytest.raises(PlaylistError):
        rewrite_playlist(f"#EXTM3U\n{tag}\nseg.ts\n", uri_for=lambda u: "/p/1")
