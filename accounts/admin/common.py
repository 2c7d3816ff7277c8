"""What the admin classes of people share."""

from typing import Any, cast

from django.contrib import admin
from django.http import HttpRequest

from accounts.http import AuthenticatedHttpRequest
from accounts.models import User


def is_active_superuser(request: HttpRequest) -> bool:
    """Whether the admin user is an active administrator (superuser): roles that
    open the archive or its audit trail are theirs alone to administer."""
    return bool(request.user.is_active and request.user.is_superuser)


def admin_user(request: HttpRequest) -> User:
    """The person using the admin, in methods that override Django's (typed with
    a plain ``HttpRequest``): the admin site lets only a signed-in, active staff
    ``User`` in, so the request is an ``AuthenticatedHttpRequest``. Views and
    actions of our own take an ``AuthenticatedHttpRequest`` directly."""
    return cast(AuthenticatedHttpRequest, request).user


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
