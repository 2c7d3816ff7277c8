"""Read queries about people."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, QuerySet

from accounts.models import Invitation, ScheduledOffboarding, User
from messenger.models import Conversation, Membership, Message, MessageAttachment


def invitation_get_usable(*, token: str) -> Invitation | None:
    """The invitation behind a link, if it can still be used."""
    invitation = (
        Invitation.objects.select_related("user").filter(token_hash=Invitation.hash_token(token)).first()
    )
    if invitation is None or not invitation.is_usable() or invitation.user.offboarded_at:
        return None
    return invitation


def user_list_active(*, exclude: User | None = None) -> QuerySet[User]:
    users = User.objects.filter(is_active=True).select_related("department")
    if exclude is not None:
        users = users.exclude(pk=exclude.pk)
    return users


def user_has_mfa(*, user: User) -> bool:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


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
    other_owner = Membership.objects.filter(
        conversation=OuterRef("conversation"), role=Membership.Role.OWNER, left_at__isnull=True
    ).exclude(user=user)
    owned = (
        Membership.objects.filter(user=user, left_at__isnull=True, role=Membership.Role.OWNER)
        .exclude(conversation__kind=Conversation.Kind.DIRECT)
        .exclude(Exists(other_owner))
        .select_related("conversation")
        .order_by("conversation__kind", "conversation__name")
    )
    return OffboardingPreview(
        user=user,
        default_successor=default_successor(user),
        owned_alone=[m.conversation for m in owned],
        conversations=Membership.objects.filter(user=user, left_at__isnull=True).count(),
        messages=Message.objects.filter(author=user).count(),
        files=MessageAttachment.objects.filter(message__author=user).values("file_id").distinct().count(),
        invitations_pending=Invitation.objects.filter(
            invited_by=user, accepted_at=None, revoked_at=None
        ).count(),
        scheduled=ScheduledOffboarding.objects.filter(user=user, done_at=None, cancelled_at=None).first(),
    )


def user_last_seen(*, users: list[User]) -> dict[int, datetime | None]:
    """When each person was last in Kontor: the later of their last sign-in and
    the last time a socket of theirs was open (``messenger.presence``)."""
    from messenger import presence

    connected = presence.last_connected([u.pk for u in users])
    seen: dict[int, datetime | None] = {}
    for user in users:
        moments = [m for m in (user.last_login, connected.get(user.pk)) if m is not None]
        seen[user.pk] = max(moments) if moments else None
    return seen
