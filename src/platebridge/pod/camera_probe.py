"""Is the camera back? A cheap RTSP probe that cuts a restart back-off short.

After an ffmpeg run fails the supervisor waits its back-off (1, 2, 4 … s) before the next
start. A camera that reboots or drops out (a real gate camera's 30 s drop-out) is usually back
in the middle of such a wait; sleeping it out added seconds to every recovery. So during the
wait :class:`ReturnWatch` probes the camera every :data:`PROBE_EVERY` s and ends the wait as
soon as a camera that was seen **absent** answers again.

The probe (:func:`probe`) goes only to the host and port of the camera's own configured URL: a
TCP connect, then one ``DESCRIBE`` of the URL's path **without credentials** (what every RTSP
client sends first; the password never leaves the POD in a probe), bounded by
:data:`PROBE_TIMEOUT`. "Absent" is: the connect fails or times out, no answer, or RTSP
``404``/``454``/``503`` (the stream is not there yet: a booting camera, the test camera's
drop-out). Any other answer (``200``, ``401`` …) is "there".

Not hammering a broken camera: a camera that is *there* but fails (a wrong password: ffmpeg
gets 401; an unsupported stream) is never seen absent, so its back-off runs in full, with one
probe per wait. The wait ends early only on a transition absent → there; the failure that
started the wait counts as "absent" when its reason says the camera was not there
(:func:`absent_reason`), except right after an early restart that did not bring video (no
restart loop on a camera whose probe and ffmpeg disagree).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from platebridge.core.aio import within
from platebridge.pod.ffmpeg import MediaInfo

log = logging.getLogger("platebridge.pod.camera")

DEFAULT_RTSP_PORT = 554
PROBE_EVERY = 0.25
#: One probe (connect + the answer's status line) gives up after this long: absent.
PROBE_TIMEOUT = 1.0
#: RTSP statuses that mean "the stream is not there (yet)".
ABSENT_STATUS = frozenset({404, 454, 503})
MAX_ANSWER = 1024
_STATUS = re.compile(rb"^RTSP/1\.\d (\d{3})")
#: ffmpeg's / the watchdog's words for a camera that was not there.
_ABSENT_WORDS = re.compile(
    r"Connection refused|Connection timed out|Operation timed out|No route to host|"
    r"Network is unreachable|Host is unreachable|Connection reset|"
    r"\b404 Not Found|\b503 Service Unavailable|\b454 Session Not Found",
    re.IGNORECASE,
)

Verdict = Literal["there", "absent"]


@dataclass(frozen=True)
class Target:
    """Where a probe goes: the camera URL's host and port, and the request line's URL (the
    camera's URL without user and password)."""

    host: str
    port: int
    request_url: str


def target(url: str) -> Target:
    """The probe target of an ``rtsp://`` URL (``ValueError`` if it has no host)."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise ValueError("camera URL has no host")
    port = parts.port or DEFAULT_RTSP_PORT
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    request_url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return Target(host, port, request_url)


def describe_request(t: Target) -> bytes:
    return (
        f"DESCRIBE {t.request_url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n"
        "User-Agent: PlateBridge-POD-probe\r\n\r\n"
    ).encode()


def verdict(answer: bytes) -> Verdict:
    """From the first bytes of the camera's answer: no answer or 404/454/503 → absent."""
    if not answer:
        return "absent"
    match = _STATUS.match(answer)
    if match is not None and int(match.group(1)) in ABSENT_STATUS:
        return "absent"
    return "there"  # any other answer, even one that is not RTSP: let ffmpeg find out


def absent_reason(reason: str) -> bool:
    """True when a run's failure reason says the camera was not there (refused, timed out,
    unreachable, 404/503), as opposed to there but failing (401, a bad stream)."""
    return _ABSENT_WORDS.search(reason) is not None


async def probe(t: Target, seconds: float = PROBE_TIMEOUT) -> Verdict:
    """One bounded probe: TCP connect, ``DESCRIBE`` without credentials, the status line."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(seconds):
            reader, writer = await asyncio.open_connection(t.host, t.port)
            writer.write(describe_request(t))
            await writer.drain()
            answer = await reader.readuntil(b"\r\n")
    except asyncio.IncompleteReadError as exc:
        answer = exc.partial
    except asyncio.LimitOverrunError:
        answer = b"not RTSP"  # a long first line: something answers, let ffmpeg judge
    except (OSError, TimeoutError):
        answer = b""
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await within(writer.wait_closed(), 0.5)
    return verdict(answer[:MAX_ANSWER])


class ReturnWatch:
    """The supervisor's back-off wait with the probe (see the module docstring). It also keeps
    the media probe of the last run that had video: a camera back from being absent is the
    same camera, so ffmpeg starts without another ``ffprobe`` (about 1.2 s) first."""

    def __init__(
        self, url: str, name: str, every: float = PROBE_EVERY, timeout: float = PROBE_TIMEOUT
    ) -> None:
        try:
            self.target: Target | None = target(url)
        except ValueError:
            self.target = None  # no host to probe: plain back-off
        self.name = name
        self.every, self.timeout = every, timeout
        self.probes = 0
        self.known: MediaInfo | None = None
        self._kicked = False  # the last wait ended early

    async def wait(
        self, delay: float, stop: asyncio.Event, reason: str, kept: MediaInfo | None
    ) -> MediaInfo | None:
        """Wait ``delay`` s, until ``stop`` is set, or until the camera is back. ``reason``:
        why the run failed; ``kept``: its media probe if it had video (None: it had none).
        Returns the media for the next start: ``kept``, or the last known one if the camera
        came back from being absent, else None (probe again)."""
        log.info("camera %s: restarting ffmpeg in %.0f s", self.name, delay)
        if kept is not None:
            self.known, self._kicked = kept, False
        back = await self._wait(delay, stop, absent_reason(reason) and not self._kicked)
        self._kicked = back
        if back:
            log.info("camera %s: the camera answers again, restarting ffmpeg now", self.name)
        return kept or (self.known if back else None)

    async def _wait(self, delay: float, stop: asyncio.Event, seen_absent: bool) -> bool:
        deadline = time.monotonic() + delay
        t = self.target
        while not stop.is_set() and t is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.probes += 1
            probed = asyncio.ensure_future(probe(t, min(self.timeout, left)))
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({probed, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not probed.done():
                probed.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await probed
                return False
            if probed.result() == "absent":
                seen_absent = True
            elif seen_absent:
                return True
            else:
                break  # there, and it failed anyway: the back-off runs in full
            await _sleep_or_stop(stop, min(self.every, deadline - time.monotonic()))
        await _sleep_or_stop(stop, deadline - time.monotonic())
        return False


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    if seconds > 0 and not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await within(stop.wait(), seconds)
