"""Test support for several processes on one database: `email-assistant worker` subprocesses and /metrics scrapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support import CliProcess, clean_env, free_port, wait_until


class WorkerProcess(CliProcess):
    """`email-assistant worker` in a subprocess, optionally with its own /metrics port."""

    name = "worker"

    def __init__(self, env: dict[str, str], *, log_path: Path, metrics: bool = False) -> None:
        super().__init__(env, log_path=log_path)
        self.metrics_port = free_port() if metrics else None

    def start(self, **extra_env: str) -> None:
        """Start; with metrics, wait until its /metrics answers."""
        args = ["worker"]
        if self.metrics_port:
            args += ["--metrics-port", str(self.metrics_port)]
        self.spawn(args, clean_env(self.env, **extra_env))
        if self.metrics_port:
            wait_until(self._ready, timeout=60, what=f"worker metrics (log: {self.log_path})")

    def _ready(self) -> bool:
        self.check_running()
        try:
            return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def scrape(self) -> Samples:
        """This worker's metrics."""
        return scrape(f"http://127.0.0.1:{self.metrics_port}")


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(base_url: str, headers: dict[str, str] | None = None) -> Samples:
    """GET /metrics and parse it: {(sample name, sorted labels): value}."""
    r = httpx.get(f"{base_url}/metrics", headers=headers or {}, timeout=15)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict, name: str, **labels: str) -> float:
    """The sum of a family's samples whose labels include these."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of a log that is a JSON object (a process may print a few plain lines before logging starts)."""
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out
