"""The daily verification logs its result and alerts the compliance contacts on a break."""

from typing import Any

import pytest

from accounts.models import User
from compliance import lifecycle, services, tasks
from compliance.models import AuditEvent
from messenger import services as chat
from messenger.models import Conversation
from tests.compliance.test_snapshots import _without_guards

pytestmark = pytest.mark.django_db


@pytest.fixture
def contacts(settings: Any) -> list[str]:
    settings.KONTOR_COMPLIANCE_CONTACTS = ["compliance@kontor.example", "dpo@kontor.example"]
    return settings.KONTOR_COMPLIANCE_CONTACTS


def _archive(author: User, conversation: Conversation, body: str) -> int:
    chat.message_send(actor=author, conversation_id=conversation.pk, body=body)
    record = services.snapshot_conversation(conversation_id=conversation.pk).record
    assert record is not None
    return record.pk


def test_an_intact_archive_is_logged_and_nobody_is_woken(
    alice: User, dm: Conversation, contacts: list[str], mailoutbox: list[Any]
) -> None:
    _archive(alice, dm, "Angebot 2026-04")

    assert tasks.verify() is True

    event = AuditEvent.objects.get(kind=AuditEvent.Kind.VERIFIED)
    assert event.detail["ok"] is True and event.detail["records"] == 1
    assert mailoutbox == []


def test_a_broken_archive_mails_the_contacts_naming_the_record(
    alice: User, dm: Conversation, contacts: list[str], mailoutbox: list[Any]
) -> None:
    record_id = _archive(alice, dm, "Angebot 2026-04: 1.200 EUR")
    _without_guards(
        "UPDATE compliance_recordcontent SET canonical_json = "
        f"replace(canonical_json, '1.200 EUR', '120 EUR') WHERE record_id = {record_id}"
    )

    assert tasks.verify() is False

    event = AuditEvent.objects.get(kind=AuditEvent.Kind.VERIFIED)
    assert event.detail["ok"] is False
    assert f"conversation {dm.pk}, record 1" in event.detail["problems"][0]
    (mail,) = mailoutbox
    assert mail.to == contacts and "FAILED" in mail.subject
    assert f"conversation {dm.pk}, record 1" in mail.body


def test_a_switched_off_database_guard_fails_the_verification(
    alice: User, dm: Conversation, contacts: list[str], mailoutbox: list[Any]
) -> None:
    _archive(alice, dm, "Angebot 2026-05")
    _without_guards("SELECT 1")  # a superuser switched the triggers off, changed nothing yet

    assert tasks.verify() is False

    assert any("compliance_retentionrecord_no_update" in p for p in mailoutbox[0].body.splitlines())


def test_a_failing_compliance_task_mails_the_contacts(
    contacts: list[str], mailoutbox: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def storage_down(**_: Any) -> Any:
        raise OSError("archive storage unreachable")

    monkeypatch.setattr(lifecycle, "purge_expired", storage_down)
    from config.celery import app

    app.conf.task_always_eager, app.conf.task_eager_propagates = True, False
    try:
        tasks.purge_expired.delay()
    finally:
        app.conf.task_always_eager = False

    (mail,) = mailoutbox
    assert "compliance.purge_expired" in mail.subject and "archive storage unreachable" in mail.body
