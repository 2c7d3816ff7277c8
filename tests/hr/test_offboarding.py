"""Offboarding: the leaver loses access at once, nothing they wrote is lost.

The cast: bob leaves. He is in Sales, whose head is alice; he owns the channel
#sales-leads (charlie is in it), the group "Q3 numbers" (alice is in it) and the
channel #bob-notes (nobody else is in it), and writes with alice directly.
HR is hanna, without superuser powers.
"""

import asyncio
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from asgiref.sync import sync_to_async
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.utils import timezone
from pypdf import PdfReader
from pytest_django import DjangoCaptureOnCommitCallbacks

from accounts import services
from accounts.models import Department, User
from archive import services as archive_services
from archive.models import StoredFile
from compliance import lifecycle, records
from compliance import services as compliance_services
from compliance.models import AuditEvent, LegalHold, RecordContent, RecordPerson, RetentionRecord
from compliance.verification import verify
from hr import services as hr_services
from hr.models import OffboardingReport, ScheduledOffboarding
from messenger import services as chat
from messenger.errors import RecipientInactive
from messenger.models import Conversation, Event, Membership, Message
from tests.archive.conftest import PDF
from tests.factories import make_user
from tests.guards import ensure_retention_policies, flush_guarded_database
from tests.messenger.conftest import Socket, open_socket

PEOPLE = "/admin/accounts/user/"
OFFBOARD = f"{PEOPLE}offboard/"


@dataclass
class Company:
    sales: Department
    leads: Conversation
    group: Conversation
    notes: Conversation
    dm: Conversation
    bobs_message: Message
    bobs_file: StoredFile


@pytest.fixture
def company(alice: User, bob: User, charlie: User, hr_user: User, file_storage: Any) -> Company:
    sales = services.department_ensure(name="Sales")
    services.department_set_head(department=sales, head=alice)
    for person in (alice, bob):
        services.user_update(user=person, fields={"department": sales})
    leads = chat.channel_create(actor=bob, name="sales-leads", member_ids=[charlie.pk])
    group = chat.group_create(actor=bob, name="Q3 numbers", member_ids=[alice.pk])
    notes = chat.channel_create(actor=bob, name="bob-notes", is_private=True)
    dm = chat.direct_open(actor=alice, other_user_id=bob.pk)
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Hast du das Angebot?")
    stored = archive_services.file_store(upload=io.BytesIO(PDF), name="Angebot Nordhafen.pdf", uploader=bob)
    sent = chat.message_send(actor=bob, conversation_id=dm.pk, body="Ja, hier ist es.", file_ids=[stored.pk])
    chat.message_send(actor=bob, conversation_id=leads.pk, body="Neuer Lead: Reederei Hansen")
    gone = chat.message_send(actor=bob, conversation_id=group.pk, body="Tippfehler")
    chat.message_delete(actor=bob, message_id=gone.message.pk)
    chat.message_send(actor=charlie, conversation_id=leads.pk, body="Danke!")
    return Company(
        sales=sales, leads=leads, group=group, notes=notes, dm=dm, bobs_message=sent.message, bobs_file=stored
    )


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def offboard(actor: User, user: User, **kwargs: Any) -> OffboardingReport:
    report = hr_services.offboard(actor=actor, user_id=user.pk, **kwargs).report
    assert report is not None
    return report


# --- The account closes ---------------------------------------------------------


@pytest.mark.django_db
def test_offboarding_closes_the_account_and_records_who_and_when(
    company: Company, bob: User, hr_user: User
) -> None:
    before = timezone.now()

    offboard(hr_user, bob)

    bob.refresh_from_db()
    assert not bob.is_active
    assert bob.offboarded_by == hr_user
    assert bob.offboarded_at is not None and bob.offboarded_at >= before - timedelta(seconds=1)
    assert bob.status == User.Status.OFFBOARDED


@pytest.mark.django_db
def test_the_leavers_session_cookie_no_longer_works_on_any_device(
    company: Company, bob: User, hr_user: User
) -> None:
    laptop, phone = logged_in(bob), logged_in(bob)
    assert laptop.get("/").status_code == 200
    assert phone.get("/").status_code == 200
    colleague = logged_in(hr_user)

    offboard(hr_user, bob)

    for device in (laptop, phone):
        response = device.get("/")
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    assert not [s for s in Session.objects.all() if s.get_decoded().get("_auth_user_id") == str(bob.pk)]
    assert colleague.get("/").status_code == 200  # only the leaver's sessions end


