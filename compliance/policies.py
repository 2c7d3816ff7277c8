"""Which retention policy a record gets, and the only ways retention changes.

A policy is assigned to the whole company (the default policy), to a
department or to a conversation. The most specific assignment wins: the
conversation's own; else those of the departments of the people in the record
and of the conversation's members (the longest of them, C8); else the default.

Retention only ever grows (C9). A policy's period can be lengthened, never
shortened, and lengthening it extends the records already written under it;
an authority's request extends the records it names. Each extension is an
append-only ``RetentionExtension`` row and an audit event with actor and reason.
"""

from datetime import date, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, Max, Q, When
from django.db.models.functions import Greatest

from accounts.models import Department, User
from compliance import archive_store, records
from compliance.audit import audit_event_record
from compliance.models import (
    AuditEvent,
    PolicyAssignment,
    RecordPerson,
    RetentionExtension,
    RetentionPolicy,
    RetentionRecord,
)
from messenger.models import Conversation, Membership

# Days on which a change of period is compared: the start, the end and a leap day.
_PROBES = (date(2023, 1, 1), date(2023, 12, 31), date(2024, 2, 29), date(2024, 6, 15))


def _candidates(conversation: Conversation, user_ids: list[int]) -> list[RetentionPolicy]:
    """The policies at the most specific level that applies to the conversation
    (one query): its own assignment, else its people's departments', else the default."""
    members = Membership.objects.filter(conversation=conversation, left_at__isnull=True).values("user_id")
    departments = User.objects.filter(
        Q(pk__in=user_ids) | Q(pk__in=members), department__isnull=False
    ).values("department_id")
    own, of_department = Q(assignments__conversation=conversation), Q(assignments__department__in=departments)
    rows = RetentionPolicy.objects.filter(own | of_department | Q(is_default=True)).annotate(
        level=Case(When(own, then=0), When(of_department, then=1), default=2)
    )
    levels: dict[int, dict[int, RetentionPolicy]] = {}
    for policy in rows:
        if policy.level == 2 and not policy.is_default:
            continue
        levels.setdefault(policy.level, {})[policy.pk] = policy
    return list(levels[min(levels)].values()) if levels else []


def policy_for(
    conversation: Conversation, *, made_on: date, user_ids: list[int]
) -> tuple[RetentionPolicy, date]:
    """The policy of a record made on ``made_on`` naming ``user_ids``, and its retention date."""
    candidates = _candidates(conversation, user_ids)
    if not candidates:
        raise RuntimeError("No default retention policy: migration compliance 0002 makes one.")
    dated = [(records.retain_until(p, made_on), p.name, p) for p in candidates]
    until, _, policy = max(dated, key=lambda item: (item[0], item[1]))
    return policy, until


def recording_notice(conversation: Conversation) -> RetentionPolicy | None:
    """The regulated policy to tell the conversation's participants about (C20),
    if any applies; of several, the one that keeps records longest."""
    today = date.today()
    regulated = [p for p in _candidates(conversation, []) if p.recording_notice]
    return max(regulated, key=lambda p: records.retain_until(p, today), default=None)


def _audit(kind: str, actor: User | None, **detail: Any) -> None:
    audit_event_record(kind=kind, actor=actor, detail=detail)


def _period(policy: RetentionPolicy) -> dict[str, Any]:
    return {"years": policy.years, "days": policy.days, "from_year_end": policy.from_year_end}


def _require_reason(reason: str) -> str:
    if not reason.strip():
        raise ValidationError("Say why: the reason is kept in the audit log.")
    return reason.strip()


