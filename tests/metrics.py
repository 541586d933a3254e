"""Reading one sample from a service's /metrics, as Prometheus would scrape it: tests assert a value
or its change, with its labels (a metric's name is printed whether or not it was ever touched)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


async def sample(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    """The value of the sample `name` with exactly these labels; 0 when the series does not exist yet
    (a labelled counter appears at its first increment)."""
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return 0.0
