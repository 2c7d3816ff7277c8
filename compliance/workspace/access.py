"""Who may enter the auditor workspace: auditors with a second factor; the
data protection officer for the audit trail. Everyone else gets 404, so the
workspace does not even show that it exists.

The guards hand the view an ``AuthenticatedHttpRequest``: past them
``request.user`` is an active ``User``, and the views are typed so."""

from collections.abc import Callable
from functools import wraps
from typing import Concatenate, ParamSpec, TypeVar, cast

from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase

from accounts import roles
from accounts.http import AuthenticatedHttpRequest
from accounts.models import User
from accounts.selectors import user_has_mfa

P = ParamSpec("P")
# Streamed responses (exports, downloads) are views too.
R = TypeVar("R", bound=HttpResponseBase)
GuardedView = Callable[Concatenate[AuthenticatedHttpRequest, P], R]
View = Callable[Concatenate[HttpRequest, P], R]


def _person(request: HttpRequest) -> User | None:
    user = request.user
    return user if isinstance(user, User) and user.is_active else None


def is_auditor(user: User | None) -> bool:
    return bool(user and user.has_role(roles.AUDITORS) and user_has_mfa(user=user))


def is_data_protection_officer(user: User | None) -> bool:
    return bool(user and user.has_role(roles.DATA_PROTECTION) and user_has_mfa(user=user))


def _guard(allowed: Callable[[User | None], bool]) -> Callable[[GuardedView[P, R]], View[P, R]]:
    def decorator(view: GuardedView[P, R]) -> View[P, R]:
        @wraps(view)
        def guarded(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> R:
            if not allowed(_person(request)):
                raise Http404("Not found")
            # Checked just above: the user is an active, signed-in person.
            return view(cast(AuthenticatedHttpRequest, request), *args, **kwargs)

        return guarded

    return decorator


def _auditor_or_officer(user: User | None) -> bool:
    return is_auditor(user) or is_data_protection_officer(user)


def auditor_required(view: GuardedView[P, R]) -> View[P, R]:
    """Auditors with MFA enrolled; 404 for everyone else (signed in or not)."""
    return _guard(is_auditor)(view)


def audit_trail_reader_required(view: GuardedView[P, R]) -> View[P, R]:
    """Auditors and the data protection officer, each with MFA; 404 for everyone else."""
    return _guard(_auditor_or_officer)(view)
