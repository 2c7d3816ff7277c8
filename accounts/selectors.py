"""Read queries about people."""

from accounts.models import Invitation, User


def invitation_get_usable(*, token: str) -> Invitation | None:
    """The invitation behind a link, if it can still be used."""
    invitation = (
        Invitation.objects.select_related("user").filter(token_hash=Invitation.hash_token(token)).first()
    )
    if invitation is None or not invitation.is_usable() or invitation.user.offboarded_at:
        return None
    return invitation


def user_has_mfa(*, user: User) -> bool:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def user_find(*, user_id: int) -> User | None:
    """The person with this id, or ``None``."""
    return User.objects.filter(pk=user_id).first()


def invitations_pending_count(*, invited_by: User) -> int:
    """How many invitations the person sent that nobody used or revoked yet."""
    return Invitation.objects.filter(invited_by=invited_by, accepted_at=None, revoked_at=None).count()
