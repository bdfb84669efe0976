"""A company's alert conditions (``alert_settings.rules``): thresholds in seconds, None = off."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from platebridge.portal.alerts.models import IncidentKind

_DAY = 86_400


def _after(default: int, what: str) -> Any:
    return Field(
        default=default,
        ge=1,
        le=_DAY,
        description=f"Seconds {what} before an alert; null turns the condition off.",
    )


class AlertRules(BaseModel):
    """What a company is alerted about (docs/alerts.md). Unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pod_offline_after: int | None = _after(600, "without a heartbeat")
    camera_error_after: int | None = _after(300, "a camera is in error or stalled")
    codec_unplayable_after: int | None = _after(60, "a camera sends a codec browsers cannot play")
    recording_stopped_after: int | None = _after(300, "a recording camera does not record")
    disk_low_after: int | None = _after(300, "the POD's recording disk is nearly full")
    tunnel_down_after: int | None = _after(300, "a tunnel-mode POD has no tunnel")
    disk_low_percent: int = Field(
        default=10, ge=1, le=90, description="'Nearly full': free space below this percent."
    )
    recover_after: int = Field(
        default=300,
        ge=0,
        le=_DAY,
        description="Seconds a condition must stay clear before the incident ends (a camera "
        "that comes back sooner stays in the same incident, its count goes up).",
    )

    def threshold(self, kind: IncidentKind) -> int | None:
        """Seconds before ``kind`` alerts, or None when it is off."""
        value: int | None = getattr(self, f"{kind}_after")
        return value


DEFAULT_RULES = AlertRules()


def parse_rules(text: str | None) -> AlertRules:
    """The stored rules (None or unreadable: the defaults, so alerts never silently stop)."""
    if not text:
        return DEFAULT_RULES
    try:
        return AlertRules.model_validate_json(text)
    except ValueError:
        return DEFAULT_RULES
