"""The journal's wire format and its delivery.

Every journal row becomes one JSON frame (``event_payload``); services hand
events to ``publish_on_commit`` so a broadcast leaves only once the change is
committed. Groups on the channel layer: ``conv.<id>`` (every socket of every
member) and ``user.<id>`` (every socket of one person: membership changes,
read markers, presence of direct-message partners).
"""

import asyncio
import logging
import os
import time
import weakref
from collections.abc import Iterable
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import connection, transaction
from django.urls import reverse

from archive.models import StoredFile
from messenger.models import Event, Message

logger = logging.getLogger(__name__)

# Any constant: the key of the advisory lock that orders journal commits.
_JOURNAL_LOCK_KEY = 4_711_2026


def conversation_group(conversation_id: int) -> str:
    return f"conv.{conversation_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def lock_journal() -> None:
    """Make journal ids commit in order.

    Resume means "every event after id N": an event with a smaller id must
    never become visible after a larger one. PostgreSQL hands out sequence
    values before commit, so concurrent writers take this transaction-scoped
    lock before their first journal insert and hold it to commit. SQLite's
    IMMEDIATE transactions already serialise writers. Services lock
    conversation rows before calling this, never after, so no cycle can form.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_JOURNAL_LOCK_KEY])


def author_payload(user: Any) -> dict[str, Any]:
    return {
        "id": user.pk,
        "name": user.chat_name,
        "initials": user.initials,
        "left": user.offboarded_at is not None,
        "external": user.is_external,
    }


def file_payload(stored: StoredFile) -> dict[str, Any]:
    url = reverse("messenger:file", args=[stored.pk])
    ready = stored.preview_state == StoredFile.State.READY
    return {
        "id": stored.pk,
        "name": stored.name,
        "size": stored.size,
        "type": stored.content_type,
        "url": url,
        "image": stored.is_image,
        "width": stored.width,
        "height": stored.height,
        "preview": reverse("messenger:file_preview", args=[stored.pk]) if ready else None,
        "preview_state": stored.preview_state,
    }


def message_payload(message: Message, mention_ids: Iterable[int] = ()) -> dict[str, Any]:
    deleted = message.deleted_at is not None
    # Files of a deleted message disappear for readers with its text.
    files = [] if deleted else [file_payload(a.file) for a in message.attachments.all()]
    return {
        "id": message.pk,
        "conversation": message.conversation_id,
        "seq": message.seq,
        "author": author_payload(message.author),
        # A deleted message is a tombstone for readers; the journal keeps its content.
        "body": "" if deleted else message.body,
        "html": "" if deleted else message.html,
        "created_at": message.created_at.isoformat(),
        "edited": message.edited_at is not None,
        "deleted": deleted,
        "client_id": str(message.client_id) if message.client_id else None,
        "reply_to": message.reply_to_id,
        "mentions": sorted(mention_ids),
        "mentions_everyone": message.mentions_everyone and not deleted,
        "files": files,
    }


_MESSAGE_TYPES = {Event.Type.MESSAGE, Event.Type.MESSAGE_EDITED, Event.Type.MESSAGE_DELETED}
_MEMBERSHIP_TYPES = {
    Event.Type.MEMBER_JOINED: "joined",
    Event.Type.MEMBER_LEFT: "left",
    Event.Type.MEMBER_ADDED: "added",
    Event.Type.MEMBER_REMOVED: "removed",
    Event.Type.ROLE_CHANGED: "role",
}
_CONVERSATION_TYPES = {
    Event.Type.CONVERSATION_CREATED: "created",
    Event.Type.RENAMED: "renamed",
    Event.Type.TOPIC_CHANGED: "topic",
    Event.Type.ARCHIVED: "archived",
    Event.Type.EXTERNALS_CHANGED: "externals",
}


def event_payload(event: Event, mention_ids: Iterable[int] | None = None) -> dict[str, Any]:
    """The frame for one journal event (message content as it is now)."""
    base: dict[str, Any] = {"event": event.id, "conversation": event.conversation_id}
    if event.type in _MESSAGE_TYPES:
        assert event.message is not None
        if mention_ids is None:
            mention_ids = [m.user_id for m in event.message.mentions.all()]
        return {"type": event.type, **base, "message": message_payload(event.message, mention_ids)}
    if event.type in (Event.Type.REACTION_ADDED, Event.Type.REACTION_REMOVED):
        return {
            "type": "reaction",
            **base,
            "message": event.message_id,
            "emoji": event.data.get("emoji"),
            "user": author_payload(event.actor),
            "added": event.type == Event.Type.REACTION_ADDED,
        }
    if event.type in _MEMBERSHIP_TYPES:
        assert event.subject is not None
        return {
            "type": "membership",
            **base,
            "change": _MEMBERSHIP_TYPES[Event.Type(event.type)],
            "user": author_payload(event.subject),
            "actor": author_payload(event.actor),
            "role": event.data.get("role"),
        }
    return {
        "type": "conversation",
        **base,
        "change": _CONVERSATION_TYPES[Event.Type(event.type)],
        **{k: v for k, v in event.data.items() if k in ("name", "topic", "kind", "allowed")},
    }


Outbox = asyncio.Queue[tuple[str, dict[str, Any]]]
_outboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Outbox] = weakref.WeakKeyDictionary()


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop of the ASGI server this thread works for, if any.

    Code run by ``database_sync_to_async`` sits in a worker thread of a running
    loop; asgiref records that loop in a thread-local for its own use.
    """
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
        return None
    return loop if loop is not None and loop.is_running() else None


