"""Roles cannot be self-granted (issue 16, item 5).

Nobody changes their own roles; only an administrator grants or removes the
Auditor and Data protection roles; every change is an audit event naming the
actor, the roles before and after and where it came from; with the four-eyes
rule a second administrator confirms a new auditor. Each path is tried: the
admin's change and add forms, the admin's bulk actions, the service from the
shell, and the four-eyes grants page.
"""

import re
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from pytest_django import Settings

from accounts import roles, services, signals
from accounts.models import RoleGrant, User
from compliance.models import AuditEvent
from tests.accounts.helpers import PEOPLE, change_data, change_url
from tests.factories import make_user

pytestmark = pytest.mark.django_db

GRANTS = "/admin/accounts/rolegrant/"
ROLE_KINDS = [
    AuditEvent.Kind.ROLES_CHANGED,
    AuditEvent.Kind.ROLE_GRANT_REQUESTED,
    AuditEvent.Kind.ROLE_GRANT_CONFIRMED,
    AuditEvent.Kind.ROLE_GRANT_CANCELLED,
]


def _role_names(user: User) -> set[str]:
    return set(User.objects.get(pk=user.pk).groups.values_list("name", flat=True))


def _role_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(kind__in=ROLE_KINDS).order_by("pk"))


def _errors(html: str) -> list[str]:
    return re.findall(
        r"<li>(.*?)</li>", "".join(re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', html))
    )


def _messages(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def root(db: None) -> User:
    return make_user(email="root@kontor.example", display_name="Root Admin", is_superuser=True, is_staff=True)


@pytest.fixture
def root2(db: None) -> User:
    return make_user(
        email="second.admin@kontor.example", display_name="Second Admin", is_superuser=True, is_staff=True
    )


# --- The admin's change form -------------------------------------------------------


def test_hr_cannot_tick_auditor_on_its_own_user(hr_user: User) -> None:
    response = _client(hr_user).post(
        change_url(hr_user),
        change_data(hr_user, roles=[roles.HR, roles.AUDITORS], display_name="Hanna Renamed"),
    )

    assert response.status_code == 200
    assert "You cannot change your own roles: another administrator has to. Nothing was changed." in _errors(
        response.content.decode()
    )
    hr_user.refresh_from_db()
    assert _role_names(hr_user) == {roles.HR}
    assert hr_user.display_name == "Hanna Hofer"  # nothing of the refused form was saved
    assert _role_events() == []


def test_hr_cannot_give_a_colleague_the_auditor_role(hr_user: User, alice: User) -> None:
    response = _client(hr_user).post(change_url(alice), change_data(alice, roles=[roles.AUDITORS]))

    assert response.status_code == 200
    assert "Only an administrator can grant or remove the Auditor role. Nothing was changed." in _errors(
        response.content.decode()
    )
    assert _role_names(alice) == set()
    assert _role_events() == []


def test_hr_cannot_take_the_auditor_role_away(hr_user: User, auditor: User) -> None:
    response = _client(hr_user).post(change_url(auditor), change_data(auditor, roles=[]))

    assert response.status_code == 200
    assert "Only an administrator can grant or remove the Auditor role" in response.content.decode()
    assert _role_names(auditor) == {roles.AUDITORS}


def test_hr_cannot_give_the_data_protection_role(hr_user: User, alice: User) -> None:
    response = _client(hr_user).post(change_url(alice), change_data(alice, roles=[roles.DATA_PROTECTION]))

    assert response.status_code == 200
    assert _role_names(alice) == set()


def test_hr_cannot_add_a_new_person_as_auditor(hr_user: User) -> None:
    response = _client(hr_user).post(
        f"{PEOPLE}add/",
        {
            "email": "mole@kontor.example",
            "display_name": "Mole",
            "password": "",
            "time_zone": "UTC",
            "roles": [roles.AUDITORS],
            "_save": "Save",
        },
    )

    assert response.status_code == 200
    assert "Only an administrator can grant or remove the Auditor role" in response.content.decode()
    assert not User.objects.filter(email="mole@kontor.example").exists()


def test_the_form_ignores_posted_superuser_staff_groups_and_permissions(hr_user: User) -> None:
    auditors = Group.objects.get(name=roles.AUDITORS)
    everything = list(Permission.objects.values_list("pk", flat=True)[:5])

    _client(hr_user).post(
        change_url(hr_user),
        change_data(
            hr_user, is_superuser="on", is_staff="on", groups=[auditors.pk], user_permissions=everything
        ),
    )

    hr_user.refresh_from_db()
    assert not hr_user.is_superuser
    assert _role_names(hr_user) == {roles.HR}
    assert not hr_user.user_permissions.exists()


def test_an_administrator_cannot_change_their_own_roles_either(root: User) -> None:
    response = _client(root).post(change_url(root), change_data(root, roles=[roles.AUDITORS]))

    assert response.status_code == 200
    assert "You cannot change your own roles" in response.content.decode()
    assert _role_names(root) == set()
    assert _role_events() == []


def test_an_administrator_makes_a_colleague_an_auditor_and_it_is_audited(root: User, alice: User) -> None:
    response = _client(root).post(change_url(alice), change_data(alice, roles=[roles.AUDITORS]))

    assert response.status_code == 302, _errors(response.content.decode())
    assert _role_names(alice) == {roles.AUDITORS}
    [event] = _role_events()
    assert event.kind == AuditEvent.Kind.ROLES_CHANGED
    assert event.actor == root
    assert event.detail["user"] == alice.pk
    assert event.detail["email"] == alice.email
    assert event.detail["before"] == []
    assert event.detail["after"] == [roles.AUDITORS]
    assert event.detail["added"] == [roles.AUDITORS]
    assert event.detail["removed"] == []
    assert event.detail["origin"] == "admin:change_form"
    assert event.detail["is_staff"] == {"before": False, "after": False}


def test_hr_may_still_give_the_hr_role_and_that_is_audited(hr_user: User, alice: User) -> None:
    response = _client(hr_user).post(change_url(alice), change_data(alice, roles=[roles.HR]))

    assert response.status_code == 302
    [event] = _role_events()
    assert event.actor == hr_user
    assert (event.detail["before"], event.detail["after"]) == ([], [roles.HR])
    assert event.detail["is_staff"] == {"before": False, "after": True}


def test_saving_a_data_protection_officer_keeps_the_role(root: User, hr_user: User) -> None:
    # The form offered only HR and Auditor before, so any save dropped the role.
    dpo = make_user(email="dpo@kontor.example", roles=[roles.DATA_PROTECTION])

    response = _client(hr_user).post(change_url(dpo), change_data(dpo, job_title="DPO"))

    assert response.status_code == 302, _errors(response.content.decode())
    assert _role_names(dpo) == {roles.DATA_PROTECTION}
    assert _role_events() == []


# --- Bulk actions ------------------------------------------------------------------


def _action(client: Client, action: str, people: list[User]) -> Any:
    return client.post(
        PEOPLE, {"action": action, "_selected_action": [p.pk for p in people], "index": 0}, follow=True
    )


def test_an_administrator_grants_auditor_in_bulk_but_not_to_themselves(
    root: User, alice: User, bob: User
) -> None:
    response = _action(_client(root), "grant_auditor", [root, alice, bob])

    assert _role_names(alice) == {roles.AUDITORS}
    assert _role_names(bob) == {roles.AUDITORS}
    assert _role_names(root) == set()
    said = _messages(response)
    assert (
        f"{root.email}: You cannot change your own roles: another administrator has to. Nothing was changed."
        in said
    )
    assert "Changed the roles of 2 person(s)." in said
    events = _role_events()
    assert [e.detail["user"] for e in events] == sorted([alice.pk, bob.pk], key=lambda pk: pk)
    assert all(e.actor == root and e.detail["origin"] == "admin:action" for e in events)


def test_an_administrator_removes_the_auditor_role_in_bulk(root: User, auditor: User) -> None:
    _action(_client(root), "remove_auditor", [auditor])

    assert _role_names(auditor) == set()
    [event] = _role_events()
    assert (event.detail["before"], event.detail["after"]) == ([roles.AUDITORS], [])


def test_hr_cannot_use_the_role_actions(hr_user: User, alice: User) -> None:
    client = _client(hr_user)

    for action in ("grant_auditor", "grant_data_protection"):
        _action(client, action, [hr_user, alice])

    assert _role_names(hr_user) == {roles.HR}
    assert _role_names(alice) == set()
    assert _role_events() == []


# --- The service, as the shell uses it ---------------------------------------------------


def test_the_service_refuses_a_self_grant(hr_user: User) -> None:
    with pytest.raises(services.RoleChangeRefused, match="cannot change your own roles"):
        services.user_roles_set(actor=hr_user, user=hr_user, roles=[roles.HR, roles.AUDITORS])

    with pytest.raises(services.RoleChangeRefused, match="cannot change your own roles"):
        services.user_roles_set(actor=hr_user, user=hr_user, roles=[])

    assert _role_names(hr_user) == {roles.HR}
    assert _role_events() == []


def test_the_service_refuses_hr_granting_auditor_or_touching_an_administrator(
    hr_user: User, alice: User, root: User
) -> None:
    with pytest.raises(services.RoleChangeRefused, match="Only an administrator"):
        services.user_roles_set(actor=hr_user, user=alice, add=[roles.AUDITORS])
    with pytest.raises(services.RoleChangeRefused, match="administrator's roles"):
        services.user_roles_set(actor=hr_user, user=root, add=[roles.HR])
    with pytest.raises(services.RoleChangeRefused, match="Only HR or an administrator"):
        services.user_roles_set(actor=alice, user=hr_user, remove=[roles.HR])

    assert _role_names(alice) == set()
    assert _role_names(root) == set()
    assert _role_names(hr_user) == {roles.HR}
    assert _role_events() == []


def test_the_service_from_the_shell_records_who_did_what(root: User, hr_user: User) -> None:
    change = services.user_roles_set(actor=root, user=hr_user, roles=[roles.AUDITORS], origin="shell")

    assert change.before == (roles.HR,)
    assert change.after == (roles.AUDITORS,)
    hr_user.refresh_from_db()
    assert _role_names(hr_user) == {roles.AUDITORS}
    assert not hr_user.is_staff  # without HR, no admin
    [event] = _role_events()
    assert event.kind == AuditEvent.Kind.ROLES_CHANGED
    assert event.actor == root
    assert event.detail == {
        "user": hr_user.pk,
        "email": hr_user.email,
        "origin": "shell",
        "before": [roles.HR],
        "after": [roles.AUDITORS],
        "added": [roles.AUDITORS],
        "removed": [roles.HR],
        "pending": [],
        "confirmed": [],
        "cancelled": [],
        "is_staff": {"before": True, "after": False},
    }


def test_an_unchanged_save_writes_no_event(root: User, auditor: User) -> None:
    services.user_roles_set(actor=root, user=auditor, roles=[roles.AUDITORS])

    assert _role_events() == []


def test_a_role_change_nobody_would_record_is_refused(root: User, alice: User) -> None:
    from compliance.receivers import audit_role_change

    assert signals.role_changed.disconnect(
        audit_role_change, sender=User, dispatch_uid="compliance.audit_role_change"
    )
    try:
        with pytest.raises(ImproperlyConfigured, match="audit log"):
            services.user_roles_set(actor=root, user=alice, add=[roles.AUDITORS])
    finally:
        signals.role_changed.connect(
            audit_role_change, sender=User, dispatch_uid="compliance.audit_role_change"
        )

    assert _role_names(alice) == set()


# --- Four eyes -------------------------------------------------------------------------


@pytest.fixture
def four_eyes(settings: Settings) -> None:
    settings.KONTOR_AUDIT_FOUR_EYES = True


@pytest.mark.usefixtures("four_eyes")
def test_four_eyes_a_new_auditor_waits_for_a_second_administrator(
    root: User, root2: User, alice: User
) -> None:
    response = _client(root).post(change_url(alice), change_data(alice, roles=[roles.AUDITORS]), follow=True)

    assert any("takes effect when another administrator confirms it" in m for m in _messages(response))
    assert _role_names(alice) == set()  # not yet
    grant = RoleGrant.objects.get(user=alice, role=roles.AUDITORS)
    assert grant.state == "pending"
    assert grant.requested_by == root
    [requested] = _role_events()
    assert requested.kind == AuditEvent.Kind.ROLE_GRANT_REQUESTED
    assert requested.actor == root
    assert requested.detail["pending"] == [roles.AUDITORS]
    assert requested.detail["after"] == []

    # Both administrators see it waiting, on the person's page and under Role grants.
    page = _client(root2).get(change_url(alice)).content.decode()
    assert "Auditors (granted by Root Admin;" in page
    assert str(alice) in _client(root2).get(GRANTS).content.decode()

    # The granting administrator cannot confirm it themselves.
    response = _client(root).post(
        GRANTS, {"action": "confirm", "_selected_action": [grant.pk], "index": 0}, follow=True
    )
    assert any("a second administrator has to confirm it" in m for m in _messages(response))
    assert _role_names(alice) == set()

    # A second administrator does.
    response = _client(root2).post(
        GRANTS, {"action": "confirm", "_selected_action": [grant.pk], "index": 0}, follow=True
    )
    assert any("confirmed: it is in effect now" in m for m in _messages(response))
    assert _role_names(alice) == {roles.AUDITORS}
    grant.refresh_from_db()
    assert (grant.state, grant.confirmed_by) == ("confirmed", root2)
    confirmed = _role_events()[-1]
    assert confirmed.kind == AuditEvent.Kind.ROLE_GRANT_CONFIRMED
    assert confirmed.actor == root2
    assert (confirmed.detail["before"], confirmed.detail["after"]) == ([], [roles.AUDITORS])
    assert confirmed.detail["origin"] == "admin:role_grants"


@pytest.mark.usefixtures("four_eyes")
def test_four_eyes_in_the_shell_and_an_administrator_cannot_confirm_their_own_grant(
    root: User, root2: User
) -> None:
    change = services.user_roles_set(actor=root, user=root2, add=[roles.AUDITORS])
    grant = RoleGrant.objects.get(user=root2)
    assert change.pending == (roles.AUDITORS,)

    with pytest.raises(services.RoleChangeRefused, match="granted to yourself"):
        services.role_grant_confirm(actor=root2, grant=grant)
    with pytest.raises(services.RoleChangeRefused, match="second administrator"):
        services.role_grant_confirm(actor=root, grant=grant)
    assert _role_names(root2) == set()

    services.role_grant_cancel(actor=root, grant=grant)
    assert RoleGrant.objects.get(pk=grant.pk).state == "cancelled"
    assert _role_events()[-1].kind == AuditEvent.Kind.ROLE_GRANT_CANCELLED
    with pytest.raises(services.RoleChangeRefused, match="cancelled already"):
        services.role_grant_confirm(actor=root, grant=grant)


@pytest.mark.usefixtures("four_eyes")
def test_four_eyes_removing_a_role_takes_effect_at_once(root: User, auditor: User) -> None:
    services.user_roles_set(actor=root, user=auditor, roles=[])

    assert _role_names(auditor) == set()
    assert not RoleGrant.objects.exists()


@pytest.mark.usefixtures("four_eyes")
def test_hr_cannot_open_or_confirm_role_grants(hr_user: User, root: User, alice: User) -> None:
    services.user_roles_set(actor=root, user=alice, add=[roles.AUDITORS])
    grant = RoleGrant.objects.get()
    client = _client(hr_user)

    assert client.get(GRANTS).status_code == 403
    client.post(GRANTS, {"action": "confirm", "_selected_action": [grant.pk], "index": 0})
    with pytest.raises(services.RoleChangeRefused):
        services.role_grant_confirm(actor=hr_user, grant=grant)

    assert _role_names(alice) == set()
    assert RoleGrant.objects.get().state == "pending"
