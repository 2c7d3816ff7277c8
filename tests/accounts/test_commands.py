"""The management commands that set Kontor up: ensure_admin and seed_demo."""

import io
import re

import pytest
from allauth.account.models import EmailAddress
from django.core.management import CommandError, call_command

from accounts import roles
from accounts.models import Department, User
from config.management.commands import seed_demo

pytestmark = pytest.mark.django_db


def _run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def no_admin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KONTOR_ADMIN_EMAIL", raising=False)
    monkeypatch.delenv("KONTOR_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("KONTOR_DEMO_PASSWORD", raising=False)


def test_ensure_admin_creates_one_superuser_and_prints_the_password_once(no_admin_env: None) -> None:
    first = _run("ensure_admin")

    admin = User.objects.get(is_superuser=True)
    assert admin.email == "admin@kontor.localhost"
    assert admin.is_staff
    assert admin.is_active
    match = re.search(r"password: (\S+)", first)
    assert match is not None, first
    password = match.group(1)
    assert admin.check_password(password)
    assert "shown only this once" in first
    assert EmailAddress.objects.filter(user=admin, email=admin.email, verified=True).exists()

    second = _run("ensure_admin")

    assert User.objects.filter(is_superuser=True).count() == 1
    assert password not in second
    assert "admin@kontor.localhost" in second


def test_ensure_admin_honours_the_environment(no_admin_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KONTOR_ADMIN_EMAIL", "Chef@Kontor.example")
    monkeypatch.setenv("KONTOR_ADMIN_PASSWORD", "Chosen-By-The-Operator-77")

    output = _run("ensure_admin")

    admin = User.objects.get(is_superuser=True)
    assert admin.email == "chef@kontor.example"
    assert admin.check_password("Chosen-By-The-Operator-77")
    assert "shown only this once" not in output


def test_ensure_admin_leaves_an_existing_administrator_alone(
    no_admin_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run("ensure_admin")
    monkeypatch.setenv("KONTOR_ADMIN_EMAIL", "another@kontor.example")
    monkeypatch.setenv("KONTOR_ADMIN_PASSWORD", "Chosen-By-The-Operator-77")

    _run("ensure_admin")

    assert list(User.objects.filter(is_superuser=True).values_list("email", flat=True)) == [
        "admin@kontor.localhost"
    ]


def test_ensure_admin_refuses_a_weak_password_with_a_clear_message(
    no_admin_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KONTOR_ADMIN_PASSWORD", "admin")

    # A CommandError prints one line naming the problem, not a traceback.
    with pytest.raises(CommandError, match="KONTOR_ADMIN_PASSWORD"):
        _run("ensure_admin")

    assert not User.objects.exists()


def test_seed_demo_creates_a_small_company(no_admin_env: None) -> None:
    output = _run("seed_demo")

    assert set(Department.objects.values_list("name", flat=True)) == set(seed_demo.DEPARTMENTS)
    people = User.objects.filter(email__endswith="@nordlicht.example")
    assert people.count() == 12
    assert all(person.is_active for person in people)
    hr = [person for person in people if person.has_role(roles.HR)]
    auditors = [person for person in people if person.has_role(roles.AUDITORS)]
    assert [person.email for person in hr] == ["nina.hoffmann@nordlicht.example"]
    assert hr[0].is_staff
    assert [person.email for person in auditors] == ["david.okafor@nordlicht.example"]
    assert not auditors[0].is_staff
    assert people.filter(is_staff=True).count() == 1
    assert not people.filter(is_superuser=True).exists()
    assert Department.objects.get(name="Sales").head == User.objects.get(
        email="jonas.becker@nordlicht.example"
    )
    match = re.search(r"password for each: (\S+)", output)
    assert match is not None, output
    assert User.objects.get(email="katrin.vogel@nordlicht.example").check_password(match.group(1))


def test_seed_demo_twice_creates_nothing_new(no_admin_env: None) -> None:
    _run("seed_demo", "--password", "Demo-Password-2026")
    katrin = User.objects.get(email="katrin.vogel@nordlicht.example")
    before = (User.objects.count(), Department.objects.count(), katrin.password)

    output = _run("seed_demo", "--password", "Other-Password-2027")

    katrin.refresh_from_db()
    assert (User.objects.count(), Department.objects.count(), katrin.password) == before
    assert "exists already" in output
    assert "Other-Password-2027" not in output


def test_seed_demo_gives_newcomers_conversations_to_look_at() -> None:
    from messenger.models import Conversation, Message

    call_command("seed_demo", password="demo-password-1", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())

    channels = set(Conversation.objects.filter(kind="channel").values_list("name", flat=True))
    assert {"general", "sales-team", "warehouse-nord"} <= channels
    assert Conversation.objects.filter(kind="direct").count() == 1
    # Ten in the channels and the direct conversation, one in the group; none twice.
    assert Message.objects.count() == 11
    assert Message.objects.filter(body__contains="@channel").exists()
