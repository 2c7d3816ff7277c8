"""The LMTP / SMTP listener a company MTA delivers replies to.

Postfix (an ``lmtp:`` or ``smtp:`` transport for the reply domain) or an
Exchange send connector hands each reply to Kontor here. The MTA keeps the mail
queued until Kontor answers, so nothing is lost while Kontor is down, and a
refusal becomes the MTA's own bounce to the sender:

- RCPT for an address that is not one of Kontor's reply addresses: ``550 5.1.1``.
- After DATA, ``incoming.mail_receive`` decides: ``250 2.0.0`` posted,
  ``550 5.7.1 <reason>`` refused for good (the MTA bounces with the reason),
  ``451 4.3.0`` refused for now or failed unexpectedly (the MTA retries later;
  ``mail_receive`` posts a mail delivered twice once).
- More than ``KONTOR_EMAIL_MAX_BYTES``: ``552`` (aiosmtpd's ``data_size_limit``,
  also advertised as ESMTP ``SIZE``).

LMTP (RFC 2033) answers DATA once per accepted recipient. aiosmtpd 1.4.6's
``LMTP`` class only renames the greeting commands and answers DATA once, so
``ReplyHandler`` writes one line per recipient itself and ``ReplyLMTP`` does the
same for the refusals aiosmtpd writes on its own (552, 500 line too long);
otherwise a multi-recipient client waits for replies that never come.

``serve()`` runs the listener in the foreground (``manage.py receive_mail lmtp``);
``ReplyController`` runs it in a thread on a loopback port (tests).
"""

import asyncio
import contextlib
import logging
import signal
import socket
import threading
import unicodedata
from collections.abc import Callable, Iterator
from typing import AnyStr

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session, syntax
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections

from messenger.mail import incoming

logger = logging.getLogger(__name__)

# RFC 5321 allows 512 octets a reply line; the code and enhanced code take 10.
_REPLY_TEXT_MAX = 400


