"""The OpenAPI document describes the stream-token and heartbeat bodies (no server needed)."""

from __future__ import annotations

from typing import Any, get_type_hints

from platebridge.portal.app import create_app
from platebridge.portal.schemas import StreamToken
from platebridge.portal.settings import PortalSettings

DOCUMENT: dict[str, Any] = create_app(PortalSettings(database_url="sqlite:///unused.db")).openapi()


def _ok_schema(path: str) -> Any:
    return DOCUMENT["paths"][path]["post"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]


def test_stream_token_names_its_body() -> None:
    assert _ok_schema("/api/pod/stream-token") == {"$ref": "#/components/schemas/StreamToken"}
    schema = DOCUMENT["components"]["schemas"]["StreamToken"]
    assert (
        set(schema["required"])
        == set(get_type_hints(StreamToken))
        == {
            "token",
            "expires_at",
            "expires_in",
            "stream_mode",
            "proxy_url",
            "direct_url",
            "live_url",
        }
    )
    assert schema["properties"]["stream_mode"]["enum"] == ["proxy", "direct", "tunnel"]


def test_heartbeat_names_its_body() -> None:
    assert _ok_schema("/api/pod/heartbeat") == {"$ref": "#/components/schemas/HeartbeatResponse"}
