"""A websocket client that follows Kontor's protocol the way the browser does.

Used by the tests that drop sockets on purpose and by ``bench/faults.py``. It
keeps the two promises a tab keeps (docs/protocol.md, "Resuming"):

- its resume point is the last ``synced`` / ``resumed`` mark the server gave
  it, never the highest event id it happened to see, so an event still on its
  way from another server process when the socket drops is replayed;
- it shows an event once: frames at or below the mark, or already shown, are
  dropped (a replay after a reconnect may repeat what the old socket showed).

Sends it could not confirm are sent again, with the same ``client_id``, after
every reconnect: the server answers a repeat with the original message.
"""

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.typing import Origin

EVENT_TYPES = {"message", "message_edited", "message_deleted", "reaction", "membership", "conversation"}


@dataclass
class Tab:
    """One browser tab of one person: a socket that comes and goes, and what it showed."""

    base_url: str
    cookie: str
    mark: int = 0
    # What the person saw: journal event ids in the order they were shown.
    shown: list[int] = field(default_factory=list)
    # Frames the server sent that the tab had already shown (a replay after a drop).
    repeats: int = 0
    # Sends not yet acknowledged: client_id -> frame.
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    # client_id -> message id, for every acknowledged send.
    acked: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    resyncs: int = 0
    connects: int = 0
    _seen: set[int] = field(default_factory=set)
    _ws: Any = None
    _reader: asyncio.Task[None] | None = None
    _resumed: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self, *, timeout: float = 30) -> None:
        """Open a socket, resume from the mark and send again what was not confirmed."""
        url = self.base_url.replace("http://", "ws://").replace("https://", "wss://") + "/ws/"
        origin = Origin(self.base_url.rstrip("/"))
        self._ws = await websockets.connect(
            url,
            origin=origin,
            additional_headers={"Cookie": self.cookie},
            ping_interval=None,
            open_timeout=timeout,
            max_size=4 * 1024 * 1024,
        )
        try:
            hello = json.loads(await asyncio.wait_for(self._ws.recv(), timeout))
            if hello.get("type") != "hello":
                raise AssertionError(f"expected hello, got {hello}")
        except BaseException:
            # Not connected after all: the next connect() starts afresh.
            ws, self._ws = self._ws, None
            ws.transport.abort()
            raise
        if self.connects == 0 and self.mark == 0:
            self.mark = int(hello["event"])
        self.connects += 1
        self._resumed = asyncio.Event()
        await self._ws.send(json.dumps({"type": "resume", "after": self.mark}))
        for frame in list(self.pending.values()):
            await self._ws.send(json.dumps(frame))
        self._reader = asyncio.create_task(self._read(self._ws))

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def drop(self) -> None:
        """Lose the connection the way a network does: no close frame."""
        ws, self._ws = self._ws, None
        if ws is None:
            return
        ws.transport.abort()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    async def send_message(self, conversation: int, body: str) -> str:
        client_id = str(uuid.uuid4())
        frame = {"type": "send", "conversation": conversation, "body": body, "client_id": client_id}
        self.pending[client_id] = frame
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.send(json.dumps(frame))
        return client_id

    async def wait_until(self, predicate: Any, *, timeout: float = 60, what: str = "condition") -> None:
        """Wait for ``predicate()`` to hold, re-checking after every frame."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 1.0))

    async def _read(self, ws: Any) -> None:
        try:
            async for raw in ws:
                self._handle(json.loads(raw))
        except (websockets.ConnectionClosed, OSError):
            pass
        finally:
            if self._ws is ws:
                self._ws = None
            self._changed.set()

    def _handle(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind in EVENT_TYPES and isinstance(frame.get("event"), int):
            event = frame["event"]
            if event <= self.mark or event in self._seen:
                self.repeats += 1
            else:
                self._seen.add(event)
                self.shown.append(event)
        elif kind in ("synced", "resumed"):
            if kind == "resumed":
                self._resumed.set()
            self._advance(int(frame.get("event") or 0))
        elif kind == "ack":
            self.pending.pop(frame["client_id"], None)
            self.acked[frame["client_id"]] = frame["message"]
        elif kind == "resync":
            self.resyncs += 1
        elif kind == "error":
            self.errors.append(frame)
            client_id = frame.get("client_id")
            if client_id in self.pending and frame.get("code") == "unavailable":
                # Nothing was stored (a restart): the same frame again, a little later.
                asyncio.get_running_loop().call_later(1.0, self._send_again, client_id)
            elif client_id in self.pending and frame.get("code") != "rate_limited":
                # Refused for good: the browser shows it as failed.
                self.pending.pop(client_id)
        self._changed.set()

    def _send_again(self, client_id: str) -> None:
        frame, ws = self.pending.get(client_id), self._ws
        if frame is not None and ws is not None:
            task = asyncio.ensure_future(ws.send(json.dumps(frame)))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _advance(self, mark: int) -> None:
        if mark > self.mark:
            self.mark = mark
            self._seen = {e for e in self._seen if e > mark}
