"""The named cast: alice and bob are colleagues, charlie an outsider to their
conversations, plus an HR user and an auditor."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from accounts import roles
from accounts.models import User
from messenger.models import Conversation
from messenger.services import direct_open
from tests import live
from tests.factories import PASSWORD, make_user


@pytest.fixture(scope="session", autouse=True)
def _tasks_stay_in_the_test_run() -> Iterator[None]:
    """Tasks a test queues go to this run's own queue, not the default one that
    ``scripts/run.sh``'s worker consumes on the same data folder (or Redis), where
    they would name files and exports of a test database long gone."""
    from config.celery import app

    default_queue = app.conf.task_default_queue
    app.conf.task_default_queue = live.OWN_QUEUE
    yield
    app.conf.task_default_queue = default_queue
    live.purge_test_queues()


@pytest.fixture(scope="session", autouse=True)
def _close_database_pools(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Close psycopg's pools before the test database is dropped.

    Pooled connections (of websocket handler threads, too) would otherwise keep
    the test database busy, and PostgreSQL refuses to drop it.
    """
    yield
    with django_db_blocker.unblock():
        _end_other_sessions()
        for connection in connections.all(initialized_only=True):
            close_pool = getattr(connection, "close_pool", None)
            if close_pool is not None:
                close_pool()


def _end_other_sessions(timeout: float = 30) -> None:
    """End every other session on the PostgreSQL test database.

    Threads that ran sync code for async tests keep a pooled connection
    checked out, and PostgreSQL refuses to drop a database in use.
    """
    connection = connections["default"]
    if connection.vendor != "postgresql":
        return
    others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_terminate_backend(pid) {others}")
        while time.monotonic() < deadline:
            cursor.execute(f"SELECT count(*) {others}")
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.05)


@pytest.fixture
def dm(alice: User, bob: User) -> Conversation:
    """The direct conversation of alice and bob."""
    return direct_open(actor=alice, other_user_id=bob.pk)


@pytest.fixture
def file_storage(settings: Any, tmp_path: Path) -> Path:
    """Stored files go to a folder of the test's own (request it, or mark the
    module with ``pytest.mark.usefixtures("file_storage")``)."""
    root = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    }
    return root


@pytest.fixture(autouse=True)
def archive_storage(settings: Any, tmp_path: Path) -> Path:
    """Write-once archive copies (``compliance.archive_store``) go to a folder of
    the test's own, read-only as in production, never to the data folder."""
    root = tmp_path / "archive"
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {
                "location": str(root),
                "file_permissions_mode": 0o440,
                "directory_permissions_mode": 0o750,
            },
        },
    }
    return root


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def alice(db: None) -> User:
    return make_user(email="alice@kontor.example", display_name="Alice Adler")


@pytest.fixture
def bob(db: None) -> User:
    return make_user(email="bob@kontor.example", display_name="Bob Brandt")


@pytest.fixture
def charlie(db: None) -> User:
    return make_user(email="charlie@kontor.example", display_name="Charlie Czerny")


@pytest.fixture
def hr_user(db: None) -> User:
    return make_user(email="hanna.hr@kontor.example", display_name="Hanna Hofer", roles=[roles.HR])


@pytest.fixture
def auditor(db: None) -> User:
    return make_user(email="otto.audit@kontor.example", display_name="Otto Ortmann", roles=[roles.AUDITORS])