@pytest.mark.django_db
def test_the_leaver_cannot_sign_in_again(company: Company, bob: User, hr_user: User, password: str) -> None:
    offboard(hr_user, bob)

    client = Client()
    response = client.post("/accounts/login/", {"login": bob.email, "password": password})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/inactive/"
    assert "This account is inactive." in client.get(response["Location"]).content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_mfa_devices_sso_tokens_and_pending_invitations_are_revoked(
    company: Company,
    bob: User,
    hr_user: User,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    TOTP.activate(bob, generate_totp_secret())
    with django_capture_on_commit_callbacks(execute=True):
        invitation = services.invitation_create(
            invited_by=bob, email="new.colleague@kontor.example", base_url="http://testserver/"
        )

    report = offboard(hr_user, bob)

    assert not Authenticator.objects.filter(user=bob).exists()
    invitation.refresh_from_db()
    assert invitation.state == "revoked"
    assert report.content["access"] == {
        "sessions": 0,
        "mfa_authenticators": 1,
        "sso_tokens": 0,
        "invitations_revoked": 1,
    }


# --- Ownership and membership ------------------------------------------------------


@pytest.mark.django_db
def test_groups_and_channels_pass_to_the_successor_and_none_is_left_without_an_owner(
    company: Company, alice: User, bob: User, charlie: User, hr_user: User
) -> None:
    report = offboard(hr_user, bob)  # no successor given: alice, the head of Sales

    assert report.successor == alice
    for conversation in (company.leads, company.group, company.notes):
        owners = Membership.objects.filter(conversation=conversation, role="owner", left_at__isnull=True)
        assert [m.user for m in owners] == [alice], conversation
    # alice was not in #sales-leads or #bob-notes: she was added, as owner.
    assert Membership.objects.get(conversation=company.notes, user=alice).role == "owner"
    assert Membership.objects.get(conversation=company.leads, user=charlie).role == "member"
    for conversation in Conversation.objects.exclude(kind=Conversation.Kind.DIRECT):
        active = Membership.objects.filter(conversation=conversation, left_at__isnull=True)
        assert not active.exists() or active.filter(role="owner").exists(), conversation


@pytest.mark.django_db
def test_hr_may_choose_another_successor(
    company: Company, alice: User, bob: User, charlie: User, hr_user: User
) -> None:
    report = offboard(hr_user, bob, successor_id=charlie.pk)

    assert report.successor == charlie
    assert Membership.objects.get(conversation=company.leads, user=charlie).role == "owner"
    assert Membership.objects.get(conversation=company.group, user=charlie).role == "owner"
    assert Membership.objects.get(conversation=company.group, user=alice).role == "member"


@pytest.mark.django_db
def test_without_any_successor_the_longest_member_takes_over_and_a_lonely_channel_is_refused(
    company: Company, alice: User, bob: User, charlie: User, hr_user: User
) -> None:
    services.department_set_head(department=company.sales, head=None)

    with pytest.raises(ValidationError, match="bob-notes"):
        hr_services.offboard(actor=hr_user, user_id=bob.pk)

    bob.refresh_from_db()
    assert bob.is_active and bob.offboarded_at is None  # nothing changed
    chat.members_add(actor=bob, conversation_id=company.notes.pk, user_ids=[charlie.pk])
    offboard(hr_user, bob)
    assert Membership.objects.get(conversation=company.leads, user=charlie).role == "owner"
    assert Membership.objects.get(conversation=company.group, user=alice).role == "owner"
    assert Membership.objects.get(conversation=company.notes, user=charlie).role == "owner"


@pytest.mark.django_db
def test_the_leaver_stays_listed_as_a_former_member(
    company: Company, alice: User, bob: User, hr_user: User
) -> None:
    offboard(hr_user, bob)

    memberships = Membership.objects.filter(user=bob)
    assert memberships.count() == 4
    assert not memberships.filter(left_at__isnull=True).exists()
    removed = Event.objects.filter(type=Event.Type.MEMBER_REMOVED, subject=bob)
    assert removed.count() == 4
    assert all(e.actor == hr_user and e.data == {"reason": "offboarded"} for e in removed)
    page = logged_in(alice).get(f"/c/{company.group.pk}/settings/").content.decode()
    assert "Former members" in page
    assert 'Bob Brandt <span class="muted">(left the company)</span>' in page


# --- What they wrote stays ----------------------------------------------------------


@pytest.mark.django_db
def test_their_messages_and_files_stay_readable_for_colleagues_marked_left_the_company(
    company: Company, alice: User, bob: User, charlie: User, hr_user: User
) -> None:
    offboard(hr_user, bob)

    page = logged_in(charlie).get(f"/c/{company.leads.pk}/").content.decode()
    assert "Neuer Lead: Reederei Hansen" in page
    assert '<span class="msg__left">(left the company)</span>' in page
    download = logged_in(alice).get(f"/files/{company.bobs_file.pk}/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PDF  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_the_direct_conversation_stays_readable_and_refuses_new_messages_with_a_clear_notice(
    company: Company, alice: User, bob: User, hr_user: User
) -> None:
    offboard(hr_user, bob)

    client = logged_in(alice)
    page = client.get(f"/c/{company.dm.pk}/").content.decode()
    assert "Ja, hier ist es." in page
    assert "Bob Brandt (left the company)" in page
    assert "has left the company and cannot receive messages. The conversation stays readable." in page
    assert 'id="composer"' not in page
    with pytest.raises(RecipientInactive, match="has left the company and cannot receive messages"):
        chat.message_send(actor=alice, conversation_id=company.dm.pk, body="Bist du noch da?")
    refused = client.post(f"/c/{company.dm.pk}/send/", {"body": "Bist du noch da?"}, follow=True)
    assert "has left the company and cannot receive messages" in refused.content.decode()
    assert not Message.objects.filter(body="Bist du noch da?").exists()


@pytest.mark.django_db
def test_the_leaver_can_no_longer_read_or_write_anything(company: Company, bob: User, hr_user: User) -> None:
    client = logged_in(bob)
    offboard(hr_user, bob)

    assert client.get(f"/c/{company.dm.pk}/").status_code == 302
    assert client.get(f"/files/{company.bobs_file.pk}/").status_code == 302
    bob.refresh_from_db()
    with pytest.raises(Exception, match="No such conversation"):
        chat.message_send(actor=bob, conversation_id=company.leads.pk, body="Noch eine Sache")


@pytest.mark.django_db
def test_the_archive_holds_everything_up_to_the_offboarding(
    company: Company, bob: User, hr_user: User
) -> None:
    ids = [company.leads.pk, company.group.pk, company.notes.pk, company.dm.pk]

    offboard(hr_user, bob)

    assert not set(compliance_services.conversations_due()) & set(ids)
    for conversation_id in ids:
        newest = Event.objects.filter(conversation_id=conversation_id).order_by("-id").first()
        head = RetentionRecord.objects.filter(conversation_id=conversation_id).order_by("-seq").first()
        assert newest is not None and head is not None
        assert head.last_event_id == newest.id  # the removal of bob is archived too
    archived = [
        json.loads(c.canonical_json)
        for c in RecordContent.objects.filter(record__conversation_id__in=ids).order_by("record__seq")
    ]
    events = [e for record in archived for e in record["events"]]
    bodies = {e["revision"]["body"] for e in events if "revision" in e}
    assert {"Ja, hier ist es.", "Neuer Lead: Reederei Hansen", "Tippfehler"} <= bodies
    files = [f for e in events if "revision" in e for f in e["revision"]["files"]]
    assert [f["sha256"] for f in files] == [company.bobs_file.sha256]
    assert sum(1 for e in events if e["type"] == "member_removed" and e["subject"] == bob.pk) == 4
    assert verify().ok


# --- The report -----------------------------------------------------------------


@pytest.mark.django_db
def test_the_report_counts_are_right(company: Company, alice: User, bob: User, hr_user: User) -> None:
    report = offboard(hr_user, bob)

    data = report.content
    counts = data["counts"]
    assert (report.conversations, report.messages, report.files) == (4, 3, 1)
    assert counts["conversations"] == counts["left_now"] == 4
    assert (counts["channels"], counts["groups"], counts["direct"]) == (2, 1, 1)
    assert counts["handed_over"] == 3
    assert (counts["messages"], counts["messages_deleted"]) == (3, 1)
    assert (counts["files"], counts["file_bytes"]) == (1, len(PDF))
    records = RetentionRecord.objects.filter(
        conversation__in=[company.leads, company.group, company.notes, company.dm]
    )
    assert counts["records"] == report.records == records.count()
    assert counts["records_written"] == records.count()  # nothing was archived before
    assert counts["records_naming_person"] == RecordPerson.objects.filter(user=bob).count() > 0
    assert data["person"] == {
        "id": bob.pk,
        "name": "Bob Brandt",
        "email": "bob@kontor.example",
        "department": "Sales",
        "job_title": bob.job_title,
    }
    assert data["offboarded_by"]["email"] == hr_user.email
    assert data["successor"]["email"] == alice.email
    assert data["hold"] is None
    heads = {entry["id"]: entry["head"] for entry in data["conversations"]}
    for record in records.order_by("seq"):
        if heads[record.conversation_id]["seq"] == record.seq:
            assert heads[record.conversation_id]["sha256"] == record.sha256


@pytest.mark.django_db
def test_the_report_is_hashed_like_the_records_and_audited(
    company: Company, bob: User, hr_user: User
) -> None:
    report = offboard(hr_user, bob)

    assert report.sha256 == records.record_hash(report.canonical_json.encode())
    assert report.canonical_json.encode() == records.canonical_json(report.content)
    assert report.hash_matches()
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.OFFBOARDED)
    assert event.actor == hr_user
    assert event.detail["report"] == report.pk and event.detail["sha256"] == report.sha256


