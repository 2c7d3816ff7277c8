"""The browser's one websocket per tab. The protocol is in docs/protocol.md.

A thin async adapter: it refuses anonymous sockets, parses and checks the shape
of each frame, makes one ``database_sync_to_async`` hop into a service or
selector, and relays group messages. Domain errors become error frames; a
refused frame never closes the socket unless the client floods it.

Channels dispatches one message at a time per consumer, so while a frame is
being handled (a resume reading the journal, say), group messages wait in the
queue; they are de-duplicated by event id afterwards, so a resume followed by
the live stream has no gap and no duplicate.
"""

import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from accounts.models import User
from messenger import presence, selectors, services
from messenger.errors import MessengerError, NotFound
from messenger.events import conversation_group, event_payload, user_group

MAX_FRAME_BYTES = 64 * 1024
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FLOODING = 4429
CLOSE_ACCOUNT_DISABLED = 4403

# A token bucket per socket: bursts of 30 frames, 10 a second sustained.
BUCKET_SIZE = 30
BUCKET_RATE = 10.0
# This many refused frames within the window closes the socket.
FLOOD_REFUSALS = 60
FLOOD_WINDOW = 10.0
TYPING_INTERVAL = 2.0
REMEMBERED_EVENTS = 5000


def _socket_start(user: User) -> tuple[set[int], int, set[int], bool]:
    conversations, latest, partners = selectors.socket_start(user=user)
    return conversations, latest, partners, presence.presence_connect(user_id=user.pk)


def _resume_frames(user: User, after: int) -> tuple[list[dict[str, Any]], bool]:
    events, truncated = selectors.events_after(user=user, after=after, limit=settings.KONTOR_RESUME_LIMIT)
    return [event_payload(e) for e in events], truncated


def _catch_up_frames(user: User, conversation_id: int, after: int) -> list[dict[str, Any]]:
    events, _ = selectors.events_after(user=user, after=after, limit=settings.KONTOR_RESUME_LIMIT)
    return [event_payload(e) for e in events if e.conversation_id == conversation_id]


def _file_ids(frame: dict[str, Any]) -> list[int]:
    """The optional ``"files"`` of a send: ids of files the sender uploaded, in order."""
    value = frame.get("files")
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in value
    ):
        raise FrameError("malformed", '"files" must be a list of file ids (positive integers).')
    return value


class FrameError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _int(frame: dict[str, Any], key: str, *, required: bool = True) -> int | None:
    value = frame.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FrameError("malformed", f'"{key}" must be a non-negative integer.')
    return value


def _str(frame: dict[str, Any], key: str) -> str:
    value = frame.get(key)
    if not isinstance(value, str):
        raise FrameError("malformed", f'"{key}" must be a string.')
    return value


