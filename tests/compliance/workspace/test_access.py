"""C14: only auditors with a second factor enter the workspace; everyone else
is told it does not exist (404), on every route of every area, GET or POST.
Auditors never reach the live chat of conversations they are not in."""

import pytest
from django.urls import reverse

from accounts import roles
from accounts.models import User
from compliance.models import AuditEvent, Case
from compliance.services import hold_set
from compliance.workspace import cases
from messenger.models import Conversation
from messenger.services import group_create
from tests.compliance.workspace.cases_helpers import (
    TRAIL_ROUTES,
    client_for,
    make_dpo,
    with_totp,
    workspace_routes,
)
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def otto(auditor: User) -> User:
    """The auditor, with his authenticator app enrolled."""
    return with_totp(auditor)


@pytest.fixture
def case(otto: User) -> Case:
    return cases.case_open(actor=otto, name="Tax audit 2026", legal_basis="§ 147 AO, request of 2 March")


@pytest.fixture
def ids(case: Case, dm: Conversation, otto: User) -> dict[str, int]:
    hold = hold_set(actor=otto, name="Court case", reason="Litigation", conversation=dm)
    return {"case": case.pk, "conversation": dm.pk, "hold": hold.pk, "user": otto.pk, "person": otto.pk}


def _outsiders(alice: User, hr_user: User) -> dict[str, User | None]:
    root = make_user(email="root@kontor.example", display_name="Root", is_superuser=True, is_staff=True)
    return {
        "anonymous": None,
        "alice, with a second factor": with_totp(alice),
        "hr": hr_user,
        "superuser without the role, with a second factor": with_totp(root),
        "auditor without a second factor": make_user(
            email="new.auditor@kontor.example", display_name="Nina Neu", roles=[roles.AUDITORS]
        ),
    }


def test_every_workspace_route_is_404_for_everyone_but_auditors_with_mfa(
    alice: User, hr_user: User, ids: dict[str, int]
) -> None:
    routes = workspace_routes(ids)
    names = {route.name for route in routes}
    assert {"compliance:cases", "compliance:case", "compliance:holds", "compliance:audit_trail"} <= names
    events_before = AuditEvent.objects.count()
    cases_before = Case.objects.count()

    for who, person in _outsiders(alice, hr_user).items():
        client = client_for(person)
        for route in routes:
            assert client.get(route.url).status_code == 404, f"{who}: GET {route.name}"
            assert (
                client.post(route.url, {"name": "x", "legal_basis": "x", "reason": "x"}).status_code == 404
            ), f"{who}: POST {route.name}"

    assert AuditEvent.objects.count() == events_before
    assert Case.objects.count() == cases_before


def test_an_auditor_with_mfa_gets_in(otto: User, ids: dict[str, int]) -> None:
    # The other side of the test above: the 404s come from the guard.
    client = client_for(otto)
    for name, kwargs in [
        ("compliance:cases", {}),
        ("compliance:case_open", {}),
        ("compliance:case", {"case_id": ids["case"]}),
        ("compliance:case_close", {"case_id": ids["case"]}),
        ("compliance:holds", {}),
        ("compliance:hold_new", {}),
        ("compliance:hold", {"hold_id": ids["hold"]}),
        ("compliance:audit_trail", {}),
        ("compliance:audit_trail_export", {}),
    ]:
        assert client.get(reverse(name, kwargs=kwargs)).status_code == 200, name


def test_the_data_protection_officer_reads_only_the_audit_trail(ids: dict[str, int]) -> None:
    client = client_for(make_dpo())
    routes = workspace_routes(ids)

    for route in routes:
        expected = 200 if route.name.split(":")[-1] in TRAIL_ROUTES else 404
        assert client.get(route.url).status_code == expected, route.name
    assert client.post(reverse("compliance:case_open"), {"name": "x", "legal_basis": "y"}).status_code == 404
    assert not Case.objects.filter(name="x").exists()


def test_the_data_protection_officer_needs_a_second_factor_too(ids: dict[str, int]) -> None:
    dpo = make_user(email="dpo2@kontor.example", display_name="Dieter", roles=[roles.DATA_PROTECTION])
    assert client_for(dpo).get(reverse("compliance:audit_trail")).status_code == 404


def test_an_auditor_cannot_read_live_conversations_they_are_not_in(
    otto: User, alice: User, bob: User, dm: Conversation
) -> None:
    group = group_create(actor=alice, name="Board", member_ids=[bob.pk])
    client = client_for(otto)

    for conversation in (dm, group):
        for name in ("messenger:conversation", "messenger:files", "messenger:settings"):
            url = reverse(name, kwargs={"conversation_id": conversation.pk})
            assert client.get(url).status_code == 404, (conversation, name)
        send = reverse("messenger:send", kwargs={"conversation_id": conversation.pk})
        assert client.post(send, {"body": "Hello from the audit"}).status_code == 404
    assert client_for(alice).get(reverse("messenger:conversation", args=[dm.pk])).status_code == 200


def test_the_workspace_navigation_shows_a_dpo_only_the_audit_trail(otto: User) -> None:
    dpo_page = client_for(make_dpo()).get(reverse("compliance:audit_trail")).content.decode()
    auditor_page = client_for(otto).get(reverse("compliance:audit_trail")).content.decode()

    assert reverse("compliance:cases") not in dpo_page.replace(reverse("compliance:audit_trail"), "")
    assert reverse("compliance:holds") not in dpo_page
    assert reverse("compliance:holds") in auditor_page
