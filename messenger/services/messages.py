"""Writes to messages and reactions. Nothing is overwritten without a new
revision: an edit or a delete adds a version to the journal, which keeps every
earlier one."""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.functions import Now
from django.utils import timezone

from accounts.models import User
from archive.models import StoredFile
from messenger.errors import (
    BodyTooLong,
    ClientIdConflict,
    ConversationArchived,
    EditWindowClosed,
    Forbidden,
    Invalid,
    NotFound,
    RecipientInactive,
)
from messenger.models import (
    Conversation,
    Event,
    Membership,
    Mention,
    Message,
    MessageAttachment,
    MessageRevision,
    Reaction,
)
from messenger.permissions import access_conversation, access_conversation_as_external, access_message
from messenger.rendering import Mentionable, Rendered, render_body
from messenger.services import notifications
from messenger.services._journal import append

EMOJI_MAX = 32


@dataclass(frozen=True)
class Sent:
    message: Message
    event_id: int
    created: bool


MAX_FILES = 10


def _clean_body(body: str, *, may_be_empty: bool = False) -> str:
    if not isinstance(body, str):
        raise Invalid("A message body is text.")
    body = body.strip()
    if not body and not may_be_empty:
        raise Invalid("A message cannot be empty.")
    limit = settings.KONTOR_MESSAGE_MAX_CHARS
    if len(body) > limit:
        raise BodyTooLong(f"Messages are limited to {limit:,} characters; this one has {len(body):,}.")
    return body


_MEMBER_FIELDS = ("pk", "email", "display_name", "processing_restricted_at", "erased_at", "is_active")


def _members(conversation: Conversation) -> list[User]:
    """The current members, with what mentions and mail notices need (one query)."""
    return list(
        User.objects.filter(memberships__conversation=conversation, memberships__left_at__isnull=True).only(
            *_MEMBER_FIELDS, *notifications.PREFERENCE_FIELDS
        )
    )


def _render_for(conversation: Conversation, body: str, members: list[User] | None = None) -> Rendered:
    if members is None:
        members = _members(conversation)
    # Active colleagues can be mentioned; external contacts (never active) cannot.
    people = {user.handle.lower(): Mentionable(user.pk, str(user)) for user in members if user.is_active}
    return render_body(body, people=people)


def _parse_client_id(client_id: str | uuid.UUID | None) -> uuid.UUID | None:
    if client_id is None or client_id == "":
        return None
    try:
        return client_id if isinstance(client_id, uuid.UUID) else uuid.UUID(str(client_id))
    except ValueError:
        raise Invalid("client_id must be a UUID.") from None


def _existing_send(
    actor: User, client_id: uuid.UUID, conversation_id: int, body: str, file_ids: list[int]
) -> Message | None:
    message = Message.objects.select_related("author").filter(author=actor, client_id=client_id).first()
    if message is None:
        return None
    original = message.revisions.order_by("number").values_list("body", flat=True).first()
    files = list(message.attachments.order_by("position").values_list("file_id", flat=True))
    if message.conversation_id != conversation_id or original != body or files != file_ids:
        raise ClientIdConflict("This client_id was already used for a different message.")
    return message


def _own_uploads(actor: User, file_ids: list[int]) -> list[StoredFile]:
    """The files to attach: uploaded by the sender (anyone else's are "not found")."""
    if len(file_ids) > MAX_FILES:
        raise Invalid(f"A message can carry at most {MAX_FILES} files.")
    if len(set(file_ids)) != len(file_ids):
        raise Invalid("The same file is attached twice.")
    found = {f.pk: f for f in StoredFile.objects.filter(pk__in=file_ids, uploaded_by=actor)}
    if len(found) != len(file_ids):
        raise NotFound("file")
    return [found[i] for i in file_ids]


def file_summary(stored: StoredFile) -> dict[str, object]:
    """What the journal keeps of an attached file."""
    return {
        "id": stored.pk,
        "sha256": stored.sha256,
        "name": stored.name,
        "size": stored.size,
        "type": stored.content_type,
    }


