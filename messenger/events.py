"""The journal's wire format and its delivery.

Every journal row becomes one JSON frame (``event_payload``); services hand
events to ``publish_on_commit`` so a broadcast leaves only once the change is
committed. A message's frame carries its row as the page draws it
(``messenger.rendering.message_row_html``), rendered once per event here, not
once per socket: every socket relays the same frame.

Groups on the channel layer: ``conv.<id>`` (every socket of every member)
and ``user.<id>`` (every socket of one person: membership changes, read
markers, presence of direct-message partners).
"""

import asyncio
import json
import logging
import os
import time
import weakref
from collections.abc import Iterable
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import connection, transaction
from django.db.models import Prefetch, prefetch_related_objects
from django.urls import reverse

from archive.models import StoredFile
from messenger import selectors
from messenger.models import Event, Message, MessageAttachment
from messenger.rendering import MessageRow, continues_run, editable, message_row_html, reactions_html

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
    # Files of a deleted message disappear for readers with its text; a
    # restricted person's messages are hidden from readers (their row says so).
    hidden = deleted or message.author.processing_restricted_at is not None
    files = [] if hidden else [file_payload(a.file) for a in message.attachments.all()]
    return {
        "id": message.pk,
        "conversation": message.conversation_id,
        "seq": message.seq,
        "author": author_payload(message.author),
        # A deleted message is a tombstone for readers; the journal keeps its content.
        "body": "" if hidden else message.body,
        "html": "" if hidden else message.html,
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
_REACTION_TYPES = {Event.Type.REACTION_ADDED, Event.Type.REACTION_REMOVED}
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
    return event_payloads([event], mention_ids)[0]


def event_payloads(
    events: list[Event], mention_ids: Iterable[int] | None = None, *, just_sent: bool = False
) -> list[dict[str, Any]]:
    """The frames for journal events, oldest first, with their messages' rows
    (a few queries for the lot, whatever their number). ``mention_ids`` are
    those of a single event's message, when the caller knows them;
    ``just_sent``: the events were written in this transaction, so a new
    message has no reactions yet."""
    drawn = _Drawn.of(events, just_sent=just_sent)
    return [_payload(event, drawn, mention_ids) for event in events]


class _Drawn:
    """The rows and reaction pills of the events' messages, each drawn once."""

    def __init__(self, rows: dict[int, str], reactions: dict[int, str]) -> None:
        self.rows = rows
        self.reactions = reactions

    @classmethod
    def of(cls, events: list[Event], *, just_sent: bool) -> "_Drawn":
        by_id = {e.message_id: e.message for e in events if e.type in _MESSAGE_TYPES and e.message}
        messages = list(by_id.values())
        reacted = {e.message_id for e in events if e.type in _REACTION_TYPES and e.message_id}
        if not messages and not reacted:
            return cls({}, {})
        for event in events:
            # The revision written with a message just sent lists its files: none, no query.
            if just_sent and event.type == Event.Type.MESSAGE and event.revision and not event.revision.files:
                assert event.message is not None
                cache = event.message.__dict__.setdefault("_prefetched_objects_cache", {})
                cache.setdefault("attachments", MessageAttachment.objects.none())
        # What the rows show and the event's loading left out (the hot path: nothing).
        files = [m for m in messages if "attachments" not in getattr(m, "_prefetched_objects_cache", {})]
        if files:
            attachments = MessageAttachment.objects.select_related("file")
            prefetch_related_objects(files, Prefetch("attachments", queryset=attachments))
        replies = [m for m in messages if m.reply_to_id is not None]
        if replies:
            prefetch_related_objects(replies, "reply_to__author")
        previous = selectors.messages_before(messages=messages)
        # A message sent just now has no reactions; any other's are read as they are now.
        wanted = reacted | {
            e.message_id for e in events if e.message_id and not (just_sent and e.type == Event.Type.MESSAGE)
        }
        summaries = selectors.reaction_summaries(message_ids=sorted(i for i in wanted if i))
        rows = {
            m.pk: message_row_html(
                MessageRow(
                    message=m,
                    continues_run=continues_run(previous.get(m.pk), m),
                    can_edit=editable(m, conversation_open=m.conversation.archived_at is None),
                    reactions=summaries.get(m.pk, []),
                )
            )
            for m in messages
        }
        return cls(rows, {i: reactions_html(i, summaries.get(i, [])) for i in reacted})


def _payload(event: Event, drawn: _Drawn, mention_ids: Iterable[int] | None) -> dict[str, Any]:
    base: dict[str, Any] = {"event": event.id, "conversation": event.conversation_id}
    if event.type in _MESSAGE_TYPES:
        assert event.message is not None
        if mention_ids is None:
            mention_ids = [m.user_id for m in event.message.mentions.all()]
        message = message_payload(event.message, mention_ids)
        message["row"] = drawn.rows[event.message.pk]
        return {"type": event.type, **base, "message": message}
    if event.type in _REACTION_TYPES:
        assert event.message_id is not None
        return {
            "type": "reaction",
            **base,
            "message": event.message_id,
            "emoji": event.data.get("emoji"),
            "user": author_payload(event.actor),
            "added": event.type == Event.Type.REACTION_ADDED,
            # The message's pills as they are now, drawn as its row draws them.
            "reactions": drawn.reactions[event.message_id],
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


def frame_text(frame: dict[str, Any]) -> str:
    """A frame as a socket sends it: compact JSON, UTF-8."""
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


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
    # Drawn here, once, inside the transaction (it sees its own writes).
    payload = event_payloads([event], mention_ids, just_sent=True)[0]
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
        # Encoded once here, not once per socket: the sockets relay the text.
        # "at": when it left, for the delivery lag the sockets measure (messenger.metrics).
        _send(
            conversation_group(conversation_id),
            {
                "type": "journal.event",
                "event": payload["event"],
                "conversation": conversation_id,
                "text": frame_text(payload),
                "at": time.time(),
            },
        )

    transaction.on_commit(send)


def notify_on_commit(group: str, handler: str, payload: dict[str, Any]) -> None:
    """Send an ephemeral frame (read receipt, …) to a group after commit."""
    transaction.on_commit(lambda: _send(group, {"type": handler, "payload": payload}))
