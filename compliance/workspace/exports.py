"""Exports of the archive: a ZIP an auditor hands to a third party, who can
check it offline with ``scripts/verify_export.py``. The rules, enforced here:

1. An export belongs to a case whose results may be opened
   (``cases.case_for_results``); requesting one is exactly one audit event
   (``EXPORT_REQUESTED``), downloading it exactly one more (``EXPORT_DOWNLOADED``).
2. Its content comes from the retention records alone (``RecordContent``'s
   canonical JSON, checked against the record's hash before use); a search
   export selects its message versions through the archive's index
   (``ArchivedMessage``), never through the live chat. Attachments are the
   archived bytes (the archive storage's copy, else the company file storage),
   each checked against its SHA-256 before it is included.
3. It is built by the ``compliance.export`` task with bounded memory: records
   are read one at a time, every part is written to a temporary file as it
   goes, and the transcript is split into volumes
   (``export_formats.TRANSCRIPT_VOLUME`` versions). Only the list of covering
   records, the people seen and the distinct files' availability (a few
   numbers each) grow with the export. Membership at each moment is replayed
   from the chain's first record, so earlier records are read too (not kept).
4. The ZIP holds ``messages.mbox`` (RFC 5322, one message per version),
   ``messages.jsonl`` (one object per version, every field), ``transcript.pdf``,
   ``records/…json`` (the covering records exactly as archived) and
   ``manifest.json`` with the SHA-256 and size of every other file, plus
   ``manifest.sha256``. Only ``export_build`` changes an export after its
   request: progress, then ``DONE`` with the stored ZIP's key, size and hash,
   or ``FAILED`` with the reason.
"""

import hashlib
import json
import logging
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max, Q, QuerySet
from django.db.models.functions import Now
from django.http import Http404, HttpRequest
from django.utils import timezone

from accounts.models import User
from archive.models import StoredFile
from archive.services import blob_key
from compliance import archive_store
from compliance.index import conversation_title
from compliance.models import (
    GENESIS_HASH,
    ArchivedMessage,
    AuditEvent,
    Case,
    Export,
    RecordContent,
    RetentionRecord,
)
from compliance.workspace import audit, export_formats, search
from compliance.workspace.cases import case_for_results
from compliance.workspace.export_formats import Attachment, Mbox, RecordRef, Transcript, Version, jsonl_entry

logger = logging.getLogger(__name__)

FORMAT = "kontor.export/1"
FORMATS = ("mbox", "jsonl", "pdf")
CHUNK = 1024 * 1024
MEMBER_IN = {"member_joined", "member_added"}
MEMBER_OUT = {"member_left", "member_removed"}


class ExportError(Exception):
    """The export cannot be built as asked (a record that fails its hash, say)."""


# --- Parameters -------------------------------------------------------------


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.KONTOR_TIME_ZONE)


def _moment(value: Any, *, end: bool) -> datetime | None:
    """A range bound: an ISO date (the whole company day, in the company's time
    zone) or an ISO date-time (naive means the company's time zone). The range
    is half-open: ``to`` as a date means up to the end of that day."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        day = value + timedelta(days=1) if end else value
        return datetime.combine(day, time.min, tzinfo=_zone())
    else:
        text = str(value).strip()
        try:
            if len(text) == 10:
                return _moment(date.fromisoformat(text), end=end)
            moment = datetime.fromisoformat(text)
        except ValueError as error:
            raise ValidationError(f"{text!r} is not a date (YYYY-MM-DD) or a date and time.") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=_zone())


def _iso(value: Any) -> str | None:
    if value in (None, ""):
        return None
    return value.isoformat() if isinstance(value, date) else str(value).strip()


def search_parameters(criteria: search.Criteria) -> dict[str, Any]:
    """A search's criteria as JSON (what the Export row and the audit event keep)."""
    values = asdict(criteria)
    for name in ("date_from", "date_to"):
        values[name] = values[name].isoformat() if values[name] else None
    return values


