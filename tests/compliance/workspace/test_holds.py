"""Legal holds from the workspace: set and released through
``compliance.services``, each one audit event with address and browser; the
pages show what each hold covers (records, conversations, period)."""

from datetime import date, timedelta
from typing import Any

import pytest
from django.urls import reverse
from pytest_django import DjangoAssertNumQueries

from accounts.models import User
from compliance import lifecycle, services
from compliance.models import AuditEvent, LegalHold, RetentionRecord
from compliance.workspace import holds
from messenger import services as chat
from messenger.models import Conversation
from messenger.services import group_create
from tests.compliance.workspace.cases_helpers import ADDRESS, BROWSER, client_for, with_totp

pytestmark = pytest.mark.django_db

# The session, the user, the guard (role, second factor), the navigation's
# roles, the holds with their coverage (one query).
HOLDS_PAGE_MAX_QUERIES = 6
HOLDS = "/compliance/holds/"
NEW = "/compliance/holds/new/"


@pytest.fixture
def otto(auditor: User) -> User:
    return with_totp(auditor)


def _archived(author: User, conversation: Conversation, body: str) -> RetentionRecord:
    chat.message_send(actor=author, conversation_id=conversation.pk, body=body)
    record = services.snapshot_conversation(conversation_id=conversation.pk).record
    assert record is not None
    return record


def test_setting_a_hold_from_the_workspace_is_one_audit_event(
    otto: User, bob: User, dm: Conversation
) -> None:
    response = client_for(otto).post(
        NEW,
        {
            "name": "Court case 17 O 42/26",
            "reason": "Litigation hold",
            "custodian": "  BOB@kontor.example ",
            "conversation": dm.pk,
            "date_from": "2026-01-01",
        },
    )

    hold = LegalHold.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("compliance:hold", args=[hold.pk])
    assert (hold.custodian, hold.conversation, hold.date_from, hold.date_to) == (
        bob,
        dm,
        date(2026, 1, 1),
        None,
    )
    event = AuditEvent.objects.get()
    assert (event.kind, event.actor, event.ip, event.user_agent) == (
        AuditEvent.Kind.HOLD_SET,
        otto,
        ADDRESS,
        BROWSER,
    )
    assert event.detail["hold"] == hold.pk and event.detail["custodian"] == bob.pk


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({}, "needs a custodian, a conversation or a date range"),
        ({"custodian": "nobody@kontor.example"}, "No one has this email address."),
        ({"conversation": "999999"}, "There is no conversation with this number."),
        ({"date_from": "2026-02-01", "date_to": "2026-01-01"}, "The end lies before the start."),
        ({"date_from": "2026-02-01", "reason": ""}, "This field is required."),
    ],
)
def test_a_bad_hold_is_refused_with_a_clear_error_and_nothing_written(
    otto: User, fields: dict[str, Any], error: str
) -> None:
    data = {"name": "Tax audit", "reason": "Betriebsprüfung", **fields}

    response = client_for(otto).post(NEW, data)

    assert response.status_code == 400
    assert error in response.content.decode()
    assert not LegalHold.objects.exists()
    assert not AuditEvent.objects.exists()


def test_the_form_can_be_prefilled_from_another_page(otto: User, dm: Conversation) -> None:
    page = client_for(otto).get(NEW, {"conversation": dm.pk}).content.decode()
    assert f'value="{dm.pk}"' in page


def test_releasing_a_hold_needs_a_reason_and_is_one_audit_event(otto: User, dm: Conversation) -> None:
    hold = services.hold_set(actor=otto, name="Court case", reason="Litigation", conversation=dm)
    client = client_for(otto)
    url = reverse("compliance:hold_release", args=[hold.pk])

    refused = client.post(url, {"reason": " "})
    assert refused.status_code == 400
    hold.refresh_from_db()
    assert hold.released_at is None

    response = client.post(url, {"reason": "Judgment final"})

    assert response.status_code == 302
    hold.refresh_from_db()
    assert hold.released_by == otto and hold.released_at is not None
    released = AuditEvent.objects.get(kind=AuditEvent.Kind.HOLD_RELEASED)
    assert (released.actor, released.ip, released.user_agent) == (otto, ADDRESS, BROWSER)
    assert released.detail["reason"] == "Judgment final"
    client.post(url, {"reason": "again"})
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.HOLD_RELEASED).count() == 1
    page = client.get(reverse("compliance:hold", args=[hold.pk])).content.decode()
    assert "Released" in page and url not in page


