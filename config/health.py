"""Is Kontor healthy? One answer for ``/healthz``, ``manage.py health`` and the metrics.

Each check says ok or not, and how old the evidence is:

- ``database``, ``redis`` (when ``REDIS_URL`` is set) and ``broker``: reached now.
- ``beat``: beat publishes the ``kontor.heartbeat`` task every
  ``HEARTBEAT_SECONDS``; publishing records a heartbeat (``config.celery``).
- ``worker``: a worker ran that task (and measured how long it waited: the task lag).
- ``snapshot_sweep``: the last completed ``compliance.snapshot_due`` (every minute).
- ``seal``: the newest ``Seal`` (daily); ``verification``: the newest ``verified``
  audit event (daily), failing too when that verification found problems.

Heartbeats live in the ``health`` cache (Redis with ``REDIS_URL``, a folder in the
data directory otherwise), which every web process, worker and beat share. The seal
and verification ages come from the database itself. A daily job that has never run
is overdue only once beat has been up for longer than its limit (a fresh install).
Limits come from the ``KONTOR_HEALTH_*`` settings (docs/deployment.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import caches

logger = logging.getLogger(__name__)

# How often beat sends the heartbeat task (config.settings' beat schedule uses it).
HEARTBEAT_SECONDS = 30.0
CACHE_ALIAS = "health"
# Reaching Redis or the broker must not make a health probe hang.
CONNECT_TIMEOUT = 3.0


# --- Heartbeats ---------------------------------------------------------------


def _key(name: str) -> str:
    return f"heartbeat:{name}"


def record(name: str, *, at: float | None = None, **extra: float | None) -> None:
    """Note that ``name`` (beat, worker, snapshot_sweep) just happened. Never raises:
    a health note must not fail the task or the beat that writes it."""
    now = time.time() if at is None else at
    try:
        cache = caches[CACHE_ALIAS]
        cache.set(_key(name), {"at": now, **extra}, timeout=None)
        cache.add(_key(name) + ":first", now, timeout=None)
    except Exception:
        logger.warning("Could not record the %s heartbeat.", name, exc_info=True)


def last(name: str) -> dict[str, Any] | None:
    """The latest note of ``name`` ({"at": epoch seconds, …}), or None."""
    value = caches[CACHE_ALIAS].get(_key(name))
    return value if isinstance(value, dict) else None


def first_seen(name: str) -> float | None:
    value = caches[CACHE_ALIAS].get(_key(name) + ":first")
    return float(value) if isinstance(value, int | float) else None


# --- Checks -------------------------------------------------------------------


@dataclass
class Check:
    name: str
    ok: bool
    # ok, failing (not reached / broken), overdue (too old), never (not run yet), off (not configured)
    status: str
    age_seconds: float | None = None
    max_age_seconds: float | None = None
    # For the operator at the console (``manage.py health``); never in /healthz,
    # where an error text could name hosts or users.
    detail: str = ""

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        del data["name"], data["detail"]
        for field in ("age_seconds", "max_age_seconds"):
            if data[field] is not None:
                data[field] = round(data[field], 1)
        return data


@dataclass
class Report:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def public(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "failing",
            "checks": {check.name: check.public() for check in self.checks},
        }


def _failure(error: Exception, where: str = "") -> str:
    """An error as the operator's console shows it (never in /healthz)."""
    return f"{where}{type(error).__name__}: {error}"[:300]


def _reached(name: str, probe: Callable[[], str]) -> Check:
    try:
        detail = probe()
    except Exception as error:
        return Check(name, False, "failing", detail=_failure(error))
    return Check(name, True, "ok", detail=detail)


def _database() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return f"{connection.vendor} reached"


def _redis() -> str:
    import redis

    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=CONNECT_TIMEOUT
    )
    try:
        client.ping()
    finally:
        client.close()
    return "PING answered"


def _broker() -> str:
    from config.celery import app

    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        for folder in (settings.CELERY_BROKER_DIR, settings.CELERY_BROKER_PROCESSED_DIR):
            if not os.access(Path(folder), os.W_OK):
                raise OSError(f"the broker folder {folder} is missing or not writable")
        return "filesystem broker folders writable"
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=CONNECT_TIMEOUT)
    return "broker reached"


def _age(at: float | None, now: float) -> float | None:
    return None if at is None else max(0.0, now - at)


def _fresh(name: str, at: float | None, max_age: float, now: float, *, since: float | None) -> Check:
    """ok when ``at`` is at most ``max_age`` seconds old. Never happened: ok while
    ``since`` (when the system began to run) is younger than the limit."""
    if at is None:
        waited = _age(since, now)
        if waited is not None and waited <= max_age:
            return Check(name, True, "never", None, max_age, "not run yet; due soon")
        return Check(name, False, "never", None, max_age, "never ran")
    age = _age(at, now)
    assert age is not None
    if age > max_age:
        return Check(name, False, "overdue", age, max_age, f"last {age:.0f} s ago, limit {max_age:.0f} s")
    return Check(name, True, "ok", age, max_age, f"last {age:.0f} s ago")


