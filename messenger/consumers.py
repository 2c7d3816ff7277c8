"""The browser's one websocket per tab. The protocol is in docs/protocol.md.

A thin async adapter: it refuses anonymous sockets, parses and checks the shape
of each frame, makes one ``database_sync_to_async`` hop into a service or
selector, and relays group messages. Domain errors become error frames; a
refused frame never closes the socket unless the client floods it.

Channels dispatches one message at a time per consumer, so while a frame is
being handled (a resume reading the journal, say), group messages wait in the
queue; they are de-duplicated by event id afterwards, so a resume followed by
the live stream has no gap and no duplicate.

The live stream alone promises nothing: events of two server processes reach a
socket out of id order, and a channel layer drops what does not fit or expires.
So after a resume the socket keeps a *mark*: every event up to it that the
person may see has been sent on this socket, checked against the journal. About
five seconds after live events arrive (and every ``SYNC_SWEEP`` seconds regardless)
it checks the journal from its mark on, sends what the stream missed, moves the
mark and tells the client (``synced``). The client resumes from the mark, never
from the highest id it saw (docs/protocol.md, "Resuming").
"""

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from accounts.models import User
from messenger import metrics, presence, selectors, services
from messenger.errors import MessengerError, NotFound
from messenger.events import conversation_group, event_payloads, frame_text, user_group

logger = logging.getLogger(__name__)

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
# After a live event, wait this long for its out-of-order siblings, then check
# the journal from the mark on. Without live events, check this often anyway
# (a socket whose events the layer dropped receives nothing to notice it by);
# the same beat renews the socket's presence entry. Each check is a query on the
# process's one database thread: with 200 sockets in a busy channel, 1 s cost
# 2.7 times the fan-out throughput (bench/load.py), 5 s about 1.6 times.
SYNC_DELAY = 5.0
SYNC_SWEEP = float(presence.HEARTBEAT)


def _socket_start(user: User, socket: str) -> tuple[set[int], int, set[int], bool]:
    conversations, latest, partners = selectors.socket_start(user=user)
    return conversations, latest, partners, presence.presence_connect(user_id=user.pk, socket=socket)


def _resume_frames(user: User, after: int) -> tuple[list[dict[str, Any]], bool, int]:
    """Every event after ``after`` up to the journal's head, and that head."""
    head = selectors.latest_event_id()
    events, truncated = selectors.events_after(
        user=user, after=after, upto=head, limit=settings.KONTOR_RESUME_LIMIT
    )
    return event_payloads(events), truncated, head


def _sync_frames(
    user: User, socket: str, after: int, upto: int | None, delivered: set[int], heartbeat: bool
) -> tuple[list[dict[str, Any]], bool, int]:
    """What the live stream missed between the mark and ``upto`` (None: the
    head). The sweep renews the socket's presence in the same hop."""
    if heartbeat:
        presence.presence_heartbeat(user_id=user.pk, socket=socket)
    check = selectors.journal_check(
        user=user, after=after, upto=upto, delivered=delivered, limit=settings.KONTOR_RESUME_LIMIT
    )
    return event_payloads(check.missing), check.truncated, check.upto


def _catch_up_frames(user: User, conversation_id: int, after: int) -> list[dict[str, Any]]:
    events, _ = selectors.events_after(user=user, after=after, limit=settings.KONTOR_RESUME_LIMIT)
    return event_payloads([e for e in events if e.conversation_id == conversation_id])


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