@pytest.mark.django_db
def test_the_report_cannot_be_changed_or_deleted_not_even_with_raw_sql(
    company: Company, bob: User, hr_user: User
) -> None:
    report = offboard(hr_user, bob)

    with pytest.raises(ValidationError):
        report.save()
    with pytest.raises(ValidationError):
        report.delete()
    for statement in (
        "UPDATE accounts_offboardingreport SET messages = 0",
        "DELETE FROM accounts_offboardingreport",
    ):
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    with pytest.raises(IntegrityError), transaction.atomic():
        OffboardingReport.objects.filter(pk=report.pk).update(messages=0)
    report.refresh_from_db()
    assert report.messages == 3 and report.hash_matches()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="ENABLE ALWAYS is PostgreSQL's")
@pytest.mark.django_db
def test_on_postgresql_the_guards_hold_even_for_a_replica_session(
    company: Company, bob: User, hr_user: User
) -> None:
    offboard(hr_user, bob)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname, tgenabled FROM pg_trigger WHERE tgname LIKE 'accounts_offboardingreport_%%'"
        )
        assert set(cursor.fetchall()) == {
            ("accounts_offboardingreport_no_update", "A"),
            ("accounts_offboardingreport_no_delete", "A"),
            ("accounts_offboardingreport_no_truncate", "A"),
        }
        with pytest.raises(IntegrityError), transaction.atomic():
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute("DELETE FROM accounts_offboardingreport")


