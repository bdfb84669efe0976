"""Which pod's stream secret a ``pbk_`` key may fetch (``POST /api/pod/enroll``).

A **pod key** is the POD itself: it gets the secret of the one pod it is bound to, and a
``pod_id`` naming another pod is 403 ``pod_mismatch`` (as on the heartbeat).

A **site enrollment key** registers pods by heartbeat, but the schema links a pod to its site
only, not to the key that registered it. So the key gets a secret only when everything the
schema can tell agrees that this key's holder registered the pod: the pod exists (one heartbeat
first, which ``platebridge-pod enroll`` sends; else 404 ``pod_not_registered``), it is in the
key's site (else 403 ``pod_in_other_site``), no pod key was ever issued for it (``pod create``
issues one: an admin-created pod's secret went to the admin with that key) and it was created
after the key (else 403 ``not_registered_by_key``). What remains open: another enrollment key of
the same site, issued before the pod was registered, can fetch it too. Such a key can heartbeat
as that pod anyway (docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.errors import ApiError
from platebridge.portal.models import ApiKey, Pod
from platebridge.portal.pod_keys import active_key


@dataclass(frozen=True, slots=True)
class PodSecret:
    pod_id: str
    stream_token_secret: str
    key_kind: str  # 'pod' or 'enrollment': for the log line


async def pod_secret(session: AsyncSession, key_hash: bytes, pod_id: str) -> PodSecret:
    """The pod's stream secret for the holder of the key with ``key_hash``, or the refusal."""
    key = await active_key(session, key_hash)
    pod = await (_pod_of_pod_key if key.kind == "pod" else _pod_of_enrollment_key)(
        session, key, pod_id
    )
    if pod.decommissioned_at is not None:  # its secret is void: nothing to hand out
        raise ApiError(403, "pod_decommissioned", "this pod was decommissioned by an admin")
    return PodSecret(pod.pod_id, pod.stream_token_secret, key.kind)


async def _pod_of_pod_key(session: AsyncSession, key: ApiKey, pod_id: str) -> Pod:
    pod = await session.get(Pod, key.pod_id) if key.pod_id is not None else None
    if pod is None or pod.pod_id != pod_id:
        raise ApiError(403, "pod_mismatch", "this API key belongs to another pod_id")
    return pod


async def _pod_of_enrollment_key(session: AsyncSession, key: ApiKey, pod_id: str) -> Pod:
    stmt = select(Pod).where(Pod.company_id == key.company_id, Pod.pod_id == pod_id)
    pod = await session.scalar(stmt)
    if pod is None:
        raise ApiError(
            404,
            "pod_not_registered",
            "no pod with this pod_id: send one heartbeat with this key first",
        )
    if pod.site_id != key.site_id:
        raise ApiError(
            403, "pod_in_other_site", "pod_id is registered under another site of this company"
        )
    own_key = select(ApiKey.id).where(ApiKey.pod_id == pod.id, ApiKey.kind == "pod").limit(1)
    if await session.scalar(own_key) is not None or pod.created_at < key.created_at:
        raise ApiError(
            403,
            "not_registered_by_key",
            "this pod was not registered by a site enrollment key: enroll with the pod's own "
            "key and stream secret",
        )
    return pod
