"""The one access helper per resource. Views, consumers and tasks all use these;
none re-implements membership rules. Missing and not-yours raise the same error."""

from django.db.models import Exists, QuerySet

from accounts.models import User
from archive.models import StoredFile
from messenger.errors import NotFound
from messenger.models import Conversation, Membership, Message, MessageAttachment


def access_conversation(user: User, conversation_id: int, *, for_update: bool = False) -> Conversation:
    """The conversation, if ``user`` is an active member of it.

    With ``for_update`` the row is locked until the transaction ends: the
    per-conversation sequence and counters are changed under that lock.
    """
    if not user.is_active:
        raise NotFound()
    conversations: QuerySet[Conversation] = Conversation.objects.filter(
        pk=conversation_id, memberships__user=user, memberships__left_at__isnull=True
    )
    if for_update:
        conversations = Conversation.objects.select_for_update().filter(pk__in=conversations.values("pk"))
    conversation = conversations.first()
    if conversation is None:
        raise NotFound()
    return conversation


def access_conversation_as_external(
    contact: User, conversation_id: int, *, for_update: bool = False
) -> Conversation:
    """The conversation, if ``contact`` is an external contact still taking part
    in it and it still allows external participants. Externals never sign in:
    only the email bridge acts for them, after it checked the signed reply address."""
    if not contact.is_external:
        raise NotFound()
    conversations: QuerySet[Conversation] = Conversation.objects.filter(
        pk=conversation_id,
        allows_external=True,
        memberships__user=contact,
        memberships__left_at__isnull=True,
    )
    if for_update:
        conversations = Conversation.objects.select_for_update().filter(pk__in=conversations.values("pk"))
    conversation = conversations.first()
    if conversation is None:
        raise NotFound()
    return conversation


def access_membership(user: User, conversation_id: int) -> Membership:
    membership = (
        Membership.objects.select_related("conversation")
        .filter(conversation_id=conversation_id, user=user, left_at__isnull=True)
        .first()
    )
    if membership is None or not user.is_active:
        raise NotFound()
    return membership


def access_public_channel(user: User, conversation_id: int) -> Conversation:
    """A public channel anyone in the company may see and join."""
    conversation = Conversation.objects.filter(
        pk=conversation_id, kind=Conversation.Kind.CHANNEL, is_private=False
    ).first()
    if conversation is None or not user.is_active:
        raise NotFound("channel")
    return conversation


def access_message(user: User, message_id: int) -> Message:
    """The message, if ``user`` is an active member of its conversation."""
    message = (
        Message.objects.select_related("conversation", "author")
        .filter(
            pk=message_id,
            conversation__memberships__user=user,
            conversation__memberships__left_at__isnull=True,
        )
        .first()
    )
    if message is None or not user.is_active:
        raise NotFound("message")
    return message


def access_file(user: User, file_id: int) -> StoredFile:
    """A file, if ``user`` may download it: it is attached to a message that is
    not deleted, whose author's data is not restricted (an erasure request), in
    a conversation the person is an active member of; or the
    person uploaded it and has not sent it yet. Auditors use the compliance
    workspace instead."""
    if not user.is_active:
        raise NotFound("file")
    shared = MessageAttachment.objects.filter(
        file_id=file_id,
        message__deleted_at__isnull=True,
        message__author__processing_restricted_at__isnull=True,
        message__conversation__memberships__user=user,
        message__conversation__memberships__left_at__isnull=True,
    )
    pending = StoredFile.objects.filter(pk=file_id, uploaded_by=user, attachments__isnull=True)
    stored = StoredFile.objects.filter(pk=file_id).filter(Exists(shared) | Exists(pending)).first()
    if stored is None:
        raise NotFound("file")
    return stored
