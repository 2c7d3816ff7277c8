"""A fresh, empty ``KONTOR_DATA_DIR`` works whatever the stack.

With a Redis broker nothing made ``data/celery/`` (only the filesystem broker
did), so beat died at start on its schedule file while the ``--beat`` worker
stayed up and no periodic task ever ran; with PostgreSQL nothing made the data
folder at all, so the first snapshot failed on ``data/archive``.
"""

import os
import time
from pathlib import Path
from typing import Any

import pytest

from compliance import archive_store
from config.celery import ensure_data_folders
from tests.live import beat_worker, log_tail


def _folder(location: Path, **options: int) -> dict[str, Any]:
    """A file storage in ``location`` (which need not exist yet)."""
    return {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(location), **options},
    }


def test_a_worker_with_beat_starts_beat_on_a_fresh_data_folder(db: None, tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh-data"  # does not exist yet
    log_path = tmp_path / "worker.log"
    queue = f"kontor-test-beat-{os.getpid()}"
    with beat_worker(data_dir=data_dir, queue=queue, log_path=log_path, name="beat") as process:
        deadline = time.monotonic() + 60
        while not list((data_dir / "celery").glob("beat-schedule*")):
            text = log_path.read_text(errors="replace")
            assert "beat raised exception" not in text and "FileNotFoundError" not in text, log_tail(log_path)
            assert process.poll() is None, log_tail(log_path)
            assert time.monotonic() < deadline, f"beat wrote no schedule within 60 s:\n{log_tail(log_path)}"
            time.sleep(0.2)
        # Beat keeps running: it neither crashed nor stopped after opening its schedule.
        deadline = time.monotonic() + 30
        while "beat: Starting..." not in log_path.read_text(errors="replace"):
            assert time.monotonic() < deadline, log_tail(log_path)
            time.sleep(0.2)
        assert "beat raised exception" not in log_path.read_text(errors="replace")


def test_the_first_archive_copy_goes_into_a_data_folder_not_made_yet(settings: Any, tmp_path: Path) -> None:
    root = tmp_path / "fresh-data" / "archive"
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": _folder(root, file_permissions_mode=0o440, directory_permissions_mode=0o750),
    }

    archive_store.put("records/1/000001.json", b'{"n": 1}', None)

    assert archive_store.get("records/1/000001.json") == b'{"n": 1}'
    assert (root.stat().st_mode & 0o777) == 0o750


def test_ensure_data_folders_makes_every_folder_a_worker_and_beat_write_to(
    settings: Any, tmp_path: Path
) -> None:
    data_dir = tmp_path / "fresh-data"
    settings.DATA_DIR = data_dir
    settings.CELERY_BEAT_SCHEDULE_FILENAME = str(data_dir / "celery" / "beat-schedule")
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"  # a server broker: no broker folders
    settings.STORAGES = {
        **settings.STORAGES,
        "default": _folder(data_dir / "media"),
        "archive": _folder(data_dir / "archive", directory_permissions_mode=0o750),
    }

    ensure_data_folders()

    assert (data_dir / "celery").is_dir()
    assert (data_dir / "media").is_dir()
    assert (data_dir / "archive").is_dir()
    assert ((data_dir / "archive").stat().st_mode & 0o777) == 0o750
    assert not (data_dir / "celery" / "queue").exists()


@pytest.mark.parametrize("folder", ["queue", "processed", "control"])
def test_the_filesystem_broker_folders_are_still_made(settings: Any, tmp_path: Path, folder: str) -> None:
    settings.DATA_DIR = tmp_path / "fresh-data"
    settings.CELERY_BROKER_URL = "filesystem://localhost/"
    settings.CELERY_BROKER_DIR = tmp_path / "fresh-data" / "celery" / "queue"
    settings.CELERY_BROKER_PROCESSED_DIR = tmp_path / "fresh-data" / "celery" / "processed"
    settings.CELERY_BROKER_CONTROL_DIR = tmp_path / "fresh-data" / "celery" / "control"

    ensure_data_folders()

    assert (tmp_path / "fresh-data" / "celery" / folder).is_dir()