def search_criteria(values: Mapping[str, Any]) -> search.Criteria:
    """The search service's criteria from their JSON form; ValidationError when
    they do not fit."""
    known = {f.name for f in fields(search.Criteria)}
    unknown = set(values) - known
    if unknown:
        raise ValidationError(f"Unknown search parameter(s): {', '.join(sorted(unknown))}.")
    given = dict(values)
    try:
        for name in ("date_from", "date_to"):
            if given.get(name):
                given[name] = date.fromisoformat(str(given[name]))
        for name in ("participant_id", "conversation_id"):
            if given.get(name) not in (None, ""):
                given[name] = int(given[name])
            else:
                given[name] = None
        ZoneInfo(str(given.get("time_zone") or "UTC"))
    except (TypeError, ValueError, KeyError) as error:
        raise ValidationError(f"The search parameters do not fit: {error}.") from error
    return search.Criteria(**given)


def clean_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """What an export covers, checked and made JSON: either
    ``{"kind": "conversation", "conversation_id": 12, "from": "2026-01-01", "to": None}``
    or ``{"kind": "search", "search": {...}}`` with the parameters the search
    service takes. Raises ValidationError when they make no sense."""
    kind = parameters.get("kind") or "conversation"
    if kind == "search":
        given = parameters.get("search")
        if not isinstance(given, Mapping):
            raise ValidationError("A search export needs the search's parameters.")
        return {"kind": "search", "search": search_parameters(search_criteria(given))}
    if kind != "conversation":
        raise ValidationError(f"Unknown export kind {kind!r}.")
    try:
        conversation_id = int(parameters.get("conversation_id") or 0)
    except (TypeError, ValueError) as error:
        raise ValidationError("The conversation is a number (its archive id).") from error
    if conversation_id <= 0 or not RetentionRecord.objects.filter(conversation_id=conversation_id).exists():
        raise ValidationError(f"The archive holds no conversation {conversation_id}.")
    start = _moment(parameters.get("from"), end=False)
    stop = _moment(parameters.get("to"), end=True)
    if start and stop and start >= stop:
        raise ValidationError("The range ends before it starts.")
    return {
        "kind": "conversation",
        "conversation_id": conversation_id,
        "from": _iso(parameters.get("from")),
        "to": _iso(parameters.get("to")),
    }


def clean_formats(formats: Any) -> list[str]:
    chosen = [f for f in FORMATS if f in set(formats or ())]
    unknown = set(formats or ()) - set(FORMATS)
    if unknown:
        raise ValidationError(f"Unknown export format(s): {', '.join(sorted(map(str, unknown)))}.")
    if not chosen:
        raise ValidationError("Choose at least one format: mbox, JSON Lines or PDF.")
    return chosen


def describe_scope(parameters: Mapping[str, Any], titles: Mapping[int, str] | None = None) -> str:
    """The export's scope in words (the page, the transcript, the manifest);
    ``titles`` names conversations by id."""
    titles = titles or {}
    if parameters.get("kind") == "search":
        given = parameters.get("search") or {}
        terms = ", ".join(f"{k}={v}" for k, v in sorted(given.items()) if v and k != "time_zone")
        return f"Search: {terms or 'everything'}"
    conversation_id = parameters.get("conversation_id")
    title = titles.get(int(conversation_id or 0))
    named = f"{title} (conversation {conversation_id})" if title else f"Conversation {conversation_id}"
    since, until = parameters.get("from"), parameters.get("to")
    span = f" from {since}" if since else ""
    span += f" until {until}" if until else ""
    return f"{named}{span or ', everything archived'}"


# --- Services ---------------------------------------------------------------


def _log(request: HttpRequest | None, actor: User, kind: str, case: Case, **detail: Any) -> AuditEvent:
    if request is not None:
        return audit.record(request, kind, case=case, **detail)
    return AuditEvent.objects.create(kind=kind, actor=actor, case=case, detail=detail)


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
        request,
        actor,
        AuditEvent.Kind.EXPORT_REQUESTED,
        case,
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


