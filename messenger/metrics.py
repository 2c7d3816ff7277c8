"""Prometheus metrics of the websocket side, recorded by this process's consumers.

Each daphne process has its own registry; ``/metrics`` (config.metrics) shows the
figures of the process that answers it, so Prometheus scrapes every process
(docs/deployment.md). The consumer calls the small functions below; they never
raise and cost a few hundred nanoseconds.

- ``socket_opened()`` once a socket is accepted, ``socket_closed()`` once when it
  is released (every way out), so ``kontor_sockets_open`` is the sockets open now.
- ``send_done(seconds, outcome)`` after each ``send`` frame: the seconds from
  receiving the frame to sending its ack or error; ``outcome`` is ``"ok"`` (a new
  message), ``"duplicate"`` (a repeated ``client_id``), ``"refused"`` (an error
  frame for bad input or missing rights) or ``"failed"`` (``unavailable``: the
  database or the layer failed).
- ``delivered(lag_seconds)`` for each live event frame sent to a socket: the
  seconds from the event's broadcast (right after its commit) to the frame going out.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Delivery and send times are milliseconds normally, seconds under load.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SEND_OUTCOMES = ("ok", "duplicate", "refused", "failed")

SOCKETS_OPEN = Gauge("kontor_sockets_open", "Websockets open in this process.")
SOCKETS_OPENED = Counter("kontor_sockets_opened", "Websockets accepted by this process.")
SENDS = Counter("kontor_sends", "Send frames handled by this process, by outcome.", ["outcome"])
SEND_SECONDS = Histogram(
    "kontor_send_seconds", "Seconds from a send frame to its ack (or error).", buckets=_BUCKETS
)
DELIVERY_LAG = Histogram(
    "kontor_delivery_lag_seconds",
    "Seconds from an event's broadcast (after its commit) to its frame leaving a socket of this process.",
    buckets=_BUCKETS,
)
for _outcome in SEND_OUTCOMES:
    SENDS.labels(_outcome)  # every outcome shows from the start, at 0


def socket_opened() -> None:
    SOCKETS_OPEN.inc()
    SOCKETS_OPENED.inc()


def socket_closed() -> None:
    SOCKETS_OPEN.dec()


def send_done(seconds: float, outcome: str = "ok") -> None:
    SENDS.labels(outcome if outcome in SEND_OUTCOMES else "failed").inc()
    SEND_SECONDS.observe(max(0.0, seconds))


def delivered(lag_seconds: float) -> None:
    DELIVERY_LAG.observe(max(0.0, lag_seconds))
