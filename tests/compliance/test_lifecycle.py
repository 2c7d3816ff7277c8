"""After retention: live messages and files go when the policy says so, never
under a hold; erasure requests restrict first and erase when retention ends (C13)."""

import json
from datetime import date, timedelta
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from archive import services as files
from archive.models import StoredFile
from compliance import lifecycle, policies, records, services
from compliance.models import AuditEvent, RecordContent, RetentionPolicy
from compliance.verification import verify
from messenger import selectors
from messenger import services as chat
from messenger.models import Conversation, Event, Message

pytestmark = pytest.mark.django_db

LONG_AGO = date(2015, 12, 31)


@pytest.fixture
def expired(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "retain_until", lambda policy, made_on: LONG_AGO)


def live_purge_switch(actor: User, *, on: bool) -> None:
    """Switch the default policy's deletion of live messages, as an auditor does."""
    policy = RetentionPolicy.objects.get(is_default=True)
    policies.policy_update(
        actor=actor,
        policy_id=policy.pk,
        reason="Live messages follow the records",
        years=policy.years,
        days=policy.days,
        from_year_end=policy.from_year_end,
        purge_live=on,
    )


@pytest.fixture
def purge_live(auditor: User) -> None:
    live_purge_switch(auditor, on=True)


def send(author: User, conversation: Conversation, body: str, **kwargs: Any) -> Message:
    return chat.message_send(actor=author, conversation_id=conversation.pk, body=body, **kwargs).message


def archive_all(conversation: Conversation) -> None:
    while services.snapshot_conversation(conversation_id=conversation.pk).record is not None:
        pass


def attach(author: User, name: str = "invoice.txt") -> StoredFile:
    upload = SimpleUploadedFile(name, b"Invoice 2015-117, total 1,200 EUR", content_type="text/plain")
    return files.file_store(upload=upload, name=name, uploader=author)


def test_expired_live_messages_and_files_go_when_the_policy_says_so(
    alice: User,
    bob: User,
    dm: Conversation,
    expired: None,
    purge_live: None,
    file_storage: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    stored = attach(alice)
    old = send(alice, dm, "Invoice from 2015", file_ids=[stored.pk])
    archive_all(dm)

    with django_capture_on_commit_callbacks(execute=True):
        result = lifecycle.purge_expired()

    assert (result.purged, result.messages, result.files) == (1, 1, 1)
    assert not Message.objects.filter(pk=old.pk).exists()
    assert not StoredFile.objects.filter(pk=stored.pk).exists()
    assert not default_storage.exists(stored.storage_key)
    assert not Event.objects.filter(conversation=dm).exists()
    assert AuditEvent.objects.get(kind=AuditEvent.Kind.LIVE_PURGED).detail["messages"] == 1
    assert verify().ok  # the chain still verifies, the range reported as purged


def test_without_the_policy_switch_live_messages_stay(alice: User, dm: Conversation, expired: None) -> None:
    old = send(alice, dm, "Kept in the chat")
    archive_all(dm)

    assert lifecycle.purge_expired().messages == 0

    assert Message.objects.filter(pk=old.pk).exists()


def test_a_message_edited_in_a_younger_record_stays(
    alice: User, dm: Conversation, purge_live: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "retain_until", lambda policy, made_on: LONG_AGO)
    message = send(alice, dm, "Old text")
    archive_all(dm)
    monkeypatch.setattr(records, "retain_until", lambda policy, made_on: date.today() + timedelta(days=900))
    chat.message_edit(actor=alice, message_id=message.pk, body="New text")
    archive_all(dm)

    result = lifecycle.purge_expired()

    assert result.purged == 1 and result.messages == 0
    assert Message.objects.get(pk=message.pk).body == "New text"


@pytest.mark.parametrize("scope", ["conversation", "custodian", "dates"])
def test_a_hold_keeps_records_live_messages_and_files(
    alice: User,
    dm: Conversation,
    auditor: User,
    expired: None,
    purge_live: None,
    file_storage: Any,
    scope: str,
) -> None:
    stored = attach(alice)
    old = send(alice, dm, "Under investigation", file_ids=[stored.pk])
    archive_all(dm)
    today = records.company_day(timezone.now())
    scopes: dict[str, dict[str, Any]] = {
        "conversation": {"conversation": dm},
        "custodian": {"custodian": alice},
        # The record's period is in company days (Berlin): near midnight UTC, not date.today().
        "dates": {"date_from": today - timedelta(days=1), "date_to": today},
    }
    criteria = scopes[scope]
    services.hold_set(actor=auditor, name="Case 8", reason="Regulator", **criteria)

    result = lifecycle.purge_expired()

    assert (result.purged, result.held, result.messages, result.files) == (0, 1, 0, 0)
    assert Message.objects.filter(pk=old.pk).exists()
    assert StoredFile.objects.filter(pk=stored.pk).exists()
    assert default_storage.exists(stored.storage_key)


def test_a_hold_set_after_the_record_purge_still_keeps_the_live_messages(
    alice: User, dm: Conversation, auditor: User, purge_live: None, expired: None
) -> None:
    old = send(alice, dm, "Old but now under investigation")
    archive_all(dm)
    live_purge_switch(auditor, on=False)
    assert lifecycle.purge_expired().purged == 1  # the record went, the live message stayed
    live_purge_switch(auditor, on=True)
    services.hold_set(actor=auditor, name="Case 9", reason="Regulator", custodian=alice)

    assert lifecycle.purge_live(conversation_ids=[dm.pk]).messages == 0

    assert Message.objects.filter(pk=old.pk).exists()


def test_an_erasure_request_restricts_first_and_erases_when_retention_ends(
    alice: User, bob: User, dm: Conversation, auditor: User, expired: None
) -> None:
    send(bob, dm, "Offer from Bob: 12000 EUR")
    send(alice, dm, "Accepted")

    lifecycle.processing_restrict(actor=auditor, user_id=bob.pk, request="Ticket 4711")

    # Restricted: gone from chat, directory and search; the archive keeps it.
    bob.refresh_from_db()
    assert not bob.is_active and bob.erased_at is None and str(bob) == "Restricted person"
    assert [m.body for m in shown(alice, dm)] == ["Accepted"]
    assert not selectors.message_search(user=alice, q="Offer")
    assert bob not in selectors.people_directory()
    record = RecordContent.objects.get(record__conversation=dm).canonical_json
    assert "Offer from Bob" in record and bob.email in record
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.PROCESSING_RESTRICTED)
    assert "Art. 17(3)(b)" in event.detail["legal_basis"] and event.detail["retained_until"]
    assert event.detail["request"] == "Ticket 4711"
    assert bob.email not in json.dumps(event.detail)  # the audit log outlives the person

    # Retention ends: the daily purge removes the record and erases the person.
    result = lifecycle.purge_expired()

    assert (result.purged, result.people) == (1, 1)
    bob.refresh_from_db()
    assert bob.erased_at is not None and str(bob) == "Erased person"
    assert bob.email == f"erased-{bob.pk}@erased.invalid" and not bob.has_usable_password()
    assert not Message.objects.filter(author=bob).exists()
    assert Message.objects.filter(author=alice).exists()
    erased = AuditEvent.objects.get(kind=AuditEvent.Kind.PERSON_ERASED)
    assert erased.detail["messages"] == 1 and "Art. 17(1)" in erased.detail["legal_basis"]
    assert "@" not in json.dumps(erased.detail)
    assert verify().ok


