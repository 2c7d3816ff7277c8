"""Two workers snapshot one busy conversation at once, with duplicate task
deliveries, while people keep writing: every journal event ends up in exactly
one record, the chain has no gap and verifies."""

import json
import threading
import time
from collections.abc import Iterator
from importlib import import_module
from typing import Any

import pytest
from django.apps import apps
from django.db import connection

from compliance import tasks
from compliance.models import RecordContent, RetentionRecord
from compliance.verification import verify
from messenger import services as chat
from messenger.models import Event
from tests.factories import make_user

GUARDED = (
    "compliance_archivedmessage",
    "compliance_recordperson",
    "compliance_purgeentry",
    "compliance_recordcontent",
    "compliance_retentionextension",
    "compliance_retentionrecord",
    "compliance_seal",
    "compliance_auditevent",
    "compliance_snapshotcursor",
)
MIGRATIONS = ("0002_policies_and_guards", "0003_assignments_extensions_seals")


@pytest.fixture
def archive_wiped_afterwards() -> Iterator[None]:
    """A transactional test commits records, which the database then refuses
    to flush. Afterwards, as a database owner would, lift the guards, empty the
    archive tables and put the guards back exactly as the migrations made them."""
    yield
    guards = [import_module(f"compliance.migrations.{name}") for name in MIGRATIONS]
    with connection.schema_editor() as editor:
        if connection.vendor == "postgresql":
            editor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending checks block ALTER TABLE
        for module in reversed(guards):
            module.drop_guards(apps, editor)
        for table in GUARDED:
            editor.execute(f"DELETE FROM {table}")
        for module in guards:
            module.create_guards(apps, editor)


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
    # An earlier transactional test may have flushed the migrations' policies.
    import_module(f"compliance.migrations.{MIGRATIONS[0]}").create_policies(apps, None)
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