@pytest.mark.django_db
def test_a_legal_hold_on_the_leaver_is_set_and_named_in_the_report(
    company: Company, bob: User, hr_user: User
) -> None:
    report = offboard(hr_user, bob, hold=hr_services.Hold(reason="Arbeitsgerichtsverfahren 3 Ca 118/26"))

    hold = LegalHold.objects.get()
    assert (hold.custodian, hold.set_by, hold.reason) == (
        bob,
        hr_user,
        "Arbeitsgerichtsverfahren 3 Ca 118/26",
    )
    assert report.hold == hold
    assert report.content["hold"]["reason"] == "Arbeitsgerichtsverfahren 3 Ca 118/26"
    dm_records = RetentionRecord.objects.filter(conversation=company.dm)
    assert dm_records.exists() and all(lifecycle.record_is_held(r) for r in dm_records)
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.HOLD_SET, actor=hr_user).count() == 1


@pytest.mark.django_db
def test_offboarding_twice_is_harmless(company: Company, alice: User, bob: User, hr_user: User) -> None:
    first = offboard(hr_user, bob, hold=hr_services.Hold(reason="Prüfung"))
    counts = (
        Event.objects.count(),
        RetentionRecord.objects.count(),
        AuditEvent.objects.count(),
        LegalHold.objects.count(),
        Membership.objects.count(),
    )

    second = offboard(hr_user, bob, successor_id=alice.pk, hold=hr_services.Hold(reason="Prüfung"))

    assert second == first
    assert OffboardingReport.objects.count() == 1
    assert (
        Event.objects.count(),
        RetentionRecord.objects.count(),
        AuditEvent.objects.count(),
        LegalHold.objects.count(),
        Membership.objects.count(),
    ) == counts


@pytest.mark.django_db
def test_nobody_can_offboard_themselves_or_name_an_inactive_successor(
    company: Company, bob: User, charlie: User, hr_user: User
) -> None:
    with pytest.raises(ValidationError, match="yourself"):
        hr_services.offboard(actor=hr_user, user_id=hr_user.pk)
    offboard(hr_user, charlie, successor_id=hr_user.pk)
    with pytest.raises(ValidationError, match="active colleague"):
        hr_services.offboard(actor=hr_user, user_id=bob.pk, successor_id=charlie.pk)
    with pytest.raises(ValidationError, match="active colleague"):
        hr_services.offboard(actor=hr_user, user_id=bob.pk, successor_id=bob.pk)
    bob.refresh_from_db()
    assert bob.is_active


# --- Scheduled offboarding ----------------------------------------------------------


@pytest.mark.django_db
def test_a_scheduled_offboarding_happens_at_its_time(
    company: Company, alice: User, bob: User, hr_user: User
) -> None:
    # Far enough ahead that scheduling and the first check are done before it
    # even on a loaded machine (the test then sleeps until it has passed).
    effective_at = timezone.now() + timedelta(seconds=5)

    outcome = hr_services.offboard(actor=hr_user, user_id=bob.pk, effective_at=effective_at)

    assert outcome.report is None and outcome.scheduled is not None
    assert hr_services.offboard_due() == 0  # not yet: bob works as before
    bob.refresh_from_db()
    assert bob.is_active
    chat.message_send(actor=bob, conversation_id=company.dm.pk, body="Mein letzter Tag heute")
    time.sleep(max(0.0, (effective_at - timezone.now()).total_seconds()) + 0.2)

    assert hr_services.offboard_due() == 1

    bob.refresh_from_db()
    assert not bob.is_active
    assert bob.offboarded_at is not None and bob.offboarded_at >= effective_at
    assert bob.offboarded_by == hr_user
    scheduled = ScheduledOffboarding.objects.get()
    report = OffboardingReport.objects.get(user=bob)
    assert (scheduled.state, scheduled.report) == ("done", report)
    assert report.content["scheduled"]["effective_at"] == effective_at.isoformat()
    assert report.successor == alice
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.OFFBOARDED)
    assert (event.actor, event.ip, event.user_agent) == (hr_user, None, "")  # a task: no request
    assert hr_services.offboard_due() == 0  # a second run does nothing


