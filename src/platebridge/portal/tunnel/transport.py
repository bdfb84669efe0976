"""An ``httpx`` transport that sends requests through POD tunnels.

The streaming code keeps using :class:`platebridge.portal.streaming.relay.PodRelay` unchanged — same
deadlines, JSON 502/504, chunked streaming and disconnect handling — with a client built on
:class:`TunnelTransport`; only the URL's host differs: ``http://{pod uuid hex}.tunnel.invalid``
(``.invalid`` can never resolve, so such a URL can never reach the network by mistake).

A request for a pod whose tunnel this process holds goes down that tunnel; otherwise the
registry names the node holding it and the request is forwarded to that node's internal
endpoint, signed with the portal's secret key. Failures become the ``httpx`` exceptions the
relay already maps: no tunnel → ``ConnectError`` (502), POD too slow → ``ReadTimeout`` (504),
too many streams → ``PoolTimeout`` (503).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import httpx

from platebridge.core import tunnel as proto
from platebridge.core.aio import within
from platebridge.portal.tunnel.connection import (
    StreamReset,
    TunnelClosed,
    TunnelConnection,
    TunnelStream,
)
from platebridge.portal.tunnel.hub import (
    ERROR_HEADER,
    FORWARD_PREFIX,
    SIGNATURE_HEADER,
    TIME_HEADER,
    TunnelHub,
    forward_signature,
)

HOST_SUFFIX = ".tunnel.invalid"


def tunnel_base_url(pod: uuid.UUID) -> str:
    return f"http://{pod.hex}{HOST_SUFFIX}"


def pod_from_host(host: str) -> uuid.UUID | None:
    if not host.endswith(HOST_SUFFIX):
        return None
    try:
        return uuid.UUID(hex=host[: -len(HOST_SUFFIX)])
    except ValueError:
        return None


def failure(error: str, request: httpx.Request) -> httpx.HTTPError:
    """A tunnel failure code (``unreachable``, ``timeout``, ``busy``, …) as an httpx error."""
    if error in ("unreachable", "no_tunnel", "closed"):
        return httpx.ConnectError("the POD's tunnel is not connected", request=request)
    if error == "timeout":
        return httpx.ReadTimeout("the POD did not answer in time", request=request)
    if error == "busy":
        return httpx.PoolTimeout("too many tunnelled requests", request=request)
    return httpx.ReadError("the tunnelled request failed", request=request)


class _TunnelBody(httpx.AsyncByteStream):
    def __init__(
        self, stream: TunnelStream, read_timeout: float | None, request: httpx.Request
    ) -> None:
        self._stream = stream
        self._timeout = read_timeout
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            try:
                chunk = await within(self._stream.read(), self._timeout)
            except TimeoutError:
                raise failure("timeout", self._request) from None
            except StreamReset as exc:
                raise failure(exc.error, self._request) from None
            except TunnelClosed:
                raise httpx.ReadError("the tunnel closed", request=self._request) from None
            if chunk is None:
                return
            yield chunk

    async def aclose(self) -> None:
        self._stream.close()


def _read_timeout(request: httpx.Request) -> float | None:
    timeout = request.extensions.get("timeout", {})
    value = timeout.get("read") if isinstance(timeout, dict) else None
    return float(value) if value is not None else None


async def open_local(
    conn: TunnelConnection, path: str, query: str, request: httpx.Request
) -> httpx.Response:
    """Send ``GET path?query`` down ``conn``; the response streams its body."""
    try:
        stream = conn.open(path, query)
    except StreamReset as exc:
        raise failure(exc.error, request) from None
    except TunnelClosed:
        raise failure("closed", request) from None
    try:
        head = await stream.head
    except StreamReset as exc:
        stream.close()
        raise failure(exc.error, request) from None
    except TunnelClosed:
        stream.close()
        raise failure("closed", request) from None
    except BaseException:  # cancelled (deadline, viewer left): cancel at the POD too
        stream.close()
        raise
    return httpx.Response(
        head.status,
        headers=head.headers,
        stream=_TunnelBody(stream, _read_timeout(request), request),
        request=request,
    )


class TunnelTransport(httpx.AsyncBaseTransport):
    """Requests to ``tunnel_base_url(pod)`` go through that pod's tunnel, wherever it is held."""

    def __init__(self, hub: TunnelHub, *, local_only: bool = False) -> None:
        self.hub = hub
        self.local_only = local_only

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pod = pod_from_host(request.url.host)
        if pod is None or request.method != "GET":
            raise httpx.UnsupportedProtocol("not a tunnel request", request=request)
        path = request.url.path
        query = request.url.query.decode("ascii", "replace")
        if not proto.allowed_path(path) or not proto.allowed_query(query):
            raise httpx.UnsupportedProtocol("not a POD stream path", request=request)
        conn = self.hub.local.get(pod)
        if conn is not None:
            return await open_local(conn, path, query, request)
        if self.local_only:
            raise failure("no_tunnel", request)
        try:
            node = await self.hub.holder_url(pod)
        except Exception:  # registry unreachable
            raise failure("no_tunnel", request) from None
        if node is None:
            raise failure("no_tunnel", request)
        return await self._forward(node, pod, path, query, request)

    async def _forward(
        self, node: str, pod: uuid.UUID, path: str, query: str, request: httpx.Request
    ) -> httpx.Response:
        at = int(time.time())
        headers = {
            TIME_HEADER: str(at),
            SIGNATURE_HEADER: forward_signature(self.hub.key, pod.hex, path, query, at),
            "Accept-Encoding": "identity",
        }
        url = f"{node}{FORWARD_PREFIX}/{pod.hex}{path}" + (f"?{query}" if query else "")
        extensions = {k: v for k, v in request.extensions.items() if k == "timeout"}
        forwarded = self.hub.client.build_request(
            "GET", url, headers=headers, extensions=extensions
        )
        try:
            response = await self.hub.client.send(forwarded, stream=True)
        except httpx.TimeoutException:
            raise failure("no_tunnel", request) from None  # the holder is gone or hung
        except httpx.HTTPError:
            raise failure("no_tunnel", request) from None
        error = response.headers.get(ERROR_HEADER)
        if error is not None:
            await response.aclose()
            raise failure(error, request)
        return httpx.Response(
            response.status_code,
            headers=proto.response_headers(response.headers.items()),
            stream=response.stream,
            request=request,
        )
