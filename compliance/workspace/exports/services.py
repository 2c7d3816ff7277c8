"""Changing exports: the request (one audit event, the task queued on
commit), the sweep that queues lost ones again, the download (one audit
event), and the build's claim and outcome."""

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import IO, Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.http import Http404, HttpRequest
from django.utils import timezone

from accounts.models import User
from compliance.audit import Origin, audit_event_record
from compliance.models import AuditEvent, Case, Export
from compliance.workspace.cases import case_for_results
from compliance.workspace.exports.build import build
from compliance.workspace.exports.parameters import clean_formats, clean_parameters
from compliance.workspace.exports.selectors import export_for_case
from compliance.workspace.exports.walk import ExportError

logger = logging.getLogger(__name__)


def _log(*, actor: User, kind: str, case: Case, request: HttpRequest | None, **detail: Any) -> AuditEvent:
    """One audit event of an export, from the request's address and browser
    when there is a request (a page), from nowhere otherwise (a shell, a bench)."""
    origin = Origin.of(request) if request is not None else Origin.NONE
    return audit_event_record(kind=kind, actor=actor, case=case, detail=detail, origin=origin)


@transaction.atomic
def export_request(
    *,
    actor: User,
    case_id: int,
    parameters: Mapping[str, Any],
    formats: Any,
    request: HttpRequest | None = None,
) -> Export:
    """Queue an export of the case: one ``EXPORT_REQUESTED`` audit event, and
    the ``compliance.export`` task once the transaction commits.

    Raises Http404 (no auditor, no case), PermissionDenied (the case is closed
    or awaits approval) or ValidationError (nothing written)."""
    case = case_for_results(actor, case_id)
    cleaned, chosen = clean_parameters(parameters), clean_formats(formats)
    export = Export.objects.create(case=case, requested_by=actor, parameters=cleaned, formats=chosen)
    _log(
        actor=actor,
        kind=AuditEvent.Kind.EXPORT_REQUESTED,
        case=case,
        request=request,
        export=export.pk,
        parameters=cleaned,
        formats=chosen,
    )
    # After commit: the worker must find the row, and a rolled-back request queues nothing.
    # robust: a broker that is down must not turn the committed request into an
    # error page; the row stays queued and ``exports_requeue_stale`` sends it again.
    transaction.on_commit(lambda: _queue(export.pk), robust=True)
    return export


def _queue(export_id: int) -> None:
    # The one import circle compliance allows (tests/compliance/test_import_cycles.py):
    # the task module imports this one to build the export, so it is imported here,
    # when the request's transaction has committed.
    from compliance.workspace.tasks import export

    export.delay(export_id)


# An export still queued this long after its request lost its task (the broker
# was down at the commit, or dropped the message): it is queued again.
STALE_QUEUED_AFTER = timedelta(minutes=10)
# The task's hard time limit: a worker kills a run that takes longer.
EXPORT_TIME_LIMIT = 6 * 3600
# Running longer than the limit (and a margin) means its worker died mid-way.
ABANDONED_AFTER = timedelta(seconds=EXPORT_TIME_LIMIT) + timedelta(minutes=10)


def exports_requeue_stale(*, older_than: timedelta = STALE_QUEUED_AFTER, limit: int = 100) -> list[int]:
    """Queue the task again for exports still queued after ``older_than``, and
    for those a dead worker left running (``ABANDONED_AFTER``).

    Beat runs it every few minutes. A second message for an export whose first
    one is merely waiting behind others is harmless: only the run that claims
    the row builds it (``export_build``). Returns the ids queued again."""
    cutoff = timezone.now() - older_than
    stale = list(
        Export.objects.filter(
            Q(status=Export.Status.QUEUED, requested_at__lt=cutoff)
            | Q(status=Export.Status.RUNNING, started_at__lt=timezone.now() - ABANDONED_AFTER)
        )
        .order_by("requested_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    for export_id in stale:
        logger.warning("Export %s lost its task (queued or abandoned): queued again", export_id)
        _queue(export_id)
    return stale


def export_download(
    *, actor: User, case_id: int, export_id: int, request: HttpRequest | None = None
) -> tuple[Export, IO[bytes]]:
    """Open a finished export's ZIP for ``actor``: one ``EXPORT_DOWNLOADED``
    audit event. Http404 unless it is done and its file is there."""
    case, export = export_for_case(actor=actor, case_id=case_id, export_id=export_id)
    if export.status != Export.Status.DONE or not export.file_key:
        raise Http404("Not found")
    try:
        handle = default_storage.open(export.file_key, "rb")
    except FileNotFoundError as error:
        raise Http404("Not found") from error
    _log(
        actor=actor,
        kind=AuditEvent.Kind.EXPORT_DOWNLOADED,
        case=case,
        request=request,
        export=export.pk,
        sha256=export.sha256,
        size=export.size,
    )
    return export, handle


def _claimable() -> Q:
    """Queued, or left running by a worker that died: no run lives past the
    task's hard time limit, so one that started before it was abandoned."""
    abandoned = timezone.now() - ABANDONED_AFTER
    return Q(status=Export.Status.QUEUED) | Q(status=Export.Status.RUNNING, started_at__lt=abandoned)


def export_build(*, export_id: int) -> Export | None:
    """Build a queued export (the task's one call). A duplicate delivery does
    nothing: only the run that moves the row to running builds. An export whose
    worker died mid-way (still running past the time limit) is built afresh.
    Returns the export as it ended, or None when there was nothing to do."""
    claimed = Export.objects.filter(_claimable(), pk=export_id).update(
        status=Export.Status.RUNNING, progress=0, error="", started_at=Now()
    )
    if not claimed:
        return None
    export = Export.objects.select_related("case", "requested_by").get(pk=export_id)
    try:
        build(export)
    except ExportError as error:
        _fail(export, str(error))
    except Exception as error:
        _fail(
            export,
            f"The export failed unexpectedly ({type(error).__name__}: {error}). The worker's log has more.",
        )
        raise
    export.refresh_from_db()
    return export


def _fail(export: Export, reason: str) -> None:
    logger.error("Export %s failed: %s", export.pk, reason)
    Export.objects.filter(pk=export.pk).update(
        status=Export.Status.FAILED, error=reason[:2000], finished_at=Now()
    )
