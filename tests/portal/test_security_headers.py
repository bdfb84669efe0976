"""The Content-Security-Policy for direct-mode PODs: the live player's WebSocket to the POD is
allowed exactly for the PODs the page names, nothing else (no scheme-wide ``ws:``)."""

from __future__ import annotations

from platebridge.portal.security_headers import build_csp, pod_origin


def directives(csp: str) -> dict[str, list[str]]:
    parts = (d.split() for d in csp.split(";"))
    return {p[0]: p[1:] for p in parts if p}


def test_no_pod_no_extra_origin() -> None:
    csp = directives(build_csp())
    assert csp["connect-src"] == ["'self'"]
    assert csp["media-src"] == ["'self'", "blob:"]


def test_direct_pod_gets_its_websocket_origins_in_connect_src_only() -> None:
    origins = [pod_origin("10.0.0.5", 8000, "http"), pod_origin("fd00::5", 8443, "https")]
    csp = directives(build_csp(o for o in origins if o))
    assert csp["connect-src"] == [
        "'self'",
        "http://10.0.0.5:8000",
        "https://[fd00::5]:8443",
        "ws://10.0.0.5:8000",
        "wss://[fd00::5]:8443",
    ]
    # media-src takes HTTP(S) media only; WebSockets are connect-src.
    assert csp["media-src"] == ["'self'", "blob:", "http://10.0.0.5:8000", "https://[fd00::5]:8443"]


def test_each_scheme_gets_its_own_twin_only() -> None:
    csp = directives(build_csp(["http://10.0.0.5:8000"]))
    assert csp["connect-src"] == ["'self'", "http://10.0.0.5:8000", "ws://10.0.0.5:8000"]
