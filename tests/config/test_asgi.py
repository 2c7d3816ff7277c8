"""The websocket behind config.asgi: origin check, session login, error frames."""

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from pytest_django import Settings

from accounts.models import User
from config.asgi import application
from messenger.consumers import CLOSE_UNAUTHENTICATED, MAX_FRAME_BYTES

# The socket reads the session through its own database connection, so the
# session must be committed: transactional tests. The refusals that happen
# before any database access run in an ordinary (faster) test transaction.
pytestmark = pytest.mark.django_db(transaction=True)
refused_before_the_database = pytest.mark.django_db


@pytest.fixture(autouse=True)
def private_cache(settings: Settings) -> None:
    # Presence counts live in the cache (Redis when REDIS_URL is set).
    prefix = f"test-{uuid.uuid4().hex}"
    settings.CACHES = {alias: {**config, "KEY_PREFIX": prefix} for alias, config in settings.CACHES.items()}


Headers = list[tuple[bytes, bytes]]
SOCKET_TIMEOUT = 30


def _headers(user: User | None, origin: bytes = b"http://localhost", host: bytes = b"localhost") -> Headers:
    headers: Headers = [(b"origin", origin), (b"host", host)]
    if user is not None:
        client = Client()
        client.force_login(user)
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode()))
    return headers


def _run(headers: Headers, talk: Callable[[WebsocketCommunicator], Awaitable[Any]] | None = None) -> Any:
    """Open /ws/ with ``headers``; on success let ``talk`` use the socket, then close it."""

    async def session() -> Any:
        communicator = WebsocketCommunicator(application, "/ws/", headers=headers)
        # Generous deadlines: the handshake reads the session from the database.
        connected, detail = await communicator.connect(timeout=SOCKET_TIMEOUT)
        if not connected:
            await communicator.disconnect()
            return (False, detail)
        try:
            hello = await communicator.receive_json_from(timeout=SOCKET_TIMEOUT)
            result = await talk(communicator) if talk is not None else None
            return (True, hello, result)
        finally:
            await communicator.disconnect()

    return async_to_sync(session)()


async def _exchange(communicator: WebsocketCommunicator, **frame: Any) -> dict[str, Any]:
    if "raw" in frame:
        await communicator.send_to(text_data=frame["raw"])
    elif "raw_bytes" in frame:
        await communicator.send_to(bytes_data=frame["raw_bytes"])
    else:
        await communicator.send_json_to(frame)
    return await _next_answer(communicator)


async def _next_answer(communicator: WebsocketCommunicator) -> dict[str, Any]:
    """The next frame meant for this socket, skipping presence news (ours included)."""
    while True:
        frame: dict[str, Any] = await communicator.receive_json_from(timeout=SOCKET_TIMEOUT)
        if frame["type"] != "presence":
            return frame


@refused_before_the_database
def test_anonymous_socket_is_refused() -> None:
    connected, code = _run(_headers(None))

    assert connected is False
    assert code == CLOSE_UNAUTHENTICATED


@refused_before_the_database
def test_forged_origin_is_refused(alice: User) -> None:
    connected, _ = _run(_headers(alice, origin=b"http://evil.example"))

    assert connected is False


@refused_before_the_database
def test_missing_origin_is_refused(alice: User) -> None:
    headers = [header for header in _headers(alice) if header[0] != b"origin"]

    connected, _ = _run(headers)

    assert connected is False


# A server on port 8123 (the tests' daphne processes run on free ports like it).
SERVER = b"localhost:8123"


@refused_before_the_database
@pytest.mark.parametrize(
    "origin",
    [
        pytest.param(b"http://localhost:9999", id="foreign-port"),
        pytest.param(b"http://localhost", id="default-port-is-another-port"),
        pytest.param(b"https://localhost:8123", id="foreign-scheme"),
        pytest.param(b"http://evil.example:8123", id="foreign-host"),
        pytest.param(b"http://localhost.evil.example:8123", id="lookalike-host"),
        pytest.param(b"http://127.0.0.1:8123", id="another-allowed-host"),
        pytest.param(b"null", id="null"),
        pytest.param(b"http://localhost:8123/chat/", id="not-an-origin"),
    ],
)
def test_origin_of_another_site_is_refused_at_the_handshake(alice: User, origin: bytes) -> None:
    # Another web app on the same host name (another port or scheme) must not
    # read a signed-in colleague's stream through their session cookie.
    connected, *answer = _run(_headers(alice, origin=origin, host=SERVER))

    assert connected is False
    assert answer != [CLOSE_UNAUTHENTICATED]  # refused by the origin check, before the session


