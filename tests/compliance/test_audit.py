"""The one writer of the audit log: ``compliance.audit.audit_event_record``.

It refuses what it does not know, records where an act came from, fits the
browser into its column, and writes inside the caller's transaction, so an act
and its event commit or roll back together. The compliance services write
through it, with the origin they are given.
"""

from collections.abc import Iterator
from datetime import date

import pytest
from django.db import transaction
from django.test import RequestFactory

from accounts.models import User
from compliance import lifecycle, policies, services
from compliance.audit import USER_AGENT_MAX, Origin, audit_event_record
from compliance.models import AuditEvent, LegalHold
from messenger.models import Conversation
from tests.guards import ensure_retention_policies, flush_guarded_database

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Kontor-Test/1.0"


def _request(address: str = "198.51.100.7", user_agent: str = BROWSER) -> Origin:
    request = RequestFactory().get("/compliance/", REMOTE_ADDR=address, HTTP_USER_AGENT=user_agent)
    return Origin.of(request)


def test_an_unknown_kind_is_refused_and_nothing_is_written(auditor: User) -> None:
    with pytest.raises(ValueError, match="Unknown audit event kind 'record_edited'"):
        audit_event_record(kind="record_edited", actor=auditor, detail={"record": 1})

    assert not AuditEvent.objects.exists()


def test_the_origin_of_a_request_is_recorded_with_the_actor_and_detail(auditor: User) -> None:
    event = audit_event_record(
        kind=AuditEvent.Kind.SEARCHED, actor=auditor, detail={"query": "invoice"}, origin=_request()
    )

    stored = AuditEvent.objects.get()
    assert stored == event
    assert (stored.kind, stored.actor, stored.case) == (AuditEvent.Kind.SEARCHED, auditor, None)
    assert (stored.ip, stored.user_agent, stored.detail) == ("198.51.100.7", BROWSER, {"query": "invoice"})


def test_a_task_or_command_records_no_origin_and_may_name_no_actor() -> None:
    audit_event_record(kind=AuditEvent.Kind.VERIFIED, actor=None)

    stored = AuditEvent.objects.get()
    assert (stored.actor, stored.ip, stored.user_agent, stored.detail) == (None, None, "", {})


def test_a_request_without_an_address_records_none() -> None:
    assert _request(address="").ip is None


def test_a_long_user_agent_is_cut_to_the_column(auditor: User) -> None:
    endless = "Mozilla/5.0 " + "x" * 2000

    assert _request(user_agent=endless).user_agent == endless[:USER_AGENT_MAX]
    # An origin built by hand is cut by the writer as well.
    by_hand = Origin(ip="::1", user_agent=endless)
    audit_event_record(kind=AuditEvent.Kind.VIEWED, actor=auditor, origin=by_hand)
    assert AuditEvent.objects.get().user_agent == endless[:USER_AGENT_MAX]
    assert AuditEvent._meta.get_field("user_agent").max_length == USER_AGENT_MAX


class _Abandoned(Exception):
    pass


def test_the_event_rolls_back_with_the_callers_transaction(auditor: User, alice: User) -> None:
    with pytest.raises(_Abandoned), transaction.atomic():
        services.hold_set(actor=auditor, name="Case 1", reason="Litigation", custodian=alice)
        raise _Abandoned

    assert not LegalHold.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.fixture
def audit_log_wiped_afterwards() -> Iterator[None]:
    """A committed audit event is refused the flush: afterwards the guards are
    lifted, the database emptied and the guards put back (``tests.guards``)."""
    ensure_retention_policies()  # an earlier transactional test may have flushed them
    yield
    flush_guarded_database()


@pytest.mark.django_db(transaction=True)
def test_the_event_commits_with_the_callers_transaction(
    audit_log_wiped_afterwards: None, auditor: User, alice: User
) -> None:
    with transaction.atomic():
        hold = services.hold_set(actor=auditor, name="Case 2", reason="Litigation", custodian=alice)
        event = AuditEvent.objects.get(kind=AuditEvent.Kind.HOLD_SET)
        assert transaction.get_connection().in_atomic_block

    assert transaction.get_autocommit()
    assert AuditEvent.objects.get(pk=event.pk).detail["hold"] == hold.pk


def test_holds_record_where_they_were_set_and_released(auditor: User, alice: User) -> None:
    origin = _request()
    hold = services.hold_set(actor=auditor, name="Case 3", reason="Regulator", custodian=alice, origin=origin)
    services.hold_release(actor=auditor, hold_id=hold.pk, reason="Closed", origin=origin)

    events = AuditEvent.objects.order_by("id")
    assert [(e.kind, e.actor, e.ip, e.user_agent) for e in events] == [
        (AuditEvent.Kind.HOLD_SET, auditor, "198.51.100.7", BROWSER),
        (AuditEvent.Kind.HOLD_RELEASED, auditor, "198.51.100.7", BROWSER),
    ]


def test_a_restriction_records_where_it_was_asked_for(auditor: User, bob: User) -> None:
    lifecycle.processing_restrict(actor=auditor, user_id=bob.pk, request="Ticket 1", origin=_request())

    restricted = AuditEvent.objects.get(kind=AuditEvent.Kind.PROCESSING_RESTRICTED)
    assert (restricted.actor, restricted.ip, restricted.user_agent) == (auditor, "198.51.100.7", BROWSER)
    bob.refresh_from_db()
    assert bob.processing_restricted_at is not None and not bob.is_active


def test_policy_changes_and_extensions_go_through_the_writer(auditor: User, dm: Conversation) -> None:
    policies.retention_extend(actor=auditor, until=date(2099, 12, 31), reason="Court order", conversation=dm)

    extended = AuditEvent.objects.get(kind=AuditEvent.Kind.RETENTION_EXTENDED)
    assert (extended.actor, extended.ip, extended.detail["reason"]) == (auditor, None, "Court order")
