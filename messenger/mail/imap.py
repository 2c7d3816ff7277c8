"""Replies fetched from an IMAP mailbox, for companies whose mail server cannot
deliver to Kontor's LMTP listener (a hosted mailbox the reply address lands in).

``mailbox_poll()`` handles every unseen message of ``KONTOR_IMAP_FOLDER`` once:
it hands the exact bytes to ``incoming.mail_receive`` and then sets ``\\Seen``.
IMAP cannot refuse a mail that was already delivered, so a permanent
``MailRejected`` is answered with ``incoming.mail_bounce`` (then ``\\Seen``
too). A temporary rejection, a failed bounce or an unexpected error leaves the
message unseen: the next poll tries again (``mail_receive`` posts a mail handed
over twice once, so a lost ``\\Seen`` costs nothing).

``mailbox_watch()`` polls, then waits with IMAP IDLE (RFC 2177) when the server
offers it, else sleeps a poll interval; it reconnects with backoff after
connection errors and stops on KeyboardInterrupt or a ``stop`` event.

Messages are only marked, never moved or deleted: the mailbox keeps its own
copy, for whatever retention its owner has set.
"""

import base64
import contextlib
import imaplib
import ipaddress
import itertools
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import close_old_connections, connections

from messenger.mail import incoming

logger = logging.getLogger(__name__)

# RFC 2177: a server may drop a client idle for 30 min, so IDLE is re-issued
# well before; the poll that follows also catches anything IDLE missed.
IDLE_TIMEOUT = 5 * 60.0
POLL_INTERVAL = 60.0
CONNECT_TIMEOUT = 60.0
# How often a waiting IDLE looks at the stop event.
_IDLE_TICK = 0.5
# How long the server may take to answer IDLE and DONE.
_IDLE_ANSWER_TIMEOUT = 30.0
_FETCH_CHUNK = 500

_CONNECTION_ERRORS = (OSError, EOFError, imaplib.IMAP4.error)


class MailboxError(Exception):
    """The mailbox cannot be used as configured (login refused, no such folder,
    read-only folder, password would go over the network in clear)."""


@dataclass
class PollResult:
    """What one poll did with the unseen messages."""

    posted: int = 0
    duplicates: int = 0  # delivered before; now marked seen
    bounced: int = 0
    left: int = 0  # still unseen: tried again by the next poll

    def __str__(self) -> str:
        return f"posted {self.posted}, duplicates {self.duplicates}, bounced {self.bounced}, left {self.left}"


@dataclass(frozen=True)
class Mailbox:
    """Where replies arrive: the ``KONTOR_IMAP_*`` settings, any of them overridden."""

    host: str
    port: int
    use_ssl: bool
    user: str
    password: str
    folder: str

    @classmethod
    def from_settings(cls, **overrides: Any) -> "Mailbox":
        """The settings, with ``overrides`` (host=…, folder=…) where given. Raises
        ImproperlyConfigured naming a required setting that is empty."""
        unknown = set(overrides) - set(_SETTINGS)
        if unknown:
            raise TypeError(f"Unknown mailbox fields: {sorted(unknown)}")
        values = {
            name: getattr(settings, setting) if overrides.get(name) is None else overrides[name]
            for name, setting in _SETTINGS.items()
        }
        for name in ("host", "user", "password", "folder"):
            if not values[name]:
                raise ImproperlyConfigured(
                    f"{_SETTINGS[name]} is not set: receiving replies by IMAP needs it."
                )
        return cls(**{**values, "port": int(values["port"]), "use_ssl": bool(values["use_ssl"])})


_SETTINGS = {
    "host": "KONTOR_IMAP_HOST",
    "port": "KONTOR_IMAP_PORT",
    "use_ssl": "KONTOR_IMAP_SSL",
    "user": "KONTOR_IMAP_USER",
    "password": "KONTOR_IMAP_PASSWORD",
    "folder": "KONTOR_IMAP_FOLDER",
}


