"""Helpers shared by the test suites: real processes, free ports, waiting for HTTP."""
