"""PlateBridge: POD agent and web portal for watching gate cameras from anywhere."""

__version__ = "0.1.0"
