"""The PlateBridge web portal: tenants, PODs, cameras, users (FastAPI + SQLAlchemy)."""
