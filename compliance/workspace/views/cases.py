"""Pages of cases: the list (the workspace's home), opening, one case with
its audit trail, approving (four eyes) and closing. A refusal by a service
(ValidationError) is shown on the form or as a message: nothing changed."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.http import AuthenticatedHttpRequest
from accounts.services import four_eyes
from compliance.audit import Origin
from compliance.workspace import cases, selectors
from compliance.workspace.access import auditor_required
from compliance.workspace.forms.cases import CaseCloseForm, CaseForm
from compliance.workspace.views.shared import errors_as_messages


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@auditor_required
@require_GET
def case_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    status = request.GET.get("status", "open")
    status = status if status in selectors.CASE_STATUSES else "open"
    rows, older = selectors.case_list_page(status=status, before=_int_or_none(request.GET.get("before")))
    context = {
        "nav": "cases",
        "form": CaseForm(),
        "cases": rows,
        "older": older,
        "status": status,
        "four_eyes": four_eyes(),
    }
    return render(request, "compliance/cases.html", context)


@auditor_required
@require_http_methods(["GET", "POST"])
def case_open(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = CaseForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            case = cases.case_open(actor=request.user, origin=Origin.of(request), **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Case “{case.name}” opened.")
            return redirect("compliance:case", case_id=case.pk)
    status = 400 if form.is_bound else 200
    return render(request, "compliance/case_open.html", {"nav": "cases", "form": form}, status=status)


@auditor_required
@require_GET
def case_detail(request: AuthenticatedHttpRequest, case_id: int) -> HttpResponse:
    case = selectors.case_get(case_id=case_id)
    events, more_events = selectors.case_events(case=case)
    context = {
        "nav": "case",
        "case": case,
        "case_blocked": cases.case_blocked_reason(case),
        "four_eyes": four_eyes(),
        "events": events,
        "more_events": more_events,
        "close_form": CaseCloseForm(),
    }
    return render(request, "compliance/case.html", context)


@auditor_required
@require_POST
def case_approve(request: AuthenticatedHttpRequest, case_id: int) -> HttpResponse:
    try:
        case = cases.case_approve(actor=request.user, case_id=case_id, origin=Origin.of(request))
    except ValidationError as error:
        errors_as_messages(request, error)
    else:
        messages.success(request, f"Case “{case.name}” approved: its results can be opened.")
    return redirect("compliance:case", case_id=case_id)


@auditor_required
@require_http_methods(["GET", "POST"])
def case_close(request: AuthenticatedHttpRequest, case_id: int) -> HttpResponse:
    case = selectors.case_get(case_id=case_id)
    form = CaseCloseForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            cases.case_close(
                actor=request.user,
                case_id=case.pk,
                reason=form.cleaned_data["reason"],
                origin=Origin.of(request),
            )
        except ValidationError as error:
            errors_as_messages(request, error)
        else:
            messages.success(request, f"Case “{case.name}” closed.")
        return redirect("compliance:case", case_id=case.pk)
    context = {"nav": "case", "case": case, "case_blocked": cases.case_blocked_reason(case), "form": form}
    return render(request, "compliance/case_close.html", context, status=400 if form.is_bound else 200)
