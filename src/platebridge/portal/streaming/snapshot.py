"""The snapshot fetch: the POD's latest JPEG of a camera, bounded in time and size."""

from __future__ import annotations

import httpx

from platebridge.core.aio import within
from platebridge.portal.streaming.relay import PodRelay
from platebridge.portal.streaming.relay_errors import UpstreamError

MAX_SNAPSHOT_BYTES = 4 * 1024 * 1024


async def fetch_snapshot(relay: PodRelay, url: str) -> bytes:
    """The POD's JPEG at ``url`` (bounded in time and size), or :class:`UpstreamError`."""
    try:
        return await within(_snapshot(relay.client, url), relay.playlist_timeout)
    except TimeoutError:
        raise UpstreamError(504, "upstream_timeout", "the POD did not answer in time") from None
    except httpx.ConnectTimeout:
        raise UpstreamError(504, "upstream_timeout", "connecting to the POD timed out") from None
    except httpx.TimeoutException:
        raise UpstreamError(504, "upstream_timeout", "the POD did not answer in time") from None
    except httpx.ConnectError:
        raise UpstreamError(502, "upstream_unreachable", "the POD cannot be reached") from None
    except httpx.HTTPError:
        raise UpstreamError(502, "upstream_error", "the connection to the POD failed") from None


async def _snapshot(client: httpx.AsyncClient, url: str) -> bytes:
    async with client.stream("GET", url) as response:
        if response.status_code == 404:
            raise UpstreamError(404, "not_found", "the POD does not know this camera")
        if response.status_code in (429, 503):
            raise UpstreamError(
                503, "stream_not_ready", "no picture yet, try again shortly", retry_after=2
            )
        if response.status_code in (401, 403):
            raise UpstreamError(
                502, "upstream_refused_token", "the POD refused the portal's stream token"
            )
        if response.status_code != 200:
            raise UpstreamError(
                502, "upstream_error", f"the POD answered HTTP {response.status_code}"
            )
        media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != "image/jpeg":
            raise UpstreamError(502, "upstream_bad_snapshot", "the POD did not send a JPEG")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_SNAPSHOT_BYTES:
                raise UpstreamError(502, "upstream_bad_snapshot", "the POD's picture is too large")
        return bytes(body)