@dataclass(frozen=True)
class Pacing:
    """How a watcher waits: IDLE or polling, and how it backs off after failures."""

    idle: bool = True  # use IMAP IDLE when the server offers it
    idle_timeout: float = IDLE_TIMEOUT
    poll_interval: float = POLL_INTERVAL  # without IDLE
    retry_min: float = 1.0  # first wait after a failure, doubling up to retry_max
    retry_max: float = 300.0
    timeout: float = CONNECT_TIMEOUT


class _Backoff:
    """After a failure: log it, wait, and wait twice as long next time (up to
    the maximum) until a poll succeeds again."""

    def __init__(self, pacing: Pacing, stop: threading.Event) -> None:
        self.pacing, self.stop = pacing, stop
        self.delay = pacing.retry_min

    def succeeded(self) -> None:
        self.delay = self.pacing.retry_min

    def failed(self, error: Exception, what: str) -> None:
        log = logger.error if isinstance(error, MailboxError) else logger.warning
        log("%s (%s); again in %.0f s", what, _text(error) or type(error).__name__, self.delay)
        self.stop.wait(self.delay)
        self.delay = min(self.delay * 2, self.pacing.retry_max)


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _open(account: Mailbox, timeout: float) -> imaplib.IMAP4:
    context = ssl.create_default_context()
    if account.use_ssl:
        return imaplib.IMAP4_SSL(account.host, account.port, ssl_context=context, timeout=timeout)
    connection = imaplib.IMAP4(account.host, account.port, timeout=timeout)
    try:
        if "STARTTLS" in connection.capabilities:
            connection.starttls(ssl_context=context)
        elif not _is_loopback(account.host):
            raise MailboxError(
                f"The IMAP server {account.host}:{account.port} offers no STARTTLS: the password would "
                "cross the network in clear. Use KONTOR_IMAP_SSL=true (port 993)."
            )
    except BaseException:
        _close(connection)
        raise
    return connection


def _login(connection: imaplib.IMAP4, account: Mailbox) -> None:
    where = f"{account.user!r} at {account.host}:{account.port}"
    if "LOGINDISABLED" in connection.capabilities:
        raise MailboxError(f"The IMAP server refuses to log in {where} without TLS (LOGINDISABLED).")
    try:
        if (account.user + account.password).isascii():
            connection.login(account.user, account.password)
        else:
            # imaplib sends LOGIN as ASCII; SASL PLAIN carries UTF-8.
            credentials = f"\0{account.user}\0{account.password}".encode()
            connection.authenticate("PLAIN", lambda _challenge: credentials)
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as error:
        raise MailboxError(f"IMAP login as {where} refused: {_text(error)}") from None