def exports_for_case(*, case: Case) -> QuerySet[Export]:
    return Export.objects.filter(case=case).select_related("requested_by").order_by("-requested_at", "-pk")


def conversation_titles(conversation_ids: list[int]) -> dict[int, str]:
    """The archive's title of each conversation (its newest index row's)."""
    titles: dict[int, str] = {}
    for conversation_id in conversation_ids:
        title = (
            ArchivedMessage.objects.filter(conversation_id=conversation_id)
            .order_by("-at")
            .values_list("conversation_title", flat=True)
            .first()
        )
        if title:
            titles[conversation_id] = title
    return titles


def export_for_case(*, actor: User, case_id: int, export_id: int) -> tuple[Case, Export]:
    """An export of a case whose results ``actor`` may open; Http404 otherwise."""
    case = case_for_results(actor, case_id)
    export = Export.objects.select_related("requested_by").filter(pk=export_id, case=case).first()
    if export is None:
        raise Http404("Not found")
    return case, export


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
        request,
        actor,
        AuditEvent.Kind.EXPORT_DOWNLOADED,
        case,
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
        _build(export)
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


def _database_now(export: Export) -> datetime:
    """The database's clock (C17): the export's time is not the worker's."""
    now = Export.objects.filter(pk=export.pk).annotate(now=Now()).values_list("now", flat=True).first()
    return now if isinstance(now, datetime) else datetime.now(UTC)


# --- What an export covers: versions from the records -----------------------


def _person(people: Mapping[int, dict[str, Any]], user_id: int | None) -> dict[str, Any]:
    if user_id is None:
        return {"id": None, "name": "Unknown", "email": "", "department": None}
    unknown = {"id": user_id, "name": f"Person {user_id}", "email": "", "department": None}
    return people.get(int(user_id)) or unknown


@dataclass
class _Audience:
    """Who was a member at each moment, replayed from the journal's membership
    events from the start of the chain, and everyone's identity as the latest
    record read captured it."""

    members: dict[int, None] = field(default_factory=dict)
    people: dict[int, dict[str, Any]] = field(default_factory=dict)
    exact: bool = True

    def read(self, payload: Mapping[str, Any], *, after_gap: bool) -> None:
        for key, person in (payload.get("people") or {}).items():
            if person:
                self.people[int(key)] = person
        if after_gap:
            # A purged record before this one took its membership changes
            # along: start again from the members this record captured.
            self.members = dict.fromkeys(int(pk) for pk in payload.get("members") or [])
            self.exact = False

    def apply(self, event: Mapping[str, Any]) -> None:
        subject = event.get("subject")
        if subject is None:
            return
        if event.get("type") in MEMBER_IN:
            self.members[int(subject)] = None
        elif event.get("type") in MEMBER_OUT:
            self.members.pop(int(subject), None)

    def now(self) -> list[dict[str, Any]]:
        return [_person(self.people, pk) for pk in self.members]


# Whether an event of a record is in the export.
Selector = Callable[[RecordRef, dict[str, Any]], bool]


@dataclass(frozen=True)
class _Plan:
    """One conversation's part of an export: its records from the first up
    to the last one needed (membership is replayed from the start), which
    events are selected, and whether a purged record lies in the scope."""

    chain: list[RecordRef]
    selected: Selector
    purged_in_scope: Callable[[RecordRef], bool]


def _chain(conversation_id: int, up_to_seq: int | None = None) -> list[RecordRef]:
    records = RetentionRecord.objects.filter(conversation_id=conversation_id)
    if up_to_seq is not None:
        records = records.filter(seq__lte=up_to_seq)
    return [
        RecordRef(*row)
        for row in records.order_by("seq").values_list(
            "pk", "conversation_id", "seq", "sha256", "previous_hash", "event_count"
        )
    ]


