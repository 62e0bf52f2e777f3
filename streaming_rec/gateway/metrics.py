"""The gateway's Prometheus instruments, in their own registry (a gateway process serves
no worker instruments), under the project's namespace."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()
_NS = "streaming_rec"

REQUESTS = Histogram(
    "gateway_request_duration_seconds",
    "HTTP requests through the gateway, by route and status code (s).",
    ["route", "status"],
    namespace=_NS,
    registry=REGISTRY,
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
)
IN_FLIGHT = Gauge(
    "gateway_in_flight_requests",
    "HTTP requests being handled now.",
    namespace=_NS,
    registry=REGISTRY,
)
REFUSED = Counter(
    "gateway_refused_total",
    "Requests refused before any work, by reason (busy, too_large, unauthorized, forbidden).",
    ["reason"],
    namespace=_NS,
    registry=REGISTRY,
)
REPLY_RECORDS = Gauge(
    "gateway_reply_records",
    "Records the gateway's reply listener saw since start, by outcome (fetched, kept, "
    "not_ours, bad; evicted, expired: pending requests dropped).",
    ["outcome"],
    namespace=_NS,
    registry=REGISTRY,
)
PENDING = Gauge(
    "gateway_pending_replies",
    "Requests the gateway waits on for a reply now (bounded by SREC_CLIENT_MAX_PENDING).",
    namespace=_NS,
    registry=REGISTRY,
)
