"""Read queries of HR's offboarding, over the domain apps' selectors."""

from dataclasses import dataclass
from datetime import datetime

from accounts import selectors as people
from accounts.models import User
from hr.models import OffboardingReport, ScheduledOffboarding
from messenger import presence
from messenger import selectors as chat
from messenger.models import Conversation


@dataclass(frozen=True)
class OffboardingPreview:
    """What HR sees on the confirmation page before offboarding someone."""

    user: User
    default_successor: User | None
    # Groups and channels they own with no other owner: these pass to the successor.
    owned_alone: list[Conversation]
    conversations: int
    messages: int
    files: int
    invitations_pending: int
    scheduled: ScheduledOffboarding | None


def default_successor(user: User) -> User | None:
    """The head of the person's department, if there is an active one besides them."""
    head = user.department.head if user.department is not None else None
    if head is None or not head.is_active or head.pk == user.pk:
        return None
    return head


def offboarding_preview(*, user: User) -> OffboardingPreview:
    left_behind = chat.leaver_summary(user=user)
    return OffboardingPreview(
        user=user,
        default_successor=default_successor(user),
        owned_alone=left_behind.owned_alone,
        conversations=left_behind.current,
        messages=left_behind.messages,
        files=len(left_behind.file_ids),
        invitations_pending=people.invitations_pending_count(invited_by=user),
        scheduled=scheduled_pending(user=user),
    )


def scheduled_pending(*, user: User) -> ScheduledOffboarding | None:
    """The person's offboarding that waits for its time, if any (at most one)."""
    return ScheduledOffboarding.objects.filter(user=user, done_at=None, cancelled_at=None).first()


def report_of(*, user: User) -> OffboardingReport | None:
    """The report of the person's current (or, after a return, latest) offboarding."""
    reports = OffboardingReport.objects.filter(user=user)
    if user.offboarded_at is not None:
        reports = reports.filter(offboarded_at=user.offboarded_at)
    return reports.order_by("-offboarded_at").first()


def user_last_seen(*, users: list[User]) -> dict[int, datetime | None]:
    """When each person was last in Kontor: the later of their last sign-in and
    the last time a socket of theirs was open (``messenger.presence``)."""
    connected = presence.last_connected([u.pk for u in users])
    seen: dict[int, datetime | None] = {}
    for user in users:
        moments = [m for m in (user.last_login, connected.get(user.pk)) if m is not None]
        seen[user.pk] = max(moments) if moments else None
    return seen
