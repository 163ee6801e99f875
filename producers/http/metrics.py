"""Prometheus metrics of the HTTP API, in a registry of its own (one per app, so tests and several
apps in one process do not collide).

Requests are counted by endpoint and status in a pure ASGI middleware (so 401, 404, 405 and 413 count
too); the endpoint label is the route's first path segment, a bounded set. Gauges that would cost a
lock per event (events in flight, ingest lag, known assets) are read when scraped.

With several worker processes (``assetpipe serve --workers N``) every worker answers ``/metrics`` for
all of them: ``serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start, the client library
keeps each process's values in files there, and a scrape adds them up (gauges: events in flight summed
over live workers, the others the largest). A worker refreshes its gauges when scraped and at most once
a second while it serves requests.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_TYPE", "MULTIPROCESS_DIR", "HttpMetrics", "MetricsMiddleware"]

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
_REFRESH_S = 1.0

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class HttpMetrics:
    def __init__(self, endpoints: frozenset[str]) -> None:
        self.registry = CollectorRegistry()
        self.endpoints = endpoints
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_DIR))
        self.requests = Counter(
            "assetpipe_http_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.events = Counter(
            "assetpipe_http_events",
            "Events handed to the broker, by type and outcome (accepted, not_stored)",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.publish_latency = Histogram(
            "assetpipe_http_publish_latency_seconds",
            "From handing a request's events to the producer to the broker's acknowledgement of all of them",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "assetpipe_http_events_in_flight",
            "Events published and not yet acknowledged",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.known_assets = Gauge(
            "assetpipe_http_known_assets",
            "Asset keys known to have been materialized",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.ingest_lag = Gauge(
            "assetpipe_ingest_lag_messages",
            "Events on the events topic not yet written to ClickHouse (NaN: unknown to this process)",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.ingest_lag.set(float("nan"))
        self._requests: dict[tuple[str, int], Any] = {}
        self._readings: list[tuple[Gauge, Callable[[], float]]] = []
        self._refreshed = 0.0

    def count(self, endpoint: str, status: int) -> None:
        """One answered request."""
        child = self._requests.get((endpoint, status))
        if child is None:  # labels() costs a lock and a dict lookup: resolve each pair once
            child = self._requests[(endpoint, status)] = self.requests.labels(endpoint, str(status))
        child.inc()
        if self._readings and time.monotonic() - self._refreshed >= _REFRESH_S:
            self.refresh()

    def watch(
        self,
        in_flight: Callable[[], float],
        known_assets: Callable[[], float],
        ingest_lag: Callable[[], int | None] | None,
    ) -> None:
        readings: list[tuple[Gauge, Callable[[], float]]] = [
            (self.in_flight, in_flight),
            (self.known_assets, known_assets),
        ]
        if ingest_lag is not None:
            readings.append((self.ingest_lag, lambda: _or_nan(ingest_lag())))
        if self.multiprocess:  # values live in files the other workers read: set them now and then
            self._readings = readings
            self.refresh()
        else:
            for gauge, read in readings:
                gauge.set_function(read)

    def refresh(self) -> None:
        """Store this process's gauge readings (multiprocess mode)."""
        self._refreshed = time.monotonic()
        for gauge, read in self._readings:
            gauge.set(read())

    def endpoint_label(self, path: str) -> str:
        first = "/" + path.lstrip("/").partition("/")[0]
        return first if first in self.endpoints else "other"

    def exposition(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        self.refresh()
        every_worker = CollectorRegistry()
        multiprocess.MultiProcessCollector(every_worker)  # type: ignore[no-untyped-call]
        return generate_latest(every_worker)


def _or_nan(value: int | None) -> float:
    return float("nan") if value is None else float(value)


class MetricsMiddleware:
    """Counts every HTTP response by endpoint and status."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = self.metrics.endpoint_label(scope["path"])

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.count(endpoint, message["status"])
            await send(message)

        await self.app(scope, receive, send_counted)