def test_the_holds_pages_show_what_each_hold_covers(
    otto: User, alice: User, bob: User, charlie: User, dm: Conversation
) -> None:
    board = group_create(actor=alice, name="Board", member_ids=[charlie.pk])
    for body in ("one", "two"):
        _archived(alice, dm, body)
    _archived(charlie, board, "minutes")
    by_alice = services.hold_set(actor=otto, name="Alice's matter", reason="Custodian", custodian=alice)
    by_dm = services.hold_set(actor=otto, name="The DM", reason="Conversation", conversation=dm)
    future = services.hold_set(
        actor=otto, name="Next year", reason="Dates", date_from=date.today() + timedelta(days=400)
    )
    bob_in_board = services.hold_set(
        actor=otto, name="Bob on the board", reason="Both", custodian=bob, conversation=board
    )
    released = services.hold_set(actor=otto, name="Old matter", reason="Done", conversation=board)
    services.hold_release(actor=otto, hold_id=released.pk, reason="Over")
    client = client_for(otto)

    listed: dict[int, Any] = {hold.pk: hold for hold in holds.holds_with_coverage()}
    assert (listed[by_alice.pk].covered_records, listed[by_alice.pk].covered_conversations) == (3, 2)
    assert (listed[by_dm.pk].covered_records, listed[by_dm.pk].covered_conversations) == (2, 1)
    assert listed[future.pk].covered_records == 0 and listed[bob_in_board.pk].covered_records == 0
    page = client.get(HOLDS).content.decode()
    assert "<strong>3</strong> records in 2 conversations" in page
    assert "<strong>2</strong> records in 1 conversation<" in page
    assert page.index("Old matter") > page.index("Released holds") > page.index("Alice&#x27;s matter")

    detail = client.get(reverse("compliance:hold", args=[by_alice.pk])).content.decode()
    assert "Board" in detail and f"no. {dm.pk}" in detail
    assert f"no. {board.pk}" not in client.get(reverse("compliance:hold", args=[by_dm.pk])).content.decode()


def test_what_a_hold_covers_agrees_with_what_stops_the_purge(
    otto: User, alice: User, bob: User, charlie: User, dm: Conversation
) -> None:
    # The pages, the purge's check and the database trigger must tell the same story.
    board = group_create(actor=alice, name="Board", member_ids=[charlie.pk])
    records = [_archived(alice, dm, "a"), _archived(bob, dm, "b"), _archived(charlie, board, "c")]
    today = date.today()
    criteria: list[dict[str, Any]] = [
        {"custodian": charlie},
        {"custodian": bob},
        {"conversation": board},
        {"custodian": alice, "conversation": dm},
        {"date_from": today},
        {"date_to": today - timedelta(days=1)},
        {"custodian": charlie, "date_to": today},
    ]
    for n, scope in enumerate(criteria):
        hold = services.hold_set(actor=otto, name=f"Hold {n}", reason="test", **scope)
        annotated: Any = next(h for h in holds.holds_with_coverage() if h.pk == hold.pk)
        covered = set(holds.records_covered(hold).values_list("pk", flat=True))
        held = {record.pk for record in records if lifecycle.record_is_held(record)}
        assert covered == held, scope
        assert annotated.covered_records == len(covered), scope
        services.hold_release(actor=otto, hold_id=hold.pk, reason="next")


def test_the_holds_list_query_count_does_not_grow_with_holds(
    otto: User,
    alice: User,
    bob: User,
    dm: Conversation,
    django_assert_num_queries: DjangoAssertNumQueries,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    _archived(alice, dm, "Invoice 4711")
    services.hold_set(actor=otto, name="First", reason="Litigation", conversation=dm)
    client = client_for(otto)
    client.get(HOLDS)  # a first request may refresh the session
    with django_assert_max_num_queries(HOLDS_PAGE_MAX_QUERIES) as few:
        assert client.get(HOLDS).status_code == 200

    for n in range(6):
        hold = services.hold_set(
            actor=otto, name=f"Hold {n}", reason="Tax audit", custodian=bob if n % 2 else alice
        )
        if n % 3 == 0:
            services.hold_release(actor=otto, hold_id=hold.pk, reason="Judgment final")
    with django_assert_num_queries(len(few)):
        page = client.get(HOLDS).content.decode()
    assert "Hold 5" in page and "Hold 0" in page