def _unavailable(client_id: str | None) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "error",
        "code": "unavailable",
        "detail": "Kontor could not handle this just now; nothing was stored. Try again.",
    }
    if client_id is not None:
        frame["client_id"] = client_id
    return frame


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
    released = False
    sweeper: asyncio.Task[None] | None = None
    sync_task: asyncio.Task[None] | None = None
    mark: int | None = None

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
        # ``mark`` is set by the first resume: every visible event up to it was sent here.
        self.sync_upto = 0
        start = await database_sync_to_async(_socket_start)(user, self.channel_name)
        self.conversations, latest, self.presence_watchers, came_online = start
        self.sweeper = asyncio.create_task(self._sweep())
        for conversation_id in self.conversations:
            await self._join(conversation_group(conversation_id))
        await self._join(user_group(user.pk))
        await self.accept()
        metrics.socket_opened()
        await self.send_json({"type": "hello", "user": user.pk, "event": latest})
        if came_online:
            await self._presence(online=True)

    async def disconnect(self, code: int) -> None:
        await self._release()

    async def _release(self) -> None:
        """Give back what this socket holds: groups, presence, its tasks. Runs
        once, on every way out (a close, a crash in a handler)."""
        if self.released or not hasattr(self, "user"):
            return
        self.released = True
        metrics.socket_closed()
        current = asyncio.current_task()
        for task in (self.sweeper, self.sync_task):
            if task is not None and task is not current:
                task.cancel()
        for group in list(self.joined_groups):
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(group, self.channel_name)
        self.joined_groups.clear()
        went_offline = await database_sync_to_async(presence.presence_disconnect)(
            user_id=self.user.pk, socket=self.channel_name
        )
        if went_offline:
            with contextlib.suppress(Exception):
                await self._presence(online=False)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Whatever ends this socket (a failing channel layer read, say, during a
        Redis restart, which no handler sees) gives back what it holds."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            await asyncio.shield(self._release())

    async def dispatch(self, message: dict[str, Any]) -> None:
        """A handler that fails unexpectedly must not leave the socket's groups
        and presence behind: release them, then close (the client reconnects
        and resumes)."""
        try:
            await super().dispatch(message)
        except Exception:
            if message.get("type") in ("websocket.connect", "websocket.disconnect"):
                raise
            logger.exception(
                "Socket of user %s failed handling %s", getattr(self, "user", None), message["type"]
            )
            await self._release()
            with contextlib.suppress(Exception):
                await self.close(code=1011)

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
        started = time.monotonic()
        kind = None
        try:
            frame = self._parse(text_data)
            kind = frame["type"]
            client_id = frame.get("client_id") if isinstance(frame.get("client_id"), str) else None
            self._take_token()
            handler = self.handlers.get(frame["type"])
            if handler is None:
                raise FrameError("unknown_type", f"Unknown frame type {frame['type'][:40]!r}.")
            await handler(self, frame)
        except (FrameError, MessengerError) as error:
            if kind == "send":
                metrics.send_done(time.monotonic() - started, "refused")
            await self._refuse(error.code, error.detail, client_id)
        except Exception:
            # The database or the layer failed us (a restart, a lost connection):
            # nothing was stored, and the client sends the same frame again.
            logger.exception("Frame of user %s failed", self.user.pk)
            if kind == "send":
                metrics.send_done(time.monotonic() - started, "failed")
            await self.send_json(_unavailable(client_id))

    def _parse(self, text_data: str | None) -> dict[str, Any]:
        if text_data is None:
            raise FrameError("malformed", "Frames are JSON text.")
        if len(text_data) > MAX_FRAME_BYTES or len(text_data.encode()) > MAX_FRAME_BYTES:
            raise FrameError("too_large", f"Frames are limited to {MAX_FRAME_BYTES // 1024} KiB.")
        try:
            frame = json.loads(text_data)
        except ValueError:
            raise FrameError("malformed", "The frame is not valid JSON.") from None
        except RecursionError:
            # Thousands of nested arrays: no frame of the protocol nests deeper than three.
            raise FrameError("malformed", "The frame is nested too deeply.") from None
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
        started = time.monotonic()
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
        metrics.send_done(time.monotonic() - started, "ok" if sent.created else "duplicate")
        # The event is committed, so is everything before it: the stream owes
        # this socket all of it, whatever the layer is doing.
        self._sync_soon(sent.event_id)

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
        frames, truncated, head = await database_sync_to_async(_resume_frames)(self.user, after)
        if truncated:
            await self._resync()
            return
        for payload in frames:
            await self._send_event(payload)
        self.mark = max(after, head, self.mark or 0)
        await self.send_json({"type": "resumed", "after": after, "count": len(frames), "event": self.mark})
        if self.sent_order and self.sent_order[-1] > self.mark:
            self._sync_soon(self.sent_order[-1])

    async def _resync(self) -> None:
        await self.send_json({"type": "resync", "detail": "Too many events were missed; reload the page."})

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

    async def _send_event(self, payload: dict[str, Any], text: str | None = None) -> None:
        """Send a journal event once; ``text``: the frame already encoded (live events
        are encoded once for every socket, in ``messenger.events``)."""
        event_id = payload["event"]
        if event_id in self.sent_events or (self.mark is not None and event_id <= self.mark):
            return
        self.sent_events.add(event_id)
        self.sent_order.append(event_id)
        if len(self.sent_order) > REMEMBERED_EVENTS:
            self.sent_events.discard(self.sent_order.popleft())
        if text is None:
            await self.send_json(payload)
        elif not self.disabled:
            await self.send(text_data=text)
        self._sync_soon(event_id)

    # --- The mark: what this socket has certainly delivered ------------------

    def _sync_soon(self, upto: int) -> None:
        """Check the journal up to ``upto`` in a moment (one check per burst)."""
        if self.mark is None or upto <= self.mark or self.released:
            return
        self.sync_upto = max(self.sync_upto, upto)
        if self.sync_task is None:
            self.sync_task = asyncio.create_task(self._sync_later())

    async def _sync_later(self) -> None:
        try:
            await asyncio.sleep(SYNC_DELAY)
            await self._check_journal(self.sync_upto)
        except Exception:
            # A database or cache hiccup: the sweep checks again.
            logger.warning("Journal check of a socket of user %s failed", self.user.pk, exc_info=True)
            return
        finally:
            self.sync_task = None
        if self.sync_upto > (self.mark or 0):
            self._sync_soon(self.sync_upto)

    async def _check_journal(self, upto: int | None, *, heartbeat: bool = False) -> None:
        """Send what the stream missed up to ``upto`` (None: the journal's head),
        then move the mark there and tell the client; with ``heartbeat``, renew
        the socket's presence too."""
        if self.mark is None or self.disabled or self.released:
            return
        if upto is not None and upto <= self.mark:
            return
        after = self.mark
        delivered = {e for e in self.sent_events if e > after}
        missing, truncated, checked = await database_sync_to_async(_sync_frames)(
            self.user, self.channel_name, after, upto, delivered, heartbeat
        )
        if truncated:
            await self._resync()
            return
        if missing:
            logger.info(
                "Socket of user %s: %d events came from the journal, not the stream",
                self.user.pk,
                len(missing),
            )
            # A restarted Redis forgets group memberships: join again (a no-op
            # when they are still there), so the stream itself recovers.
            for group in list(self.joined_groups):
                await self.channel_layer.group_add(group, self.channel_name)
        for payload in missing:
            await self._send_event(payload)
        if self.mark is not None and checked > self.mark:
            self.mark = checked
            await self.send_json({"type": "synced", "event": checked})

    async def _sweep(self) -> None:
        """Every ``SYNC_SWEEP`` seconds: renew presence and check up to the head."""
        while True:
            await asyncio.sleep(SYNC_SWEEP)
            try:
                if self.mark is None:
                    await database_sync_to_async(presence.presence_heartbeat)(
                        user_id=self.user.pk, socket=self.channel_name
                    )
                else:
                    await self._check_journal(None, heartbeat=True)
            except Exception:
                # A database or cache hiccup: the next beat tries again.
                logger.warning("Sync sweep of a socket of user %s failed", self.user.pk, exc_info=True)

    async def journal_event(self, message: dict[str, Any]) -> None:
        if message["conversation"] in self.conversations:
            await self._send_event({"event": message["event"]}, message["text"])
            if "at" in message:
                metrics.delivered(time.time() - message["at"])

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
        await self.send(text_data=frame_text(content))