def _heartbeat_check(name: str, max_age: float, now: float, since: float | None) -> Check:
    try:
        note = last(name)
    except Exception as error:
        return Check(name, False, "failing", None, max_age, _failure(error, "health cache: "))
    check = _fresh(name, note["at"] if note else None, max_age, now, since=since)
    if name == "worker" and note and note.get("lag") is not None:
        check.detail += f"; task lag {note['lag']:.1f} s"
    return check


def _started() -> float | None:
    """When beat first ran here (the grace for jobs that never ran), or None."""
    try:
        return first_seen("beat")
    except Exception:
        return None


def _seal_check(now: float, since: float | None) -> Check:
    from compliance.selectors import seal_latest_at

    try:
        created = seal_latest_at()
    except Exception as error:
        return Check("seal", False, "failing", detail=_failure(error))
    max_age = float(settings.KONTOR_HEALTH_SEAL_MAX_AGE)
    return _fresh("seal", created.timestamp() if created else None, max_age, now, since=since)


def _verification_check(now: float, since: float | None) -> Check:
    from compliance.selectors import verification_latest

    try:
        latest = verification_latest()
    except Exception as error:
        return Check("verification", False, "failing", detail=_failure(error))
    max_age = float(settings.KONTOR_HEALTH_VERIFY_MAX_AGE)
    check = _fresh("verification", latest[0].timestamp() if latest else None, max_age, now, since=since)
    if latest and not latest[1].get("ok", False):
        check.ok, check.status = False, "failing"
        check.detail = "the last verification found problems (run manage.py verify_archive)"
    return check


def _network_checks() -> list[Callable[[], Check]]:
    """The probes that wait on another server (up to ``CONNECT_TIMEOUT`` each)."""
    redis: Callable[[], Check] = (
        (lambda: _reached("redis", _redis))
        if settings.REDIS_URL
        else (lambda: Check("redis", True, "off", detail="REDIS_URL not set (embedded default)"))
    )
    return [redis, lambda: _reached("broker", _broker)]


def _recorded_checks() -> list[Check]:
    """The checks read from the health cache and the database (milliseconds)."""
    now = time.time()
    since = _started()
    heartbeat_max = float(settings.KONTOR_HEALTH_HEARTBEAT_MAX_AGE)
    return [
        _heartbeat_check("beat", heartbeat_max, now, None),
        _heartbeat_check("worker", heartbeat_max, now, None),
        _heartbeat_check("snapshot_sweep", float(settings.KONTOR_HEALTH_SWEEP_MAX_AGE), now, since),
        _seal_check(now, since),
        _verification_check(now, since),
    ]


def report() -> Report:
    """Run every check (a few milliseconds plus a round trip to each server)."""
    database = _reached("database", _database)
    network = [probe() for probe in _network_checks()]
    return Report([database, *network, *_recorded_checks()])


async def report_async() -> Report:
    """``report()`` for the web process. The network probes run in threads of
    their own, side by side, so an unreachable Redis or broker never holds the
    process's one database thread (the sockets' queries wait on it); the
    database checks take that thread for their milliseconds."""
    from asgiref.sync import sync_to_async

    probes = [sync_to_async(probe, thread_sensitive=False)() for probe in _network_checks()]
    network = asyncio.gather(*probes)
    database = await sync_to_async(_reached)("database", _database)
    recorded = await sync_to_async(_recorded_checks)()
    return Report([database, *await network, *recorded])


# --- What the heartbeat task and the sweep call -------------------------------


def beat_published(headers: dict[str, Any]) -> None:
    """Beat is publishing the heartbeat task: note it, and stamp the message so
    the worker can tell how long it waited in the queue."""
    now = time.time()
    headers["kontor_published_at"] = now
    record("beat", at=now)


def worker_ran(published_at: float | None) -> None:
    now = time.time()
    lag = max(0.0, now - published_at) if isinstance(published_at, int | float) else None
    record("worker", at=now, lag=lag)


def sweep_done() -> None:
    record("snapshot_sweep")


def task_lag() -> float | None:
    """Seconds the last heartbeat task waited between beat and a worker."""
    note = last("worker")
    lag = note.get("lag") if note else None
    return float(lag) if isinstance(lag, int | float) else None


def archive_lag() -> float:
    """Seconds since the oldest journal event not yet in a retention record
    (0 when everything is archived): how far the archive is behind the chat."""
    from django.utils import timezone

    from compliance.selectors import journal_oldest_unarchived_at

    oldest = journal_oldest_unarchived_at()
    return 0.0 if oldest is None else max(0.0, (timezone.now() - oldest).total_seconds())
