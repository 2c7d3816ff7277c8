"""The named cast: alice and bob are colleagues, charlie an outsider to their
conversations, plus an HR user and an auditor."""

import pytest

from accounts import roles
from accounts.models import User
from tests.factories import PASSWORD, make_user


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def alice(db: None) -> User:
    return make_user(email="alice@kontor.example", display_name="Alice Adler")


@pytest.fixture
def bob(db: None) -> User:
    return make_user(email="bob@kontor.example", display_name="Bob Brandt")


@pytest.fixture
def charlie(db: None) -> User:
    return make_user(email="charlie@kontor.example", display_name="Charlie Czerny")


@pytest.fixture
def hr_user(db: None) -> User:
    return make_user(email="hanna.hr@kontor.example", display_name="Hanna Hofer", roles=[roles.HR])


@pytest.fixture
def auditor(db: None) -> User:
    return make_user(email="otto.audit@kontor.example", display_name="Otto Ortmann", roles=[roles.AUDITORS])
