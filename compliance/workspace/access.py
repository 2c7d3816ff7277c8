"""Who may enter the auditor workspace: auditors with a second factor; the
data protection officer for the audit trail. Everyone else gets 404, so the
workspace does not even show that it exists."""

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase

from accounts import roles
from accounts.models import User
from accounts.selectors import user_has_mfa

# Streamed responses (exports, downloads) are views too.
View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def _person(request: HttpRequest) -> User | None:
    user = request.user
    return user if isinstance(user, User) and user.is_active else None


def is_auditor(user: User | None) -> bool:
    return bool(user and user.has_role(roles.AUDITORS) and user_has_mfa(user=user))


def is_data_protection_officer(user: User | None) -> bool:
    return bool(user and user.has_role(roles.DATA_PROTECTION) and user_has_mfa(user=user))


def auditor_required(view: View) -> View:
    """Auditors with MFA enrolled; 404 for everyone else (signed in or not)."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not is_auditor(_person(request)):
            raise Http404("Not found")
        return view(request, *args, **kwargs)

    return guarded  # type: ignore[return-value]


def audit_trail_reader_required(view: View) -> View:
    """Auditors and the data protection officer, each with MFA; 404 for everyone else."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        person = _person(request)
        if not (is_auditor(person) or is_data_protection_officer(person)):
            raise Http404("Not found")
        return view(request, *args, **kwargs)

    return guarded  # type: ignore[return-value]