def _close(connection: imaplib.IMAP4) -> None:
    """Log out if the connection still works, and close it in any case."""
    try:
        connection.logout()
    except (*_CONNECTION_ERRORS, ValueError):
        with contextlib.suppress(OSError, ValueError):
            connection.shutdown()


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return " ".join(_text(item) for item in value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def mailbox_name(folder: str) -> str:
    """``folder`` as an IMAP mailbox argument: modified UTF-7 (RFC 3501 §5.1.3),
    quoted. imaplib passes mailbox names on as they are."""
    encoded: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = base64.b64encode("".join(pending).encode("utf-16-be")).decode("ascii")
            encoded.append("&" + data.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in folder:
        if " " <= char <= "~":
            flush()
            encoded.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    name = "".join(encoded)
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _select(connection: imaplib.IMAP4, folder: str) -> None:
    try:
        status, data = connection.select(mailbox_name(folder))
    except imaplib.IMAP4.readonly:
        raise MailboxError(
            f"The IMAP folder {folder!r} is read-only: replies could not be marked seen."
        ) from None
    if status != "OK":
        raise MailboxError(f"Cannot select the IMAP folder {folder!r}: {_text(data)}")


def mailbox_poll(*, mailbox: Mailbox | None = None, timeout: float = CONNECT_TIMEOUT) -> PollResult:
    """Connect, hand every unseen message of the folder to ``incoming`` once,
    log out. The mailbox defaults to the ``KONTOR_IMAP_*`` settings. Raises
    ``MailboxError``, ``ImproperlyConfigured``, OSError or ``imaplib.IMAP4.error``
    when the mailbox cannot be read."""
    account = mailbox or Mailbox.from_settings()
    connection = _open(account, timeout)
    try:
        _login(connection, account)
        return _poll(connection, account.folder)
    finally:
        _close(connection)


def _poll(connection: imaplib.IMAP4, folder: str, stop: threading.Event | None = None) -> PollResult:
    _select(connection, folder)
    result = PollResult()
    # UNDELETED: a message another client flagged for deletion is not a reply to post.
    status, data = connection.uid("SEARCH", "UNSEEN UNDELETED")
    if status != "OK":
        raise MailboxError(f"UID SEARCH failed in {folder!r}: {_text(data)}")
    uids = [uid.decode("ascii") for uid in (data[0] or b"").split()]
    sizes = _sizes(connection, uids)
    limit = int(settings.KONTOR_EMAIL_MAX_BYTES)
    for uid in uids:
        if stop is not None and stop.is_set():
            result.left += 1
            continue
        if sizes.get(uid, 0) > limit:
            _bounce_oversized(connection, uid, sizes[uid], limit, result)
            continue
        raw = _fetch(connection, uid, "BODY.PEEK[]", b"BODY[]")
        if raw is None:
            continue  # expunged by another client meanwhile
        _handle(connection, uid, raw, result)
    return result


def _sizes(connection: imaplib.IMAP4, uids: list[str]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for start in range(0, len(uids), _FETCH_CHUNK):
        chunk = ",".join(uids[start : start + _FETCH_CHUNK])
        status, data = connection.uid("FETCH", chunk, "(RFC822.SIZE)")
        if status != "OK":
            raise MailboxError(f"UID FETCH (RFC822.SIZE) failed: {_text(data)}")
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            if not isinstance(line, bytes):
                continue
            uid = re.search(rb"\bUID (\d+)", line)
            size = re.search(rb"\bRFC822\.SIZE (\d+)", line)
            if uid and size:
                sizes[uid.group(1).decode("ascii")] = int(size.group(1))
    return sizes


def _fetch(connection: imaplib.IMAP4, uid: str, item: str, key: bytes) -> bytes | None:
    status, data = connection.uid("FETCH", uid, f"({item})")
    if status != "OK":
        raise MailboxError(f"UID FETCH {uid} failed: {_text(data)}")
    for part in data:
        # (b'3 (UID 7 BODY[] {1234}', b'<the message>'); untagged FLAGS
        # updates of other messages may come along as plain bytes.
        if (
            isinstance(part, tuple)
            and key in part[0]
            and re.search(rb"\bUID " + uid.encode() + rb"\b", part[0])
        ):
            return bytes(part[1])
    return None


def _mark_seen(connection: imaplib.IMAP4, uid: str) -> None:
    status, data = connection.uid("STORE", uid, "+FLAGS.SILENT", "(\\Seen)")
    if status != "OK":
        raise MailboxError(f"Cannot mark message {uid} seen: {_text(data)}")


def _handle(connection: imaplib.IMAP4, uid: str, raw: bytes, result: PollResult) -> None:
    try:
        received = incoming.mail_receive(raw=raw, recipients=None)
    except incoming.MailRejected as rejection:
        if not rejection.permanent:
            logger.warning("IMAP message %s deferred, tried again next poll: %s", uid, rejection.reason)
            result.left += 1
            return
        if _bounce(uid, raw, rejection.reason):
            _mark_seen(connection, uid)
            result.bounced += 1
        else:
            result.left += 1
        return
    except Exception:
        logger.exception("Receiving IMAP message %s failed; it stays unseen and is tried again", uid)
        result.left += 1
        return
    _mark_seen(connection, uid)
    if received.duplicate:
        result.duplicates += 1
    else:
        result.posted += 1


def _bounce(uid: str, raw: bytes, reason: str) -> bool:
    logger.info("IMAP message %s refused, bouncing: %s", uid, reason)
    try:
        incoming.mail_bounce(raw=raw, reason=reason)
    except Exception:
        # Unseen, the message is refused and bounced again by the next poll.
        logger.exception("Bouncing IMAP message %s failed; it stays unseen and is tried again", uid)
        return False
    return True


def _bounce_oversized(connection: imaplib.IMAP4, uid: str, size: int, limit: int, result: PollResult) -> None:
    # Not fetched whole: the header is enough to tell the sender.
    header = _fetch(connection, uid, "BODY.PEEK[HEADER]", b"BODY[HEADER]")
    if header is None:
        return
    megabytes = max(1, limit // (1024 * 1024))
    reason = f"The mail is {size / (1024 * 1024):.1f} MB; Kontor accepts mails of up to {megabytes} MB."
    if _bounce(uid, header, reason):
        _mark_seen(connection, uid)
        result.bounced += 1
    else:
        result.left += 1


def mailbox_watch(
    *,
    mailbox: Mailbox | None = None,
    pacing: Pacing = Pacing(),
    stop: threading.Event | None = None,
    on_poll: Callable[[PollResult], None] | None = None,
) -> None:
    """Poll, then wait for new mail (IDLE if the server offers it and the pacing
    allows, else ``poll_interval`` seconds), until ``stop`` is set or
    KeyboardInterrupt. Connection errors and refused logins are logged and
    retried with a doubling wait. ``on_poll`` is called after each poll (in this
    thread). The mailbox defaults to the ``KONTOR_IMAP_*`` settings."""
    account = mailbox or Mailbox.from_settings()
    stop = stop or threading.Event()
    backoff = _Backoff(pacing, stop)
    try:
        while not stop.is_set():
            try:
                connection = _open(account, pacing.timeout)
            except (*_CONNECTION_ERRORS, MailboxError) as error:
                backoff.failed(error, f"Cannot use the IMAP server {account.host}:{account.port}")
                continue
            try:
                _login(connection, account)
                _watch_connected(connection, account.folder, pacing, stop, backoff, on_poll)
            except (*_CONNECTION_ERRORS, MailboxError) as error:
                backoff.failed(error, f"IMAP mailbox {account.folder}: reconnecting")
            finally:
                _close(connection)
    except KeyboardInterrupt:
        logger.info("Stopped watching the IMAP mailbox")


def _watch_connected(
    connection: imaplib.IMAP4,
    folder: str,
    pacing: Pacing,
    stop: threading.Event,
    backoff: _Backoff,
    on_poll: Callable[[PollResult], None] | None,
) -> None:
    """Poll and wait on one logged-in connection until ``stop`` or an error."""
    use_idle = pacing.idle and "IDLE" in connection.capabilities
    while not stop.is_set():
        # As Django does around each request: after minutes in IDLE the
        # database may have dropped the connection (or CONN_MAX_AGE passed).
        _close_old_connections()
        result = _poll(connection, folder, stop)
        _close_old_connections()
        backoff.succeeded()
        if result != PollResult():
            logger.info("IMAP poll of %s: %s", folder, result)
        if on_poll is not None:
            on_poll(result)
        if stop.is_set():
            break
        if use_idle:
            try:
                idle_wait(connection, timeout=pacing.idle_timeout, stop=stop)
            except IdleRefused as refusal:
                logger.warning("IMAP IDLE refused (%s); polling every %.0f s", refusal, pacing.poll_interval)
                use_idle = False
        else:
            stop.wait(pacing.poll_interval)


def _close_old_connections() -> None:
    # Never inside a transaction (a test's, or a caller's): closing would break it.
    if not any(db.in_atomic_block for db in connections.all(initialized_only=True)):
        close_old_connections()


class IdleRefused(Exception):
    """The server answered IDLE with NO or BAD."""


_idle_tags = itertools.count(1)
_NEW_MAIL = re.compile(rb"^\* \d+ (EXISTS|RECENT)\b", re.IGNORECASE)
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


class _LineReader:
    """Reads response lines straight from the socket, a tick at a time.

    imaplib's own reader cannot wait with a timeout: after one socket timeout
    its file object refuses every later read. The raw socket (an SSL socket
    too) survives timeouts, so IDLE reads here and leaves imaplib's file to
    the other commands.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def line(self, *, deadline: float, stop: threading.Event | None = None) -> bytes | None:
        """The next line (with any literals it announces), or None once
        ``deadline`` (time.monotonic) has passed or ``stop`` is set."""
        line = self._raw_line(deadline, stop)
        while line is not None and (literal := _LITERAL.search(line)):
            data = self._exactly(int(literal.group(1)), deadline, stop)
            rest = self._raw_line(deadline, stop) if data is not None else None
            line = None if data is None or rest is None else line + data + rest
        return line

    def _raw_line(self, deadline: float, stop: threading.Event | None) -> bytes | None:
        while b"\r\n" not in self.buffer:
            if not self._receive(deadline, stop):
                return None
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line + b"\r\n"

    def _exactly(self, size: int, deadline: float, stop: threading.Event | None) -> bytes | None:
        while len(self.buffer) < size:
            if not self._receive(deadline, stop):
                return None
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _receive(self, deadline: float, stop: threading.Event | None) -> bool:
        while True:
            if (stop is not None and stop.is_set()) or time.monotonic() >= deadline:
                return False
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise imaplib.IMAP4.abort("the IMAP server closed the connection")
            self.buffer += data
            return True


def idle_wait(
    connection: imaplib.IMAP4, *, timeout: float = IDLE_TIMEOUT, stop: threading.Event | None = None
) -> bool:
    """IDLE in the selected folder until the server announces new mail (True),
    ``timeout`` seconds pass or ``stop`` is set (False). Python 3.11's imaplib has
    no IDLE: the command, the untagged responses and DONE are handled here.
    Raises ``IdleRefused``, or ``imaplib.IMAP4.abort`` when the connection breaks."""
    sock = connection.sock
    previous_timeout = sock.gettimeout()
    tag = f"KIDLE{next(_idle_tags)}".encode("ascii")
    reader = _LineReader(sock)
    new_mail = False
    sock.settimeout(_IDLE_TICK)
    try:
        connection.send(tag + b" IDLE\r\n")
        while True:  # until the continuation "+ idling"
            line = reader.line(deadline=time.monotonic() + _IDLE_ANSWER_TIMEOUT)
            if line is None:
                raise imaplib.IMAP4.abort("no answer to IDLE")
            if line.startswith(tag + b" "):
                raise IdleRefused(_text(line.strip()))
            if line.startswith(b"+"):
                break
            new_mail = new_mail or _is_news(line)
        deadline = time.monotonic() + timeout
        while not new_mail:
            line = reader.line(deadline=deadline, stop=stop)
            if line is None:
                break
            new_mail = _is_news(line)
        connection.send(b"DONE\r\n")
        while True:  # until the tagged answer; more untagged news may come first
            line = reader.line(deadline=time.monotonic() + _IDLE_ANSWER_TIMEOUT)
            if line is None:
                raise imaplib.IMAP4.abort("no answer to DONE")
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1 :].upper().startswith(b"OK"):
                    raise imaplib.IMAP4.abort(f"IDLE ended with {_text(line.strip())}")
                break
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(previous_timeout)
    return new_mail


def _is_news(line: bytes) -> bool:
    if line.upper().startswith(b"* BYE"):
        raise imaplib.IMAP4.abort(f"the IMAP server ended the session: {_text(line.strip())}")
    return bool(_NEW_MAIL.match(line))
