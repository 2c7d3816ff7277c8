"""/healthz and ``manage.py health``: healthy only while every part is reached and
every periodic job ran recently; liveness comes from real heartbeats."""

import asyncio
import json
import os
import threading
import time
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from compliance import sealing
from compliance.models import AuditEvent
from compliance.tasks import snapshot_due
from compliance.verification import verify_and_report
from config import health
from config.asgi import application
from config.celery import ensure_broker_folders
from tests.live import beat_worker, log_tail

CHECKS = {"database", "redis", "broker", "beat", "worker", "snapshot_sweep", "seal", "verification"}


@pytest.fixture(autouse=True)
def health_cache(settings: Any, tmp_path: Path) -> None:
    """Heartbeats of this test only (not the data folder's, nor another test's)."""
    settings.CACHES = {
        **settings.CACHES,
        "health": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"health-{tmp_path}",
            "TIMEOUT": None,
        },
    }
    ensure_broker_folders()


def everything_ran(ago: float = 0) -> None:
    """Beat, a worker and the sweep were heard from ``ago`` seconds ago, and the
    archive was sealed and verified."""
    at = time.time() - ago
    health.record("beat", at=at)
    health.worker_ran(at - 0.5)
    health.record("snapshot_sweep", at=at)
    sealing.seal_heads()
    verify_and_report()


def healthz(client: Client | None = None) -> tuple[int, dict[str, Any]]:
    response = (client or Client()).get("/healthz")
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    return response.status_code, json.loads(response.content)


def run_health() -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("health", stdout=out)
    except CommandError as error:
        assert error.returncode == 1
        return 1, out.getvalue() + str(error)
    return 0, out.getvalue()


@pytest.mark.django_db
def test_healthy_when_every_part_is_reached_and_every_job_ran_recently() -> None:
    everything_ran()

    status, body = healthz()

    assert status == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == CHECKS
    assert body["checks"]["beat"]["status"] == "ok"
    assert body["checks"]["beat"]["age_seconds"] < 60
    assert body["checks"]["seal"]["max_age_seconds"] == 26 * 3600
    assert body["checks"]["redis"]["status"] == ("ok" if django_settings.REDIS_URL else "off")
    code, output = run_health()
    assert code == 0, output
    assert "Kontor is healthy." in output
    assert "task lag 0.5 s" in output


@pytest.mark.django_db
@pytest.mark.parametrize("component", ["beat", "worker", "snapshot_sweep"])
def test_a_silent_beat_worker_or_sweep_makes_it_unhealthy(component: str) -> None:
    everything_ran()
    limit = {"snapshot_sweep": 300}.get(component, 180)
    health.record(component, at=time.time() - limit - 20)

    status, body = healthz()

    assert status == 503
    assert body["status"] == "failing"
    assert body["checks"][component] == {
        "ok": False,
        "status": "overdue",
        "age_seconds": pytest.approx(limit + 20, abs=5),
        "max_age_seconds": limit,
    }
    code, output = run_health()
    assert code == 1
    assert f"FAIL  {component}" in output
    assert f"Kontor is not healthy: {component}." in output


@pytest.mark.django_db
def test_a_worker_that_never_ran_the_heartbeat_is_unhealthy(settings: Any) -> None:
    everything_ran()
    settings.CACHES["health"]["LOCATION"] += "-empty"  # a cache with no heartbeat at all
    settings.CACHES = {**settings.CACHES}
    health.record("beat")

    status, body = healthz()

    assert status == 503
    assert body["checks"]["worker"]["status"] == "never"
    assert body["checks"]["worker"]["ok"] is False


@pytest.mark.django_db
def test_seal_and_verification_overdue_after_26_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    everything_ran()
    later = time.time() + 27 * 3600
    health.record("beat", at=later)
    health.worker_ran(later)
    health.record("snapshot_sweep", at=later)
    monkeypatch.setattr(health.time, "time", lambda: later)

    status, body = healthz()

    assert status == 503
    assert body["checks"]["seal"]["status"] == "overdue"
    assert body["checks"]["verification"]["status"] == "overdue"
    assert body["checks"]["beat"]["ok"] is True


@pytest.mark.django_db
def test_a_fresh_install_is_healthy_until_the_daily_jobs_are_due() -> None:
    health.record("beat", at=time.time() - 3600)  # beat first ran an hour ago
    health.worker_ran(time.time() - 1)
    health.record("beat")
    health.record("snapshot_sweep")

    status, body = healthz()

    assert status == 200, body
    assert body["checks"]["seal"] == {
        "ok": True,
        "status": "never",
        "age_seconds": None,
        "max_age_seconds": 93600,
    }


