"""``GET /metrics`` of the POD agent: Prometheus text, computed at scrape time from what the
supervisors, the live outputs and the recorder already know (``docs/metrics.md``).

Per camera (label ``camera``, the config's camera id): up, ffmpeg restarts, bitrate and fps,
seconds since the newest HLS segment and live fragment, live viewers, recorded bytes; and the
recording filesystem. Protected as the portal's is: ``metrics_token`` (bearer) and/or
``metrics_networks`` (client CIDRs) in the POD config; neither set: 404, the route is off.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import time
from collections.abc import Iterator

from fastapi import APIRouter, Request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.responses import Response

from platebridge.core.errors import PlateBridgeError
from platebridge.pod.config import PodConfig
from platebridge.pod.context import PodContext
from platebridge.pod.ffmpeg import PLAYLIST_NAME, camera_dir
from platebridge.pod.recording.recorder import Recording
from platebridge.pod.recording.retention import disk_usage

PREFIX = "platebridge_pod_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

router = APIRouter(include_in_schema=False)


def check_scraper(request: Request, config: PodConfig) -> None:
    """404 when metrics are off, 403 outside ``metrics_networks``, 401 without the token."""
    if config.metrics_token is None and not config.metrics_networks:
        raise PlateBridgeError(404, "not_found", "Not Found")
    if config.metrics_networks:
        try:
            ip = ipaddress.ip_address(request.client.host if request.client else "")
        except ValueError:
            ip = None
        nets = [ipaddress.ip_network(n, strict=False) for n in config.metrics_networks]
        if ip is None or not any(ip in net for net in nets):
            raise PlateBridgeError(403, "forbidden", "metrics are not served to this address")
    if config.metrics_token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        secret = config.metrics_token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), secret):
            raise PlateBridgeError(
                401,
                "unauthorized",
                "a valid metrics token is required",
                {"WWW-Authenticate": "Bearer"},
            )


class PodCollector(Collector):
    """The POD's state as metric families, read when collected."""

    def __init__(self, ctx: PodContext, recording: Recording | None) -> None:
        self.ctx = ctx
        self.recording = recording

    def collect(self) -> Iterator[Metric]:
        def gauge(name: str, doc: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(PREFIX + name, doc, labels=["camera"])

        up = gauge("camera_up", "1 while the camera's ffmpeg runs and delivers video, else 0.")
        restarts = CounterMetricFamily(
            PREFIX + "ffmpeg_restarts",
            "ffmpeg restarts since the agent started.",
            labels=["camera"],
        )
        bitrate = gauge("camera_bitrate_kbps", "Bitrate of the camera's video (kbit/s, ~30 s).")
        fps = gauge("camera_fps", "Frame rate the camera's stream declares (probe).")
        segment = gauge("camera_seconds_since_segment", "Seconds since the newest HLS playlist.")
        fragment = gauge("camera_seconds_since_fragment", "Seconds since the newest live data.")
        viewers = gauge("camera_live_viewers", "Live (fMP4) viewers of the camera's main stream.")
        recorded = gauge("camera_recording_bytes", "Bytes of the camera's footage on disk.")
        now, mono = time.time(), time.monotonic()
        index = self.recording.index if self.recording is not None else None
        for cam, state in self.ctx.cameras.items():
            labels = [cam]
            up.add_metric(labels, 1.0 if state.status == "active" else 0.0)
            restarts.add_metric(labels, state.restarts)
            if state.media is not None and state.media.fps:
                fps.add_metric(labels, state.media.fps)
            with contextlib.suppress(OSError):
                mtime = (camera_dir(self.ctx.config, cam) / PLAYLIST_NAME).stat().st_mtime
                segment.add_metric(labels, max(0.0, now - mtime))
            live = state.live
            if live is not None:
                kbps = live.bitrate_kbps()
                if kbps is not None:
                    bitrate.add_metric(labels, kbps)
                if live.last_data is not None:
                    fragment.add_metric(labels, max(0.0, mono - live.last_data))
                viewers.add_metric(labels, live.fanout.subscriber_count)
            if index is not None:
                with contextlib.suppress(Exception):  # a broken index: no figure, no 500
                    recorded.add_metric(labels, index.summary(cam).bytes)
        yield from (up, restarts, bitrate, fps, segment, fragment, viewers, recorded)
        yield from self._disk()
        yield GaugeMetricFamily(
            PREFIX + "uptime_seconds",
            "Seconds since the agent started.",
            value=mono - self.ctx.started,
        )

    def _disk(self) -> Iterator[Metric]:
        config = self.ctx.config
        free = GaugeMetricFamily(
            PREFIX + "disk_free_bytes", "Bytes free on a filesystem the POD writes.", labels=["dir"]
        )
        total = GaugeMetricFamily(
            PREFIX + "disk_total_bytes", "Size of a filesystem the POD writes.", labels=["dir"]
        )
        for name, path in (("recording", config.recording_dir), ("hls", config.hls_dir)):
            with contextlib.suppress(OSError):
                usage = disk_usage(path)
                free.add_metric([name], usage.free)
                total.add_metric([name], usage.total)
        yield free
        yield total


def render(ctx: PodContext, recording: Recording | None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PodCollector(ctx, recording))
    return generate_latest(registry)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    ctx: PodContext = request.app.state.pod
    check_scraper(request, ctx.config)
    body = render(ctx, getattr(request.app.state, "recording", None))
    return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})
