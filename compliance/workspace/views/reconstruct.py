"""Reconstruction pages: the archived conversations of a case, one
conversation as it stood at a moment, and its archived files.

Each opening of a page and each download is exactly one audit event
(``VIEWED``, ``FILE_DOWNLOADED``), written once the archive has answered;
a request refused before anything was read (no such conversation, a moment
that is no date) leaves none.
"""

import re
from datetime import datetime, time
from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, QueryDict
from django.http.response import FileResponse, HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.http import AuthenticatedHttpRequest
from compliance.audit import Origin, audit_event_record
from compliance.models import AuditEvent, Case
from compliance.workspace import reconstruct
from compliance.workspace.access import auditor_required
from compliance.workspace.cases import case_for_results
from compliance.workspace.views.shared import refusals_shown

CONVERSATIONS_PAGE = 50
# Messages shown before the one a link asks for (``around``).
CONTEXT = 5
CONTENT_TYPE = re.compile(r"[\w.+-]+/[\w.+-]+")
# A time followed by " 01:00": the "+" of an offset that a hand-typed URL turned into a space.
OFFSET = re.compile(r"([T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?) (\d\d:?\d\d)$")


class BadRequest(ValueError):
    """A parameter of the page that is not what it must be; nothing is read."""


def parse_moment(value: str) -> datetime | None:
    """A moment from the page's picker (local time, in the viewer's time
    zone), from a link (ISO 8601 with an offset) or a bare day (its end)."""
    value = OFFSET.sub(r"\1+\2", value.strip())
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise BadRequest("That is not a date and time. Use the picker, or e.g. 2026-03-02T14:30.") from error
    if len(value) == 10:  # a day: as it stood at the end of it
        moment = datetime.combine(moment.date(), time.max)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    return moment


def _position(query: QueryDict, name: str) -> int | None:
    value = query.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise BadRequest("A page position is a message number.")
    return int(value)


def _page(query: QueryDict) -> tuple[datetime | None, int | None, int | None]:
    """The moment and the page's keyset position (after or before a message seq)."""
    at = parse_moment(query.get("at", ""))
    after, before, around = _position(query, "after"), _position(query, "before"), _position(query, "around")
    if around is not None:
        after, before = max(around - CONTEXT - 1, 0), None
    return at, after, before


def _picker_value(moment: datetime | None) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M:%S") if moment else ""


def _range(first: int | None, last: int | None) -> str | None:
    if not first:
        return None
    return str(first) if first == last else f"{first} to {last}"


@auditor_required
@refusals_shown
@require_GET
def conversation_list(request: AuthenticatedHttpRequest, case_id: int) -> HttpResponse:
    case = case_for_results(request.user, case_id)
    name, participant = (
        request.GET.get("name", "").strip()[:200],
        request.GET.get("participant", "").strip()[:200],
    )
    found = reconstruct.archived_conversations(name=name, participant=participant)
    page = Paginator(found, CONVERSATIONS_PAGE).get_page(request.GET.get("page"))
    audit_event_record(
        kind=AuditEvent.Kind.VIEWED,
        actor=request.user,
        case=case,
        origin=Origin.of(request),
        detail={
            "view": "archived conversations",
            "name": name,
            "participant": participant,
            "results": len(found),
            "page": page.number,
        },
    )
    context = {
        "nav": "conversations",
        "case": case,
        "page": page,
        "found": len(found),
        "name": name,
        "participant": participant,
    }
    return render(request, "compliance/conversations.html", context)


@auditor_required
@refusals_shown
@require_GET
def conversation(request: AuthenticatedHttpRequest, case_id: int, conversation_id: int) -> HttpResponse:
    case = case_for_results(request.user, case_id)
    try:
        at, after, before = _page(request.GET)
    except BadRequest as error:
        context = {
            "nav": "conversations",
            "case": case,
            "conversation_id": conversation_id,
            "error": str(error),
        }
        return render(request, "compliance/conversation.html", context, status=400)
    try:
        shown = reconstruct.reconstruct(
            conversation_id, at, after=after, before=before, limit=reconstruct.PAGE_SIZE
        )
    except reconstruct.NotArchived as error:
        raise Http404("Not archived") from error
    _log_view(request, case, shown)
    context = {
        "nav": "conversations",
        "case": case,
        "conversation_id": conversation_id,
        "r": shown,
        # The picker starts at the moment shown (the latest archived one by default).
        "at_value": _picker_value(at or shown.last_at),
        "time_zone": timezone.get_current_timezone_name(),
        # Records are cut by the company's calendar day, which is not the viewer's.
        "company_time_zone": settings.KONTOR_TIME_ZONE,
    }
    return render(request, "compliance/conversation.html", context)


def _log_view(request: AuthenticatedHttpRequest, case: Case, shown: reconstruct.Reconstruction) -> None:
    first, last = shown.first_record, shown.last_record
    messages = shown.message_range
    chain = shown.chain
    audit_event_record(
        kind=AuditEvent.Kind.VIEWED,
        actor=request.user,
        case=case,
        origin=Origin.of(request),
        detail={
            "conversation": shown.conversation_id,
            "title": shown.title,
            "at": shown.at.isoformat() if shown.at else "latest",
            "records": _range(first.seq if first else None, last.seq if last else None),
            # The hashes of the page's first and last record: one when they are the same.
            "record_hashes": list(dict.fromkeys([first.sha256, last.sha256])) if first and last else None,
            "messages": _range(*messages) if messages else None,
            "chain": ("verified" if chain.ok else f"broken: {chain.problem}") if chain else None,
        },
    )


@auditor_required
@refusals_shown
@require_GET
def archived_file(
    request: AuthenticatedHttpRequest, case_id: int, conversation_id: int, sha256: str
) -> HttpResponseBase:
    case = case_for_results(request.user, case_id)
    reference = reconstruct.file_reference(conversation_id, sha256)
    if reference is None:
        raise Http404("No record of this conversation names that file.")
    fetched = reconstruct.file_fetch(sha256)
    served = fetched.content is not None
    details: dict[str, Any] = {
        "conversation": conversation_id,
        "sha256": sha256,
        "name": reference.file.name,
        "size": fetched.size if served else reference.file.size,
        "record": reference.record_seq,
        "record_hash": reference.record_sha256,
        "source": fetched.source or None,
        "served": served,
    }
    if not served:
        details["refused"] = fetched.problem
    audit_event_record(
        kind=AuditEvent.Kind.FILE_DOWNLOADED,
        actor=request.user,
        case=case,
        origin=Origin.of(request),
        detail=details,
    )
    if fetched.content is None:
        context = {
            "nav": "conversations",
            "case": case,
            "conversation_id": conversation_id,
            "reference": reference,
            "problem": fetched.problem,
            "altered": fetched.altered,
        }
        return render(
            request, "compliance/conversation_file.html", context, status=409 if fetched.altered else 410
        )
    kind = reference.file.type if CONTENT_TYPE.fullmatch(reference.file.type) else "application/octet-stream"
    response = FileResponse(
        fetched.content, as_attachment=True, filename=reference.file.name, content_type=kind
    )
    response["Content-Length"] = str(fetched.size)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    response["X-Archive-SHA256"] = sha256
    return response