def _send(group: str, message: dict[str, Any]) -> None:
    """Hand a message to the channel layer, in order, without waiting for it.

    Inside the server the worker thread must not block on the event loop (it
    is the one thread that runs every consumer's database work), so messages go
    into a per-loop outbox that one task drains in order. Elsewhere (Celery,
    management commands) the send simply happens here and now.
    """
    loop = _server_loop()
    if loop is None:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group, message)
        return
    loop.call_soon_threadsafe(_enqueue, loop, group, message)


def _enqueue(loop: asyncio.AbstractEventLoop, group: str, message: dict[str, Any]) -> None:
    outbox = _outboxes.get(loop)
    if outbox is None:
        outbox = _outboxes[loop] = asyncio.Queue()
        loop.create_task(_drain(outbox))
    outbox.put_nowait((group, message))


async def _drain(outbox: Outbox) -> None:
    layer = get_channel_layer()
    while True:
        group, message = await outbox.get()
        try:
            if layer is not None:
                await layer.group_send(group, message)
        except Exception:
            # The journal has the event: clients get it when they resume.
            logger.exception("Broadcast to %s failed", group)


def publish_on_commit(event: Event, mention_ids: Iterable[int] | None = None) -> None:
    """Broadcast ``event`` to its conversation once the transaction commits.

    A membership event also goes to the person it is about, so that their
    open sockets join (or leave) the conversation's group without reconnecting.
    """
    payload = event_payload(event, mention_ids)
    conversation_id = event.conversation_id
    subject_id = event.subject_id if event.type in _MEMBERSHIP_TYPES else None
    joined = event.type in (Event.Type.MEMBER_JOINED, Event.Type.MEMBER_ADDED)

    def send() -> None:
        if subject_id is not None:
            _send(
                user_group(subject_id),
                {
                    "type": "membership.changed",
                    "conversation": conversation_id,
                    "member": joined,
                    "event": payload["event"],
                    "payload": payload,
                },
            )
        # "at": when it left, for the delivery lag the sockets measure (messenger.metrics).
        _send(
            conversation_group(conversation_id),
            {"type": "journal.event", "payload": payload, "at": time.time()},
        )

    transaction.on_commit(send)


def notify_on_commit(group: str, handler: str, payload: dict[str, Any]) -> None:
    """Send an ephemeral frame (read receipt, …) to a group after commit."""
    transaction.on_commit(lambda: _send(group, {"type": handler, "payload": payload}))


def notify_now(group: str, handler: str, payload: dict[str, Any]) -> None:
    """Send an ephemeral frame that touches no database (typing, presence)."""
    _send(group, {"type": handler, "payload": payload})