@transaction.atomic
def policy_create(
    *,
    actor: User,
    name: str,
    record_class: str,
    years: int = 0,
    days: int = 0,
    from_year_end: bool = True,
    legal_basis: str = "",
    purge_live: bool = False,
    recording_notice: bool = False,
    reason: str = "",
) -> RetentionPolicy:
    reason = _require_reason(reason)
    if years < 0 or days < 0 or years + days == 0:
        raise ValidationError("A retention period needs years or days.")
    if record_class not in RetentionPolicy.RecordClass.values:
        raise ValidationError(f"Unknown record class {record_class!r}.")
    if RetentionPolicy.objects.filter(name=name.strip()).exists():
        raise ValidationError(f"A policy named {name.strip()!r} exists already.")
    policy = RetentionPolicy.objects.create(
        name=name.strip(),
        record_class=record_class,
        years=years,
        days=days,
        from_year_end=from_year_end,
        legal_basis=legal_basis.strip(),
        purge_live=purge_live,
        recording_notice=recording_notice,
    )
    _audit(
        AuditEvent.Kind.POLICY_CHANGED,
        actor,
        action="created",
        policy=policy.pk,
        name=policy.name,
        **_period(policy),
        purge_live=purge_live,
        recording_notice=recording_notice,
        legal_basis=policy.legal_basis,
        reason=reason,
    )
    return policy


def check_not_shorter(policy: RetentionPolicy, *, years: int, days: int, from_year_end: bool) -> None:
    """Refuse a period that would end earlier than the current one for any record."""
    proposed = RetentionPolicy(years=years, days=days, from_year_end=from_year_end)
    if years < 0 or days < 0 or years + days == 0:
        raise ValidationError("A retention period needs years or days.")
    for made_on in _PROBES:
        if records.retain_until(proposed, made_on) < records.retain_until(policy, made_on):
            raise ValidationError(
                "Retention can be extended but never shortened: the new period would end earlier "
                f"than {policy.years} year(s) {policy.days} day(s)"
                f"{' from the end of the calendar year' if policy.from_year_end else ''}."
            )


@transaction.atomic
def policy_update(
    *,
    actor: User,
    policy_id: int,
    reason: str,
    years: int,
    days: int,
    from_year_end: bool,
    legal_basis: str | None = None,
    purge_live: bool | None = None,
    recording_notice: bool | None = None,
) -> RetentionPolicy:
    """Lengthen a policy (never shorten it); the records already under it are
    extended to the new period."""
    reason = _require_reason(reason)
    policy = RetentionPolicy.objects.select_for_update().get(pk=policy_id)
    check_not_shorter(policy, years=years, days=days, from_year_end=from_year_end)
    switches = ("legal_basis", "purge_live", "recording_notice")
    before = {**_period(policy), **{name: getattr(policy, name) for name in switches}}
    policy.years, policy.days, policy.from_year_end = years, days, from_year_end
    if legal_basis is not None:
        policy.legal_basis = legal_basis.strip()
    if purge_live is not None:
        policy.purge_live = purge_live
    if recording_notice is not None:
        policy.recording_notice = recording_notice
    policy.save()
    extended = 0
    if (years, days, from_year_end) != (before["years"], before["days"], before["from_year_end"]):
        kept = RetentionRecord.objects.filter(policy=policy, purge__isnull=True)
        extended = _extend(
            kept, lambda record: records.retain_until(policy, record.period_end), actor, reason
        )
    after = {**_period(policy), **{name: getattr(policy, name) for name in switches}}
    _audit(
        AuditEvent.Kind.POLICY_CHANGED,
        actor,
        action="changed",
        policy=policy.pk,
        name=policy.name,
        before=before,
        after=after,
        reason=reason,
        records_extended=extended,
    )
    return policy


@transaction.atomic
def policy_set_default(*, actor: User, policy_id: int, reason: str) -> RetentionPolicy:
    """Make ``policy`` the company-wide policy for records made from now on."""
    reason = _require_reason(reason)
    policy = RetentionPolicy.objects.get(pk=policy_id)
    previous = RetentionPolicy.objects.filter(is_default=True).exclude(pk=policy.pk).first()
    if previous is not None:
        RetentionPolicy.objects.filter(pk=previous.pk).update(is_default=False)
    RetentionPolicy.objects.filter(pk=policy.pk).update(is_default=True)
    _audit(
        AuditEvent.Kind.POLICY_CHANGED,
        actor,
        action="default",
        policy=policy.pk,
        name=policy.name,
        previous=previous.name if previous else None,
        reason=reason,
    )
    policy.refresh_from_db()
    return policy


