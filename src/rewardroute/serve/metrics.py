"""Prometheus metrics in the text exposition format (version 0.0.4), without a dependency.

Counters, gauges and histograms with labels are all the server needs; the format is small
and stable, so a hundred lines here beat a new package. `ServeMetrics` names every metric the
server exports, in one place.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(v: float) -> str:
    v = float(v)
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()):
        self.name, self.help, self.labels = name, help, tuple(labels)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        if set(labels) != set(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {sorted(labels)}")
        return tuple(str(labels[k]) for k in self.labels)

    def _fmt(self, key: tuple[str, ...], extra: dict[str, str] | None = None) -> str:
        pairs = [f'{k}="{_escape(v)}"' for k, v in zip(self.labels, key)]
        pairs += [f'{k}="{_escape(v)}"' for k, v in (extra or {}).items()]
        return "{" + ",".join(pairs) + "}" if pairs else ""

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()):
        super().__init__(name, help, labels)
        self._values: dict[tuple[str, ...], float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return self.header() + [f"{self.name}{self._fmt(k)} {_number(v)}" for k, v in items]


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help: str, labels: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS):
        super().__init__(name, help, labels)
        self.buckets = tuple(sorted(buckets))
        self._data: dict[tuple[str, ...], list[float]] = {}  # bucket counts..., sum, count

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            row = self._data.setdefault(key, [0.0] * (len(self.buckets) + 2))
            for i, b in enumerate(self.buckets):
                if value <= b:
                    row[i] += 1
            row[-2] += value
            row[-1] += 1

    def count(self, **labels: str) -> int:
        row = self._data.get(self._key(labels))
        return int(row[-1]) if row else 0

    def total(self, **labels: str) -> float:
        row = self._data.get(self._key(labels))
        return row[-2] if row else 0.0

    def render(self) -> list[str]:
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._data.items())
        lines = self.header()
        for key, row in items:
            for b, n in zip(self.buckets, row):
                lines.append(f"{self.name}_bucket{self._fmt(key, {'le': _number(b)})} {_number(n)}")
            lines.append(f"{self.name}_bucket{self._fmt(key, {'le': '+Inf'})} {_number(row[-1])}")
            lines.append(f"{self.name}_sum{self._fmt(key)} {_number(row[-2])}")
            lines.append(f"{self.name}_count{self._fmt(key)} {_number(row[-1])}")
        return lines


class Registry:
    def __init__(self) -> None:
        self.metrics: list[_Metric] = []
        self.before_render: list[Callable[[], None]] = []  # refresh gauges computed on demand

    def add(self, metric):
        self.metrics.append(metric)
        return metric

    def render(self) -> str:
        for hook in self.before_render:
            hook()
        lines: list[str] = []
        for m in self.metrics:
            lines += m.render()
        return "\n".join(lines) + "\n"


class ServeMetrics:
    """Every metric `rewardroute serve` exports."""

    def __init__(self) -> None:
        r = self.registry = Registry()
        self.http_requests = r.add(Counter(
            "rewardroute_http_requests_total", "HTTP requests by endpoint and status code.", ("endpoint", "status")))
        self.http_latency = r.add(Histogram(
            "rewardroute_http_request_duration_seconds", "Time from request to the last byte of the answer.",
            ("endpoint",)))
        self.backend_requests = r.add(Counter(
            "rewardroute_backend_requests_total",
            "Requests forwarded to each backend, by outcome (ok, error, client_error).", ("backend", "outcome")))
        self.backend_errors = r.add(Counter(
            "rewardroute_backend_errors_total", "Failed backend requests by kind of failure.", ("backend", "kind")))
        self.backend_latency = r.add(Histogram(
            "rewardroute_backend_latency_seconds",
            "Backend time to a complete answer (non-streaming) or to the first chunk (streaming).", ("backend",)))
        self.routing_decisions = r.add(Counter(
            "rewardroute_routing_decisions_total",
            "Backends chosen, by how (routed, sticky, explicit, fallback) and policy.", ("backend", "reason", "policy")))
        self.routing_latency = r.add(Histogram(
            "rewardroute_routing_duration_seconds", "Time to a routing decision (router inference or cache).",
            ("cache",)))
        self.breaker_state = r.add(Gauge(
            "rewardroute_breaker_state", "Circuit breaker per backend: 0 closed, 1 half-open, 2 open.", ("backend",)))
        self.router_batch = r.add(Histogram(
            "rewardroute_router_batch_size", "Routing texts per router forward pass.", (), BATCH_BUCKETS))
        self.reward_batch = r.add(Histogram(
            "rewardroute_reward_batch_size", "(prompt, response) pairs per reward-model forward pass.", ("model",),
            BATCH_BUCKETS))
        self.reward_inputs = r.add(Counter(
            "rewardroute_reward_inputs_total", "(prompt, response) pairs scored.", ("model",)))

    def render(self) -> str:
        return self.registry.render()
