"""What an export covers, and in which formats: checked, made JSON, put in words."""

from collections.abc import Mapping
from dataclasses import asdict, fields
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError

from compliance.models import RetentionRecord
from compliance.workspace import search

FORMATS = ("mbox", "jsonl", "pdf")


def zone() -> ZoneInfo:
    return ZoneInfo(settings.KONTOR_TIME_ZONE)


def range_bound(value: Any, *, end: bool) -> datetime | None:
    """A range bound: an ISO date (the whole company day, in the company's time
    zone) or an ISO date-time (naive means the company's time zone). The range
    is half-open: ``to`` as a date means up to the end of that day."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        day = value + timedelta(days=1) if end else value
        return datetime.combine(day, time.min, tzinfo=zone())
    else:
        text = str(value).strip()
        try:
            if len(text) == 10:
                return range_bound(date.fromisoformat(text), end=end)
            moment = datetime.fromisoformat(text)
        except ValueError as error:
            raise ValidationError(f"{text!r} is not a date (YYYY-MM-DD) or a date and time.") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=zone())


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
    start = range_bound(parameters.get("from"), end=False)
    stop = range_bound(parameters.get("to"), end=True)
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