@pytest.mark.django_db
def test_a_scheduled_offboarding_can_be_called_off(company: Company, bob: User, hr_user: User) -> None:
    outcome = hr_services.offboard(
        actor=hr_user, user_id=bob.pk, effective_at=timezone.now() + timedelta(milliseconds=300)
    )
    assert outcome.scheduled is not None
    hr_services.scheduled_cancel(actor=hr_user, scheduled_id=outcome.scheduled.pk)
    time.sleep(0.4)

    assert hr_services.offboard_due() == 0
    bob.refresh_from_db()
    assert bob.is_active
    assert ScheduledOffboarding.objects.get().state == "cancelled"


@pytest.mark.django_db
def test_a_failing_scheduled_offboarding_keeps_its_error_and_is_tried_again(
    company: Company, bob: User, hr_user: User
) -> None:
    services.department_set_head(department=company.sales, head=None)  # #bob-notes has no heir
    hr_services.offboard(
        actor=hr_user, user_id=bob.pk, effective_at=timezone.now() + timedelta(milliseconds=200)
    )
    time.sleep(0.3)

    assert hr_services.offboard_due() == 0
    scheduled = ScheduledOffboarding.objects.get()
    assert "bob-notes" in scheduled.error and scheduled.state == "pending"


def test_beat_runs_the_scheduled_offboardings_every_minute() -> None:
    from config.celery import app

    entry = django_settings.CELERY_BEAT_SCHEDULE["accounts-offboard-due"]
    assert entry == {"task": "accounts.offboard_due", "schedule": 60.0}
    app.loader.import_default_modules()
    assert "accounts.offboard_due" in app.tasks


# --- Reactivation -------------------------------------------------------------------


@pytest.mark.django_db
def test_reactivation_restores_access_without_touching_history(
    company: Company, alice: User, bob: User, hr_user: User
) -> None:
    report = offboard(hr_user, bob)
    records = list(RetentionRecord.objects.values_list("sha256", flat=True))

    hr_services.reactivate(actor=hr_user, user_id=bob.pk, reason="Kommt aus der Elternzeit zurück")

    bob.refresh_from_db()
    assert bob.is_active and bob.offboarded_at is None and bob.status == User.Status.ACTIVE
    assert logged_in(bob).get(f"/c/{company.dm.pk}/").status_code == 200  # his direct conversation is back
    assert not Membership.objects.filter(user=bob, conversation=company.group, left_at__isnull=True).exists()
    assert Membership.objects.get(conversation=company.group, user=alice).role == "owner"
    assert OffboardingReport.objects.get() == report and report.hash_matches()
    assert list(RetentionRecord.objects.values_list("sha256", flat=True)) == records
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.REACTIVATED)
    assert event.actor == hr_user
    assert event.detail["reason"] == "Kommt aus der Elternzeit zurück"
    assert event.detail["report"] == report.pk
    chat.message_send(actor=alice, conversation_id=company.dm.pk, body="Willkommen zurück!")


@pytest.mark.django_db
def test_reactivation_needs_a_reason_and_an_offboarded_person(
    company: Company, bob: User, hr_user: User
) -> None:
    with pytest.raises(ValidationError, match="not offboarded"):
        hr_services.reactivate(actor=hr_user, user_id=bob.pk, reason="?")
    offboard(hr_user, bob)
    with pytest.raises(ValidationError):
        hr_services.reactivate(actor=hr_user, user_id=bob.pk, reason=" ")


# --- The socket ------------------------------------------------------------------------


@pytest.fixture
def fresh_channel_layer() -> Iterator[None]:
    """A channel layer of this test's own event loop (see tests/messenger/conftest.py)."""
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    yield
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)


@pytest.fixture
def archive_wiped_afterwards(transactional_db: None) -> Iterator[None]:
    """The offboarding commits records, audit events and a report, which the
    database refuses to flush: empty it with the guards lifted (set up after
    the database, so this runs before pytest-django's own flush). An earlier
    flush took the retention policies the snapshots need: they come back first."""
    ensure_retention_policies()
    yield
    flush_guarded_database()