@transaction.atomic
def policy_assign(
    *,
    actor: User,
    policy_id: int,
    reason: str,
    department: Department | None = None,
    conversation: Conversation | None = None,
) -> PolicyAssignment:
    """Assign a policy to a department or a conversation, for records made from
    now on (records already written keep their retention, or get more)."""
    reason = _require_reason(reason)
    if (department is None) == (conversation is None):
        raise ValidationError("Assign a policy to either a department or a conversation.")
    policy = RetentionPolicy.objects.get(pk=policy_id)
    scope = {"department": department} if department is not None else {"conversation": conversation}
    previous = PolicyAssignment.objects.filter(**scope).select_related("policy").first()
    if previous is not None:
        previous.delete()
    assignment = PolicyAssignment.objects.create(policy=policy, assigned_by=actor, **scope)
    _audit(
        AuditEvent.Kind.POLICY_CHANGED,
        actor,
        action="assigned",
        policy=policy.pk,
        name=policy.name,
        department=department.pk if department else None,
        conversation=conversation.pk if conversation else None,
        previous=previous.policy.name if previous else None,
        reason=reason,
    )
    return assignment


@transaction.atomic
def policy_unassign(*, actor: User, assignment_id: int, reason: str) -> None:
    reason = _require_reason(reason)
    assignment = PolicyAssignment.objects.select_related("policy").get(pk=assignment_id)
    _audit(
        AuditEvent.Kind.POLICY_CHANGED,
        actor,
        action="unassigned",
        policy=assignment.policy_id,
        name=assignment.policy.name,
        department=assignment.department_id,
        conversation=assignment.conversation_id,
        reason=reason,
    )
    assignment.delete()


def effective_retain_until(record: RetentionRecord) -> date:
    """A record's retention: its own date or its latest extension."""
    latest = record.extensions.aggregate(m=Max("retain_until"))["m"]
    return max(record.retain_until, latest) if latest else record.retain_until


def _extend(records: Any, until_for: Any, actor: User | None, reason: str) -> int:
    annotated = records.annotate(
        extended_to=Greatest("retain_until", Max("extensions__retain_until"))
    ).order_by("pk")
    extensions = []
    for record in annotated.iterator(chunk_size=2000):
        current = record.extended_to or record.retain_until
        until = until_for(record)
        if until > current:
            extensions.append(
                RetentionExtension(record=record, retain_until=until, reason=reason, actor=actor)
            )
    RetentionExtension.objects.bulk_create(extensions, batch_size=1000)
    for extension in extensions:
        _on_extended(extension)
    return len(extensions)


def _on_extended(extension: RetentionExtension) -> None:
    """The archive storage's copies are kept as long as the record."""
    extend = getattr(archive_store, "extend", None)
    if extend is not None:
        extend(archive_store.record_name(extension.record), extension.retain_until)


@transaction.atomic
def retention_extend(
    *,
    actor: User,
    until: date,
    reason: str,
    conversation: Conversation | None = None,
    custodian: User | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> int:
    """Keep the records a request names (by conversation, person or date range;
    every criterion given must match) at least until ``until``. Returns how many
    records were extended; records already kept longer are left as they are."""
    reason = _require_reason(reason)
    if not (conversation or custodian or date_from or date_to):
        raise ValidationError("Name the records to keep longer: a conversation, a person or a date range.")
    if until <= date.today() + timedelta(days=0):
        raise ValidationError("The new retention date must lie in the future.")
    records = RetentionRecord.objects.filter(purge__isnull=True)
    if conversation is not None:
        records = records.filter(conversation=conversation)
    if custodian is not None:
        records = records.filter(pk__in=RecordPerson.objects.filter(user=custodian).values("record_id"))
    if date_from is not None:
        records = records.filter(period_end__gte=date_from)
    if date_to is not None:
        records = records.filter(period_start__lte=date_to)
    count = _extend(records, lambda record: until, actor, reason)
    _audit(
        AuditEvent.Kind.RETENTION_EXTENDED,
        actor,
        until=until.isoformat(),
        reason=reason,
        conversation=conversation.pk if conversation else None,
        custodian=custodian.pk if custodian else None,
        date_from=date_from.isoformat() if date_from else None,
        date_to=date_to.isoformat() if date_to else None,
        records=count,
    )
    return count
