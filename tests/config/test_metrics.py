"""/metrics: Prometheus's text format from prometheus-client, for a bearer of the
token only, with the socket figures the consumer records and the lags read at
scrape time."""

import asyncio
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import User
from compliance import services as compliance_services
from config import health, metrics
from config.celery import ensure_broker_folders
from messenger import metrics as messenger_metrics
from messenger import services

TOKEN = "metrics-token-0123456789"


@pytest.fixture(autouse=True)
def metrics_settings(settings: Any, tmp_path: Path) -> None:
    settings.KONTOR_METRICS_TOKEN = TOKEN
    settings.CACHES = {
        **settings.CACHES,
        "health": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"m-{tmp_path}"},
    }
    ensure_broker_folders()


def scrape(client: Client | None = None, token: str = TOKEN) -> dict[str, float]:
    response = (client or Client()).get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain; version=")
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


@pytest.mark.django_db
def test_metrics_need_the_bearer_token(settings: Any) -> None:
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert Client().get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    settings.KONTOR_METRICS_TOKEN = ""
    assert Client().get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


@pytest.mark.django_db
def test_socket_send_and_delivery_figures_come_from_the_recording_functions() -> None:
    before = scrape()

    messenger_metrics.socket_opened()
    messenger_metrics.socket_opened()
    messenger_metrics.socket_closed()
    messenger_metrics.send_done(0.02, "ok")
    messenger_metrics.send_done(0.5, "failed")
    messenger_metrics.send_done(0.01, "nonsense")
    messenger_metrics.delivered(0.003)
    messenger_metrics.delivered(-1)  # clocks apart: counted as 0

    after = scrape()
    assert after["kontor_sockets_open"] - before["kontor_sockets_open"] == 1
    assert after["kontor_sockets_opened_total"] - before["kontor_sockets_opened_total"] == 2
    assert after["kontor_sends_total{outcome=ok}"] - before["kontor_sends_total{outcome=ok}"] == 1
    assert after["kontor_sends_total{outcome=failed}"] - before["kontor_sends_total{outcome=failed}"] == 2
    assert after["kontor_send_seconds_count"] - before["kontor_send_seconds_count"] == 3
    assert after["kontor_delivery_lag_seconds_count"] - before["kontor_delivery_lag_seconds_count"] == 2
    le_5ms = "kontor_delivery_lag_seconds_bucket{le=0.005}"
    assert after[le_5ms] - before[le_5ms] == 2
    assert "process_resident_memory_bytes" in after or "process_cpu_seconds_total" in after


@pytest.mark.django_db
def test_task_lag_is_what_the_last_heartbeat_waited() -> None:
    health.worker_ran(time.time() - 2.5)

    assert scrape()["kontor_task_lag_seconds"] == pytest.approx(2.5, abs=0.5)


@pytest.mark.django_db
def test_archive_lag_is_the_age_of_the_oldest_unarchived_event(
    alice: User, bob: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation = services.direct_open(actor=alice, other_user_id=bob.pk)
    services.message_send(actor=alice, conversation_id=conversation.pk, body="Angebot Nordhafen")
    compliance_services.archive_conversation(conversation_id=conversation.pk)
    assert health.archive_lag() == 0

    services.message_send(actor=bob, conversation_id=conversation.pk, body="Danke")
    services.message_send(actor=alice, conversation_id=conversation.pk, body="Gern")
    later = timezone.now() + timedelta(minutes=10)
    monkeypatch.setattr(timezone, "now", lambda: later)

    assert health.archive_lag() == pytest.approx(600, abs=30)
    compliance_services.archive_conversation(conversation_id=conversation.pk)
    assert health.archive_lag() == 0
    # The scrape reads it on a thread of its own (which sees only committed rows here).
    assert "kontor_archive_lag_seconds" in scrape()


@pytest.mark.django_db
def test_health_figures_are_exported() -> None:
    health.record("beat", at=time.time() - 42)

    samples = scrape()

    assert samples["kontor_heartbeat_age_seconds{component=beat}"] == pytest.approx(42, abs=5)
    assert samples["kontor_health_ok{check=beat}"] == 1
    assert samples["kontor_health_ok{check=worker}"] == 0  # never heard from a worker here
    assert samples["kontor_metrics_read_errors"] == 0


def test_inbox_depth_of_the_in_memory_layer_counts_queued_messages() -> None:
    async def scenario() -> tuple[int, int, int]:
        layer = InMemoryChannelLayer(capacity=100)
        empty = await metrics.inbox_depth(layer)
        first, second = await layer.new_channel(), await layer.new_channel()
        for n in range(3):
            await layer.send(first, {"type": "x", "n": n})
        await layer.send(second, {"type": "x"})
        full = await metrics.inbox_depth(layer)
        await layer.receive(first)
        return empty, full, await metrics.inbox_depth(layer)

    assert asyncio.run(scenario()) == (0, 4, 3)


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs Redis (the PostgreSQL + Redis pass runs it)")
def test_inbox_depth_of_the_redis_layer_counts_what_waits_in_redis_and_in_the_buffers() -> None:
    from channels_redis.core import RedisChannelLayer

    async def scenario() -> tuple[int, int, int, int]:
        layer = RedisChannelLayer(
            hosts=[django_settings.REDIS_URL], prefix=f"kontor-test-{uuid.uuid4().hex[:8]}:"
        )
        try:
            empty = await metrics.inbox_depth(layer)
            first, second = await layer.new_channel(), await layer.new_channel()
            for n in range(3):
                await layer.send(first, {"type": "x", "n": n})
            await layer.send(second, {"type": "x"})
            full = await metrics.inbox_depth(layer)
            # Receiving one pulls messages into this process's buffers: still waiting.
            await layer.receive(first)
            after_one = await metrics.inbox_depth(layer)
            await layer.receive(first)
            await layer.receive(first)
            await layer.receive(second)
            return empty, full, after_one, await metrics.inbox_depth(layer)
        finally:
            await layer.flush()
            await layer.close_pools()

    assert asyncio.run(scenario()) == (0, 4, 3, 0)


@pytest.mark.django_db
def test_the_scrape_shows_this_process_layer_depth(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = InMemoryChannelLayer(capacity=100)

    async def fill() -> None:
        channel = await layer.new_channel()
        for _ in range(5):
            await layer.send(channel, {"type": "x"})

    asyncio.run(fill())
    monkeypatch.setattr("config.views.get_channel_layer", lambda: layer)

    assert scrape()["kontor_layer_inbox_depth"] == 5
