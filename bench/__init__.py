"""PlateBridge benchmarks (see bench/README.md). Run from the repository root with
``.venv/bin/python -m bench.<name>``."""
