"""The stall watchdog's limits follow the camera's measured keyframe interval (pure checks)."""

from __future__ import annotations

from platebridge.core.fmp4 import Splitter
from platebridge.pod.supervisor import CameraSupervisor
from tests.core.test_fmp4 import NON_SYNC, SYNC, VIDEO, fragment, init_segment, traf, trex
from tests.pod.test_ffmpeg_argv import config

KEY, DELTA = fragment(traf(1, first=SYNC)), fragment(traf(1))


def supervisor(**extra: object) -> CameraSupervisor:
    cfg = config(**extra)
    return CameraSupervisor(cfg, cfg.cameras[0])


def test_limits_before_measuring_allow_the_longest_gop() -> None:
    sup = supervisor(max_keyframe_interval=20, rtsp_timeout=5)
    assert sup.frame_stall == 4.0  # frames come once per frame: a short limit is safe
    assert sup.keyframe_interval() is None
    assert sup.segment_stall() == 32.0  # 1.5 x 20 s + 2
    assert sup.start_timeout == 40.0  # 2 x 5 + 10 + one longest GOP (copy starts at a keyframe)


def test_segment_limit_follows_the_measured_live_interval() -> None:
    now = [0.0]
    sup = supervisor()
    assert sup.live is not None
    sup.live._clock = lambda: now[0]
    splitter = Splitter()
    assert sup.live.feed(splitter, init_segment(VIDEO, trexes=(trex(1, NON_SYNC),)))
    for second in range(31):  # one frame a second, a keyframe every 10 s
        now[0] = float(second)
        assert sup.live.feed(splitter, KEY if second % 10 == 0 else DELTA)
    assert sup.keyframe_interval() == 10.0
    assert sup.segment_stall() == 17.0  # a 10 s GOP is never "stalled" between segments
    assert sup.live.last_data == 30.0 and sup._frames() == 30.0
    assert sup._stalled(33.0, 30.0, 30.0) is None
    assert sup._stalled(35.0, 30.0, 30.0) == "stalled: no video frame for 4 s"
    assert sup._stalled(48.0, 30.0, None) == "stalled: no new segment for 17 s"


def test_without_live_output_the_interval_comes_from_segment_gaps() -> None:
    sup = supervisor(live_output=False)
    assert sup.live is None and sup._frames() is None
    sup._segment_gaps.extend([4.0, 4.1, 3.9])
    assert sup.keyframe_interval() == 4.1
    assert round(sup.segment_stall(), 2) == 8.15
