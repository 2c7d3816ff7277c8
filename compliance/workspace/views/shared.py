"""What the workspace's views share: refusals shown as pages, a service's
refusal shown as messages."""

from collections.abc import Callable
from functools import wraps
from typing import Concatenate, ParamSpec, TypeVar

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render

from compliance.workspace import selectors

P = ParamSpec("P")
R = TypeVar("R", bound=HttpResponseBase)
Request = TypeVar("Request", bound=HttpRequest)


def refusals_shown(
    view: Callable[Concatenate[Request, P], R],
) -> Callable[Concatenate[Request, P], R | HttpResponse]:
    """Show a refusal (``PermissionDenied`` from ``cases.case_for_results``:
    a closed case, one awaiting approval) as a workspace page with its reason
    and a way back to the case, instead of Django's bare 403 page."""

    @wraps(view)
    def shown(request: Request, *args: P.args, **kwargs: P.kwargs) -> R | HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except PermissionDenied as refusal:
            case_id = kwargs.get("case_id")
            case = selectors.case_find(case_id=case_id) if isinstance(case_id, int) else None
            context = {
                "nav": "case",
                "case": case,
                "case_blocked": str(refusal) or "Refused.",
                "reason": str(refusal),
            }
            return render(request, "compliance/refused.html", context, status=403)

    return shown


def errors_as_messages(request: HttpRequest, error: ValidationError) -> None:
    for text in error.messages:
        messages.error(request, text)
