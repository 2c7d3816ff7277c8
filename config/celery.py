"""The Celery app: tasks are autodiscovered in every app's ``tasks.py``.

Embedded default: the broker is kombu's filesystem transport, whose folders must
exist before a worker or a producer touches them: both create them. Beat's schedule lives in
``CELERY_BEAT_SCHEDULE`` in the settings (the compliance app fills it).
"""

import os
from pathlib import Path

from celery import Celery
from celery.signals import before_task_publish, import_modules

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


@import_modules.connect
def _prepare_worker(**_: object) -> None:
    ensure_broker_folders()


@before_task_publish.connect
def _prepare_producer(**_: object) -> None:
    """A web process may publish before any worker ran on this data folder
    (kombu's filesystem transport then fails with FileNotFoundError)."""
    ensure_broker_folders()
