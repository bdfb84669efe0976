"""Rewrite a POD's HLS playlist so every URI in it points back at the portal.

The browser must never see the POD's address or its stream token, so every URI line and every
``URI="…"`` attribute is replaced by ``uri_for(original)``; a playlist carrying a URI the portal
does not know how to rewrite is refused (:class:`PlaylistError`, 502) rather than passed on.

Line ends. RFC 8216 ends lines with LF or CRLF, but players split more broadly (hls.js parses with
JavaScript regexes where ``.`` stops at CR, U+2028 and U+2029; other parsers split on NEL, VT,
FF, NUL ...). A line end we did not see would smuggle an unrewritten URI line past us, so a
playlist containing a bare CR (not followed by LF) or any control character other than TAB, LF
and CR-of-CRLF (C0, DEL, C1 including U+0085) or U+2028 / U+2029 is refused. LF and CRLF are
kept as they are.

Tags. Only known tags pass (:data:`PLAIN_TAGS`, :data:`ATTRIBUTE_TAGS`, :data:`URI_TAGS`); any
other ``#EXT…`` line (any case: EXT-X-CONTENT-STEERING, EXT-X-DEFINE, vendor tags) is refused,
since we cannot know what a player fetches from it. In the attribute lists of known tags, only
``URI`` of :data:`URI_TAGS` is rewritten; any other attribute whose name carries URI / URL / an
interstitial asset (X-ASSET-URI, X-ASSET-LIST) or whose value looks like a URL (``://``, leading
``/`` or ``\\``) is refused, as is a URL-looking value of a plain tag. Comments pass unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from urllib.parse import quote, urlencode, urlsplit

#: Largest playlist accepted (bytes, UTF-8). A live playlist is a few KiB.
MAX_PLAYLIST_BYTES = 1024 * 1024
#: Longest single URI accepted.
MAX_URI_LENGTH = 4096

#: Tags whose attribute list may carry a ``URI`` attribute that is rewritten.
URI_TAGS = frozenset(
    {
        "#EXT-X-MAP",
        "#EXT-X-KEY",
        "#EXT-X-SESSION-KEY",
        "#EXT-X-MEDIA",
        "#EXT-X-PART",
        "#EXT-X-PRELOAD-HINT",
        "#EXT-X-RENDITION-REPORT",
        "#EXT-X-I-FRAME-STREAM-INF",
        "#EXT-X-SESSION-DATA",
    }
)
#: Tags with an attribute list and no URI: passed unchanged once every attribute is checked.
ATTRIBUTE_TAGS = frozenset(
    {
        "#EXT-X-STREAM-INF",
        "#EXT-X-START",
        "#EXT-X-SERVER-CONTROL",
        "#EXT-X-PART-INF",
        "#EXT-X-SKIP",
        "#EXT-X-DATERANGE",
    }
)
#: Tags with no value or a plain value (number, enum, date): passed unchanged.
PLAIN_TAGS = frozenset(
    {
        "#EXTM3U",
        "#EXT-X-VERSION",
        "#EXT-X-TARGETDURATION",
        "#EXT-X-MEDIA-SEQUENCE",
        "#EXT-X-DISCONTINUITY-SEQUENCE",
        "#EXTINF",
        "#EXT-X-DISCONTINUITY",
        "#EXT-X-PROGRAM-DATE-TIME",
        "#EXT-X-ENDLIST",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        "#EXT-X-PLAYLIST-TYPE",
        "#EXT-X-ALLOW-CACHE",
        "#EXT-X-BYTERANGE",
        "#EXT-X-GAP",
        "#EXT-X-BITRATE",
        "#EXT-X-I-FRAMES-ONLY",
    }
)

SEGMENT_NAME = re.compile(r"^(?!\.)[A-Za-z0-9_.-]{1,128}$")
_CAMERA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# One attribute of an attribute list: NAME=value, value a quoted string or anything up to ",".
_ATTRIBUTE = re.compile(r'(?P<name>[A-Z0-9-]+)=(?P<value>"[^"\r\n]*"|[^",\r\n]*)')
# Anything some player may take as a line end (or that has no business in a playlist).
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]|\r(?!\n)")
# Attribute names that (may) name something a player fetches: SERVER-URI, X-ASSET-LIST ...
_FETCHED_NAME = re.compile(r"URI|URL|X-ASSET")


class PlaylistError(ValueError):
    """The playlist (or a URI in it) is not acceptable; the portal answers 502."""


def _looks_like_url(value: str) -> bool:
    value = value.strip().strip('"').strip()
    return "://" in value or value.startswith(("/", "\\"))


def _plain_value_fetchable(value: str) -> bool:
    """A plain tag's value (an ``#EXTINF`` title too) that holds anything URL-shaped in any
    of its comma / ``=`` separated pieces: refused, since it cannot be rewritten."""
    return "://" in value or any(_looks_like_url(piece) for piece in re.split(r"[,=]", value))


def _rewrite_attributes(tag: str, attributes: str, uri_for: Callable[[str], str] | None) -> str:
    """The checked (and, with ``uri_for``, rewritten) attribute list of ``tag``."""
    out: list[str] = []
    pos = 0
    while pos < len(attributes):
        match = _ATTRIBUTE.match(attributes, pos)
        if match is None:
            raise PlaylistError(f"malformed attribute list in {tag}")
        name, value = match.group("name"), match.group("value")
        if name == "URI" and uri_for is not None:
            if not (len(value) >= 2 and value.startswith('"') and value.endswith('"')):
                raise PlaylistError(f"{tag} URI attribute is not a quoted string")
            replacement = _replacement(value[1:-1], uri_for)
            if '"' in replacement:
                raise PlaylistError("rewritten URI contains a double quote")
            value = f'"{replacement}"'
        elif _FETCHED_NAME.search(name) or _looks_like_url(value):
            raise PlaylistError(f"{tag} carries a URI the portal cannot rewrite")
        out.append(f"{name}={value}")
        pos = match.end()
        if pos < len(attributes):
            if attributes[pos] != ",":
                raise PlaylistError(f"malformed attribute list in {tag}")
            pos += 1
            if pos == len(attributes):
                raise PlaylistError(f"malformed attribute list in {tag}")
    return ",".join(out)


def _replacement(uri: str, uri_for: Callable[[str], str]) -> str:
    if not uri:
        raise PlaylistError("empty URI in playlist")
    if len(uri) > MAX_URI_LENGTH:
        raise PlaylistError("URI in playlist is too long")
    replacement = uri_for(uri)
    if (
        not isinstance(replacement, str)
        or "\r" in replacement
        or "\n" in replacement
        or _FORBIDDEN.search(replacement)
    ):
        raise PlaylistError("rewritten URI is not a single line")
    return replacement


def _rewrite_line(line: str, uri_for: Callable[[str], str]) -> str:
    if not line.strip():
        return line
    if not line.startswith("#"):
        return _replacement(line.strip(), uri_for)
    if line[:4].upper() != "#EXT":
        return line  # a comment
    tag, sep, attributes = line.partition(":")
    if tag in URI_TAGS and sep:
        return f"{tag}:{_rewrite_attributes(tag, attributes.rstrip(), uri_for)}"
    if tag in ATTRIBUTE_TAGS and sep:
        _rewrite_attributes(tag, attributes.rstrip(), None)
        return line
    if tag.rstrip() in PLAIN_TAGS and not _plain_value_fetchable(attributes):
        return line
    raise PlaylistError(f"tag {tag[:40]!a} is not one the portal passes on")


def rewrite_playlist(text: str, *, uri_for: Callable[[str], str]) -> str:
    """Return ``text`` with every URI replaced by ``uri_for(uri)``; all other lines unchanged.

    Works for media and master playlists; LF and CRLF line ends are kept as they are. Raises
    :class:`PlaylistError` when ``text`` is not an HLS playlist, is larger than
    :data:`MAX_PLAYLIST_BYTES`, contains a character some player may take as a line end, carries
    a tag the portal does not know or a URI that cannot be rewritten (see the module docstring).
    Exceptions raised by ``uri_for`` (a :class:`PlaylistError` for a URI it refuses) propagate.
    """
    if not isinstance(text, str):
        raise PlaylistError("playlist is not text")
    if len(text) > MAX_PLAYLIST_BYTES or len(text.encode("utf-8")) > MAX_PLAYLIST_BYTES:
        raise PlaylistError(f"playlist is larger than {MAX_PLAYLIST_BYTES} bytes")
    if _FORBIDDEN.search(text):
        raise PlaylistError("playlist contains a stray carriage return or control character")
    lines = text.split("\n")
    first = lines[0].removesuffix("\r")
    if first.rstrip() != "#EXTM3U":
        raise PlaylistError("not an HLS playlist (no #EXTM3U header)")
    out: list[str] = []
    for raw in lines:
        body, cr = (raw[:-1], "\r") if raw.endswith("\r") else (raw, "")
        out.append(_rewrite_line(body, uri_for) + cr)
    return "\n".join(out)


def segment_name_from_uri(uri: str, *, camera_id: str | None = None) -> str:
    """The segment file name in a POD segment URI (``stream/{camera}/{segment}?token=…``).

    Accepts ``stream/{camera_id}/{segment}`` and ``/stream/{camera_id}/{segment}``, with any
    query string (the POD's token, never kept). The segment name must match
    ``^[A-Za-z0-9_.-]{1,128}$`` and not start with ``.``; when ``camera_id`` is given the URI must
    name that camera. Anything else (absolute URIs, other hosts, ``..``, encoded characters,
    other paths) raises :class:`PlaylistError` whose message never contains the URI.
    """
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI_LENGTH:
        raise PlaylistError("segment URI is empty or too long")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in uri) or "\\" in uri:
        raise PlaylistError("segment URI contains whitespace or control characters")
    try:
        parts = urlsplit(uri)
    except ValueError:
        raise PlaylistError("segment URI cannot be parsed") from None
    if parts.scheme or parts.netloc or uri.startswith("//"):
        raise PlaylistError("absolute segment URIs are refused")
    if parts.fragment:
        raise PlaylistError("segment URI carries a fragment")
    path = parts.path.removeprefix("/")
    pieces = path.split("/")
    if len(pieces) != 3 or pieces[0] != "stream":
        raise PlaylistError("segment URI is not of the form stream/{camera_id}/{segment}")
    _, camera, name = pieces
    if not _CAMERA_ID.fullmatch(camera):
        raise PlaylistError("segment URI names an invalid camera id")
    if camera_id is not None and camera != camera_id:
        raise PlaylistError("segment URI names another camera")
    if not SEGMENT_NAME.fullmatch(name):
        raise PlaylistError("segment name is not a plain file name")
    return name


def segment_uri_for(
    pod_id: str,
    camera_id: str,
    *,
    prefix: str = "/api/pod/proxy-stream",
    extra_query: Mapping[str, str] | None = None,
) -> Callable[[str], str]:
    """A ``uri_for`` for :func:`rewrite_playlist` mapping POD segment URIs to portal URLs.

    ``stream/cam-1/seg_00012.ts?token=…`` becomes
    ``{prefix}/{pod_id}/segment/seg_00012.ts?camera_id=cam-1`` (plus ``extra_query``, e.g. a
    short-lived portal token). URIs that are not segments of ``camera_id`` raise
    :class:`PlaylistError`.
    """
    base = f"{prefix}/{quote(pod_id, safe='')}/segment/"
    query = urlencode({"camera_id": camera_id, **(extra_query or {})})

    def uri_for(uri: str) -> str:
        name = segment_name_from_uri(uri, camera_id=camera_id)
        return f"{base}{name}?{query}"

    return uri_for
