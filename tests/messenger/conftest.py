"""Websocket helpers: real sessions, real ASGI stack (origin check, session auth)."""

import asyncio
import json
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts.models import User
from config.asgi import application


class Socket:
    """A browser tab's websocket, driven from a test."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.communicator.send_to(text_data=frame if isinstance(frame, str) else json.dumps(frame))

    async def receive(self, timeout: float = 30) -> dict[str, Any]:
        return json.loads(await self.communicator.receive_from(timeout=timeout))

    async def receive_type(self, type_: str, timeout: float = 30) -> dict[str, Any]:
        """The next frame of this type (others, like presence, are skipped)."""
        while True:
            frame = await self.receive(timeout)
            if frame["type"] == type_:
                return frame

    async def nothing(self, timeout: float = 0.3) -> bool:
        return await self.communicator.receive_nothing(timeout=timeout)

    async def close(self) -> None:
        await self.communicator.disconnect()


def session_headers(user: User, origin: str = "http://localhost") -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    return [(b"origin", origin.encode()), (b"cookie", cookie.encode()), (b"host", b"localhost")]


async def open_socket(user: User | None, origin: str = "http://localhost") -> tuple[bool, Socket]:
    if user is not None:
        headers = await sync_to_async(session_headers)(user, origin)
    else:
        headers = [(b"origin", origin.encode()), (b"host", b"localhost")]
    communicator = WebsocketCommunicator(application, "/ws/", headers=headers)
    # Generous: the handshake reads the session from the database.
    connected, _ = await communicator.connect(timeout=30)
    return connected, Socket(communicator)


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Play an async scenario of sockets from a sync test."""
    asyncio.run(scenario())


async def signed_in_socket(user: User, **wait: float) -> Socket:
    """A socket of ``user``, connected and past its ``hello``."""
    connected, socket = await open_socket(user)
    assert connected
    await socket.receive_type("hello", **wait)
    return socket


@pytest.fixture
def connect() -> Callable[..., Any]:
    return open_socket


@pytest.fixture
def fresh_channel_layer() -> Iterator[None]:
    """A new channel layer for the test, and none left behind.

    Each test runs its sockets in its own event loop (``asyncio.run``); the
    Redis layer keeps per-process locks and cleanup tasks bound to the loop
    that created them, so a layer reused across loops can hang or fail.
    """
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    yield
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