@pytest.mark.usefixtures("fresh_channel_layer")
def test_every_open_socket_of_the_leaver_gets_a_final_frame_and_closes_at_once(
    archive_wiped_afterwards: None,
) -> None:
    hanna = make_user(email="hanna.hr@kontor.example", display_name="Hanna Hofer")
    bob = make_user(email="bob@kontor.example", display_name="Bob Brandt")
    alice = make_user(email="alice@kontor.example", display_name="Alice Adler")
    dm = chat.direct_open(actor=alice, other_user_id=bob.pk)

    async def scenario() -> None:
        tabs = []
        for _ in range(2):  # two tabs (or a laptop and a phone)
            connected, socket = await open_socket(bob)
            assert connected
            await socket.receive_type("hello")
            tabs.append(socket)
        connected, colleague = await open_socket(alice)
        assert connected
        await colleague.receive_type("hello")

        await sync_to_async(hr_services.offboard)(actor=hanna, user_id=bob.pk)
        committed = time.monotonic()

        async def until_closed(tab: Socket) -> tuple[list[dict[str, Any]], dict[str, Any], float]:
            frames = []
            while (output := await tab.communicator.receive_output(timeout=30))["type"] == "websocket.send":
                frames.append(json.loads(output["text"]))
            return frames, output, time.monotonic() - committed

        for frames, closed, after in await asyncio.gather(*(until_closed(tab) for tab in tabs)):
            assert closed == {"type": "websocket.close", "code": 4403}
            assert frames[-1] == {"type": "account_disabled"}  # the final frame
            assert all(f["type"] == "presence" for f in frames[:-1])
            # At once, pushed by the offboarding, not at a later check (timings are for bench/).
            assert after < 10.0
        # The colleague's socket stays and learns that bob left the conversation.
        removal = await colleague.receive_type("membership")
        assert (removal["change"], removal["user"]["id"], removal["user"]["left"]) == (
            "removed",
            bob.pk,
            True,
        )
        # A socket opened with the old cookie afterwards is refused.
        connected, _ = await open_socket(bob)
        assert not connected
        await colleague.close()

    asyncio.run(scenario())
    assert Membership.objects.get(conversation=dm, user=bob).left_at is not None


# --- The admin: HR without superuser does all of it, nobody else any of it ------------


def test_hr_is_no_superuser(hr_user: User) -> None:
    assert hr_user.is_staff and not hr_user.is_superuser
    # The report is the hr app's model since issue 17: its permission is hr's.
    for permission in ("accounts.offboard_user", "accounts.restrict_processing", "hr.view_offboardingreport"):
        assert hr_user.has_perm(permission)


@pytest.mark.django_db
def test_hr_offboards_from_the_list_through_the_confirmation_page(
    company: Company, alice: User, bob: User, hr_user: User
) -> None:
    client = logged_in(hr_user)
    response = client.post(PEOPLE, {"action": "offboard_selected", "_selected_action": [bob.pk]})
    assert response.status_code == 302
    assert response["Location"] == f"{OFFBOARD}?ids={bob.pk}"

    page = client.get(response["Location"])

    assert page.status_code == 200
    html = page.content.decode()
    assert "Offboard Bob Brandt" in html
    assert f'<option value="{alice.pk}" selected>' in html  # the head of Sales, suggested
    assert "#bob-notes" in html and "#sales-leads" in html and "Q3 numbers" in html
    assert bob.is_active

    done = client.post(
        OFFBOARD, {"ids": str(bob.pk), f"u{bob.pk}-successor": alice.pk, "when": "now", "hold_reason": ""}
    )

    report = OffboardingReport.objects.get(user=bob)
    assert done.status_code == 302
    assert done["Location"] == f"/admin/hr/offboardingreport/{report.pk}/change/"
    shown = client.get(done["Location"]).content.decode()
    assert "Download PDF" in shown and report.sha256 in shown and "matches its content" in shown
    assert 'data-count="messages">3<' in shown and 'data-count="conversations">4<' in shown


