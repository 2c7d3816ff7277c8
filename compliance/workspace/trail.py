"""Reading the audit trail: filters, keyset pages, and the JSON Lines export.

Pages are cut by event id (``id < before`` or ``id > after``), never by
OFFSET, so the thousandth page costs what the first does. The export streams
the filtered events oldest first in id-keyed chunks: memory stays bounded
however long the trail is, and under ASGI every chunk is fetched in the
database thread instead of the whole export being collected first.
"""

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from accounts.models import User
from compliance.models import AuditEvent, Case

PAGE_SIZE = 50
# What the "who" filter takes for the archive's own acts (no actor).
SYSTEM = "system"
EXPORT_CHUNK = 500


@dataclass(frozen=True)
class TrailFilter:
    kind: str = ""
    actor: User | str | None = None
    case: Case | None = None
    date_from: date | None = None
    date_to: date | None = None

    @classmethod
    def from_cleaned(cls, data: dict[str, Any]) -> "TrailFilter":
        return cls(
            kind=data.get("kind") or "",
            actor=data.get("actor"),
            case=data.get("case"),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
        )

    def describe(self) -> dict[str, Any]:
        """The filter as the audit event about this look records it."""
        actor = self.actor.email if isinstance(self.actor, User) else self.actor
        return {
            "kind": self.kind or None,
            "actor": actor,
            "case": self.case.pk if self.case else None,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
        }


def _day_start(day: date) -> datetime:
    # Days are the reader's days: the time zone the pages show times in.
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def trail_events(criteria: TrailFilter) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    if criteria.kind:
        events = events.filter(kind=criteria.kind)
    if criteria.actor == SYSTEM:
        events = events.filter(actor__isnull=True)
    elif isinstance(criteria.actor, User):
        events = events.filter(actor=criteria.actor)
    if criteria.case is not None:
        events = events.filter(case=criteria.case)
    if criteria.date_from is not None:
        events = events.filter(created_at__gte=_day_start(criteria.date_from))
    if criteria.date_to is not None:
        events = events.filter(created_at__lt=_day_start(criteria.date_to + timedelta(days=1)))
    return events


@dataclass
class TrailPage:
    events: list[AuditEvent] = field(default_factory=list)
    newer: int | None = None  # pass as ``after`` for the next newer page
    older: int | None = None  # pass as ``before`` for the next older page


def trail_page(
    criteria: TrailFilter, *, before: int | None = None, after: int | None = None, size: int = PAGE_SIZE
) -> TrailPage:
    """One page of the filtered trail, newest first, in one query."""
    events = trail_events(criteria).select_related("actor", "case")
    if after is not None and before is None:
        rows = list(events.filter(pk__gt=after).order_by("pk")[: size + 1])
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        return TrailPage(
            events=rows,
            newer=rows[0].pk if rows and more_newer else None,
            older=rows[-1].pk if rows else None,
        )
    if before is not None:
        events = events.filter(pk__lt=before)
    rows = list(events.order_by("-pk")[: size + 1])
    more_older = len(rows) > size
    rows = rows[:size]
    return TrailPage(
        events=rows,
        newer=rows[0].pk if rows and before is not None else None,
        older=rows[-1].pk if rows and more_older else None,
    )


def event_json(event: AuditEvent) -> dict[str, Any]:
    """One event with every field, as the export writes it."""
    actor = event.actor
    return {
        "id": event.pk,
        "at": event.created_at.isoformat(),
        "kind": event.kind,
        "kind_label": event.get_kind_display(),
        "actor": None
        if actor is None
        else {"id": actor.pk, "email": actor.email, "name": actor.display_name or actor.email},
        "case": None if event.case is None else {"id": event.case.pk, "name": event.case.name},
        "ip": event.ip,
        "user_agent": event.user_agent,
        "detail": event.detail,
    }


def export_lines(criteria: TrailFilter, *, up_to: int) -> Iterator[bytes]:
    """The filtered events up to id ``up_to``, oldest first, one JSON object
    per line, fetched in chunks of ``EXPORT_CHUNK`` by id."""
    events = trail_events(criteria).filter(pk__lte=up_to).select_related("actor", "case").order_by("pk")
    last = 0
    while True:
        chunk = list(events.filter(pk__gt=last)[:EXPORT_CHUNK])
        if not chunk:
            return
        yield b"".join(
            json.dumps(event_json(event), ensure_ascii=False, sort_keys=True).encode() + b"\n"
            for event in chunk
        )
        last = chunk[-1].pk


def _pulled_in_database_thread(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    def pull() -> bytes | None:
        return next(chunks, None)

    async def stream() -> AsyncIterator[bytes]:
        while (chunk := await sync_to_async(pull, thread_sensitive=True)()) is not None:
            yield chunk

    return stream()


def streamed(request: HttpRequest, chunks: Iterator[bytes], **kwargs: Any) -> StreamingHttpResponse:
    """A streaming response that stays streamed under both handlers: Django
    would collect a sync iterator in full under ASGI, and an async one under
    WSGI."""
    content: Iterator[bytes] | AsyncIterator[bytes] = chunks
    if isinstance(request, ASGIRequest):
        content = _pulled_in_database_thread(chunks)
    return StreamingHttpResponse(content, **kwargs)
