"""Reading a Prometheus exposition in tests (the official text parser)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def value(text: str, sample: str, **labels: str) -> float:
    """The sample's value in the exposition ``text`` (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0
