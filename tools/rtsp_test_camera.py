#!/usr/bin/python3
"""A live RTSP test camera: videotestsrc -> x264/x265 (+ audio) -> RTSP, via gst-rtsp-server.

Run it with Debian's python (it needs python3-gi and gir1.2-gst-rtsp-server-1.0):

    /usr/bin/python3 tools/rtsp_test_camera.py --port 8554 --pattern ball
    /usr/bin/python3 tools/rtsp_test_camera.py --port 8554 --width 1920 --height 1080 \\
        --bitrate 4000 --profile high --gop 4 --audio pcma --clock \\
        --user admin --password secret --auth digest --dropout-every 60 --dropout-for 30

Like a real gate camera: H.264 (baseline/main/high) or H.265 (main), a fixed keyframe
interval in seconds with no scene-cut keyframes, optional G.711 A-law/µ-law or AAC audio,
basic or digest RTSP auth, a substream (``--sub-path``), and drop-outs (every M s the camera
disconnects everyone and answers 404 for N s; SIGUSR1 toggles a drop-out by hand).
``--clock`` burns the wall-clock time into each picture at capture (tools/clock_code.py) for
glass-to-glass measurement.

It prints ``READY rtsp://HOST:PORT/PATH`` on stdout once it listens (credentials are never
printed), ``DROPOUT start``/``DROPOUT end`` around drop-outs, and exits cleanly on SIGTERM or
SIGINT. The media is shared: all clients see the same live stream, as with a real IP camera.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import clock_code  # noqa: E402

H264_PROFILES = ("baseline", "main", "high")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--path", default="/stream")
    p.add_argument("--pattern", default="smpte", help="videotestsrc pattern: smpte, ball, snow…")
    p.add_argument(
        "--motion", type=int, default=0, help="scroll the pattern N px a frame (real bitrate)"
    )
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--bitrate", type=int, default=800, help="kbit/s")
    p.add_argument("--codec", choices=["h264", "h265"], default="h264")
    p.add_argument("--profile", choices=H264_PROFILES, default="baseline", help="H.264 profile")
    p.add_argument("--gop", type=float, default=1.0, help="keyframe interval in seconds")
    p.add_argument("--audio", choices=["none", "pcma", "pcmu", "aac"], default="none")
    p.add_argument("--clock", action="store_true", help="burn the wall clock into each picture")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--auth", choices=["basic", "digest"], default="basic")
    p.add_argument("--sub-path", help="also serve a substream here (e.g. /sub)")
    p.add_argument("--sub-width", type=int, default=640)
    p.add_argument("--sub-height", type=int, default=360)
    p.add_argument("--sub-bitrate", type=int, default=500, help="kbit/s")
    p.add_argument("--dropout-every", type=float, default=0.0, help="seconds between drop-outs")
    p.add_argument("--dropout-for", type=float, default=0.0, help="length of a drop-out, s")
    args = p.parse_args(argv)
    if not args.path.startswith("/"):
        args.path = "/" + args.path
    if args.sub_path is not None and not args.sub_path.startswith("/"):
        args.sub_path = "/" + args.sub_path
    if args.sub_path == args.path:
        p.error("--sub-path must differ from --path")
    if (args.user is None) != (args.password is None):
        p.error("--user and --password go together")
    if (args.dropout_every > 0) != (args.dropout_for > 0):
        p.error("--dropout-every and --dropout-for go together")
    if args.dropout_every and args.dropout_for >= args.dropout_every:
        p.error("--dropout-for must be shorter than --dropout-every")
    if args.gop <= 0:
        p.error("--gop must be positive")
    return args


def key_int(args: argparse.Namespace) -> int:
    return max(1, round(args.fps * args.gop))


def source(args: argparse.Namespace) -> str:
    return f"videotestsrc is-live=true pattern={args.pattern} horizontal-speed={args.motion}"


def raw_caps(args: argparse.Namespace) -> str:
    return f"video/x-raw,format=I420,width={args.width},height={args.height},framerate={args.fps}/1"


def video_encoder(args: argparse.Namespace) -> str:
    k, b = key_int(args), args.bitrate
    if args.codec == "h265":
        return (
            f"x265enc tune=zerolatency speed-preset=ultrafast key-int-max={k} bitrate={b} "
            'option-string="scenecut=0:open-gop=0:repeat-headers=1" '
            "! video/x-h265,profile=main ! rtph265pay name=pay0 pt=96 config-interval=1"
        )
    # ultrafast turns CABAC and 8x8 transforms off, so its stream is Constrained Baseline
    # whatever the caps say; superfast keeps them (Main: CABAC; High: CABAC + 8x8).
    preset = "ultrafast" if args.profile == "baseline" else "superfast"
    return (
        f"x264enc tune=zerolatency speed-preset={preset} key-int-max={k} bitrate={b} "
        'option-string="scenecut=0" '
        f"! video/x-h264,profile={args.profile} ! rtph264pay name=pay0 pt=96 config-interval=1"
    )


def audio_branch(args: argparse.Namespace) -> str:
    src = "audiotestsrc is-live=true wave=sine freq=440 volume=0.2"
    if args.audio in ("pcma", "pcmu"):
        enc, pay, pt = (
            ("alawenc", "rtppcmapay", 8) if args.audio == "pcma" else ("mulawenc", "rtppcmupay", 0)
        )
        return (
            f" {src} samplesperbuffer=320 ! audio/x-raw,rate=8000,channels=1 "
            f"! {enc} ! {pay} name=pay1 pt={pt}"
        )
    if args.audio == "aac":
        return (
            f" {src} ! audioconvert ! audioresample ! audio/x-raw,rate=16000,channels=1 "
            "! voaacenc bitrate=32000 ! rtpmp4gpay name=pay1 pt=97"
        )
    return ""


def launch_line(args: argparse.Namespace) -> str:
    if args.clock:  # pictures come from ClockFeed, with the time painted on
        src = "appsrc name=clocksrc is-live=true format=time do-timestamp=true"
        video = f"{src} ! {video_encoder(args)}"
    else:
        video = f"{source(args)} ! {raw_caps(args)} ! {video_encoder(args)}"
    return f"( {video}{audio_branch(args)} )"


class ClockFeed:
    """Capture pictures in a pipeline of their own, paint the time of capture (time.time()) on
    each and push it into the live media's appsrc. (An appsink inside the RTSP media makes
    gst-rtsp-server try a seek on PLAY when there is audio, which fails with 503.)"""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.target: Any = None
        self.pipeline = Gst.parse_launch(
            f"{source(args)} ! {raw_caps(args)} "
            "! appsink name=grab emit-signals=true sync=false max-buffers=2 drop=true"
        )
        self.pipeline.get_by_name("grab").connect("new-sample", self.on_sample)
        self.pipeline.set_state(Gst.State.PLAYING)

    def attach(self, media: GstRtspServer.RTSPMedia) -> None:
        src = media.get_element().get_by_name("clocksrc")
        src.set_property("caps", Gst.Caps.from_string(raw_caps(self.args)))
        # With audio, gst-rtsp-server seeks the whole media on PLAY; a live appsrc that
        # refuses makes that a 503. Accept the seek: the next pushed picture is "now" anyway.
        src.set_property("stream-type", 1)  # GST_APP_STREAM_TYPE_SEEKABLE
        src.connect("seek-data", lambda *_: True)
        self.target = src
        media.connect("unprepared", lambda *_: self.detach(src))

    def detach(self, src: Any) -> None:
        if self.target is src:
            self.target = None

    def on_sample(self, appsink: Any) -> Gst.FlowReturn:
        sample = appsink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.EOS
        ms = int(time.time() * 1000)
        target = self.target
        if target is None:
            return Gst.FlowReturn.OK
        captured = sample.get_buffer()
        # Python's references make the captured buffer read-only: paint a copy of its bytes.
        data = bytearray(captured.extract_dup(0, captured.get_size()))

        def fill(offset: int, chunk: bytes) -> None:
            data[offset : offset + len(chunk)] = chunk

        clock_code.paint_i420(fill, self.args.width, self.args.height, ms)
        frame = Gst.Buffer.new_wrapped(bytes(data))
        frame.duration = captured.duration
        target.emit("push-buffer", frame)
        return Gst.FlowReturn.OK

    def stop(self) -> None:
        self.pipeline.set_state(Gst.State.NULL)


def make_factory(args: argparse.Namespace, feed: ClockFeed | None) -> Any:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(args))
    factory.set_shared(True)
    if feed is not None:
        factory.connect("media-configure", lambda _f, media: feed.attach(media))
    if args.user is not None:
        permissions = GstRtspServer.RTSPPermissions()
        for perm in (
            GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS,
            GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT,
        ):
            permissions.add_permission_for_role("viewer", perm, True)
        factory.set_permissions(permissions)
    return factory


def make_auth(args: argparse.Namespace) -> GstRtspServer.RTSPAuth:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
    if args.auth == "digest":  # gst-rtsp-server >= 1.16
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        auth.add_digest(args.user, args.password, token)
    else:
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
    return auth


def substream(args: argparse.Namespace) -> argparse.Namespace:
    """The substream's options: the main stream's, smaller (same codec, GOP, audio, auth)."""
    sub = argparse.Namespace(**vars(args))
    sub.path, sub.width, sub.height = args.sub_path, args.sub_width, args.sub_height
    sub.bitrate = args.sub_bitrate
    return sub


class Dropouts:
    """Serve the streams (main, and the substream if any); take them away (everyone
    disconnected, DESCRIBE → 404) and bring them back."""

    def __init__(
        self,
        server: GstRtspServer.RTSPServer,
        streams: list[tuple[argparse.Namespace, ClockFeed | None]],
    ) -> None:
        self.server, self.streams = server, streams
        self.mounts = server.get_mount_points()
        self.down = False
        for args, feed in streams:
            self.mounts.add_factory(args.path, make_factory(args, feed))

    def start(self) -> None:
        if self.down:
            return
        self.down = True
        for args, _ in self.streams:
            self.mounts.remove_factory(args.path)
        self.server.client_filter(lambda *_: GstRtspServer.RTSPFilterResult.REMOVE)
        print("DROPOUT start", flush=True)

    def end(self) -> None:
        if not self.down:
            return
        self.down = False
        for args, feed in self.streams:
            self.mounts.add_factory(args.path, make_factory(args, feed))
        print("DROPOUT end", flush=True)

    def toggle(self, *_: object) -> bool:
        self.end() if self.down else self.start()
        return True

    def schedule(self) -> None:
        every, length = self.streams[0][0].dropout_every, self.streams[0][0].dropout_for

        def begin() -> bool:
            self.start()
            GLib.timeout_add(int(length * 1000), lambda: self.end() and False)
            return True

        GLib.timeout_add(int(every * 1000), begin)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    if args.user is not None:
        server.set_auth(make_auth(args))
    streams = [args] + ([substream(args)] if args.sub_path else [])
    feeds = [ClockFeed(a) if a.clock else None for a in streams]
    dropouts = Dropouts(server, list(zip(streams, feeds, strict=True)))
    if args.dropout_every:
        dropouts.schedule()

    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print(f"ERROR cannot listen on {args.host}:{args.port}", file=sys.stderr, flush=True)
        return 1

    def stop(*_: object) -> bool:
        loop.quit()
        return False

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, stop)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, stop)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGUSR1, dropouts.toggle)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"READY rtsp://{host}:{args.port}{args.path}", flush=True)
    loop.run()
    for feed in feeds:
        if feed is not None:
            feed.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
