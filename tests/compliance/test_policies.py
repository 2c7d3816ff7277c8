"""Which policy a record gets (most specific wins, C8), and retention that only grows (C9)."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from accounts.models import User
from accounts.services import department_ensure, user_update
from compliance import lifecycle, policies, records, services
from compliance.models import (
    AuditEvent,
    RecordContent,
    RetentionExtension,
    RetentionPolicy,
    RetentionRecord,
)
from messenger import services as chat
from messenger.models import Conversation

pytestmark = pytest.mark.django_db


def archived(
    author: User, conversation: Conversation, body: str = "Rechnung 2026-117 anbei"
) -> RetentionRecord:
    chat.message_send(actor=author, conversation_id=conversation.pk, body=body)
    record = services.snapshot_conversation(conversation_id=conversation.pk).record
    assert record is not None
    return record


@pytest.fixture
def voucher() -> RetentionPolicy:
    return RetentionPolicy.objects.get(record_class="voucher")


@pytest.fixture
def books() -> RetentionPolicy:
    return RetentionPolicy.objects.get(record_class="books")


def test_without_assignments_the_company_default_applies(alice: User, dm: Conversation) -> None:
    record = archived(alice, dm)
    default = RetentionPolicy.objects.get(is_default=True)
    assert record.policy == default
    made = record.period_end
    assert record.retain_until == date(made.year + 6, 12, 31)


def test_a_department_policy_beats_the_default(
    alice: User, bob: User, dm: Conversation, auditor: User, voucher: RetentionPolicy
) -> None:
    accounting = department_ensure(name="Accounting")
    user_update(user=bob, fields={"department": accounting})
    policies.policy_assign(actor=auditor, policy_id=voucher.pk, department=accounting, reason="Vouchers")

    record = archived(alice, dm)

    assert record.policy == voucher
    assert record.retain_until == date(record.period_end.year + 8, 12, 31)


def test_of_several_department_policies_the_longest_wins(
    alice: User, bob: User, dm: Conversation, auditor: User, voucher: RetentionPolicy, books: RetentionPolicy
) -> None:
    accounting, finance = (
        department_ensure(name="Accounting"),
        department_ensure(name="Finance"),
    )
    user_update(user=alice, fields={"department": accounting})
    user_update(user=bob, fields={"department": finance})
    policies.policy_assign(actor=auditor, policy_id=voucher.pk, department=accounting, reason="Vouchers")
    policies.policy_assign(actor=auditor, policy_id=books.pk, department=finance, reason="Books")

    assert archived(alice, dm).policy == books


def test_a_conversation_policy_beats_the_departments(
    alice: User, bob: User, dm: Conversation, auditor: User, voucher: RetentionPolicy, books: RetentionPolicy
) -> None:
    accounting = department_ensure(name="Accounting")
    user_update(user=bob, fields={"department": accounting})
    policies.policy_assign(actor=auditor, policy_id=books.pk, department=accounting, reason="Books")
    policies.policy_assign(actor=auditor, policy_id=voucher.pk, conversation=dm, reason="Only vouchers here")

    assert archived(alice, dm).policy == voucher
    kinds = list(
        AuditEvent.objects.filter(kind=AuditEvent.Kind.POLICY_CHANGED).values_list("detail", flat=True)
    )
    assert [d["action"] for d in kinds] == ["assigned", "assigned"]
    assert all(d["reason"] for d in kinds)


def test_a_period_can_be_lengthened_and_extends_the_records_under_it(
    alice: User, dm: Conversation, auditor: User
) -> None:
    record = archived(alice, dm)
    default = record.policy

    policies.policy_update(
        actor=auditor, policy_id=default.pk, years=10, days=0, from_year_end=True, reason="New law"
    )

    assert policies.effective_retain_until(record) == date(record.period_end.year + 10, 12, 31)
    extension = RetentionExtension.objects.get(record=record)
    assert (extension.actor, extension.reason) == (auditor, "New law")
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.POLICY_CHANGED)
    assert event.detail["before"]["years"] == 6 and event.detail["after"]["years"] == 10
    assert event.detail["records_extended"] == 1


@pytest.mark.parametrize(
    ("years", "days", "from_year_end"),
    [(5, 0, True), (6, 0, False), (0, 2000, True), (0, 0, True)],
)
def test_a_period_is_never_shortened(auditor: User, years: int, days: int, from_year_end: bool) -> None:
    default = RetentionPolicy.objects.get(is_default=True)

    with pytest.raises(ValidationError):
        policies.policy_update(
            actor=auditor,
            policy_id=default.pk,
            years=years,
            days=days,
            from_year_end=from_year_end,
            reason="x",
        )

    default.refresh_from_db()
    assert (default.years, default.days, default.from_year_end) == (6, 0, True)
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.POLICY_CHANGED).exists()


def test_an_authority_extends_a_conversation_with_actor_and_reason(
    alice: User, dm: Conversation, auditor: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "retain_until", lambda policy, made_on: date(2015, 12, 31))
    expired = archived(alice, dm)
    until = date.today() + timedelta(days=400)

    count = policies.retention_extend(
        actor=auditor, until=until, reason="Tax audit 2019-2021 (Finanzamt letter of 3 May)", conversation=dm
    )

    assert count == 1
    assert policies.effective_retain_until(expired) == until
    assert lifecycle.purge_expired().purged == 0  # the extension keeps it
    assert RecordContent.objects.filter(record=expired).exists()
    # and so does the database
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM compliance_recordcontent WHERE record_id = %s", [expired.pk])
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.RETENTION_EXTENDED)
    assert event.actor == auditor and event.detail["records"] == 1 and "Tax audit" in event.detail["reason"]


def test_an_extension_never_shortens(alice: User, dm: Conversation, auditor: User) -> None:
    record = archived(alice, dm)
    shorter = record.retain_until - timedelta(days=365)

    assert policies.retention_extend(actor=auditor, until=shorter, reason="Shorter?", conversation=dm) == 0

    assert policies.effective_retain_until(record) == record.retain_until
    assert not RetentionExtension.objects.exists()


def test_extensions_refuse_bad_input_and_change_nothing(dm: Conversation, auditor: User) -> None:
    future = date.today() + timedelta(days=30)
    with pytest.raises(ValidationError):
        policies.retention_extend(actor=auditor, until=future, reason=" ", conversation=dm)
    with pytest.raises(ValidationError):
        policies.retention_extend(actor=auditor, until=future, reason="Everything")
    with pytest.raises(ValidationError):
        policies.retention_extend(actor=auditor, until=date.today(), reason="Today", conversation=dm)
    assert not AuditEvent.objects.exists()


def test_an_extension_cannot_be_changed_or_removed(alice: User, dm: Conversation, auditor: User) -> None:
    record = archived(alice, dm)
    policies.retention_extend(
        actor=auditor, until=record.retain_until + timedelta(days=700), reason="Court case", conversation=dm
    )
    extension = RetentionExtension.objects.get()

    with pytest.raises(ValidationError):
        extension.delete()
    for sql in (
        "UPDATE compliance_retentionextension SET retain_until = '2020-01-01'",
        "DELETE FROM compliance_retentionextension",
    ):
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert RetentionExtension.objects.get().retain_until == extension.retain_until


def test_a_regulated_conversation_tells_every_participant_it_is_recorded(
    alice: User, bob: User, dm: Conversation, auditor: User
) -> None:
    from django.test import Client
    from django.urls import reverse

    def notice(user: User) -> bool:
        client = Client()
        client.force_login(user)
        page = client.get(reverse("messenger:conversation", args=[dm.pk])).content.decode()
        return "This conversation is recorded" in page

    assert not notice(alice)  # business letters: archived, no notice needed
    regulated = RetentionPolicy.objects.get(name="Investment services communications (EU)")
    policies.policy_assign(
        actor=auditor, policy_id=regulated.pk, conversation=dm, reason="Client orders desk"
    )

    assert notice(alice) and notice(bob)


def test_administrators_lengthen_policies_in_the_admin_but_cannot_shorten_them(
    auditor: User, django_user_model: type[User]
) -> None:
    from django.test import Client

    root = django_user_model.objects.create_superuser(email="root@kontor.example", password="x-very-long-1")
    admin, reviewer = Client(), Client()
    admin.force_login(root)
    auditor.is_staff = True
    auditor.save(update_fields=["is_staff"])
    reviewer.force_login(auditor)
    default = RetentionPolicy.objects.get(is_default=True)
    url = f"/admin/compliance/retentionpolicy/{default.pk}/change/"
    form = {
        "years": 5,
        "days": 0,
        "from_year_end": "on",
        "legal_basis": default.legal_basis,
        "reason": "Cheaper",
    }

    shorter = admin.post(url, form)

    assert shorter.status_code == 200 and b"never shortened" in shorter.content
    longer = admin.post(url, {**form, "years": 7, "reason": "Counsel's advice of 2 November"})
    assert longer.status_code == 302
    default.refresh_from_db()
    assert default.years == 7
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.POLICY_CHANGED)
    assert event.actor == root and event.detail["reason"] == "Counsel's advice of 2 November"
    # Auditors look but do not change.
    assert reviewer.get(url).status_code == 200
    assert reviewer.post(url, {**form, "years": 9}).status_code == 403
    default.refresh_from_db()
    assert default.years == 7


def test_without_any_policy_the_chat_still_works(alice: User, dm: Conversation) -> None:
    from django.test import Client
    from django.urls import reverse

    RetentionPolicy.objects.all().delete()  # as a flushed test database has it
    client = Client()
    client.force_login(alice)

    assert client.get(reverse("messenger:conversation", args=[dm.pk])).status_code == 200
