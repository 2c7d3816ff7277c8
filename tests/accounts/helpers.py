"""Helpers shared by the accounts tests."""

import re
from typing import Any, cast

from django.core import mail
from django.test import Client

from accounts.models import Department, User
from tests.factories import PASSWORD, DepartmentFactory

PEOPLE = "/admin/accounts/user/"


def set_fast_password(user: User, password: str = PASSWORD) -> User:
    """Re-hash ``password`` with the test hasher so that password logins are quick."""
    user.set_password(password)
    user.save(update_fields=["password"])
    return user


def log_in(client: Client, email: str, password: str = PASSWORD) -> None:
    """Sign in through allauth's login page and expect to land on the home page."""
    response = client.post("/accounts/login/", {"login": email, "password": password})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == "/"


def make_department(name: str) -> Department:
    return cast(Department, DepartmentFactory(name=name))


def invitation_link(index: int = -1) -> str:
    """The path of the invitation link in a sent mail (the last one by default)."""
    body = str(mail.outbox[index].body)
    match = re.search(r"http://testserver(/invite/[A-Za-z0-9_-]+/)", body)
    assert match is not None, body
    return match.group(1)


def change_url(user: User) -> str:
    """The person's change page in the admin."""
    return f"{PEOPLE}{user.pk}/change/"


def change_data(user: User, **overrides: Any) -> dict[str, Any]:
    """What the change form posts back when HR saves without touching anything."""
    data: dict[str, Any] = {
        "email": user.email,
        "display_name": user.display_name,
        "job_title": user.job_title,
        "department": user.department_id or "",
        "phone": user.phone,
        "time_zone": user.time_zone,
        "roles": [g.name for g in user.groups.all()],
        "_save": "Save",
    }
    data.update(overrides)
    return data
