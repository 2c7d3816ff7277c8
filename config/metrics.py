"""Prometheus metrics at ``/metrics``: what this process measured, and a few
figures read when scraped.

Recorded as they happen (this process only; messenger.metrics): sockets open,
sends by outcome and their duration, delivery lag. Read at each scrape:

- ``kontor_layer_inbox_depth``: channel-layer messages waiting for this process's
  sockets: on Redis, those still in Redis for this process plus those already in
  its receive buffers; in memory, the queued messages of every channel.
- ``kontor_task_lag_seconds``: how long the last heartbeat task waited between
  beat and a worker (shared by every process; config.health).
- ``kontor_archive_lag_seconds``: age of the oldest journal event not yet in a
  retention record (0 when the archive is complete).
- ``kontor_heartbeat_age_seconds{component}`` and ``kontor_health_ok{check}``:
  the health report (config.health) as numbers.

The default registry is used, so the process's CPU, memory and file descriptor
figures (``process_*``) come along. Each daphne process has its own registry:
scrape every process (docs/deployment.md).
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from asgiref.sync import sync_to_async
from prometheus_client import Gauge

from messenger import metrics as messenger_metrics  # noqa: F401  (registers the socket metrics)

logger = logging.getLogger(__name__)

INBOX_DEPTH = Gauge("kontor_layer_inbox_depth", "Channel-layer messages waiting for this process's sockets.")
TASK_LAG = Gauge(
    "kontor_task_lag_seconds", "Seconds the last heartbeat task waited between beat and a worker."
)
ARCHIVE_LAG = Gauge(
    "kontor_archive_lag_seconds", "Age of the oldest journal event not yet in a retention record."
)
HEARTBEAT_AGE = Gauge(
    "kontor_heartbeat_age_seconds",
    "Seconds since beat, a worker, the snapshot sweep, the seal and the verification last ran.",
    ["component"],
)
HEALTH_OK = Gauge("kontor_health_ok", "1 when the health check passes, 0 when not.", ["check"])
SCRAPE_ERRORS = Gauge("kontor_metrics_read_errors", "Figures that could not be read at the last scrape.")


async def inbox_depth(layer: Any) -> int:
    """Messages waiting for this process's consumers in ``layer``."""
    if layer is None:
        return 0
    depth = 0
    # channels_redis' core layer: its receive buffers, plus this process's sorted
    # set in Redis (every specific channel of a process shares one key).
    buffers = getattr(layer, "receive_buffer", None)
    if isinstance(buffers, dict):
        depth += sum(queue.qsize() for queue in list(buffers.values()))
    client_prefix = getattr(layer, "client_prefix", None)
    if client_prefix and hasattr(layer, "connection") and hasattr(layer, "consistent_hash"):
        key_channel = f"specific.{client_prefix}!"
        connection = layer.connection(layer.consistent_hash(key_channel))
        depth += int(await connection.zcard(layer.prefix + key_channel))
        return depth
    # The pub/sub layer keeps a layer per event loop, each with a queue per channel.
    for loop_layer in list(getattr(layer, "_layers", {}).values()):
        depth += sum(queue.qsize() for queue in list(getattr(loop_layer, "channels", {}).values()))
    # The in-memory layer: a queue per channel.
    channels = getattr(layer, "channels", None)
    if isinstance(channels, dict):
        depth += sum(queue.qsize() for queue in list(channels.values()) if hasattr(queue, "qsize"))
    return depth


def _read_shared() -> int:
    """The figures every process reads alike (database and health cache); how many failed.
    Runs in a worker thread of its own (not the process's database thread, which
    the sockets need), and gives its connection back before it returns."""
    from django.db import connections

    try:
        return _read_shared_figures()
    finally:
        connections.close_all()


def _read_shared_figures() -> int:
    from config import health

    errors = 0
    try:
        lag = health.task_lag()
        TASK_LAG.set(lag if lag is not None else float("nan"))
    except Exception:
        errors += 1
        logger.warning("metrics: task lag unreadable", exc_info=True)
    try:
        ARCHIVE_LAG.set(health.archive_lag())
    except Exception:
        errors += 1
        logger.warning("metrics: archive lag unreadable", exc_info=True)
    try:
        report = health.report()
    except Exception:
        errors += 1
        logger.warning("metrics: health report failed", exc_info=True)
    else:
        for check in report.checks:
            HEALTH_OK.labels(check.name).set(1 if check.ok else 0)
            if check.name in ("beat", "worker", "snapshot_sweep", "seal", "verification"):
                age = check.age_seconds
                HEARTBEAT_AGE.labels(check.name).set(age if age is not None else float("nan"))
    return errors


async def refresh(layer: Any) -> None:
    """Bring the scrape-time figures up to date."""
    errors = 0
    try:
        INBOX_DEPTH.set(await inbox_depth(layer))
    except Exception:
        errors += 1
        logger.warning("metrics: channel layer inbox unreadable", exc_info=True)
    errors += await sync_to_async(_read_shared, thread_sensitive=False)()
    SCRAPE_ERRORS.set(errors)


def authorized(header: str, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time; never without a token."""
    if not token:
        return False
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
