"""What an export covers: the selected message versions, read from the
records through the chain reader, each with the people and members of its
moment."""

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Max, QuerySet, Sum

from compliance.index import conversation_title
from compliance.models import RetentionRecord
from compliance.workspace import search
from compliance.workspace.chain import Membership, RecordAltered, RecordRead, RecordRef, chain_read
from compliance.workspace.exports.formats import Version
from compliance.workspace.exports.parameters import range_bound, search_criteria, zone

# One record's content at a time: a record holds up to 1,000 events.
RECORDS_CHUNK = 1


class ExportError(Exception):
    """The export cannot be built as asked (a record that fails its hash, say)."""


# Whether an event of a record is in the export.
Selector = Callable[[RecordRef, dict[str, Any]], bool]


@dataclass(frozen=True)
class Plan:
    """One conversation's part of an export: its records from the first up
    to the last one needed (membership is replayed from the start), which
    events are selected, and whether a purged record lies in the scope."""

    records: QuerySet[RetentionRecord]
    selected: Selector
    purged_in_scope: Callable[[RecordRef], bool]


def _records(conversation_id: int, up_to_seq: int | None = None) -> QuerySet[RetentionRecord]:
    records = RetentionRecord.objects.filter(conversation_id=conversation_id)
    return records if up_to_seq is None else records.filter(seq__lte=up_to_seq)


def _range_plan(parameters: Mapping[str, Any]) -> list[Plan]:
    conversation_id = int(parameters["conversation_id"])
    start = range_bound(parameters.get("from"), end=False)
    stop = range_bound(parameters.get("to"), end=True)
    first_day = start.astimezone(zone()).date() if start else None
    last_day = stop.astimezone(zone()).date() if stop else None
    records = _records(conversation_id)
    if last_day is not None:
        # Records that begin after the range are not needed at all.
        records = records.filter(period_start__lte=last_day)

    def selected(record: RecordRef, event: dict[str, Any]) -> bool:
        at = datetime.fromisoformat(event["at"])
        return (start is None or at >= start) and (stop is None or at < stop)

    def purged_in_scope(record: RecordRef) -> bool:
        return (first_day is None or record.period_end >= first_day) and (
            last_day is None or record.period_start <= last_day
        )

    return [Plan(records, selected, purged_in_scope)]


def _search_plan(parameters: Mapping[str, Any]) -> list[Plan]:
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

        plans.append(Plan(_records(conversation_id, last), selected, lambda record: False))
    return plans


def plans_for(parameters: Mapping[str, Any]) -> list[Plan]:
    return _search_plan(parameters) if parameters.get("kind") == "search" else _range_plan(parameters)


def proven(read: RecordRead) -> bytes | None:
    """A record read's content, only if it proves itself; ``ExportError``
    naming the record otherwise (nothing is exported from an altered archive)."""
    try:
        return read.proven()
    except RecordAltered as error:
        raise ExportError(f"{error}. Run `manage.py verify_archive`; nothing was exported.") from error


class Walk:
    """Walks the records an export needs, one at a time in chain order, and
    yields the selected versions; what it met is kept for the manifest (a
    few numbers per covering record)."""

    def __init__(self, parameters: Mapping[str, Any], keep: Callable[[RecordRef, bytes], None]) -> None:
        self.plans = plans_for(parameters)
        self.keep = keep
        self.records: list[dict[str, Any]] = []
        self.titles: dict[int, str] = {}
        self.events_total = sum(
            plan.records.aggregate(total=Sum("event_count"))["total"] or 0 for plan in self.plans
        )
        self.events_done = 0
        self.versions = 0
        self.on_record: Callable[[], None] = lambda: None

    def __iter__(self) -> Iterator[Version]:
        for plan in self.plans:
            membership = Membership()
            for read in chain_read(plan.records, chunk=RECORDS_CHUNK):
                record = read.ref
                membership.arrive(record.seq)
                content = proven(read)
                if content is None:
                    membership.skip()
                    if plan.purged_in_scope(record):
                        self._cover(record, available=False)
                else:
                    yield from self._versions(plan, record, content, membership)
                self.events_done += record.event_count
                self.on_record()

    def _versions(
        self, plan: Plan, record: RecordRef, content: bytes, membership: Membership
    ) -> Iterator[Version]:
        payload = json.loads(content)
        events = list(payload.get("events") or [])
        membership.begin(record.seq, payload, events)
        people = membership.people
        title, covered = conversation_title(payload), False
        self.titles[record.conversation_id] = title
        for event in events:
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
                        author=people.entry(message.get("author") or event.get("actor")),
                        actor=people.entry(event.get("actor")),
                        members=[people.entry(pk) for pk in membership.members],
                        members_exact=membership.exact,
                    )
            membership.apply(event, None)

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
