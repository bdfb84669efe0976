"""The one-command demo (``bash scripts/demo.sh`` → ``python -m platebridge.demo``).

It imports neither the portal nor the POD agent: it runs their command-line programs and the
RTSP test camera as child processes, exactly as a user would, and stops them all on Ctrl-C.
"""
