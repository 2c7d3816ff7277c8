"""The Celery app: tasks are autodiscovered in every app's ``tasks.py``.

Embedded default: the broker is kombu's filesystem transport, whose folders must
exist before a worker or a producer touches them: both create them. Workers and
beat also create the rest of the data folder they write to (``ensure_data_folders``). Beat's schedule lives in
``CELERY_BEAT_SCHEDULE`` in the settings (the compliance app fills it).
"""

import os
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import before_task_publish, import_modules, task_success

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("kontor")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def ensure_broker_folders() -> None:
    """Create the filesystem broker's folders (no-op for a server broker)."""
    from django.conf import settings

    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        Path(settings.CELERY_BROKER_DIR).mkdir(parents=True, exist_ok=True)
        Path(settings.CELERY_BROKER_PROCESSED_DIR).mkdir(parents=True, exist_ok=True)
        Path(settings.CELERY_BROKER_CONTROL_DIR).mkdir(parents=True, exist_ok=True)


def ensure_data_folders() -> None:
    """Create every folder of the data directory a worker or beat writes to,
    whatever the stack: beat's schedule file (``data/celery/``) is needed with a
    Redis broker too, and the filesystem storages' roots (``data/media``,
    ``data/archive``) when PostgreSQL leaves the data folder itself unmade."""
    from django.conf import settings

    Path(settings.DATA_DIR).mkdir(parents=True, exist_ok=True)
    Path(settings.CELERY_BEAT_SCHEDULE_FILENAME).parent.mkdir(parents=True, exist_ok=True)
    ensure_broker_folders()
    storages: dict[str, Any] = settings.STORAGES
    for alias in ("default", "archive"):
        storage = storages.get(alias) or {}
        if storage.get("BACKEND") != "django.core.files.storage.FileSystemStorage":
            continue
        options: dict[str, Any] = dict(storage.get("OPTIONS") or {})
        location = Path(options.get("location") or settings.MEDIA_ROOT)
        if not location.exists():
            location.mkdir(parents=True, exist_ok=True)
            if options.get("directory_permissions_mode"):
                location.chmod(options["directory_permissions_mode"])  # mkdir's mode is cut by the umask


@import_modules.connect
def _prepare_worker(**_: object) -> None:
    """Sent when a worker, or ``celery beat`` on its own, loads the task modules:
    before beat opens its schedule file (whose folder must exist, or beat dies at
    start while a ``--beat`` worker stays up)."""
    ensure_data_folders()


@before_task_publish.connect
def _prepare_producer(sender: str = "", headers: dict[str, Any] | None = None, **_: object) -> None:
    """A web process may publish before any worker ran on this data folder
    (kombu's filesystem transport then fails with FileNotFoundError).

    Beat publishing the heartbeat is beat's own sign of life (config.health)."""
    ensure_broker_folders()
    if sender == HEARTBEAT_TASK and headers is not None:
        from config import health

        health.beat_published(headers)


HEARTBEAT_TASK = "kontor.heartbeat"


@app.task(name=HEARTBEAT_TASK, bind=True, ignore_result=True, time_limit=60, soft_time_limit=50)
def heartbeat(self: Any) -> None:
    """Beat sends this every 30 s: a worker running it proves the queue is served,
    and the time since beat stamped it is the task lag (config.health)."""
    from config import health

    health.worker_ran(getattr(self.request, "kontor_published_at", None))


@task_success.connect
def _note_archive_tasks(sender: Any = None, **_: object) -> None:
    """The snapshot sweep's completions, for the health check's sweep age."""
    if getattr(sender, "name", "") == "compliance.snapshot_due":
        from config import health

        health.sweep_done()
