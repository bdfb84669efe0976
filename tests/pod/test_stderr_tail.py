from __future__ import annotations

from platebridge.pod.stderr_tail import StderrTail


def test_tail_keeps_last_lines_redacted() -> None:
    tail = StderrTail(secrets=["hunter22"], size=3)
    for i in range(5):
        tail.add(f"line {i}\n".encode())
    tail.add(b"[rtsp @ 0x1] rtsp://admin:hunter22@10.0.0.5:554/live: 401 Unauthorized\n")
    lines = tail.lines()
    assert len(lines) == 3 and lines[0] == "line 3"
    assert "hunter22" not in "\n".join(lines) and "admin" not in lines[-1]
    assert tail.last() is not None and "401 Unauthorized" in tail.last()  # type: ignore[operator]


def test_tail_masks_secret_given_without_url_and_ignores_blank() -> None:
    tail = StderrTail(secrets=["topsecretvalue"])
    assert tail.add(b"   \n") == ""
    assert tail.lines() == []
    assert "topsecretvalue" not in tail.add(b"error: key topsecretvalue rejected")


def test_long_lines_redacted_before_truncation() -> None:
    tail = StderrTail(secrets=["abcdefgh"])
    line = tail.add("x" * 396 + "abcdefgh")
    assert "abcd" not in line
