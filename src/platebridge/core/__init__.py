"""Shared core: what the portal and the POD agent must agree on (wire models, token format)."""
