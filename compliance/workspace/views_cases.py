"""Pages of the workspace shell: cases, legal holds, the audit trail.

Each view checks who is asking (``access``), parses its form, makes one
service or selector call and renders or redirects. A refusal by a service
(ValidationError) is shown on the form or as a message: nothing changed.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Max, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import roles
from accounts.models import User
from compliance import services as compliance_services
from compliance.audit import Origin
from compliance.models import AuditEvent, Case
from compliance.workspace import audit, cases, holds, trail
from compliance.workspace.access import audit_trail_reader_required, auditor_required
from compliance.workspace.forms_cases import (
    AuditFilterForm,
    CaseCloseForm,
    CaseForm,
    HoldForm,
    HoldReleaseForm,
)

View = TypeVar("View", bound=Callable[..., HttpResponseBase])

CASES_PAGE = 50
CASE_EVENTS = 100
STATUSES = {"open", "awaiting", "closed", "all"}


class AuditorRequest(HttpRequest):
    """What the workspace's views receive (after ``access`` let them in)."""

    user: User


def refusals_shown(view: View) -> View:
    """Show a refusal (``PermissionDenied`` from ``cases.case_for_results``:
    a closed case, one awaiting approval) as a workspace page with its reason
    and a way back to the case, instead of Django's bare 403 page."""

    @wraps(view)
    def shown(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return view(request, *args, **kwargs)
        except PermissionDenied as refusal:
            case_id = kwargs.get("case_id")
            case = Case.objects.filter(pk=case_id).first() if isinstance(case_id, int) else None
            context = {
                "nav": "case",
                "case": case,
                "case_blocked": str(refusal) or "Refused.",
                "reason": str(refusal),
            }
            return render(request, "compliance/refused.html", context, status=403)

    return shown  # type: ignore[return-value]


def _errors_as_messages(request: HttpRequest, error: ValidationError) -> None:
    for text in error.messages:
        messages.error(request, text)


def _filter_status(cases_list: QuerySet[Case], status: str) -> QuerySet[Case]:
    if status == "open":
        return cases_list.filter(closed_at__isnull=True)
    if status == "awaiting":
        return cases_list.filter(closed_at__isnull=True, approved_at__isnull=True)
    if status == "closed":
        return cases_list.filter(closed_at__isnull=False)
    return cases_list


def _cases_page(status: str, before: int | None) -> tuple[list[Case], int | None]:
    listed = _filter_status(
        Case.objects.select_related("opened_by", "approved_by", "closed_by").annotate(
            events=Count("audit_events"), last_activity=Max("audit_events__created_at")
        ),
        status,
    )
    if before is not None:
        listed = listed.filter(pk__lt=before)
    rows = list(listed.order_by("-pk")[: CASES_PAGE + 1])
    older = rows[CASES_PAGE - 1].pk if len(rows) > CASES_PAGE else None
    return rows[:CASES_PAGE], older


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _render_cases(request: AuditorRequest, form: CaseForm, status: int = 200) -> HttpResponse:
    state = request.GET.get("status", "open")
    state = state if state in STATUSES else "open"
    rows, older = _cases_page(state, _int_or_none(request.GET.get("before")))
    context = {
        "nav": "cases",
        "form": form,
        "cases": rows,
        "older": older,
        "status": state,
        "four_eyes": cases.four_eyes(),
    }
    return render(request, "compliance/cases.html", context, status=status)


@auditor_required
@require_GET
def case_list(request: AuditorRequest) -> HttpResponse:
    return _render_cases(request, CaseForm())


@auditor_required
@require_http_methods(["GET", "POST"])
def case_open(request: AuditorRequest) -> HttpResponse:
    form = CaseForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            case = cases.case_open(actor=request.user, request=request, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Case “{case.name}” opened.")
            return redirect("compliance:case", case_id=case.pk)
    status = 400 if form.is_bound else 200
    return render(request, "compliance/case_open.html", {"nav": "cases", "form": form}, status=status)


@auditor_required
@require_GET
def case_detail(request: AuditorRequest, case_id: int) -> HttpResponse:
    case = cases.case_get(case_id)
    events = list(case.audit_events.select_related("actor").order_by("-pk")[: CASE_EVENTS + 1])
    context = {
        "nav": "case",
        "case": case,
        "case_blocked": cases.case_blocked_reason(case),
        "four_eyes": cases.four_eyes(),
        "events": events[:CASE_EVENTS],
        "more_events": len(events) > CASE_EVENTS,
        "close_form": CaseCloseForm(),
    }
    return render(request, "compliance/case.html", context)


@auditor_required
@require_POST
def case_approve(request: AuditorRequest, case_id: int) -> HttpResponse:
    try:
        case = cases.case_approve(actor=request.user, case_id=case_id, request=request)
    except ValidationError as error:
        _errors_as_messages(request, error)
    else:
        messages.success(request, f"Case “{case.name}” approved: its results can be opened.")
    return redirect("compliance:case", case_id=case_id)


@auditor_required
@require_http_methods(["GET", "POST"])
def case_close(request: AuditorRequest, case_id: int) -> HttpResponse:
    case = cases.case_get(case_id)
    form = CaseCloseForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            cases.case_close(
                actor=request.user, case_id=case.pk, reason=form.cleaned_data["reason"], request=request
            )
        except ValidationError as error:
            _errors_as_messages(request, error)
        else:
            messages.success(request, f"Case “{case.name}” closed.")
        return redirect("compliance:case", case_id=case.pk)
    context = {"nav": "case", "case": case, "case_blocked": cases.case_blocked_reason(case), "form": form}
    return render(request, "compliance/case_close.html", context, status=400 if form.is_bound else 200)


# --- Legal holds --------------------------------------------------------------


@auditor_required
@require_GET
def hold_list(request: AuditorRequest) -> HttpResponse:
    listed = list(holds.holds_with_coverage())
    context = {
        "nav": "holds",
        "active": [hold for hold in listed if hold.released_at is None],
        "released": [hold for hold in listed if hold.released_at is not None],
    }
    return render(request, "compliance/holds.html", context)


@auditor_required
@require_http_methods(["GET", "POST"])
def hold_new(request: AuditorRequest) -> HttpResponse:
    # A GET may prefill the form, e.g. from a reconstructed conversation.
    form = HoldForm(request.POST) if request.method == "POST" else HoldForm(initial=request.GET.dict())
    if form.is_bound and form.is_valid():
        try:
            hold = compliance_services.hold_set(
                actor=request.user,
                origin=Origin.of(request),
                **form.cleaned_data,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Legal hold “{hold.name}” set.")
            return redirect("compliance:hold", hold_id=hold.pk)
    status = 400 if form.is_bound else 200
    return render(request, "compliance/hold_form.html", {"nav": "holds", "form": form}, status=status)


@auditor_required
@require_GET
def hold_detail(request: AuditorRequest, hold_id: int) -> HttpResponse:
    hold, coverage = holds.hold_detail(hold_id)
    context = {"nav": "holds", "hold": hold, "coverage": coverage, "release_form": HoldReleaseForm()}
    return render(request, "compliance/hold.html", context)


@auditor_required
@require_POST
def hold_release(request: AuditorRequest, hold_id: int) -> HttpResponse:
    hold, coverage = holds.hold_detail(hold_id)
    form = HoldReleaseForm(request.POST)
    if not form.is_valid():
        context = {"nav": "holds", "hold": hold, "coverage": coverage, "release_form": form}
        return render(request, "compliance/hold.html", context, status=400)
    if hold.released_at is not None:
        messages.info(request, "This hold was already released.")
    else:
        compliance_services.hold_release(
            actor=request.user,
            hold_id=hold.pk,
            reason=form.cleaned_data["reason"],
            origin=Origin.of(request),
        )
        messages.success(request, f"Legal hold “{hold.name}” released.")
    return redirect("compliance:hold", hold_id=hold.pk)


# --- The audit trail ------------------------------------------------------------


def _trail_filter(request: HttpRequest) -> tuple[AuditFilterForm, trail.TrailFilter]:
    form = AuditFilterForm(request.GET)
    form.is_valid()  # invalid fields are left out of the filter and shown
    return form, trail.TrailFilter.from_cleaned(form.cleaned_data)


@audit_trail_reader_required
@require_GET
def audit_trail(request: AuditorRequest) -> HttpResponse:
    form, criteria = _trail_filter(request)
    before, after = form.cleaned_data.get("before"), form.cleaned_data.get("after")
    page = trail.trail_page(criteria, before=before, after=after)
    # Logged after reading, so the page shows the trail as it stood.
    audit.record(
        request, AuditEvent.Kind.AUDIT_LOG_VIEWED, filters=criteria.describe(), before=before, after=after
    )
    query = request.GET.copy()
    for cursor in ("before", "after"):
        query.pop(cursor, None)
    context = {
        "nav": "audit",
        "form": form,
        "page": page,
        "filter_query": query.urlencode(),
        "filtered": any(criteria.describe().values()),
        "people": User.objects.filter(groups__name__in=roles.ALL).distinct().order_by("email"),
        "now": timezone.now(),
    }
    return render(request, "compliance/audit_trail.html", context)


@audit_trail_reader_required
@require_GET
def audit_trail_export(request: AuditorRequest) -> StreamingHttpResponse:
    _form, criteria = _trail_filter(request)
    # The export's own event is written first and bounds what the export
    # holds (unfiltered, it is the last line), whatever is logged meanwhile.
    event = audit.record(request, AuditEvent.Kind.AUDIT_LOG_EXPORTED, filters=criteria.describe())
    response = trail.streamed(
        request,
        trail.export_lines(criteria, up_to=event.pk),
        content_type="application/jsonl; charset=utf-8",
    )
    stamp = timezone.localtime(timezone.now()).strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="audit-trail-{stamp}.jsonl"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
