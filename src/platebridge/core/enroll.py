"""Wire models of ``POST /api/pod/enroll``: a POD fetches its own stream secret.

Shared by the portal (which validates the request with them) and ``platebridge-pod enroll``
(which reads the answer with them), like ``core.heartbeat``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from platebridge.core.heartbeat import Slug

ENROLL_PATH = "/api/pod/enroll"


class EnrollRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", str_max_length=4096)

    pod_id: Slug = Field(description="The POD's id; it must have sent a heartbeat with the key.")


class EnrollResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    pod_id: str
    stream_token_secret: str = Field(
        description="The secret the POD checks stream tokens with (never logged)."
    )
    heartbeat_interval: int
