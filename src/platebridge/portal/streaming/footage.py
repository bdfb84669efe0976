"""Recorded footage through the one streaming path: the POD's playback API relayed.

The POD answers ``/recordings/{camera}`` (spans JSON), ``…/media`` (fMP4 from a time),
``…/export`` (one MP4) and ``…/vod.m3u8`` (docs/recording.md). Every relay here runs through
:meth:`PodStream.fetch` with the request's range, so the POD-side token the portal signs is a
footage token for that range only. Times are epoch seconds, validated here (400
``bad_request``) before any POD is asked; a footage token's viewer is held to its range (403
``out_of_range``).
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from platebridge.portal.body_stream import BodyStream
from platebridge.portal.errors import ApiError
from platebridge.portal.streaming.access_cache import Access
from platebridge.portal.streaming.path import PodStream
from platebridge.portal.streaming.relay_errors import UpstreamError, read_error
from platebridge.portal.streaming.select import Upstream

logger = logging.getLogger(__name__)

#: Longest range listed or covered by one footage token (the contract's 7 days).
MAX_RANGE = 7 * 86_400
#: Longest export (30 min), and the bounds of one media request.
MAX_EXPORT = 1800
#: Longest VOD playlist (the POD's limit: one day).
MAX_VOD = 86_400
#: ``part`` of a media request (the VOD playlist's): the init segment, or the fragments only.
PARTS = ("init", "fragments")
MIN_DURATION, MAX_DURATION, DEFAULT_DURATION = 1.0, 60.0, 10.0
#: Epoch seconds accepted at all (1970 … 2286): keeps every value a plain decimal.
MAX_TIME = 1e10
MAX_SPANS_BYTES = 2 * 1024 * 1024
#: The POD's headers a media or export answer passes on to the viewer.
PASSED_HEADERS = (
    "content-length",
    "content-disposition",
    "x-platebridge-media-start",
    "x-platebridge-media-end",
    "x-platebridge-next",
    "x-platebridge-live-edge",
)
_MP4 = frozenset({"video/mp4"})
_JSON = frozenset({"application/json"})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def parse_time(name: str, value: str | float | None) -> float:
    """An epoch-seconds parameter: a finite decimal within 0 … :data:`MAX_TIME`, else 400."""
    if value is None or value == "":
        raise bad_request(f"{name} is required (epoch seconds)")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise bad_request(f"{name} must be a number of epoch seconds") from None
    if not math.isfinite(number) or not 0 <= number <= MAX_TIME:
        raise bad_request(f"{name} must be epoch seconds between 0 and {MAX_TIME:.0f}")
    return number


def parse_range(
    start: str | float | None, end: str | float | None, max_seconds: float = MAX_RANGE
) -> tuple[float, float]:
    """``from`` / ``to``: ``0 < to - from <= max_seconds``, else 400."""
    low, high = parse_time("from", start), parse_time("to", end)
    if not high > low:
        raise bad_request("to must be after from")
    if high - low > max_seconds:
        raise bad_request(f"the range may span at most {max_seconds:.0f} s")
    return low, high


def parse_duration(value: str | None) -> float:
    if value is None or value == "":
        return DEFAULT_DURATION
    try:
        number = float(value)
    except ValueError:
        raise bad_request("duration must be a number of seconds") from None
    if not math.isfinite(number) or not MIN_DURATION <= number <= MAX_DURATION:
        raise bad_request(f"duration must be {MIN_DURATION:.0f} to {MAX_DURATION:.0f} seconds")
    return number


def parse_part(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if value not in PARTS:
        raise bad_request(f"part must be one of {', '.join(PARTS)}")
    return value


def wire_time(value: float) -> str:
    """A time for a query string: plain decimal, at most millisecond precision."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def within_token(access: Access, start: float, end: float) -> tuple[float, float]:
    """A footage token's viewer is held to its range: 403 ``out_of_range`` when ``start`` is
    outside it; the end is clamped to it. Session viewers pass unchanged."""
    if access.footage is None:
        return start, end
    low, high = access.footage
    if not low <= start < high:
        raise ApiError(403, "out_of_range", "this footage token does not cover that time")
    return start, min(end, float(high))


def _pod_url(
    up: Upstream, stream: PodStream, suffix: str, query: str, params: dict[str, float],
    part: str | None = None,
) -> str:  # fmt: skip
    extra = "".join(f"&{k}={wire_time(v)}" for k, v in params.items())
    if part is not None:
        extra += f"&part={part}"
    return f"{up.base}/recordings/{stream.camera_path}{suffix}{query}{extra}"


