"""Cases: an auditor's matter, opened before any look into the archive.

The rules, enforced here:

1. Only auditors (``access.is_auditor``: the role plus a second factor) open,
   approve, close or use a case; anyone else is told the case does not exist.
2. A case needs a name and a legal basis; without them nothing is written.
3. With the four-eyes rule (``KONTOR_AUDIT_FOUR_EYES``) a second auditor, never
   the one who opened it, approves a case before its results can be opened.
4. A closed case stays closed and opens no results; its audit trail stays.
5. Opening, approving and closing are exactly one audit event each, written in
   the same transaction as the change.

Every search, view and export belongs to a case: their views fetch it through
``case_for_results``, which applies rules 1, 3 and 4.
"""

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models.functions import Now
from django.http import Http404

from accounts.models import User

# The one switch of the four-eyes rule, shared with the role grants.
from accounts.services import four_eyes
from compliance.audit import Origin, audit_event_record
from compliance.models import AuditEvent, Case
from compliance.workspace import selectors
from compliance.workspace.access import is_auditor

NAME_MAX = 200


def _auditor(user: User | AnonymousUser | None) -> User:
    if not isinstance(user, User) or not user.is_active or not is_auditor(user):
        raise Http404("Not found")
    return user


def case_blocked_reason(case: Case) -> str:
    """Why the case's results cannot be opened now, or "" when they can."""
    if case.closed_at is not None:
        return "This case is closed: its results can no longer be opened. Open a new case to look again."
    if four_eyes() and case.approved_at is None:
        return (
            "This case awaits approval by a second auditor (four-eyes rule): "
            "its results can be opened once another auditor has approved it."
        )
    return ""


def case_for_user(user: User | AnonymousUser | None, case_id: int) -> Case:
    """The case, for an auditor, whatever its state (its own page shows it).

    Raises Http404 when the user is no auditor or the case does not exist.
    """
    _auditor(user)
    return selectors.case_get(case_id=case_id)


def case_for_results(user: User | AnonymousUser | None, case_id: int) -> Case:
    """The case whose results (search, conversations, exports) ``user`` may open.

    Raises Http404 when the user is no auditor or the case does not exist, and
    PermissionDenied with the reason when the case is closed or (four eyes)
    still awaits a second auditor's approval.
    """
    case = case_for_user(user, case_id)
    reason = case_blocked_reason(case)
    if reason:
        raise PermissionDenied(reason)
    return case


def _locked(case_id: int) -> Case:
    case = Case.objects.select_for_update().filter(pk=case_id).first()
    if case is None:
        raise Http404("Not found")
    return case


@transaction.atomic
def case_open(
    *,
    actor: User,
    name: str,
    legal_basis: str,
    scope: str = "",
    origin: Origin = Origin.NONE,
) -> Case:
    """Open a case. Raises ValidationError (nothing written) without a name
    or a legal basis. ``origin``: where the act came from (a page's address
    and browser; none from a shell or a task)."""
    _auditor(actor)
    name, legal_basis, scope = name.strip(), legal_basis.strip(), scope.strip()
    if not name:
        raise ValidationError("A case needs a name.")
    if len(name) > NAME_MAX:
        raise ValidationError(f"A case name has at most {NAME_MAX} characters.")
    if not legal_basis:
        raise ValidationError("A case needs its legal basis: why it may look into the archive.")
    case = Case.objects.create(name=name, legal_basis=legal_basis, scope=scope, opened_by=actor)
    audit_event_record(
        kind=AuditEvent.Kind.CASE_OPENED,
        actor=actor,
        case=case,
        origin=origin,
        detail={"name": name, "legal_basis": legal_basis, "scope": scope, "four_eyes": four_eyes()},
    )
    return case


@transaction.atomic
def case_approve(*, actor: User, case_id: int, origin: Origin = Origin.NONE) -> Case:
    """A second auditor approves a case (four eyes). The opener never can; a
    closed or already approved case cannot be approved (ValidationError)."""
    _auditor(actor)
    # Locked: two auditors approving at once make one approval, not two events.
    case = _locked(case_id)
    if case.opened_by_id == actor.pk:
        raise ValidationError("You opened this case: a second auditor must approve it.")
    if case.closed_at is not None:
        raise ValidationError("This case is closed and can no longer be approved.")
    if case.approved_at is not None:
        raise ValidationError("This case is already approved.")
    Case.objects.filter(pk=case.pk).update(approved_by=actor, approved_at=Now())
    case.refresh_from_db()
    audit_event_record(
        kind=AuditEvent.Kind.CASE_APPROVED, actor=actor, case=case, origin=origin, detail={"name": case.name}
    )
    return case


@transaction.atomic
def case_close(*, actor: User, case_id: int, reason: str, origin: Origin = Origin.NONE) -> Case:
    """Close a case for good; its results can no longer be opened. Needs a
    reason (ValidationError, nothing written, without one)."""
    _auditor(actor)
    reason = reason.strip()
    if not reason:
        raise ValidationError("Say why the case is closed.")
    case = _locked(case_id)
    if case.closed_at is not None:
        raise ValidationError("This case is already closed.")
    Case.objects.filter(pk=case.pk).update(closed_by=actor, closed_at=Now())
    case.refresh_from_db()
    audit_event_record(
        kind=AuditEvent.Kind.CASE_CLOSED,
        actor=actor,
        case=case,
        origin=origin,
        detail={"name": case.name, "reason": reason},
    )
    return case
