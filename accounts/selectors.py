"""Read queries about people."""

from django.db.models import QuerySet

from accounts.models import Invitation, User


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