def reply_text(text: str, *, default: str = "Refused") -> str:
    """``text`` fit for an SMTP reply line: one line (a CR/LF in a reason would
    start a forged reply line), ASCII (what every client and the bounce it
    writes can carry; accents are dropped, "ü" becomes "u"), short."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    flat = " ".join(ascii_text.split())
    return flat[:_REPLY_TEXT_MAX] or default


def _close_old_connections() -> None:
    # Never inside a transaction (a caller's, or a test's): closing would break it.
    if not any(db.in_atomic_block for db in connections.all(initialized_only=True)):
        close_old_connections()


@contextlib.contextmanager
def _fresh_connections() -> Iterator[None]:
    # The listener runs for weeks: drop database connections that broke or
    # outlived CONN_MAX_AGE, as Django does around each request.
    _close_old_connections()
    try:
        yield
    finally:
        _close_old_connections()


def _address_is_ours(address: str) -> bool:
    # A look at the address alone (the HMAC is checked with the mail): no database.
    return bool(incoming.address_is_ours(address))


def _mail_receive(raw: bytes, recipients: list[str]) -> incoming.Received:
    with _fresh_connections():
        received: incoming.Received = incoming.mail_receive(raw=raw, recipients=recipients)
        return received


class ReplyHandler:
    """aiosmtpd handler: accepts Kontor's reply addresses and posts what is
    delivered to them through ``incoming.mail_receive``."""

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        try:
            ours = await sync_to_async(_address_is_ours)(address)
        except Exception:
            logger.exception("Cannot check the recipient %r", address)
            return "451 4.3.0 Cannot check this recipient now, try again later"
        if not ours:
            return "550 5.1.1 No such reply address here"
        # With a handle_RCPT hook aiosmtpd leaves recording the recipient to us.
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        status = await self._receive(envelope)
        if isinstance(server, LMTP):
            # RFC 2033 §4.2: one reply per accepted recipient, in RCPT order. All
            # of them were handed to one mail_receive call, so they share its result.
            return "\r\n".join([status] * max(1, len(envelope.rcpt_tos)))
        return status

    async def _receive(self, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            received = await sync_to_async(_mail_receive)(raw, list(envelope.rcpt_tos))
        except incoming.MailRejected as rejection:
            if rejection.permanent:
                logger.info("Refused a reply from %r: %s", envelope.mail_from, rejection.reason)
                return f"550 5.7.1 {reply_text(rejection.reason)}"
            logger.warning("Deferred a reply from %r: %s", envelope.mail_from, rejection.reason)
            return f"451 4.3.0 {reply_text(rejection.reason, default='Try again later')}"
        except Exception:
            logger.exception("Receiving a reply from %r failed", envelope.mail_from)
            return "451 4.3.0 Temporary failure, try again later"
        if received.duplicate:
            return "250 2.0.0 Already posted"
        return "250 2.0.0 Posted"


class ReplyLMTP(LMTP):
    """aiosmtpd's LMTP, with one reply per recipient also for the refusals that
    aiosmtpd writes itself after DATA (552 too much data, 500 line too long)."""

    _data_replies = 0

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        try:
            await super().smtp_DATA(arg)
        finally:
            self._data_replies = 0

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str) and status.startswith("354") and self.envelope is not None:
            await super().push(status)
            # Counted now: aiosmtpd replaces the envelope before its final reply.
            self._data_replies = len(self.envelope.rcpt_tos)
            return
        if isinstance(status, str) and self._data_replies > 1 and "\r\n" not in status:
            await super().push("\r\n".join([status] * self._data_replies))
            return
        await super().push(status)


def reply_server(
    *, lmtp: bool = True, hostname: str | None = None, data_size_limit: int | None = None
) -> SMTP:
    """One protocol instance (aiosmtpd makes one per connection). The size limit
    is read from settings now, at connection time."""
    limit = settings.KONTOR_EMAIL_MAX_BYTES if data_size_limit is None else data_size_limit
    server_class = ReplyLMTP if lmtp else SMTP
    return server_class(
        ReplyHandler(),
        data_size_limit=limit,
        # Mail is handed on as the bytes received; UTF-8 addresses and headers
        # (RFC 6531) are what mail_receive has to cope with anyway.
        enable_SMTPUTF8=True,
        decode_data=False,
        # socket.getfqdn() (aiosmtpd's default) may wait for DNS on every connection.
        hostname=hostname or socket.gethostname(),
        ident="Kontor",
    )


class ReplyController(Controller):
    """The listener in a thread of its own, for tests: ``start()``, ``stop()``.
    Binds 127.0.0.1 (aiosmtpd's default would be ``::1``); ``port`` must be a
    free port (aiosmtpd cannot bind port 0)."""

    def __init__(
        self, *, port: int, host: str = "127.0.0.1", lmtp: bool = True, data_size_limit: int | None = None
    ) -> None:
        super().__init__(ReplyHandler(), hostname=host, port=port)
        self.lmtp = lmtp
        self.data_size_limit = data_size_limit

    def factory(self) -> SMTP:
        return reply_server(lmtp=self.lmtp, data_size_limit=self.data_size_limit)


def serve(
    *,
    host: str | None = None,
    port: int | None = None,
    lmtp: bool = True,
    stop: threading.Event | None = None,
    ready: Callable[[str, int], None] | None = None,
) -> None:
    """Listen on ``host``:``port`` (default ``KONTOR_LMTP_HOST`` /
    ``KONTOR_LMTP_PORT``) until ``stop`` is set, SIGINT or SIGTERM. ``ready``
    is called with the address once the socket listens. Raises OSError when the
    address cannot be bound."""
    asyncio.run(
        _serve(
            host=settings.KONTOR_LMTP_HOST if host is None else host,
            port=settings.KONTOR_LMTP_PORT if port is None else port,
            lmtp=lmtp,
            stop=stop or threading.Event(),
            ready=ready,
        )
    )


async def _serve(
    *, host: str, port: int, lmtp: bool, stop: threading.Event, ready: Callable[[str, int], None] | None
) -> None:
    loop = asyncio.get_running_loop()
    hostname = socket.gethostname()
    server = await loop.create_server(
        lambda: reply_server(lmtp=lmtp, hostname=hostname), host=host, port=port
    )
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    try:
        await server.start_serving()
        if ready is not None:
            bound = server.sockets[0].getsockname()
            ready(str(bound[0]), int(bound[1]))
        await asyncio.to_thread(stop.wait)
        logger.info("Stopping the %s listener", "LMTP" if lmtp else "SMTP")
    finally:
        stop.set()  # ends the waiting thread when we got here by an exception
        server.close()
        # From Python 3.12 on wait_closed() also waits for open connections, which
        # an idle MTA keeps for minutes: give them a moment, then asyncio.run
        # cancels them. A mail whose reply was cut off stays queued at the MTA,
        # which delivers it again; mail_receive posts it once.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), timeout=5)
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
