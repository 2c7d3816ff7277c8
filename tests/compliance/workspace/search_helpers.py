"""Helpers of the search engineer's tests: archiving conversations, files
with extracted text, and the live chat taken away after archiving."""

import io

from accounts.models import User
from archive import services as files
from archive.models import StoredFile
from compliance import services
from messenger.models import (
    Conversation,
    Event,
    Mention,
    Message,
    MessageAttachment,
    MessageRevision,
    Reaction,
)


def archive(*conversations: Conversation) -> int:
    """Snapshot each conversation until its journal is all in records; the number of records."""
    written = 0
    for conversation in conversations:
        while services.snapshot_conversation(conversation_id=conversation.pk).record is not None:
            written += 1
    return written


def text_file(user: User, name: str, text: str) -> StoredFile:
    """A plain-text upload whose text is extracted already (as the Celery task would)."""
    stored = files.file_store(upload=io.BytesIO(text.encode()), name=name, uploader=user)
    files.file_set_text(file_id=stored.pk, state=StoredFile.State.READY, text=text)
    stored.refresh_from_db()
    return stored


def upload(user: User, data: bytes, name: str) -> StoredFile:
    return files.file_store(upload=io.BytesIO(data), name=name, uploader=user)


def delete_live_chat(conversation: Conversation) -> None:
    """Remove the conversation's messages and their journal from the live
    tables (as a live purge after retention would): only the archive is left."""
    message_ids = list(Message.objects.filter(conversation=conversation).values_list("pk", flat=True))
    Message.objects.filter(pk__in=message_ids).update(reply_to=None)
    Event.objects.filter(message_id__in=message_ids).delete()
    for model in (MessageRevision, Reaction, Mention, MessageAttachment):
        model.objects.filter(message_id__in=message_ids).delete()
    Message.objects.filter(pk__in=message_ids).delete()
    assert not Message.objects.filter(conversation=conversation).exists()
