from typing import Any

from accounts.models import User
from messenger.events import lock_journal, publish_on_commit
from messenger.models import Conversation, Event, Message, MessageRevision


def append(
    conversation: Conversation,
    type_: Event.Type,
    actor: User,
    *,
    message: Message | None = None,
    revision: MessageRevision | None = None,
    subject: User | None = None,
    data: dict[str, Any] | None = None,
    mention_ids: set[int] | None = None,
) -> Event:
    """Write one journal row and broadcast it after commit. The only journal writer."""
    lock_journal()
    event = Event.objects.create(
        conversation=conversation,
        type=type_,
        actor=actor,
        message=message,
        revision=revision,
        subject=subject,
        data=data or {},
    )
    publish_on_commit(event, mention_ids)
    return event