async def fetch_spans(stream: PodStream, start: float, end: float) -> tuple[Any, Upstream]:
    """The POD's spans JSON for ``[start, end]`` (read bounded, checked to be an object)."""

    async def fetch(up: Upstream, query: str) -> Any:
        url = _pod_url(up, stream, "", query, {"from": start, "to": end})
        response = await up.relay.open_body(url, _JSON, "footage list")
        body = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_SPANS_BYTES:
                    raise UpstreamError(502, "upstream_too_large", "the POD's list is too large")
        except (httpx.HTTPError, TimeoutError, OSError) as exc:  # mid-body: never the URL
            raise read_error(exc) from None
        finally:
            await response.aclose()
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise UpstreamError(502, "upstream_bad_response", "the POD's list is not JSON")
        return data

    return await stream.fetch(fetch, footage=(start, end))


def _relayed(response: Any, label: str) -> BodyStream:
    headers = [("cache-control", "no-store"), ("x-content-type-options", "nosniff")]
    for name in PASSED_HEADERS:
        value = response.headers.get(name)
        if value is not None and value.isascii() and len(value) < 512:
            headers.append((name, value))
    headers.append(("content-type", "video/mp4"))
    return BodyStream(
        response, response.aiter_bytes(), headers=headers, log=logger, label=f"{label} relay"
    )


#: The longest keyframe interval a camera may have (docs/live.md: 0.5 to 20 s).
LOOKBACK_SECONDS = 20.0


async def stream_media(
    stream: PodStream, start: float, duration: float, part: str | None = None
) -> tuple[BodyStream, Upstream]:
    """The POD's fMP4 from ``start`` for about ``duration`` s (``part``: only the init segment
    or only the fragments, for the VOD playlist), streamed through."""

    async def fetch(up: Upstream, query: str) -> BodyStream:
        url = _pod_url(up, stream, "/media", query, {"start": start, "duration": duration}, part)
        return _relayed(await up.relay.open_body(url, _MP4, "footage"), "footage")

    # The POD starts a body at the keyframe at or before ``start`` only if the token reaches
    # back to it, and names the next chunk (X-PlateBridge-Next, also across a gap) only inside
    # the token: the POD-side token goes back one longest keyframe interval and on to now,
    # never beyond what the viewer may see (a share's clip, a footage token's range).
    low, high = start - LOOKBACK_SECONDS, max(start + duration, time.time())
    if stream.access.footage is not None:
        low = max(low, stream.access.footage[0])
        high = min(high, stream.access.footage[1])
    return await stream.fetch(fetch, footage=(min(low, start), max(high, start + duration)))


async def stream_export(stream: PodStream, start: float, end: float) -> tuple[BodyStream, Upstream]:
    """The POD's single-MP4 export of ``[start, end]`` (with its Content-Disposition)."""

    async def fetch(up: Upstream, query: str) -> BodyStream:
        url = _pod_url(up, stream, "/export", query, {"from": start, "to": end})
        return _relayed(await up.relay.open_body(url, _MP4, "export"), "export")

    return await stream.fetch(fetch, footage=(start, end))


def media_path(pod_id: str, camera_id: str, token: str | None) -> str:
    """The portal's media URL for a camera (the player adds ``&start=…&duration=…``)."""
    query = f"camera_id={quote(camera_id, safe='')}"
    if token is not None:
        query += f"&token={quote(token, safe='')}"
    return f"/api/footage/{quote(pod_id, safe='')}/media?{query}"


async def fetch_vod(stream: PodStream, start: float, end: float) -> tuple[str, Upstream]:
    """The POD's VOD playlist for ``[start, end]``, every URI pointing at the portal's media
    route (the POD's own token never leaves the portal)."""

    async def fetch(up: Upstream, query: str) -> str:
        url = _pod_url(up, stream, "/vod.m3u8", query, {"from": start, "to": end})
        return await up.relay.fetch_playlist(url)

    text, up = await stream.fetch(fetch, footage=(start, end))
    access = stream.access
    base = media_path(access.pod.pod_id, access.camera.camera_id, access.token)
    return rewrite_vod(text, base), up


def rewrite_vod(text: str, media_base: str) -> str:
    """Keep the playlist's tags; every URI becomes ``media_base`` + its ``start``,
    ``duration`` and ``part`` (anything else the POD's URI carries, its token included, is
    dropped)."""
    out: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#EXT-X-MAP:") and 'URI="' in stripped:
            head, _, rest = stripped.partition('URI="')
            uri, _, tail = rest.partition('"')
            out.append(f'{head}URI="{_media_uri(uri, media_base)}"{tail}')
        elif stripped and not stripped.startswith("#"):
            out.append(_media_uri(stripped, media_base))
        else:
            out.append(stripped)
    return "\n".join(out) + "\n"


def _media_uri(uri: str, media_base: str) -> str:
    params = parse_qs(urlsplit(uri).query)
    try:
        start = parse_time("start", params.get("start", [""])[0])
        duration = parse_duration(params.get("duration", [""])[0] or None)
        part = parse_part(params.get("part", [""])[0] or None)
    except ApiError:
        raise UpstreamError(
            502, "upstream_bad_playlist", "the POD's playlist cannot be relayed safely"
        ) from None
    uri = f"{media_base}&start={wire_time(start)}&duration={wire_time(duration)}"
    return uri if part is None else f"{uri}&part={part}"
