"""The Celery app on the embedded broker: a producer needs no worker to have run first."""

from pathlib import Path

from celery.signals import before_task_publish
from pytest_django import Settings


def test_publishing_creates_the_filesystem_brokers_folders(settings: Settings, tmp_path: Path) -> None:
    import config.celery  # noqa: F401  (connects the signal)

    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_DIR = tmp_path / "celery" / "queue"
    settings.CELERY_BROKER_PROCESSED_DIR = tmp_path / "celery" / "processed"
    settings.CELERY_BROKER_CONTROL_DIR = tmp_path / "celery" / "control"

    # What a web process does first on a fresh data folder: publish a task.
    before_task_publish.send(sender="compliance.export", body=(), exchange="", routing_key="celery")

    assert sorted(p.name for p in (tmp_path / "celery").iterdir()) == ["control", "processed", "queue"]


def test_a_server_broker_needs_no_folders(settings: Settings, tmp_path: Path) -> None:
    import config.celery  # noqa: F401

    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    settings.CELERY_BROKER_DIR = tmp_path / "celery" / "queue"

    before_task_publish.send(sender="compliance.export", body=(), exchange="", routing_key="celery")

    assert not (tmp_path / "celery").exists()


def waiting(queue: str) -> int:
    from config.celery import app

    with app.connection_for_write() as conn:
        return int(conn.default_channel.queue_declare(queue=queue).message_count)


def test_what_a_test_queues_waits_on_the_run_s_own_queue_and_is_dropped_at_the_end() -> None:
    """Not on the default queue, where ``scripts/run.sh``'s worker on the same data
    folder (or Redis) would pick up a preview of a file in a test database long gone."""
    from archive import tasks
    from tests import live

    live.purge_test_queues()
    default_before = waiting("celery")

    tasks.make_preview.delay(0)
    tasks.extract_text.apply_async((0,), queue=live.TASK_QUEUE)

    assert waiting(live.OWN_QUEUE) == 1
    assert waiting(live.TASK_QUEUE) == 1
    assert waiting("celery") <= default_before
    assert live.purge_test_queues() == 2
    assert waiting(live.OWN_QUEUE) == waiting(live.TASK_QUEUE) == 0