@pytest.mark.django_db
def test_daily_jobs_that_never_ran_fail_once_beat_has_run_longer_than_their_limit() -> None:
    health.record("beat", at=time.time() - 27 * 3600)
    health.record("beat")
    health.worker_ran(time.time())
    health.record("snapshot_sweep")

    status, body = healthz()

    assert status == 503
    assert body["checks"]["seal"]["status"] == "never"
    assert body["checks"]["verification"]["ok"] is False


@pytest.mark.django_db
def test_a_verification_that_found_problems_fails_the_check() -> None:
    everything_ran()
    AuditEvent.objects.create(kind=AuditEvent.Kind.VERIFIED, detail={"ok": False, "problems": ["x"]})

    status, body = healthz()

    assert status == 503
    assert body["checks"]["verification"]["status"] == "failing"
    assert run_health()[1].count("verify_archive") == 1


@pytest.mark.django_db
def test_healthz_needs_no_sign_in_and_reveals_no_error_text(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    everything_ran()
    settings.SECURE_SSL_REDIRECT = True  # load balancers probe each process over plain HTTP

    def unreachable() -> str:
        raise ConnectionError("Error 111 connecting to secret-db.internal:5432 as kontor_admin")

    monkeypatch.setattr(health, "_database", unreachable)

    status, body = healthz()

    assert status == 503
    assert body["checks"]["database"] == {
        "ok": False,
        "status": "failing",
        "age_seconds": None,
        "max_age_seconds": None,
    }
    assert "secret-db" not in json.dumps(body) and "kontor_admin" not in json.dumps(body)
    assert "secret-db.internal" in run_health()[1]  # the operator's console does say why
    assert Client().post("/healthz").status_code == 405


@pytest.mark.django_db
def test_an_unreachable_broker_fails_the_broker_check(settings: Any) -> None:
    everything_ran()
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    status, body = healthz()

    assert status == 503
    assert body["checks"]["broker"]["status"] == "failing"


@pytest.mark.django_db
def test_the_snapshot_sweep_notes_its_completion() -> None:
    assert health.last("snapshot_sweep") is None

    snapshot_due.apply()

    note = health.last("snapshot_sweep")
    assert note is not None and time.time() - note["at"] < 60


def test_a_worker_with_beat_reports_beat_and_worker_alive_with_the_task_lag(
    db: None, tmp_path: Path, settings: Any
) -> None:
    """The real thing: beat sends the heartbeat (every 30 s), the worker runs it,
    and the health report reads both from the shared health cache."""
    data_dir = tmp_path / "data"
    queue = f"kontor-test-heartbeat-{os.getpid()}"
    settings.CACHES = {
        **settings.CACHES,
        "health": (
            {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": settings.REDIS_URL}
            if settings.REDIS_URL
            else {
                "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                "LOCATION": str(data_dir / "health"),
            }
        )
        | {"TIMEOUT": None, "KEY_PREFIX": f"kontor:health:{queue}"},
    }
    log_path = tmp_path / "worker.log"
    with beat_worker(data_dir=data_dir, queue=queue, log_path=log_path, name="hb") as process:
        deadline = time.monotonic() + 120
        while health.last("worker") is None:
            assert process.poll() is None, log_tail(log_path)
            assert time.monotonic() < deadline, f"no heartbeat within 120 s:\n{log_tail(log_path)}"
            time.sleep(0.5)
        checks = {check.name: check for check in health.report().checks}
        assert checks["beat"].ok and checks["beat"].status == "ok"
        assert checks["worker"].ok and checks["worker"].status == "ok"
        lag = health.task_lag()
        assert lag is not None and 0 <= lag < 30


def _database_round_trip() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


@pytest.mark.django_db(transaction=True)
def test_a_slow_server_probe_does_not_hold_the_database_thread(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A web process has one thread for database work, which every socket's
    queries wait on: /healthz waiting up to its timeout on an unreachable Redis
    must not hold it."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    probing, answered = threading.Event(), threading.Event()

    def slow_redis() -> str:
        probing.set()
        answered.wait(120)
        return "PING answered"

    monkeypatch.setattr(health, "_redis", slow_redis)

    async def scenario() -> tuple[bool, Any]:
        probe = asyncio.ensure_future(
            HttpCommunicator(application, "GET", "/healthz").get_response(timeout=120)
        )
        assert await asyncio.to_thread(probing.wait, 60)
        # Redis keeps the probe waiting; the database thread still serves others.
        await asyncio.wait_for(sync_to_async(_database_round_trip)(), timeout=30)
        still_waiting = not probe.done()
        answered.set()
        return still_waiting, await asyncio.wait_for(probe, timeout=60)

    still_waiting, response = asyncio.run(scenario())

    assert still_waiting
    assert response["status"] == 503  # no heartbeats in this test
    assert json.loads(response["body"])["checks"]["redis"]["status"] == "ok"
    assert (b"X-Content-Type-Options", b"nosniff") in response["headers"]
