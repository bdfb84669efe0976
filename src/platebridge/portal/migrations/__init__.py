"""Alembic migrations for the portal database (run with ``platebridge-portal migrate``)."""
