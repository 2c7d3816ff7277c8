"""Read queries of the workspace's pages: cases and the people of the audit
trail. (Legal holds' coverage is in ``holds``, the audit trail's pages in
``trail``, the archive search in ``search``, the archive itself in
``reconstruct`` and ``exports``.)

Each page costs a fixed number of queries however many cases or events there
are (tests assert it): lists are cut by keyset and come with their people in
the same query.
"""

from django.db.models import Count, Max, QuerySet
from django.http import Http404

from accounts import roles
from accounts.models import User
from compliance.models import AuditEvent, Case

CASES_PAGE = 50
CASE_EVENTS = 100
CASE_STATUSES = {"open", "awaiting", "closed", "all"}


def case_find(*, case_id: int) -> Case | None:
    """The case, or None: for a page that names a case it cannot open."""
    return Case.objects.filter(pk=case_id).first()


def case_get(*, case_id: int) -> Case:
    """The case with its people, or Http404. No access check: callers are
    behind ``access.auditor_required`` or use ``cases.case_for_user``."""
    case = Case.objects.select_related("opened_by", "approved_by", "closed_by").filter(pk=case_id).first()
    if case is None:
        raise Http404("Not found")
    return case


def _with_status(listed: QuerySet[Case], status: str) -> QuerySet[Case]:
    if status == "open":
        return listed.filter(closed_at__isnull=True)
    if status == "awaiting":
        return listed.filter(closed_at__isnull=True, approved_at__isnull=True)
    if status == "closed":
        return listed.filter(closed_at__isnull=False)
    return listed


def case_list_page(
    *, status: str, before: int | None, size: int = CASES_PAGE
) -> tuple[list[Case], int | None]:
    """One page of cases in ``status`` (one of ``CASE_STATUSES``), newest
    first, each with its people, its number of audit events and its last
    activity, in one query; and the ``before`` of the next older page."""
    listed = _with_status(
        Case.objects.select_related("opened_by", "approved_by", "closed_by").annotate(
            events=Count("audit_events"), last_activity=Max("audit_events__created_at")
        ),
        status,
    )
    if before is not None:
        listed = listed.filter(pk__lt=before)
    rows = list(listed.order_by("-pk")[: size + 1])
    older = rows[size - 1].pk if len(rows) > size else None
    return rows[:size], older


def case_events(*, case: Case, limit: int = CASE_EVENTS) -> tuple[list[AuditEvent], bool]:
    """The case's newest ``limit`` audit events with their actors (one
    query), and whether there are more."""
    events = list(case.audit_events.select_related("actor").order_by("-pk")[: limit + 1])
    return events[:limit], len(events) > limit


def audit_trail_people() -> list[User]:
    """The people the trail's "who" field suggests: everyone with a role."""
    return list(User.objects.filter(groups__name__in=roles.ALL).distinct().order_by("email"))