@pytest.mark.django_db
def test_hr_offboards_several_at_once_and_schedules_with_a_hold(
    company: Company, alice: User, bob: User, charlie: User, hr_user: User
) -> None:
    client = logged_in(hr_user)
    later = (timezone.localtime() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")

    response = client.post(
        OFFBOARD,
        {
            "ids": f"{bob.pk},{charlie.pk}",
            f"u{bob.pk}-successor": alice.pk,
            f"u{charlie.pk}-successor": "",
            "when": "later",
            "effective_at": later,
            "hold": "on",
            "hold_reason": "Steuerprüfung 2026",
        },
    )

    assert response.status_code == 302
    assert ScheduledOffboarding.objects.filter(hold_reason="Steuerprüfung 2026").count() == 2
    assert ScheduledOffboarding.objects.get(user=bob).successor == alice
    bob.refresh_from_db()
    assert bob.is_active
    listed = client.get(f"{PEOPLE}?status=scheduled").content.decode()
    assert bob.email in listed and charlie.email in listed and alice.email not in listed


@pytest.mark.django_db
def test_the_confirmation_page_explains_what_is_missing(company: Company, bob: User, hr_user: User) -> None:
    client = logged_in(hr_user)

    response = client.post(OFFBOARD, {"ids": str(bob.pk), "when": "later", "effective_at": "", "hold": "on"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "Give the date and time." in html and "A legal hold needs a reason." in html
    bob.refresh_from_db()
    assert bob.is_active and not ScheduledOffboarding.objects.exists()


@pytest.mark.django_db
def test_the_report_downloads_as_a_pdf(company: Company, bob: User, hr_user: User) -> None:
    report = offboard(hr_user, bob)

    response = logged_in(hr_user).get(f"/admin/hr/offboardingreport/{report.pk}/pdf/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith('attachment; filename="offboarding-')
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert "Offboarding report" in text
    assert "Bob Brandt" in text and "bob@kontor.example" in text
    assert "sales-leads" in text and report.sha256 in text.replace("\n", "")


@pytest.mark.django_db
def test_hr_reactivates_with_a_reason(company: Company, bob: User, hr_user: User) -> None:
    offboard(hr_user, bob)
    client = logged_in(hr_user)
    url = f"{PEOPLE}reactivate/?ids={bob.pk}"

    assert "Reason" in client.get(url).content.decode()
    assert client.post(f"{PEOPLE}reactivate/", {"ids": str(bob.pk), "reason": ""}).status_code == 200
    response = client.post(
        f"{PEOPLE}reactivate/", {"ids": str(bob.pk), "reason": "Zurück aus dem Sabbatical"}
    )

    assert response.status_code == 302
    bob.refresh_from_db()
    assert bob.is_active


@pytest.mark.django_db
def test_hr_restricts_processing_on_an_erasure_request_with_its_reference(
    company: Company, bob: User, hr_user: User
) -> None:
    bobs_tab = logged_in(bob)
    client = logged_in(hr_user)
    response = client.post(PEOPLE, {"action": "restrict_selected", "_selected_action": [bob.pk]})
    page = client.get(response["Location"]).content.decode()
    assert "Request reference" in page and "Art. 17(3)(b)" in page

    missing = client.post(f"{PEOPLE}restrict/", {"ids": str(bob.pk), "request": "", "legal_basis": ""})
    assert missing.status_code == 200
    bob.refresh_from_db()
    assert bob.processing_restricted_at is None

    client.post(f"{PEOPLE}restrict/", {"ids": str(bob.pk), "request": "DSR-2026-0042", "legal_basis": ""})

    bob.refresh_from_db()
    assert bob.processing_restricted_at is not None and not bob.is_active
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.PROCESSING_RESTRICTED)
    assert event.actor == hr_user and event.detail["request"] == "DSR-2026-0042"
    assert bobs_tab.get("/").status_code == 302


@pytest.mark.django_db
def test_the_people_list_shows_status_and_last_seen_with_filters(
    company: Company, bob: User, charlie: User, hr_user: User
) -> None:
    offboard(hr_user, bob)
    invited = services.user_create(email="neu@kontor.example", display_name="Nina Neu", is_active=False)
    client = logged_in(hr_user)

    page = client.get(PEOPLE).content.decode()
    assert "Last seen" in page and "Status" in page
    assert '<span class="status status--offboarded">Offboarded</span>' in page
    assert '<span class="status status--invited">Invited</span>' in page
    offboarded = client.get(f"{PEOPLE}?status=offboarded").content.decode()
    assert bob.email in offboarded and charlie.email not in offboarded and invited.email not in offboarded
    found = client.get(f"{PEOPLE}?q=Sales").content.decode()
    assert bob.email in found and charlie.email not in found


@pytest.mark.django_db
def test_an_ordinary_user_reaches_none_of_it(company: Company, alice: User, bob: User, hr_user: User) -> None:
    report = offboard(hr_user, bob)
    client = logged_in(alice)

    for url in (
        f"{OFFBOARD}?ids={bob.pk}",
        f"{PEOPLE}reactivate/?ids={bob.pk}",
        f"{PEOPLE}restrict/?ids={bob.pk}",
        f"/admin/hr/offboardingreport/{report.pk}/change/",
        f"/admin/hr/offboardingreport/{report.pk}/pdf/",
        "/admin/hr/scheduledoffboarding/",
        "/admin/accounts/invitation/bulk/",
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/"), url
    response = client.post(OFFBOARD, {"ids": str(alice.pk), "when": "now"})
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    alice.refresh_from_db()
    assert alice.is_active


@pytest.mark.django_db
def test_staff_without_the_permissions_is_refused(company: Company, bob: User, hr_user: User) -> None:
    report = offboard(hr_user, bob)
    clerk = make_user(email="clerk@kontor.example", is_staff=True)
    client = logged_in(clerk)

    for url in (
        f"{OFFBOARD}?ids={hr_user.pk}",
        f"{PEOPLE}reactivate/?ids={bob.pk}",
        f"{PEOPLE}restrict/?ids={hr_user.pk}",
        f"/admin/hr/offboardingreport/{report.pk}/change/",
        f"/admin/hr/offboardingreport/{report.pk}/pdf/",
    ):
        assert client.get(url).status_code == 403, url


@pytest.mark.django_db
def test_hr_cannot_offboard_an_administrator(company: Company, hr_user: User) -> None:
    root = make_user(email="root@kontor.example", is_superuser=True, is_staff=True)
    client = logged_in(hr_user)

    response = client.post(OFFBOARD, {"ids": str(root.pk), "when": "now"})

    assert response.status_code == 302  # nobody selected that HR may see
    root.refresh_from_db()
    assert root.is_active
    with pytest.raises(ValidationError, match="administrator"):
        hr_services.offboard(actor=hr_user, user_id=root.pk)


@pytest.mark.django_db
def test_the_persons_page_links_to_offboarding_and_later_to_the_report_and_reactivation(
    company: Company, bob: User, hr_user: User
) -> None:
    client = logged_in(hr_user)
    page = client.get(f"{PEOPLE}{bob.pk}/change/").content.decode()
    assert f'href="{OFFBOARD}?ids={bob.pk}"' in page
    assert f'href="{PEOPLE}restrict/?ids={bob.pk}"' in page

    report = offboard(hr_user, bob)

    page = client.get(f"{PEOPLE}{bob.pk}/change/").content.decode()
    assert f'href="{OFFBOARD}?ids={bob.pk}"' not in page
    assert f'href="{PEOPLE}reactivate/?ids={bob.pk}"' in page
    assert f'href="/admin/hr/offboardingreport/{report.pk}/change/"' in page
    assert "Hanna Hofer" in page  # offboarded by


@pytest.mark.django_db
def test_hr_calls_off_a_scheduled_offboarding_in_the_admin(
    company: Company, bob: User, hr_user: User
) -> None:
    outcome = hr_services.offboard(
        actor=hr_user, user_id=bob.pk, effective_at=timezone.now() + timedelta(days=1)
    )
    assert outcome.scheduled is not None
    client = logged_in(hr_user)
    listed = client.get("/admin/hr/scheduledoffboarding/").content.decode()
    assert "Bob Brandt" in listed and "Call off the selected offboardings" in listed

    client.post(
        "/admin/hr/scheduledoffboarding/",
        {"action": "cancel", "_selected_action": [outcome.scheduled.pk]},
    )

    scheduled = ScheduledOffboarding.objects.get()
    assert (scheduled.state, scheduled.cancelled_by) == ("cancelled", hr_user)


@pytest.mark.django_db
def test_a_missing_report_guard_fails_the_system_check(db: None) -> None:
    from hr.checks import report_guards

    assert report_guards(databases=["default"]) == []
    with transaction.atomic():
        with connection.cursor() as cursor:
            on = " ON accounts_offboardingreport" if connection.vendor == "postgresql" else ""
            cursor.execute(f"DROP TRIGGER accounts_offboardingreport_no_delete{on}")
        problems = report_guards(databases=["default"])
        transaction.set_rollback(True)

    assert [p.id for p in problems] == ["accounts.E001"]
    assert "accounts_offboardingreport_no_delete" in problems[0].msg
    assert report_guards(databases=["default"]) == []


@pytest.mark.django_db
def test_offboarding_and_reactivation_in_the_admin_record_where_hr_acted_from(
    company: Company, alice: User, bob: User, hr_user: User
) -> None:
    client = Client(REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT="HR-Browser/1.0")
    client.force_login(hr_user)

    client.post(OFFBOARD, {"ids": str(bob.pk), f"u{bob.pk}-successor": alice.pk, "when": "now"})
    client.post(f"{PEOPLE}reactivate/", {"ids": str(bob.pk), "reason": "Zurück aus dem Sabbatical"})

    offboarded = AuditEvent.objects.get(kind=AuditEvent.Kind.OFFBOARDED)
    reactivated = AuditEvent.objects.get(kind=AuditEvent.Kind.REACTIVATED)
    for event in (offboarded, reactivated):
        assert (event.actor, event.ip, event.user_agent) == (hr_user, "203.0.113.7", "HR-Browser/1.0")


@pytest.mark.django_db
def test_the_report_admin_moved_with_the_model_to_hr(company: Company, bob: User, hr_user: User) -> None:
    report = offboard(hr_user, bob)

    assert OffboardingReport._meta.app_label == "hr"
    assert OffboardingReport._meta.db_table == "accounts_offboardingreport"
    assert ScheduledOffboarding._meta.db_table == "accounts_scheduledoffboarding"
    assert hr_user.has_perm("hr.view_offboardingreport") and hr_user.has_perm(
        "hr.change_scheduledoffboarding"
    )
    page = logged_in(hr_user).get(f"/admin/hr/offboardingreport/{report.pk}/change/").content.decode()
    assert f'href="/admin/hr/offboardingreport/{report.pk}/pdf/"' in page
    assert 'href="/admin/hr/">Offboarding</a>' in page


@pytest.mark.django_db
def test_links_from_before_the_move_lead_to_the_same_pages(
    company: Company, bob: User, hr_user: User
) -> None:
    report = offboard(hr_user, bob)
    client = logged_in(hr_user)

    for old, new in (
        (
            f"/admin/accounts/offboardingreport/{report.pk}/change/",
            f"/admin/hr/offboardingreport/{report.pk}/change/",
        ),
        (
            f"/admin/accounts/offboardingreport/{report.pk}/pdf/",
            f"/admin/hr/offboardingreport/{report.pk}/pdf/",
        ),
        ("/admin/accounts/scheduledoffboarding/?q=bob", "/admin/hr/scheduledoffboarding/?q=bob"),
    ):
        response = client.get(old)
        assert (response.status_code, response["Location"]) == (302, new)
        assert client.get(new).status_code == 200