@transaction.atomic
def message_send(
    *,
    actor: User,
    conversation_id: int,
    body: str,
    client_id: str | uuid.UUID | None = None,
    reply_to_id: int | None = None,
    file_ids: list[int] | tuple[int, ...] = (),
) -> Sent:
    """Post a message; returns it, its journal event and whether it is new.

    Idempotent per author and ``client_id``: a repeat returns the original
    message and changes nothing; the same id with another body is refused.
    """
    file_ids = [int(i) for i in file_ids]
    body = _clean_body(body, may_be_empty=bool(file_ids))
    uid = _parse_client_id(client_id)
    # The row lock orders sends in a conversation: it guards the sequence.
    if actor.is_external:
        conversation = access_conversation_as_external(actor, conversation_id, for_update=True)
    else:
        conversation = access_conversation(actor, conversation_id, for_update=True)
    if uid is not None and (existing := _existing_send(actor, uid, conversation.pk, body, file_ids)):
        return _resent(existing)
    files = _own_uploads(actor, file_ids)
    if conversation.archived_at is not None:
        raise ConversationArchived("This channel is archived: it can be read but not written to.")
    if conversation.is_direct:
        others = User.objects.filter(memberships__conversation=conversation).exclude(pk=actor.pk)
        gone = [u for u in others if not u.is_active]
        if gone:
            raise RecipientInactive(f"{gone[0]} has left the company and cannot receive messages.")
    reply_to = None
    if reply_to_id is not None:
        reply_to = Message.objects.filter(pk=reply_to_id, conversation=conversation).first()
        if reply_to is None:
            raise NotFound("message to reply to")
    members = _members(conversation)
    rendered = _render_for(conversation, body, members)
    seq = conversation.last_seq + 1
    Conversation.objects.filter(pk=conversation.pk).update(last_seq=seq, last_message_at=Now())
    try:
        with transaction.atomic():
            message = Message.objects.create(
                conversation=conversation,
                author=actor,
                seq=seq,
                body=body,
                html=rendered.html,
                client_id=uid,
                reply_to=reply_to,
                mentions_everyone=rendered.mentions_everyone,
            )
    except IntegrityError:
        # The same client_id raced in through another socket: that one won.
        if uid is not None and (existing := _existing_send(actor, uid, conversation.pk, body, file_ids)):
            return _resent(existing)
        raise
    message.author = actor
    Mention.objects.bulk_create(
        Mention(message=message, user_id=uid_) for uid_ in rendered.mentioned_user_ids
    )
    MessageAttachment.objects.bulk_create(
        MessageAttachment(message=message, file=stored, position=n) for n, stored in enumerate(files)
    )
    revision = MessageRevision.objects.create(
        message=message,
        number=1,
        kind=MessageRevision.Kind.CREATED,
        body=body,
        actor=actor,
        files=[file_summary(f) for f in files],
    )
    # Your own message counts as read.
    Membership.objects.filter(conversation=conversation, user=actor, last_read_seq__lt=seq).update(
        last_read_seq=seq
    )
    message.refresh_from_db(fields=["created_at"])
    event = append(
        conversation,
        Event.Type.MESSAGE,
        actor,
        message=message,
        revision=revision,
        mention_ids=rendered.mentioned_user_ids,
    )
    notifications.notifications_queue(
        message=message, mention_ids=rendered.mentioned_user_ids, members=members
    )
    return Sent(message=message, event_id=event.id, created=True)


def _resent(message: Message) -> Sent:
    event_id = (
        Event.objects.filter(message=message, type=Event.Type.MESSAGE).values_list("id", flat=True).first()
    )
    return Sent(message=message, event_id=event_id or 0, created=False)


def _own_message_for_update(actor: User, message_id: int) -> Message:
    message = access_message(actor, message_id)
    message = Message.objects.select_for_update().select_related("conversation", "author").get(pk=message.pk)
    if message.author_id != actor.pk:
        raise Forbidden("You can only change your own messages.")
    if message.deleted_at is not None:
        raise Invalid("This message was deleted.")
    if message.conversation.archived_at is not None:
        raise ConversationArchived("This channel is archived: it can be read but not changed.")
    return message