class ChatConsumer(AsyncWebsocketConsumer):
    user: User
    conversations: set[int]
    # Set by ``account_disabled``: nothing is sent or handled after that frame.
    disabled = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        self.tokens = float(BUCKET_SIZE)
        self.refilled_at = time.monotonic()
        self.refusals: deque[float] = deque()
        self.typing_sent: dict[int, float] = {}
        self.sent_events: set[int] = set()
        self.sent_order: deque[int] = deque()
        self.joined_groups: set[str] = set()
        start = await database_sync_to_async(_socket_start)(user)
        self.conversations, latest, self.presence_watchers, came_online = start
        for conversation_id in self.conversations:
            await self._join(conversation_group(conversation_id))
        await self._join(user_group(user.pk))
        await self.accept()
        await self.send_json({"type": "hello", "user": user.pk, "event": latest})
        if came_online:
            await self._presence(online=True)

    async def disconnect(self, code: int) -> None:
        for group in list(getattr(self, "joined_groups", ())):
            await self.channel_layer.group_discard(group, self.channel_name)
        if hasattr(self, "user") and await database_sync_to_async(presence.presence_disconnect)(
            user_id=self.user.pk
        ):
            await self._presence(online=False)

    async def _join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.joined_groups.add(group)

    async def _leave(self, group: str) -> None:
        await self.channel_layer.group_discard(group, self.channel_name)
        self.joined_groups.discard(group)

    async def _presence(self, *, online: bool) -> None:
        # Presence goes to the people who show it (direct-message partners),
        # not to everyone: a company-wide broadcast grows with the square of
        # the number of sockets.
        payload = {"type": "presence", "user": self.user.pk, "online": online}
        for watcher in self.presence_watchers:
            await self.channel_layer.group_send(
                user_group(watcher), {"type": "presence.changed", "payload": payload}
            )

    # --- Frames from the browser -------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.disabled:
            return
        client_id = None
        try:
            frame = self._parse(text_data)
            client_id = frame.get("client_id") if isinstance(frame.get("client_id"), str) else None
            self._take_token()
            handler = self.handlers.get(frame["type"])
            if handler is None:
                raise FrameError("unknown_type", f"Unknown frame type {frame['type'][:40]!r}.")
            await handler(self, frame)
        except FrameError as error:
            await self._refuse(error.code, error.detail, client_id)
        except MessengerError as error:
            await self._refuse(error.code, error.detail, client_id)

    def _parse(self, text_data: str | None) -> dict[str, Any]:
        if text_data is None:
            raise FrameError("malformed", "Frames are JSON text.")
        if len(text_data) > MAX_FRAME_BYTES or len(text_data.encode()) > MAX_FRAME_BYTES:
            raise FrameError("too_large", f"Frames are limited to {MAX_FRAME_BYTES // 1024} KiB.")
        try:
            frame = json.loads(text_data)
        except ValueError:
            raise FrameError("malformed", "The frame is not valid JSON.") from None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise FrameError("malformed", 'A frame is a JSON object with a "type".')
        return frame

    def _take_token(self) -> None:
        now = time.monotonic()
        self.tokens = min(BUCKET_SIZE, self.tokens + (now - self.refilled_at) * BUCKET_RATE)
        self.refilled_at = now
        if self.tokens < 1:
            raise FrameError("rate_limited", "Too many frames; slow down.")
        self.tokens -= 1

    async def _refuse(self, code: str, detail: str, client_id: str | None) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
        if client_id is not None:
            frame["client_id"] = client_id
        await self.send_json(frame)
        now = time.monotonic()
        self.refusals.append(now)
        while self.refusals and now - self.refusals[0] > FLOOD_WINDOW:
            self.refusals.popleft()
        if len(self.refusals) >= FLOOD_REFUSALS:
            await self.close(code=CLOSE_FLOODING)

    async def on_ping(self, frame: dict[str, Any]) -> None:
        await self.send_json({"type": "pong"})

    async def on_send(self, frame: dict[str, Any]) -> None:
        client_id = frame.get("client_id")
        if client_id is not None and not isinstance(client_id, str):
            raise FrameError("malformed", '"client_id" must be a string (a UUID).')
        sent = await database_sync_to_async(services.message_send)(
            actor=self.user,
            conversation_id=_int(frame, "conversation"),
            body=_str(frame, "body"),
            client_id=client_id,
            reply_to_id=_int(frame, "reply_to", required=False),
            file_ids=_file_ids(frame),
        )
        await self.send_json(
            {
                "type": "ack",
                "client_id": client_id,
                "message": sent.message.pk,
                "seq": sent.message.seq,
                "event": sent.event_id,
                "duplicate": not sent.created,
            }
        )

    async def on_edit(self, frame: dict[str, Any]) -> None:
        await database_sync_to_async(services.message_edit)(
            actor=self.user, message_id=_int(frame, "message"), body=_str(frame, "body")
        )

    async def on_delete(self, frame: dict[str, Any]) -> None:
        await database_sync_to_async(services.message_delete)(
            actor=self.user, message_id=_int(frame, "message")
        )

    async def on_react(self, frame: dict[str, Any]) -> None:
        await database_sync_to_async(services.reaction_set)(
            actor=self.user,
            message_id=_int(frame, "message"),
            emoji=_str(frame, "emoji"),
            present=not bool(frame.get("remove")),
        )

    async def on_unreact(self, frame: dict[str, Any]) -> None:
        await database_sync_to_async(services.reaction_set)(
            actor=self.user, message_id=_int(frame, "message"), emoji=_str(frame, "emoji"), present=False
        )

    async def on_read(self, frame: dict[str, Any]) -> None:
        await database_sync_to_async(services.conversation_mark_read)(
            actor=self.user,
            conversation_id=_int(frame, "conversation"),
            message_id=_int(frame, "message", required=False),
        )

    async def on_typing(self, frame: dict[str, Any]) -> None:
        conversation_id = _int(frame, "conversation")
        assert conversation_id is not None
        if conversation_id not in self.conversations:
            raise NotFound()
        now = time.monotonic()
        if now - self.typing_sent.get(conversation_id, 0.0) < TYPING_INTERVAL:
            return
        self.typing_sent[conversation_id] = now
        await self.channel_layer.group_send(
            conversation_group(conversation_id),
            {
                "type": "typing.notice",
                "payload": {
                    "type": "typing",
                    "conversation": conversation_id,
                    "user": {"id": self.user.pk, "name": str(self.user)},
                },
            },
        )

    async def on_resume(self, frame: dict[str, Any]) -> None:
        after = _int(frame, "after")
        assert after is not None
        frames, truncated = await database_sync_to_async(_resume_frames)(self.user, after)
        if truncated:
            await self.send_json(
                {"type": "resync", "detail": "Too many events were missed; reload the page."}
            )
            return
        for payload in frames:
            await self._send_event(payload)
        await self.send_json({"type": "resumed", "after": after, "count": len(frames)})

    handlers: dict[str, Callable[["ChatConsumer", dict[str, Any]], Awaitable[None]]] = {
        "ping": on_ping,
        "send": on_send,
        "edit": on_edit,
        "delete": on_delete,
        "react": on_react,
        "unreact": on_unreact,
        "read": on_read,
        "typing": on_typing,
        "resume": on_resume,
    }

    # --- Messages from the channel layer -------------------------------------

    async def _send_event(self, payload: dict[str, Any]) -> None:
        event_id = payload["event"]
        if event_id in self.sent_events:
            return
        self.sent_events.add(event_id)
        self.sent_order.append(event_id)
        if len(self.sent_order) > REMEMBERED_EVENTS:
            self.sent_events.discard(self.sent_order.popleft())
        await self.send_json(payload)

    async def journal_event(self, message: dict[str, Any]) -> None:
        payload = message["payload"]
        if payload["conversation"] in self.conversations:
            await self._send_event(payload)

    async def membership_changed(self, message: dict[str, Any]) -> None:
        conversation_id = message["conversation"]
        if message["member"]:
            if conversation_id not in self.conversations:
                self.conversations.add(conversation_id)
                await self._join(conversation_group(conversation_id))
                await self._send_event(message["payload"])
                # Events committed between the membership and joining the group.
                frames = await database_sync_to_async(_catch_up_frames)(
                    self.user, conversation_id, message["event"]
                )
                for payload in frames:
                    await self._send_event(payload)
        else:
            self.conversations.discard(conversation_id)
            await self._leave(conversation_group(conversation_id))
            await self._send_event(message["payload"])

    async def typing_notice(self, message: dict[str, Any]) -> None:
        payload = message["payload"]
        if payload["user"]["id"] != self.user.pk and payload["conversation"] in self.conversations:
            await self.send_json(payload)

    async def read_receipt(self, message: dict[str, Any]) -> None:
        await self.send_json(message["payload"])

    async def presence_changed(self, message: dict[str, Any]) -> None:
        await self.send_json(message["payload"])

    async def account_disabled(self, message: dict[str, Any]) -> None:
        """Offboarding (or an erasure request) closed the account: one final
        frame, then close. The socket's user object is from before that, so
        whatever is still queued for it (membership changes, events, frames
        from the browser) is dropped rather than handled."""
        if self.disabled:
            return
        await self.send_json({"type": "account_disabled"})
        self.disabled = True
        await self.close(code=CLOSE_ACCOUNT_DISABLED)

    async def send_json(self, content: dict[str, Any]) -> None:
        if self.disabled:
            return
        await self.send(text_data=json.dumps(content, separators=(",", ":"), ensure_ascii=False))
