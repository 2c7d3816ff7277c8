"""External contacts: clients and partners who take part in a group or channel
by email. They are ``User`` rows with ``is_external`` set and ``is_active``
off, so no login path (password, reset, single sign-on, admin) ever lets them
in; the email bridge posts for them after checking their signed reply address.
Their messages are journaled and archived like everyone's, and the records
say they are external."""

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models.functions import Now

from accounts import services as accounts_services
from accounts.models import User
from messenger.errors import Forbidden, Invalid, NotFound
from messenger.mail import outgoing
from messenger.models import Conversation, Event, Membership
from messenger.permissions import access_conversation
from messenger.services._journal import append
from messenger.services.conversations import _add_member, _require_open, _require_owner

NAME_MAX = 150


def _clean_address(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise Invalid("That is not an email address.") from None
    return email


@transaction.atomic
def conversation_set_allows_external(*, actor: User, conversation_id: int, allowed: bool) -> Conversation:
    """An owner lets members add external contacts, or stops it. Stopping is
    refused while external contacts still take part: remove them first."""
    conversation = access_conversation(actor, conversation_id, for_update=True)
    _require_open(conversation)
    if conversation.is_direct:
        raise Invalid(
            "Direct conversations are between colleagues; start a group to include someone outside."
        )
    _require_owner(conversation, actor)
    if conversation.allows_external == allowed:
        return conversation
    if (
        not allowed
        and Membership.objects.filter(
            conversation=conversation, left_at__isnull=True, user__is_external=True
        ).exists()
    ):
        raise Invalid("Remove the external participants first.")
    Conversation.objects.filter(pk=conversation.pk).update(allows_external=allowed)
    conversation.allows_external = allowed
    append(conversation, Event.Type.EXTERNALS_CHANGED, actor, data={"allowed": allowed})
    return conversation


@transaction.atomic
def external_contact_add(*, actor: User, conversation_id: int, email: str, name: str = "") -> Membership:
    """A member adds someone outside the company by address. They get a mail
    saying so (with the recording notice where one applies) and then every
    new message; they answer by replying."""
    conversation = access_conversation(actor, conversation_id, for_update=True)
    _require_open(conversation)
    if not conversation.allows_external:
        raise Forbidden("This conversation does not allow external participants.")
    email = _clean_address(email)
    name = " ".join((name or "").split())[:NAME_MAX]
    try:
        contact = accounts_services.external_contact_ensure(email=email, name=name)
    except ValidationError as error:
        raise Invalid(error.messages[0]) from None
    was_member = Membership.objects.filter(
        conversation=conversation, user=contact, left_at__isnull=True
    ).exists()
    membership = _add_member(conversation, actor, contact)
    if not was_member:
        welcome = outgoing.welcome_mail(contact=contact, conversation=conversation, added_by=actor)
        # robust: the member is added even when the mail server is down.
        transaction.on_commit(welcome.send, robust=True)
    return membership


@transaction.atomic
def external_contact_remove(*, actor: User, conversation_id: int, user_id: int) -> None:
    """Any member may take an external contact out again; they get no more mail."""
    conversation = access_conversation(actor, conversation_id, for_update=True)
    _require_open(conversation)
    membership = (
        Membership.objects.select_related("user")
        .filter(conversation=conversation, user_id=user_id, user__is_external=True, left_at__isnull=True)
        .first()
    )
    if membership is None:
        raise NotFound("external participant")
    Membership.objects.filter(pk=membership.pk).update(left_at=Now())
    append(conversation, Event.Type.MEMBER_REMOVED, actor, subject=membership.user, data={"external": True})
