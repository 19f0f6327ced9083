"""What the app counts for Prometheus: the metrics' names, labels and the events endpoints report.
The counting itself is prometheus_client's (adapters/http/prometheus.py), imported only by a
server that serves /metrics: a Lambda function does not (each container would count alone).

Several workers add up their counts through prometheus_client's multiprocess mode (see there).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

PREFIX = "sklearn_serve"
# Prometheus' default buckets (seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# A client chooses the method it sends: any other is counted as OTHER, so labels stay few.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"
# The text format every Prometheus reads (2.x and 3.x); our names need none of 1.0.0's escaping.
MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The variable prometheus_client reads (at import) for its multiprocess mode.
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# An increment an endpoint asks for beside its request's own: (family, label values, amount).
Increment = tuple[str, tuple[str, ...], float]
# Where an endpoint leaves its request's other increments (in the ASGI scope's state) for the
# middleware to add with the request's own.
EVENTS = "metric_events"

# (name, type, help, label names), as /openapi.json documents them.
FAMILIES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("http_requests_total", "counter", "HTTP requests answered, by route template, method and status.",
     ("route", "method", "status")),
    ("http_request_duration_seconds", "histogram",
     "Time from receiving a request to sending the end of its response, by route template and method.",
     ("route", "method")),
    ("predictions_total", "counter",
     "Predictions stored by this server (a retry that returns a stored prediction is not counted again).",
     ("model_version", "predicted_class")),
    ("outcomes_total", "counter",
     "True outcomes recorded with POST /update (setting one again counts again), with the class that "
     "had been predicted.", ("true_class", "predicted_class")),
)


class RequestCounter(Protocol):
    """What the middleware counts each answered request with (adapters.http.prometheus.PrometheusMetrics)."""

    def request(
        self, route: str | None, method: str, status: int, seconds: float, events: Iterable[Increment] = ()
    ) -> None: ...


def prediction_events(stored: Iterable[tuple[str, bool]]) -> list[Increment]:
    """Newly stored predictions, as (model version, predicted class)."""
    counts: dict[tuple[str, str], float] = {}
    for version, predicted in stored:
        key = (version, str(int(predicted)))
        counts[key] = counts.get(key, 0) + 1
    return [("predictions_total", key, amount) for key, amount in counts.items()]


def outcome_events(true_class: int, predicted_class: bool) -> list[Increment]:
    return [("outcomes_total", (str(true_class), str(int(predicted_class))), 1)]