def test_a_hold_on_the_person_defers_the_erasure(
    bob: User, dm: Conversation, auditor: User, expired: None
) -> None:
    send(bob, dm, "Offer from Bob")
    lifecycle.processing_restrict(actor=auditor, user_id=bob.pk)
    services.hold_set(actor=auditor, name="Case 10", reason="Litigation", custodian=bob)

    assert lifecycle.purge_expired().people == 0

    bob.refresh_from_db()
    assert bob.erased_at is None and Message.objects.filter(author=bob).exists()


def test_erasure_with_nothing_retained_happens_at_once(bob: User, auditor: User) -> None:
    lifecycle.processing_restrict(actor=auditor, user_id=bob.pk, request="Ticket 4712")

    bob.refresh_from_db()
    assert bob.erased_at is not None
    erased = AuditEvent.objects.get(kind=AuditEvent.Kind.PERSON_ERASED, detail__user=bob.pk)
    restricted = AuditEvent.objects.get(kind=AuditEvent.Kind.PROCESSING_RESTRICTED, detail__user=bob.pk)
    # No record ever named him: no retention duty existed, none "has ended" or defers anything.
    for event in (erased, restricted):
        assert "no archived record names the person" in event.detail["legal_basis"]
        assert (
            "has ended" not in event.detail["legal_basis"] and "deferred" not in event.detail["legal_basis"]
        )


def shown(user: User, conversation: Conversation) -> list[Message]:
    """The messages whose text the person sees on the conversation page."""
    client = Client()
    client.force_login(user)
    response = client.get(reverse("messenger:conversation", args=[conversation.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    return [m for m in Message.objects.filter(conversation=conversation).order_by("seq") if m.body in html]


def test_live_messages_follow_once_the_hold_that_kept_them_is_released(
    alice: User, dm: Conversation, auditor: User, purge_live: None, expired: None
) -> None:
    old = send(alice, dm, "Kept for the court case")
    archive_all(dm)
    live_purge_switch(auditor, on=False)
    lifecycle.purge_expired()  # the record goes; the live message stays (switch off)
    live_purge_switch(auditor, on=True)
    hold = services.hold_set(actor=auditor, name="Case 11", reason="Court", conversation=dm)
    assert lifecycle.purge_expired().messages == 0

    services.hold_release(actor=auditor, hold_id=hold.pk, reason="Judgment final")

    assert lifecycle.purge_expired().messages == 1
    assert not Message.objects.filter(pk=old.pk).exists()