def test_the_pages_own_origin_connects_on_any_port(alice: User) -> None:
    connected, hello, _ = _run(_headers(alice, origin=b"http://localhost:8123", host=SERVER))

    assert connected is True
    assert hello["user"] == alice.pk


def test_own_origin_on_a_host_outside_allowed_hosts_is_refused(alice: User, settings: Settings) -> None:
    settings.ALLOWED_HOSTS = ["chat.example.com"]

    intranet = b"intranet.example:8123"

    connected, *_ = _run(_headers(alice, origin=b"http://" + intranet, host=intranet))

    assert connected is False


def test_a_csrf_trusted_origin_connects(alice: User, settings: Settings) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://chat.example.com", "https://*.kontor.example"]

    results = [
        _run(_headers(alice, origin=origin, host=SERVER))[0]
        for origin in (b"https://chat.example.com", b"https://eu.kontor.example", b"http://chat.example.com")
    ]

    assert results == [True, True, False]


def test_the_base_url_origin_connects(alice: User, settings: Settings) -> None:
    settings.KONTOR_BASE_URL = "https://chat.example.com/"

    connected, *_ = _run(_headers(alice, origin=b"https://chat.example.com:443", host=SERVER))

    assert connected is True


def test_https_behind_a_trusted_proxy_connects(alice: User, settings: Settings) -> None:
    headers = [*_headers(alice, origin=b"https://localhost"), (b"x-forwarded-proto", b"https")]

    settings.SECURE_PROXY_SSL_HEADER = None
    untrusted = _run(headers)[0]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    trusted = _run(headers)[0]

    # Only a proxy Django is told to trust (KONTOR_BEHIND_PROXY) may say "https".
    assert (untrusted, trusted) == (False, True)


def test_signed_in_member_connects_and_is_greeted(alice: User) -> None:
    connected, hello, _ = _run(_headers(alice))

    assert connected is True
    assert hello["type"] == "hello"
    assert hello["user"] == alice.pk


def test_deactivated_member_is_refused(alice: User) -> None:
    headers = _headers(alice)
    User.objects.filter(pk=alice.pk).update(is_active=False)

    connected, code = _run(headers)

    assert connected is False
    assert code == CLOSE_UNAUTHENTICATED


def test_signed_out_session_is_refused(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    client.post("/accounts/logout/")

    connected, code = _run(
        [(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie.encode())]
    )

    assert connected is False
    assert code == CLOSE_UNAUTHENTICATED


def test_malformed_frames_get_error_frames_and_the_socket_stays_open(alice: User) -> None:
    async def talk(communicator: WebsocketCommunicator) -> list[dict[str, Any]]:
        return [
            await _exchange(communicator, raw="{not json"),
            await _exchange(communicator, raw="[1, 2, 3]"),
            await _exchange(communicator, raw=json.dumps({"type": 7})),
            await _exchange(communicator, raw_bytes=b"\x00\x01binary"),
            await _exchange(communicator, type="ping"),
        ]

    _, _, answers = _run(_headers(alice), talk)

    assert [answer["type"] for answer in answers] == ["error", "error", "error", "error", "pong"]
    assert [answer.get("code") for answer in answers[:4]] == ["malformed"] * 4
    assert all(answer["detail"] for answer in answers[:4])


def test_unknown_frame_type_gets_an_error_frame_and_the_socket_stays_open(alice: User) -> None:
    async def talk(communicator: WebsocketCommunicator) -> list[dict[str, Any]]:
        return [
            await _exchange(communicator, type="teleport", to="bob"),
            await _exchange(communicator, type="ping"),
        ]

    _, _, (unknown, pong) = _run(_headers(alice), talk)

    assert unknown["type"] == "error"
    assert unknown["code"] == "unknown_type"
    assert "teleport" in unknown["detail"]
    assert pong == {"type": "pong"}


def test_oversized_frame_is_refused_with_an_error_frame(alice: User) -> None:
    async def talk(communicator: WebsocketCommunicator) -> list[dict[str, Any]]:
        return [
            await _exchange(communicator, type="ping", padding="x" * MAX_FRAME_BYTES),
            await _exchange(communicator, type="ping"),
        ]

    _, _, (too_large, pong) = _run(_headers(alice), talk)

    assert too_large["code"] == "too_large"
    assert pong == {"type": "pong"}
