"""factory_boy factories for the named cast of the tests."""

from typing import Any, cast

import factory
from allauth.account.models import EmailAddress
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group

from accounts.models import Department, User
from accounts.roles import HR

PASSWORD = "correct-horse-battery-staple"
# Hash once: PBKDF2 is slow on purpose, and every factory user shares it.
_PASSWORD_HASH = make_password(PASSWORD)


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Department {n}")


class UserFactory(factory.django.DjangoModelFactory):
    """An active employee with a verified address; password is ``PASSWORD``."""

    class Meta:
        model = User
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@kontor.example")
    display_name = factory.Faker("name")
    job_title = "Employee"
    password = _PASSWORD_HASH

    @factory.post_generation
    def verified_email(obj: User, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            EmailAddress.objects.get_or_create(
                user=obj, email=obj.email, defaults={"verified": True, "primary": True}
            )

    @factory.post_generation
    def roles(obj: User, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if create and extracted:
            for name in extracted:
                # get_or_create: a transactional test's flush removes migration-made rows.
                obj.groups.add(Group.objects.get_or_create(name=name)[0])
            if HR in extracted:
                obj.is_staff = True
                obj.save(update_fields=["is_staff"])


def make_user(**fields: Any) -> User:
    """A typed shortcut for ``UserFactory(**fields)``."""
    return cast(User, UserFactory(**fields))


def settings_change(user: User, **changes: Any) -> User:
    """The person changes their own settings on the profile page (the profile
    service), keeping everything else as it is."""
    from accounts.services import profile_update

    fields: dict[str, Any] = {
        "display_name": user.display_name,
        "job_title": user.job_title,
        "phone": user.phone,
        "time_zone": user.time_zone,
    }
    return profile_update(user=user, **{**fields, **changes})
