"""Two workers snapshot one busy conversation at once, with duplicate task
deliveries, while people keep writing: every journal event ends up in exactly
one record, the chain has no gap and verifies."""

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from compliance import tasks
from compliance.models import RecordContent, RetentionRecord
from compliance.verification import verify
from messenger import services as chat
from messenger.models import Event
from tests.factories import make_user
from tests.guards import ensure_retention_policies, flush_guarded_database


@pytest.fixture
def archive_wiped_afterwards() -> Iterator[None]:
    """A transactional test commits records, which the database then refuses
    to flush: afterwards the guards are lifted, the database emptied and the
    guards put back exactly as they were (``tests.guards``)."""
    ensure_retention_policies()  # an earlier transactional test may have flushed them
    yield
    flush_guarded_database()


def _worker(conversation_id: int, stop: threading.Event, errors: list[BaseException]) -> None:
    try:
        while not stop.is_set():
            # A duplicate delivery: the same task twice in a row.
            tasks.snapshot_conversation(conversation_id)
            tasks.snapshot_conversation(conversation_id)
        tasks.snapshot_conversation(conversation_id)
    except BaseException as error:
        errors.append(error)
    finally:
        connection.close()


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="concurrent workers are PostgreSQL's case (the PostgreSQL + Redis pass runs it); "
    "SQLite admits one writer at a time",
)
@pytest.mark.django_db(transaction=True)
def test_two_workers_and_duplicate_deliveries_archive_every_event_exactly_once(
    archive_wiped_afterwards: None, settings: Any
) -> None:
    alice, bob = make_user(display_name="Alice Adler"), make_user(display_name="Bob Brandt")
    dm = chat.direct_open(actor=alice, other_user_id=bob.pk)
    stop, errors = threading.Event(), list[BaseException]()
    workers = [threading.Thread(target=_worker, args=(dm.pk, stop, errors)) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        for n in range(60):
            author = alice if n % 2 else bob
            sent = chat.message_send(actor=author, conversation_id=dm.pk, body=f"Position {n}")
            if n % 7 == 0:
                chat.message_edit(actor=author, message_id=sent.message.pk, body=f"Position {n}, corrected")
            if n % 5 == 0:
                chat.reaction_set(actor=alice, message_id=sent.message.pk, emoji="👍")
            time.sleep(0.005)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
    tasks.snapshot_conversation(dm.pk)

    assert not errors
    journal = list(Event.objects.filter(conversation=dm).order_by("id").values_list("id", flat=True))
    archived = [
        event["id"]
        for content in RecordContent.objects.filter(record__conversation=dm).order_by("record__seq")
        for event in json.loads(content.canonical_json)["events"]
    ]
    assert len(journal) > 60
    assert archived == journal  # every event once, in order: no gap, no duplicate
    seqs = list(RetentionRecord.objects.filter(conversation=dm).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) > 1  # the workers really interleaved with the writers
    assert verify().ok