def _current_files(message: Message) -> list[dict[str, object]]:
    return [file_summary(a.file) for a in message.attachments.select_related("file").order_by("position")]


def _next_revision(message: Message) -> int:
    last = message.revisions.order_by("-number").values_list("number", flat=True).first()
    return (last or 0) + 1


@transaction.atomic
def message_edit(*, actor: User, message_id: int, body: str) -> Message:
    body = _clean_body(body)
    message = _own_message_for_update(actor, message_id)
    window = settings.KONTOR_EDIT_WINDOW_SECONDS
    if window and timezone.now() - message.created_at > timedelta(seconds=window):
        raise EditWindowClosed(f"Messages can be edited for {window // 60} minutes after sending.")
    if body == message.body:
        return message
    rendered = _render_for(message.conversation, body)
    Message.objects.filter(pk=message.pk).update(
        body=body, html=rendered.html, edited_at=Now(), mentions_everyone=rendered.mentions_everyone
    )
    # Mentions follow the current version (the journal keeps the earlier ones).
    known = set(message.mentions.values_list("user_id", flat=True))
    Mention.objects.filter(message=message).exclude(user_id__in=rendered.mentioned_user_ids).delete()
    Mention.objects.bulk_create(
        Mention(message=message, user_id=uid) for uid in rendered.mentioned_user_ids - known
    )
    revision = MessageRevision.objects.create(
        message=message,
        number=_next_revision(message),
        kind=MessageRevision.Kind.EDITED,
        body=body,
        actor=actor,
        # Each version is whole: its files travel with it into the archive.
        files=_current_files(message),
    )
    message.refresh_from_db()
    append(
        message.conversation,
        Event.Type.MESSAGE_EDITED,
        actor,
        message=message,
        revision=revision,
        mention_ids=rendered.mentioned_user_ids,
    )
    return message


@transaction.atomic
def message_delete(*, actor: User, message_id: int) -> Message:
    """Delete for readers: a tombstone in chat; the journal keeps the content."""
    message = _own_message_for_update(actor, message_id)
    revision = MessageRevision.objects.create(
        message=message,
        number=_next_revision(message),
        kind=MessageRevision.Kind.DELETED,
        body=message.body,
        actor=actor,
        files=_current_files(message),
    )
    Message.objects.filter(pk=message.pk).update(deleted_at=Now(), body="", html="", mentions_everyone=False)
    message.refresh_from_db()
    append(message.conversation, Event.Type.MESSAGE_DELETED, actor, message=message, revision=revision)
    return message


def _clean_emoji(emoji: str) -> str:
    if not isinstance(emoji, str):
        raise Invalid("An emoji is text.")
    emoji = emoji.strip()
    if not emoji or len(emoji) > EMOJI_MAX or any(ch.isspace() for ch in emoji):
        raise Invalid("That is not a reaction.")
    if emoji.isascii() and not (emoji.startswith(":") and emoji.endswith(":") and len(emoji) > 2):
        raise Invalid("React with an emoji (or a :shortcode:).")
    return emoji


@transaction.atomic
def reaction_set(*, actor: User, message_id: int, emoji: str, present: bool = True) -> bool:
    """Add (or with ``present=False`` remove) a reaction; returns whether anything changed."""
    emoji = _clean_emoji(emoji)
    message = access_message(actor, message_id)
    if message.deleted_at is not None:
        raise Invalid("This message was deleted.")
    conversation = Conversation.objects.select_for_update().get(pk=message.conversation_id)
    if conversation.archived_at is not None:
        raise ConversationArchived("This channel is archived: it can be read but not changed.")
    if present:
        _, created = Reaction.objects.get_or_create(message=message, user=actor, emoji=emoji)
        if not created:
            return False
        type_ = Event.Type.REACTION_ADDED
    else:
        deleted, _ = Reaction.objects.filter(message=message, user=actor, emoji=emoji).delete()
        if not deleted:
            return False
        type_ = Event.Type.REACTION_REMOVED
    append(conversation, type_, actor, message=message, data={"emoji": emoji})
    return True
