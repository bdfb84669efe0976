"""The POD agent: RTSP cameras → HLS on :8000 behind stream tokens, heartbeats to the portal.

Imports only ``platebridge.core`` (never the portal).
"""
