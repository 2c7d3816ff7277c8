"""What each legal hold covers, for the holds pages.

A hold covers a record when every criterion it names matches: the record's
conversation, a custodian among the record's people, a period overlapping the
record's. ``compliance.lifecycle._holds_covering`` asks the same question the
other way round (which holds cover this record?) and the content-delete
trigger asks it in SQL; a test keeps the three in step.
"""

from dataclasses import dataclass
from datetime import date

from django.db.models import Count, Exists, F, Func, Max, Min, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.db.models.lookups import IsNull
from django.http import Http404

from compliance.models import LegalHold, RecordPerson, RetentionRecord
from messenger.models import Conversation


def records_covered(hold: LegalHold) -> QuerySet[RetentionRecord]:
    records = RetentionRecord.objects.all()
    if hold.conversation_id is not None:
        records = records.filter(conversation_id=hold.conversation_id)
    if hold.custodian_id is not None:
        records = records.filter(
            Exists(RecordPerson.objects.filter(record=OuterRef("pk"), user_id=hold.custodian_id))
        )
    if hold.date_from is not None:
        records = records.filter(period_end__gte=hold.date_from)
    if hold.date_to is not None:
        records = records.filter(period_start__lte=hold.date_to)
    return records


def _covered_by_outer_hold() -> QuerySet[RetentionRecord]:
    """Records covered by the hold of the enclosing query (for annotations):
    a criterion the hold leaves empty matches every record."""
    return RetentionRecord.objects.filter(
        conversation_id=Coalesce(OuterRef("conversation_id"), F("conversation_id")),
        period_end__gte=Coalesce(OuterRef("date_from"), F("period_end")),
        period_start__lte=Coalesce(OuterRef("date_to"), F("period_start")),
    ).filter(
        Q(IsNull(OuterRef("custodian_id"), True))
        | Q(
            Exists(
                RecordPerson.objects.filter(record=OuterRef("pk"), user_id=OuterRef(OuterRef("custodian_id")))
            )
        )
    )


def _one(aggregate: str, field: str, template: str = "") -> Subquery:
    """An aggregate over the covered records as a scalar subquery."""
    function = Func(F(field), function=aggregate, template=template or Func.template)
    return Subquery(_covered_by_outer_hold().order_by().annotate(value=function).values("value")[:1])


def holds_with_coverage() -> QuerySet[LegalHold]:
    """Every hold, active ones first, each annotated with what it covers
    (records, conversations, first and last day), in one query."""
    return (
        LegalHold.objects.select_related("custodian", "conversation", "set_by", "released_by")
        .annotate(
            covered_records=Coalesce(_one("COUNT", "pk"), 0),
            covered_conversations=Coalesce(
                _one("COUNT", "conversation_id", "COUNT(DISTINCT %(expressions)s)"), 0
            ),
            covered_from=_one("MIN", "period_start"),
            covered_to=_one("MAX", "period_end"),
        )
        .order_by(F("released_at").desc(nulls_first=True), "-pk")
    )


@dataclass(frozen=True)
class ConversationCoverage:
    conversation: Conversation
    records: int
    events: int
    first_day: date
    last_day: date


@dataclass(frozen=True)
class Coverage:
    records: int
    events: int
    first_day: date | None
    last_day: date | None
    conversations: list[ConversationCoverage]


def hold_detail(hold_id: int) -> tuple[LegalHold, Coverage]:
    hold = (
        LegalHold.objects.select_related("custodian", "conversation", "set_by", "released_by")
        .filter(pk=hold_id)
        .first()
    )
    if hold is None:
        raise Http404("Not found")
    rows = list(
        records_covered(hold)
        .order_by()
        .values("conversation_id")
        .annotate(
            records=Count("pk"),
            events=Sum("event_count"),
            first_day=Min("period_start"),
            last_day=Max("period_end"),
        )
        .order_by("-last_day", "conversation_id")
    )
    conversations = Conversation.objects.in_bulk([row["conversation_id"] for row in rows])
    per_conversation = [
        ConversationCoverage(
            conversation=conversations[row["conversation_id"]],
            records=row["records"],
            events=row["events"] or 0,
            first_day=row["first_day"],
            last_day=row["last_day"],
        )
        for row in rows
    ]
    coverage = Coverage(
        records=sum(c.records for c in per_conversation),
        events=sum(c.events for c in per_conversation),
        first_day=min((c.first_day for c in per_conversation), default=None),
        last_day=max((c.last_day for c in per_conversation), default=None),
        conversations=per_conversation,
    )
    return hold, coverage