def _content(record: RecordRef) -> bytes | None:
    """The record's canonical JSON, checked against its hash; None when purged."""
    text = RecordContent.objects.filter(record_id=record.pk).values_list("canonical_json", flat=True).first()
    if text is None:
        return None
    content = text.encode("utf-8")
    if hashlib.sha256(content).hexdigest() != record.sha256:
        raise ExportError(
            f"Record {record.seq} of conversation {record.conversation_id} does not match its hash: "
            "the archive may have been altered. Run `manage.py verify_archive`; nothing was exported."
        )
    return content


def _range_plan(parameters: Mapping[str, Any]) -> list[_Plan]:
    conversation_id = int(parameters["conversation_id"])
    start = _moment(parameters.get("from"), end=False)
    stop = _moment(parameters.get("to"), end=True)
    first_day = start.astimezone(_zone()).date() if start else None
    last_day = stop.astimezone(_zone()).date() if stop else None
    periods = {
        seq: (begin, end)
        for seq, begin, end in RetentionRecord.objects.filter(conversation_id=conversation_id).values_list(
            "seq", "period_start", "period_end"
        )
    }
    # Records that begin after the range are not needed at all.
    chain = [r for r in _chain(conversation_id) if last_day is None or periods[r.seq][0] <= last_day]

    def selected(record: RecordRef, event: dict[str, Any]) -> bool:
        at = datetime.fromisoformat(event["at"])
        return (start is None or at >= start) and (stop is None or at < stop)

    def purged_in_scope(record: RecordRef) -> bool:
        begin, end = periods[record.seq]
        return (first_day is None or end >= first_day) and (last_day is None or begin <= last_day)

    return [_Plan(chain, selected, purged_in_scope)]


def _search_plan(parameters: Mapping[str, Any]) -> list[_Plan]:
    selection = search.matching(search_criteria(parameters["search"]))
    needed = (
        selection.order_by()
        .values("conversation_id")
        .annotate(last=Max("record__seq"))
        .order_by("conversation_id")
        .values_list("conversation_id", "last")
    )
    plans = []
    for conversation_id, last in list(needed):
        current: dict[str, Any] = {"record": None, "events": set()}

        def selected(record: RecordRef, event: dict[str, Any], current: dict[str, Any] = current) -> bool:
            # The selected versions of one record at a time (at most a
            # record's events), never a whole conversation's.
            if current["record"] != record.pk:
                current["record"] = record.pk
                current["events"] = set(
                    selection.filter(record_id=record.pk).values_list("event_id", flat=True)
                )
            return int(event["id"]) in current["events"]

        plans.append(_Plan(_chain(conversation_id, last), selected, lambda record: False))
    return plans


class _Walk:
    """Walks the records an export needs, one at a time in chain order, and
    yields the selected versions; what it met is kept for the manifest (a
    few numbers per covering record)."""

    def __init__(self, parameters: Mapping[str, Any], keep: Callable[[RecordRef, bytes], None]) -> None:
        self.plans = (
            _search_plan(parameters) if parameters.get("kind") == "search" else _range_plan(parameters)
        )
        self.keep = keep
        self.records: list[dict[str, Any]] = []
        self.titles: dict[int, str] = {}
        self.events_total = sum(r.event_count for plan in self.plans for r in plan.chain)
        self.events_done = 0
        self.versions = 0
        self.on_record: Callable[[], None] = lambda: None

    def __iter__(self) -> Iterator[Version]:
        for plan in self.plans:
            audience, gap = _Audience(), False
            for record in plan.chain:
                content = _content(record)
                if content is None:
                    gap = True
                    if plan.purged_in_scope(record):
                        self._cover(record, available=False)
                else:
                    yield from self._versions(plan, record, content, audience, after_gap=gap)
                    gap = False
                self.events_done += record.event_count
                self.on_record()

    def _versions(
        self, plan: _Plan, record: RecordRef, content: bytes, audience: _Audience, *, after_gap: bool
    ) -> Iterator[Version]:
        payload = json.loads(content)
        audience.read(payload, after_gap=after_gap)
        title, covered = conversation_title(payload), False
        self.titles[record.conversation_id] = title
        for event in payload.get("events") or []:
            if plan.selected(record, event):
                if not covered:
                    covered = True
                    self._cover(record, available=True)
                    self.keep(record, content)
                message = event.get("message")
                if event.get("revision") and message:
                    self.versions += 1
                    yield Version(
                        conversation=dict(payload.get("conversation") or {}),
                        title=title,
                        record=record,
                        event=event,
                        message=message,
                        revision=event["revision"],
                        author=_person(audience.people, message.get("author") or event.get("actor")),
                        actor=_person(audience.people, event.get("actor")),
                        members=audience.now(),
                        members_exact=audience.exact,
                    )
            audience.apply(event)

    def _cover(self, record: RecordRef, *, available: bool) -> None:
        self.records.append(
            {
                "conversation": record.conversation_id,
                "seq": record.seq,
                "sha256": record.sha256,
                "previous_hash": record.previous_hash,
                "file": record.file if available else None,
                "purged": not available,
            }
        )


