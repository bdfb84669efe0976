"""HTTP routers. Each module exposes ``router``; :mod:`platebridge.portal.app` includes them."""
