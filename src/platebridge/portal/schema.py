"""Every table of the portal in one metadata: ``models`` plus the alert tables (which live with
the alerts and import ``models.Base``, so ``models`` cannot import them). Alembic and the schema
tests read this."""

from __future__ import annotations

from platebridge.portal.alerts import models as alert_models
from platebridge.portal.models import Base

metadata = Base.metadata

__all__ = ["alert_models", "metadata"]
