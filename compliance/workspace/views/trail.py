"""The audit trail: filtered keyset pages and the JSON Lines export, for
auditors and the data protection officer. Each look is itself an event."""

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.http import AuthenticatedHttpRequest
from compliance.audit import Origin, audit_event_record
from compliance.models import AuditEvent
from compliance.workspace import selectors, trail
from compliance.workspace.access import audit_trail_reader_required
from compliance.workspace.forms.trail import AuditFilterForm


def _trail_filter(request: HttpRequest) -> tuple[AuditFilterForm, trail.TrailFilter]:
    form = AuditFilterForm(request.GET)
    form.is_valid()  # invalid fields are left out of the filter and shown
    return form, trail.TrailFilter.from_cleaned(form.cleaned_data)


@audit_trail_reader_required
@require_GET
def audit_trail(request: AuthenticatedHttpRequest) -> HttpResponse:
    form, criteria = _trail_filter(request)
    before, after = form.cleaned_data.get("before"), form.cleaned_data.get("after")
    page = trail.trail_page(criteria, before=before, after=after)
    # Logged after reading, so the page shows the trail as it stood.
    audit_event_record(
        kind=AuditEvent.Kind.AUDIT_LOG_VIEWED,
        actor=request.user,
        origin=Origin.of(request),
        detail={"filters": criteria.describe(), "before": before, "after": after},
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
        "people": selectors.audit_trail_people(),
        "now": timezone.now(),
    }
    return render(request, "compliance/audit_trail.html", context)


@audit_trail_reader_required
@require_GET
def audit_trail_export(request: AuthenticatedHttpRequest) -> StreamingHttpResponse:
    _form, criteria = _trail_filter(request)
    # The export's own event is written first and bounds what the export
    # holds (unfiltered, it is the last line), whatever is logged meanwhile.
    event = audit_event_record(
        kind=AuditEvent.Kind.AUDIT_LOG_EXPORTED,
        actor=request.user,
        origin=Origin.of(request),
        detail={"filters": criteria.describe()},
    )
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
