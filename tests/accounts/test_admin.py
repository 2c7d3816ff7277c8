"""The admin as HR uses it: people, roles and invitations, and what HR may not do."""

import importlib
import re

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth.models import Group
from django.core import mail
from django.test import Client
from pytest_django import DjangoCaptureOnCommitCallbacks

from accounts import roles, services
from accounts.models import Department, Invitation, User
from tests.accounts.helpers import (
    PEOPLE,
    change_data,
    change_url,
    invitation_link,
    make_department,
    set_fast_password,
)
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def _errors(html: str) -> list[str]:
    return re.findall(
        r"<li>(.*?)</li>", "".join(re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', html))
    )


@pytest.fixture
def hr_client(client: Client, hr_user: User) -> Client:
    client.force_login(hr_user)
    return client


@pytest.fixture
def superuser(db: None) -> User:
    return make_user(email="root@kontor.example", display_name="Root Admin", is_superuser=True, is_staff=True)


def test_hr_opens_the_people_list(hr_client: Client, alice: User, bob: User) -> None:
    response = hr_client.get(PEOPLE)

    assert response.status_code == 200
    page = response.content.decode()
    assert "alice@kontor.example" in page
    assert "bob@kontor.example" in page


def test_hr_adds_a_person_with_a_role(hr_client: Client) -> None:
    sales = make_department("Sales")

    response = hr_client.post(
        f"{PEOPLE}add/",
        {
            "email": "Paula.Neu@Kontor.example",
            "display_name": "Paula Neu",
            "password": "",
            "job_title": "Key Account Manager",
            "department": sales.pk,
            "phone": "+49 30 1234567",
            "time_zone": "Europe/Berlin",
            "roles": [roles.HR],
            "_save": "Save",
        },
    )

    assert response.status_code == 302, _errors(response.content.decode())
    paula = User.objects.get(email="paula.neu@kontor.example")
    assert response["Location"] == change_url(paula)
    assert paula.display_name == "Paula Neu"
    assert paula.job_title == "Key Account Manager"
    assert paula.department == sales
    assert paula.phone == "+49 30 1234567"
    assert paula.time_zone == "Europe/Berlin"
    assert paula.has_role(roles.HR)
    assert paula.is_staff
    assert not paula.is_superuser
    assert EmailAddress.objects.filter(user=paula, email=paula.email, verified=True, primary=True).exists()


def test_person_added_with_a_password_can_sign_in(hr_client: Client, client: Client) -> None:
    hr_client.post(
        f"{PEOPLE}add/",
        {"email": "paula.neu@kontor.example", "display_name": "Paula Neu", "password": "Quiet-Harbour-42"}
        | {"time_zone": "UTC", "_save": "Save"},
    )
    hr_client.post("/accounts/logout/")

    response = client.post(
        "/accounts/login/", {"login": "paula.neu@kontor.example", "password": "Quiet-Harbour-42"}
    )

    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_weak_password_in_the_add_form_is_refused_with_an_error(hr_client: Client) -> None:
    response = hr_client.post(
        f"{PEOPLE}add/",
        {"email": "paula.neu@kontor.example", "display_name": "Paula", "password": "123", "time_zone": "UTC"},
    )

    assert response.status_code == 200
    assert "This password is too short" in response.content.decode()
    assert not User.objects.filter(email="paula.neu@kontor.example").exists()


def test_adding_an_existing_address_shows_one_clear_error(hr_client: Client, alice: User) -> None:
    response = hr_client.post(
        f"{PEOPLE}add/", {"email": "ALICE@kontor.example", "display_name": "Alice 2", "time_zone": "UTC"}
    )

    assert response.status_code == 200
    errors = _errors(response.content.decode())
    assert errors
    assert any("already exists" in error for error in errors)
    # HR should read what went wrong, not the name of a database constraint.
    assert not any("Constraint" in error for error in errors), errors
    assert User.objects.filter(email__iexact="alice@kontor.example").count() == 1


def test_hr_changes_department_and_job_title(hr_client: Client, alice: User) -> None:
    finance = make_department("Finance")

    response = hr_client.post(
        change_url(alice), change_data(alice, department=finance.pk, job_title="Head of Finance")
    )

    assert response.status_code == 302, _errors(response.content.decode())
    alice.refresh_from_db()
    assert alice.department == finance
    assert alice.job_title == "Head of Finance"
    assert alice.display_name == "Alice Adler"


def test_hr_invites_someone_through_the_admin(
    hr_client: Client, hr_user: User, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = hr_client.post(
            "/admin/accounts/invitation/add/",
            {"email": "Nora.Neu@kontor.example", "display_name": "Nora Neu", "job_title": "Dispatcher"},
        )

    assert response.status_code == 302, _errors(response.content.decode())
    invitation = Invitation.objects.get()
    assert invitation.email == "nora.neu@kontor.example"
    assert invitation.invited_by == hr_user
    assert invitation.user.job_title == "Dispatcher"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["nora.neu@kontor.example"]
    link = invitation_link()
    hr_client.post("/accounts/logout/")
    assert hr_client.get(link).status_code == 200


def test_inviting_an_active_colleague_in_the_admin_shows_an_error(
    hr_client: Client, alice: User, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = hr_client.post("/admin/accounts/invitation/add/", {"email": "alice@kontor.example"})

    assert response.status_code == 200
    assert "This person already has an account." in response.content.decode()
    assert not Invitation.objects.exists()
    assert mail.outbox == []


def test_hr_cannot_see_superusers(hr_client: Client, superuser: User, alice: User) -> None:
    listing = hr_client.get(PEOPLE).content.decode()
    change = hr_client.get(change_url(superuser))

    assert "root@kontor.example" not in listing
    assert "alice@kontor.example" in listing
    assert change.status_code == 302
    assert change["Location"] == "/admin/"


def test_hr_cannot_edit_a_superuser(hr_client: Client, superuser: User) -> None:
    response = hr_client.post(
        change_url(superuser), change_data(superuser, email="hr-owned@kontor.example", display_name="Owned")
    )
    password = hr_client.post(
        f"{PEOPLE}{superuser.pk}/password/", {"password1": "Taken-Over-1234", "password2": "Taken-Over-1234"}
    )

    assert response.status_code == 302
    assert password.status_code in (302, 404)
    superuser.refresh_from_db()
    assert superuser.email == "root@kontor.example"
    assert superuser.display_name == "Root Admin"
    assert superuser.check_password(PASSWORD)


def test_hr_cannot_delete_people(hr_client: Client, alice: User) -> None:
    listing = hr_client.get(PEOPLE).content.decode()
    page = hr_client.get(f"{PEOPLE}{alice.pk}/delete/")
    post = hr_client.post(f"{PEOPLE}{alice.pk}/delete/", {"post": "yes"})
    action = hr_client.post(
        PEOPLE, {"action": "delete_selected", "_selected_action": [alice.pk], "post": "yes"}
    )

    assert 'value="delete_selected"' not in listing
    assert page.status_code == 403
    assert post.status_code == 403
    assert action.status_code in (200, 302)
    assert User.objects.filter(pk=alice.pk).exists()


def test_hr_does_not_see_superuser_or_permission_fields(hr_client: Client, alice: User) -> None:
    page = hr_client.get(change_url(alice)).content.decode()

    for field in ("is_superuser", "is_staff", "user_permissions", "groups", "is_active"):
        assert f'name="{field}"' not in page
    assert 'name="roles"' in page


def test_hr_cannot_make_anyone_superuser_by_posting_the_field(
    hr_client: Client, hr_user: User, alice: User
) -> None:
    for user in (hr_user, alice):
        hr_client.post(
            change_url(user),
            change_data(user, is_superuser="on", is_staff="on", user_permissions=[1, 2, 3], groups=[1]),
        )

    for user in (hr_user, alice):
        user.refresh_from_db()
        assert not user.is_superuser
        assert not user.user_permissions.exists()
    assert not alice.is_staff


def test_ordinary_member_is_sent_to_the_admin_login(client: Client, alice: User) -> None:
    client.force_login(alice)

    for path in ("/admin/", PEOPLE, "/admin/accounts/invitation/add/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_admin_login_does_not_skip_the_second_factor(client: Client, hr_user: User) -> None:
    set_fast_password(hr_user)
    TOTP.activate(hr_user, generate_totp_secret())

    client.post(
        "/admin/login/?next=/admin/", {"username": hr_user.email, "password": PASSWORD, "next": "/admin/"}
    )

    # The password alone must not open the admin: the second factor is the point.
    assert client.get("/admin/").status_code != 200
    assert client.get("/").status_code != 200


def test_giving_the_hr_role_makes_staff_and_removing_it_removes_staff(hr_client: Client, alice: User) -> None:
    hr_client.post(change_url(alice), change_data(alice, roles=[roles.HR]))
    alice.refresh_from_db()
    assert alice.is_staff
    assert alice.has_role(roles.HR)

    hr_client.post(change_url(alice), change_data(alice, roles=[]))
    alice.refresh_from_db()
    assert not alice.is_staff
    assert not alice.has_role(roles.HR)


def test_new_hr_colleague_can_open_the_admin(client: Client, alice: User) -> None:
    services.user_roles_set(actor=None, user=alice, roles=[roles.HR])
    client.force_login(alice)

    assert client.get(PEOPLE).status_code == 200

    services.user_roles_set(actor=None, user=alice, roles=[])
    assert client.get(PEOPLE).status_code == 302


def test_superuser_stays_staff_without_roles(superuser: User) -> None:
    services.user_roles_set(actor=None, user=superuser, roles=[roles.HR])
    services.user_roles_set(actor=None, user=superuser, roles=[])

    superuser.refresh_from_db()
    assert superuser.is_staff


def test_hr_group_has_exactly_the_listed_permissions(db: None) -> None:
    hr = Group.objects.get(name=roles.HR)

    granted = set(hr.permissions.values_list("content_type__app_label", "codename"))

    assert granted == set(roles.HR_PERMISSIONS)
    assert not Group.objects.get(name=roles.AUDITORS).permissions.exists()


def test_migration_and_roles_module_agree() -> None:
    migration = importlib.import_module("accounts.migrations.0002_roles")
    offboarding = importlib.import_module("accounts.migrations.0006_offboarding")
    # hr's 0001 moved the report's and the schedule's permissions to the hr app.
    moved = importlib.import_module("hr.migrations.0001_initial").MOVED
    offboarding_now = tuple(
        ("hr" if codename.split("_", 1)[1] in moved else app, codename)
        for app, codename in offboarding.HR_PERMISSIONS
    )

    assert migration.HR == roles.HR == offboarding.HR
    assert migration.AUDITORS == roles.AUDITORS
    assert tuple(migration.HR_PERMISSIONS) + offboarding_now == tuple(roles.HR_PERMISSIONS)


def test_hr_permissions_cover_nothing_outside_people() -> None:
    # People (accounts) and their offboarding (hr): nothing of the archive.
    assert {app for app, _ in roles.HR_PERMISSIONS} == {"accounts", "hr"}
    assert not any(codename == "delete_user" for _, codename in roles.HR_PERMISSIONS)


def test_hr_revokes_an_invitation(
    hr_client: Client, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        invitation = services.invitation_create(
            invited_by=None, email="nora.neu@kontor.example", base_url="http://testserver/"
        )
    link = invitation_link()

    response = hr_client.post(
        "/admin/accounts/invitation/", {"action": "revoke", "_selected_action": [invitation.pk]}
    )

    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.state == "revoked"
    hr_client.post("/accounts/logout/")
    assert hr_client.get(link).status_code == 404


def test_hr_resends_an_invitation_with_a_new_link(
    hr_client: Client, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = services.invitation_create(
            invited_by=None, email="nora.neu@kontor.example", base_url="http://testserver/"
        )
        response = hr_client.post(
            "/admin/accounts/invitation/", {"action": "resend", "_selected_action": [first.pk]}
        )

    assert response.status_code == 302
    assert len(mail.outbox) == 2
    assert mail.outbox[0].body != mail.outbox[1].body
    first.refresh_from_db()
    assert first.state == "revoked"
    assert Invitation.objects.get(revoked_at=None).state == "pending"


def test_saving_an_invitation_page_changes_nothing(
    hr_client: Client, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        invitation = services.invitation_create(
            invited_by=None, email="nora.neu@kontor.example", base_url="http://testserver/"
        )
    link = invitation_link()
    assert hr_client.get(f"/admin/accounts/invitation/{invitation.pk}/change/").status_code == 200

    # A sent invitation is a record: pressing "Save" on its page must neither
    # fail nor send a new link.
    with django_capture_on_commit_callbacks(execute=True):
        response = hr_client.post(f"/admin/accounts/invitation/{invitation.pk}/change/", {"_save": "Save"})

    assert response.status_code in (302, 403)
    assert len(mail.outbox) == 1
    assert Invitation.objects.get().state == "pending"
    hr_client.post("/accounts/logout/")
    assert hr_client.get(link).status_code == 200


def test_hr_creates_a_department_with_a_head(hr_client: Client, alice: User) -> None:
    response = hr_client.post(
        "/admin/accounts/department/add/", {"name": "Logistics", "head": alice.pk, "_save": "Save"}
    )

    assert response.status_code == 302
    assert Department.objects.get(name="Logistics").head == alice
    assert "Logistics" in hr_client.get("/admin/accounts/department/").content.decode()


def test_hr_adds_a_department_and_an_inactive_head_is_refused(
    client: Client, hr_user: User, alice: User
) -> None:
    client.force_login(hr_user)

    response = client.post("/admin/accounts/department/add/", {"name": "  Customs  ", "head": alice.pk})
    assert response.status_code == 302
    customs = Department.objects.get(name="Customs")
    assert customs.head == alice

    alice.is_active = False
    alice.save(update_fields=["is_active"])
    refused = client.post(
        f"/admin/accounts/department/{customs.pk}/change/", {"name": "Customs", "head": alice.pk}
    )
    assert refused.status_code == 200  # the form again, nothing saved
    customs.refresh_from_db()
    assert customs.head == alice and Department.objects.count() == 1