# --- Attachments -------------------------------------------------------------


def file_bytes(sha256: str) -> bytes | None:
    """The exact bytes of an archived file: the archive storage's copy, else
    the company file storage's; None when no copy matches the hash."""
    data = archive_store.get(archive_store.file_name(sha256))
    if data is not None and hashlib.sha256(data).hexdigest() == sha256:
        return data
    keys = dict.fromkeys(StoredFile.objects.filter(sha256=sha256).values_list("storage_key", flat=True))
    for key in [*keys, blob_key(sha256)]:
        try:
            with default_storage.open(key, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            continue
        if hashlib.sha256(data).hexdigest() == sha256:
            return data
    return None


class _Files:
    """Each version's files: their bytes for the mbox (read again for every
    version that carries them, never kept), and which ones are missing."""

    def __init__(self, *, with_bytes: bool) -> None:
        self.with_bytes = with_bytes
        self.available: dict[str, bool] = {}
        self.missing: list[dict[str, Any]] = []

    def of(self, version: Version) -> tuple[list[Attachment], list[dict[str, Any]]]:
        attachments, summaries = [], []
        for summary in version.revision.get("files") or []:
            sha256 = str(summary.get("sha256") or "")
            data = None
            if self.with_bytes or sha256 not in self.available:
                data = file_bytes(sha256)
                self.available[sha256] = data is not None
            attachments.append(Attachment(summary, data))
            summaries.append({**summary, "available": self.available[sha256]})
            if not self.available[sha256]:
                self.missing.append(
                    {
                        "sha256": sha256,
                        "name": summary.get("name"),
                        "message": version.message["id"],
                        "version": version.number,
                    }
                )
        return attachments, summaries


# --- The build --------------------------------------------------------------


def _hash_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class _Progress:
    """Writes the percentage to the row when it moves (the walk up to 90, the
    transcript up to 95, hashing and zipping up to 99), once per percent."""

    def __init__(self, export: Export) -> None:
        self.export_id, self.shown = export.pk, -1

    def set(self, percent: int, items: int | None = None) -> None:
        percent = max(0, min(99, percent))
        if percent <= self.shown:
            return
        self.shown = percent
        changes: dict[str, Any] = {"progress": percent}
        if items is not None:
            changes["items"] = items
        Export.objects.filter(pk=self.export_id, status=Export.Status.RUNNING).update(**changes)


def _title_page(export: Export, started: datetime, walk: _Walk) -> list[tuple[str, str]]:
    case, who = export.case, export.requested_by
    return [
        ("Case", f"{case.name} (case {case.pk})"),
        ("Legal basis", case.legal_basis),
        ("Scope", describe_scope(export.parameters, walk.titles)),
        ("Requested by", f"{who.display_name or who.email} <{who.email}>"),
        ("Exported at", f"{started.astimezone(_zone()):%Y-%m-%d %H:%M:%S %Z} (database clock)"),
        (
            "Contents",
            f"{walk.versions} message versions from {len(walk.records)} records",
        ),
    ]


def _manifest(
    export: Export,
    started: datetime,
    walk: _Walk,
    files: _Files,
    members: list[dict[str, Any]],
) -> bytes:
    case, who = export.case, export.requested_by
    manifest = {
        "format": FORMAT,
        "export": {
            "id": export.pk,
            "case": {"id": case.pk, "name": case.name, "legal_basis": case.legal_basis, "scope": case.scope},
            "requested_by": {"id": who.pk, "name": who.display_name or who.email, "email": who.email},
            "requested_at": export.requested_at.isoformat(),
            "exported_at": started.isoformat(),
            "parameters": export.parameters,
            "scope": describe_scope(export.parameters, walk.titles),
            "formats": export.formats,
        },
        "counts": {
            "versions": walk.versions,
            "records": len(walk.records),
            "attachments_missing": len(files.missing),
        },
        "files": members,
        "records": walk.records,
        "missing_attachments": files.missing,
        "genesis_hash": GENESIS_HASH,
        "verify": "python3 verify_export.py THIS.zip (Kontor's scripts/verify_export.py)",
    }
    return (json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _build(export: Export) -> None:
    progress = _Progress(export)
    started = _database_now(export)
    with tempfile.TemporaryDirectory(
        prefix=f"kontor-export-{export.pk}-", dir=getattr(settings, "FILE_UPLOAD_TEMP_DIR", None)
    ) as temp:
        folder = Path(temp)

        def keep(record: RecordRef, content: bytes) -> None:
            path = folder / record.file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)

        walk = _Walk(export.parameters, keep)
        walk.on_record = lambda: progress.set(
            90 * walk.events_done // max(walk.events_total, 1), walk.versions
        )
        mbox = Mbox(folder / "messages.mbox") if "mbox" in export.formats else None
        files = _Files(with_bytes=mbox is not None)
        # The JSON Lines are written in any case: the transcript is rendered from them.
        with (folder / "messages.jsonl").open("w", encoding="utf-8") as jsonl:
            for version in walk:
                attachments, summaries = files.of(version)
                if mbox is not None:
                    mbox.add(version, attachments)
                del attachments
                entry = jsonl_entry(version, summaries)
                jsonl.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
        if mbox is not None:
            mbox.close()
        progress.set(90, walk.versions)

        members = []
        if mbox is not None:
            members.append(folder / "messages.mbox")
        if "jsonl" in export.formats:
            members.append(folder / "messages.jsonl")
        if "pdf" in export.formats:
            title = _title_page(export, started, walk)
            transcript = Transcript(
                folder, title, walk.records, settings.KONTOR_TIME_ZONE, export_formats.TRANSCRIPT_VOLUME
            )
            with (folder / "messages.jsonl").open(encoding="utf-8") as lines:
                for number, line in enumerate(lines, 1):
                    transcript.add(json.loads(line))
                    progress.set(90 + 5 * number // max(walk.versions, 1))
            members += transcript.close()
        members += [folder / r["file"] for r in walk.records if r["file"]]

        listed = []
        for path in members:
            sha256, size = _hash_file(path)
            listed.append({"name": path.relative_to(folder).as_posix(), "sha256": sha256, "size": size})
        progress.set(96)
        manifest = _manifest(export, started, walk, files, listed)
        (folder / "manifest.json").write_bytes(manifest)
        (folder / "manifest.sha256").write_text(
            f"{hashlib.sha256(manifest).hexdigest()}  manifest.json\n", encoding="ascii"
        )
        zip_path = folder / "export.zip"
        with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
            for path in [*members, folder / "manifest.json", folder / "manifest.sha256"]:
                archive.write(path, path.relative_to(folder).as_posix())
        progress.set(99)
        sha256, size = _hash_file(zip_path)
        with zip_path.open("rb") as handle:
            key = default_storage.save(f"exports/{export.pk}-{sha256}.zip", File(handle))
    Export.objects.filter(pk=export.pk).update(
        status=Export.Status.DONE,
        progress=100,
        items=walk.versions,
        file_key=key,
        size=size,
        sha256=sha256,
        finished_at=Now(),
        error="",
    )
