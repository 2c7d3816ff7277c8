"""The two ways replies reach Kontor, against real servers on loopback: the
LMTP/SMTP listener (``messenger.mail.lmtp``, driven by ``smtplib``) and the IMAP
poller/watcher (``messenger.mail.imap``, against Dovecot).

``incoming``'s functions are replaced by fakes here: these tests are about the
transports handing mail over and answering the MTA, not about posting.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from io import StringIO
from typing import TYPE_CHECKING, Any

import pytest
from django.core import mail as django_mail
from django.core.management import call_command
from django.core.management.base import CommandError

from messenger.mail import imap, incoming, lmtp
from tests.live import REPO_ROOT, free_port
from tests.waiting import GENEROUS, wait_until

if TYPE_CHECKING:
    # Imported for the types only: imported at run time before pytest loads it as
    # a plugin, the module would escape pytest's assertion rewriting (and warn).
    from tests.mailservers import Dovecot, ImapMailbox, SmtpOutbox

pytest_plugins = ["tests.mailservers"]
# The listener tidies database connections around each delivery, as Django does
# around a request; after other tests have opened one, that needs database access.
pytestmark = pytest.mark.django_db

OURS = "reply+c1u2.abcdef@reply.kontor.example"
OTHER = "reply+c3u4.abcdef@reply.kontor.example"


def raw_mail(subject: str = "Re: Lunch", body: str = "Sounds good.", size: int = 0) -> bytes:
    """A reply as an MTA hands it on: CRLF line ends (imaplib's APPEND would
    rewrite bare LFs, and these tests compare bytes)."""
    lines = [
        "From: Alice Adler <alice@kontor.example>",
        f"To: <{OURS}>",
        f"Subject: {subject}",
        f"Message-ID: <{time.monotonic_ns()}.{subject.replace(' ', '')}@mail.kontor.example>",
        "Content-Type: text/plain; charset=utf-8",
        "",
        body,
    ]
    lines += ["x" * 76] * (size // 78)
    return ("\r\n".join(lines) + "\r\n").encode()


class FakeIncoming:
    """Stands in for ``incoming``: records calls; ``outcomes`` (taken in order, the
    last one repeats) say what ``mail_receive`` does: a ``Received``, or an
    exception to raise."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, list[str] | None]] = []
        self.bounced: list[tuple[bytes, str]] = []
        self.checked: list[str] = []
        self.outcomes: list[incoming.Received | Exception] = []
        self.bounce_error: Exception | None = None
        self.arrived = threading.Event()

    def mail_receive(self, *, raw: bytes, recipients: list[str] | None = None) -> incoming.Received:
        self.received.append((raw, recipients))
        self.arrived.set()
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else (self.outcomes or [posted()])[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def mail_bounce(self, *, raw: bytes, reason: str) -> None:
        if self.bounce_error is not None:
            raise self.bounce_error
        self.bounced.append((raw, reason))

    def address_is_ours(self, address: str) -> bool:
        self.checked.append(address)
        return address.startswith("reply+")


def posted(*, duplicate: bool = False) -> incoming.Received:
    return incoming.Received(conversation_id=1, message_id=2, duplicate=duplicate)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeIncoming:
    fake = FakeIncoming()
    monkeypatch.setattr(incoming, "mail_receive", fake.mail_receive, raising=False)
    monkeypatch.setattr(incoming, "mail_bounce", fake.mail_bounce, raising=False)
    monkeypatch.setattr(incoming, "address_is_ours", fake.address_is_ours, raising=False)
    return fake


# --- IMAP ----------------------------------------------------------------------------------------


def test_poll_hands_every_unseen_message_over_once_and_marks_it_seen(
    imap_mailbox: ImapMailbox, fake: FakeIncoming
) -> None:
    first, second, old = raw_mail("Re: One"), raw_mail("Re: Two"), raw_mail("Re: Read before")
    uids = [imap_mailbox.append(first), imap_mailbox.append(second)]
    old_uid = imap_mailbox.append(old, flags="(\\Seen)")

    result = imap.mailbox_poll()

    assert result == imap.PollResult(posted=2)
    assert fake.received == [(first, None), (second, None)]
    assert all("\\Seen" in imap_mailbox.flags(uid) for uid in [*uids, old_uid])
    assert imap.mailbox_poll() == imap.PollResult()
    assert len(fake.received) == 2


def test_poll_counts_a_mail_posted_before_as_duplicate(imap_mailbox: ImapMailbox, fake: FakeIncoming) -> None:
    uid = imap_mailbox.append(raw_mail())
    fake.outcomes = [posted(duplicate=True)]

    assert imap.mailbox_poll() == imap.PollResult(duplicates=1)
    assert "\\Seen" in imap_mailbox.flags(uid)


def test_poll_bounces_a_permanent_rejection_and_marks_it_seen(
    imap_mailbox: ImapMailbox, fake: FakeIncoming
) -> None:
    raw = raw_mail()
    uid = imap_mailbox.append(raw)
    fake.outcomes = [incoming.MailRejected("You are not a member of this conversation.")]

    assert imap.mailbox_poll() == imap.PollResult(bounced=1)
    assert fake.bounced == [(raw, "You are not a member of this conversation.")]
    assert "\\Seen" in imap_mailbox.flags(uid)
    assert imap.mailbox_poll() == imap.PollResult()
    assert len(fake.received) == 1


@pytest.mark.parametrize(
    "failure",
    [incoming.MailRejected("The database is busy.", permanent=False), RuntimeError("a bug")],
    ids=["temporary rejection", "unexpected error"],
)
def test_poll_leaves_a_failed_mail_unseen_and_retries_it(
    imap_mailbox: ImapMailbox, fake: FakeIncoming, failure: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    raw = raw_mail()
    uid = imap_mailbox.append(raw)
    fake.outcomes = [failure, posted()]

    with caplog.at_level(logging.WARNING, logger="messenger.mail.imap"):
        assert imap.mailbox_poll() == imap.PollResult(left=1)
    assert "\\Seen" not in imap_mailbox.flags(uid)
    assert fake.bounced == []
    [record] = [r for r in caplog.records if r.name == "messenger.mail.imap"]
    if isinstance(failure, RuntimeError):
        assert record.levelno == logging.ERROR and record.exc_info and record.exc_info[1] is failure
    else:
        assert "The database is busy." in record.getMessage()

    assert imap.mailbox_poll() == imap.PollResult(posted=1)
    assert fake.received == [(raw, None), (raw, None)]
    assert "\\Seen" in imap_mailbox.flags(uid)


def test_poll_leaves_a_mail_unseen_when_its_bounce_fails(
    imap_mailbox: ImapMailbox, fake: FakeIncoming
) -> None:
    uid = imap_mailbox.append(raw_mail())
    fake.outcomes = [incoming.MailRejected("Not a member.")]
    fake.bounce_error = OSError("SMTP server down")

    assert imap.mailbox_poll() == imap.PollResult(left=1)
    assert "\\Seen" not in imap_mailbox.flags(uid)

    fake.bounce_error = None
    assert imap.mailbox_poll() == imap.PollResult(bounced=1)
    assert "\\Seen" in imap_mailbox.flags(uid)


def test_poll_bounces_an_oversized_mail_without_fetching_it(
    imap_mailbox: ImapMailbox, fake: FakeIncoming, settings: Any
) -> None:
    settings.KONTOR_EMAIL_MAX_BYTES = 4000
    small = raw_mail("Re: Small")
    imap_mailbox.append(small)
    big_uid = imap_mailbox.append(raw_mail("Re: Big", size=10_000))

    assert imap.mailbox_poll() == imap.PollResult(posted=1, bounced=1)
    assert fake.received == [(small, None)]
    [(header, reason)] = fake.bounced
    assert b"Subject: Re: Big" in header and b"xxxx" not in header
    assert "up to 1 MB" in reason
    assert "\\Seen" in imap_mailbox.flags(big_uid)


def test_poll_reads_the_configured_folder_by_its_utf7_name(
    imap_mailbox: ImapMailbox, fake: FakeIncoming, settings: Any
) -> None:
    folder = "Antwörten & Co"
    assert imap.mailbox_name(folder) == '"Antw&APY-rten &- Co"'
    imap_mailbox.create_folder(folder)
    imap_mailbox.empty(folder)
    raw = raw_mail()
    uid = imap_mailbox.append(raw, folder=folder)
    imap_mailbox.append(raw_mail("Re: In the INBOX"))
    settings.KONTOR_IMAP_FOLDER = folder

    assert imap.mailbox_poll() == imap.PollResult(posted=1)
    assert fake.received == [(raw, None)]
    assert "\\Seen" in imap_mailbox.flags(uid, folder=folder)
    assert imap_mailbox.unseen_count() == 1


def test_poll_logs_in_with_a_utf8_password(
    dovecot: Dovecot, imap_mailbox: ImapMailbox, fake: FakeIncoming
) -> None:
    assert dovecot.utf8_password == "Pässwörtchen-ß"
    assert (
        imap.mailbox_poll(
            mailbox=imap.Mailbox.from_settings(user=dovecot.utf8_user, password=dovecot.utf8_password)
        )
        == imap.PollResult()
    )


def test_poll_says_clearly_what_is_wrong(
    imap_mailbox: ImapMailbox, fake: FakeIncoming, settings: Any
) -> None:
    with pytest.raises(imap.MailboxError, match=r"IMAP login as 'kontor' at 127\.0\.0\.1:\d+ refused"):
        imap.mailbox_poll(mailbox=imap.Mailbox.from_settings(password="wrong"))
    with pytest.raises(imap.MailboxError, match="Cannot select the IMAP folder 'Nowhere'"):
        imap.mailbox_poll(mailbox=imap.Mailbox.from_settings(folder="Nowhere"))
    settings.KONTOR_IMAP_HOST = ""
    with pytest.raises(imap.ImproperlyConfigured, match="KONTOR_IMAP_HOST is not set"):
        imap.mailbox_poll()


def test_plain_imap_is_refused_off_loopback_without_starttls(
    imap_mailbox: ImapMailbox, fake: FakeIncoming, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert imap._is_loopback("127.0.0.1") and imap._is_loopback("::1") and imap._is_loopback("localhost")
    assert not imap._is_loopback("192.0.2.1") and not imap._is_loopback("imap.example.com")
    # The test Dovecot offers no STARTTLS (ssl = no): as if it were on another machine.
    monkeypatch.setattr(imap, "_is_loopback", lambda host: False)
    with pytest.raises(imap.MailboxError, match="offers no STARTTLS: the password would cross the network"):
        imap.mailbox_poll()


class Watcher:
    """``mailbox_watch`` in a thread, stopped at the end of the test."""

    def __init__(self, port: int | None = None, **pacing: Any) -> None:
        self.stop = threading.Event()
        self.polls: list[imap.PollResult] = []
        self.polled = threading.Condition()
        self.thread = threading.Thread(
            target=imap.mailbox_watch,
            kwargs={
                "mailbox": imap.Mailbox.from_settings(port=port),
                "pacing": imap.Pacing(**pacing),
                "stop": self.stop,
                "on_poll": self._on_poll,
            },
            daemon=True,
        )

    def _on_poll(self, result: imap.PollResult) -> None:
        with self.polled:
            self.polls.append(result)
            self.polled.notify_all()

    def wait_for_polls(self, count: int, timeout: float = GENEROUS) -> None:
        with self.polled:
            assert self.polled.wait_for(lambda: len(self.polls) >= count, timeout), self.polls

    def finish(self, timeout: float = GENEROUS) -> float:
        """Stop the watcher; how long it took to return."""
        started = time.monotonic()
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "mailbox_watch did not stop"
        return time.monotonic() - started


@pytest.fixture
def watch() -> Iterator[Callable[..., Watcher]]:
    watchers: list[Watcher] = []

    def start(**kwargs: Any) -> Watcher:
        watcher = Watcher(**kwargs)
        watchers.append(watcher)
        watcher.thread.start()
        return watcher

    yield start
    for watcher in watchers:
        watcher.stop.set()
        watcher.thread.join(GENEROUS)


class ImapRelay:
    """A TCP relay in front of Dovecot that sees the conversation pass: when a
    client is idling (Dovecot has answered its IDLE with a continuation), the
    test knows, instead of sleeping and hoping it got there."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.idles = 0  # continuations answering an IDLE, all connections together
        self.changed = threading.Condition()
        self._idle_asked = False
        threading.Thread(target=self._accept, daemon=True).start()

    def wait_for_idles(self, count: int, timeout: float = GENEROUS) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.idles >= count, timeout), f"{self.idles} IDLEs"

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
                server = socket.create_connection(self.target, timeout=GENEROUS)
            except OSError:
                return
            server.settimeout(None)
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_server: bool) -> None:
        try:
            while data := source.recv(65536):
                with self.changed:
                    if not from_server and data.upper().endswith(b" IDLE\r\n"):
                        self._idle_asked = True
                    elif from_server and self._idle_asked and (data.startswith(b"+") or b"\r\n+" in data):
                        self._idle_asked = False
                        self.idles += 1
                        self.changed.notify_all()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def imap_relay(imap_mailbox: ImapMailbox) -> Iterator[ImapRelay]:
    relay = ImapRelay(imap_mailbox.host, imap_mailbox.port)
    yield relay
    relay.close()


def test_idle_wakes_the_watcher_when_mail_arrives(
    imap_mailbox: ImapMailbox, imap_relay: ImapRelay, fake: FakeIncoming, watch: Callable[..., Watcher]
) -> None:
    imap_mailbox.append(raw_mail("Re: Waiting already"))
    # Neither the IDLE nor a poll would end on its own during the test: only the
    # server's push (and then the stop event) can wake the watcher.
    watcher = watch(port=imap_relay.port, idle_timeout=3600, poll_interval=3600)
    watcher.wait_for_polls(1)
    assert watcher.polls == [imap.PollResult(posted=1)]
    fake.arrived.clear()
    imap_relay.wait_for_idles(1)

    raw = raw_mail("Re: Pushed")
    uid = imap_mailbox.append(raw)

    assert fake.arrived.wait(GENEROUS), "IDLE did not wake mailbox_watch"
    watcher.wait_for_polls(2)
    assert fake.received[-1] == (raw, None)
    assert "\\Seen" in imap_mailbox.flags(uid)
    imap_relay.wait_for_idles(2)
    watcher.finish()  # a waiting IDLE notices the stop event (its own end is an hour away)


def test_watcher_without_idle_polls_every_interval(
    imap_mailbox: ImapMailbox, fake: FakeIncoming, watch: Callable[..., Watcher]
) -> None:
    watcher = watch(idle=False, poll_interval=0.2)
    watcher.wait_for_polls(1)
    raw = raw_mail()
    imap_mailbox.append(raw)

    assert fake.arrived.wait(GENEROUS)
    assert fake.received == [(raw, None)]
    watcher.finish()


def test_watcher_reconnects_after_the_server_drops_it(
    imap_mailbox: ImapMailbox,
    imap_relay: ImapRelay,
    dovecot: Dovecot,
    fake: FakeIncoming,
    watch: Callable[..., Watcher],
) -> None:
    watcher = watch(port=imap_relay.port, idle_timeout=3600, retry_min=0.1)
    watcher.wait_for_polls(1)
    imap_relay.wait_for_idles(1)  # the server drops a client that is waiting in IDLE
    kicked = subprocess.run(
        ["doveadm", "-c", str(dovecot.config), "kick", dovecot.user],
        capture_output=True,
        text=True,
        check=False,
    )
    assert kicked.returncode == 0, kicked.stderr
    watcher.wait_for_polls(2)  # after reconnecting
    raw = raw_mail()
    imap_mailbox.append(raw)

    assert fake.arrived.wait(GENEROUS), "no delivery after the reconnect"
    assert fake.received == [(raw, None)]
    watcher.finish()


def test_watcher_retries_an_unreachable_server_until_stopped(
    settings: Any, fake: FakeIncoming, watch: Callable[..., Watcher], caplog: pytest.LogCaptureFixture
) -> None:
    settings.KONTOR_IMAP_HOST = "127.0.0.1"
    settings.KONTOR_IMAP_PORT = free_port()  # nothing listens there
    settings.KONTOR_IMAP_USER = "kontor"
    settings.KONTOR_IMAP_PASSWORD = "x"
    settings.KONTOR_IMAP_SSL = False
    with caplog.at_level(logging.WARNING, logger="messenger.mail.imap"):
        watcher = watch(retry_min=0.05, retry_max=0.2)
        wait_until(lambda: len(caplog.records) >= 3, message="three failed attempts logged")
        watcher.finish()
    assert len(caplog.records) >= 3
    assert "Cannot use the IMAP server 127.0.0.1" in caplog.records[0].getMessage()
    assert watcher.polls == []


def test_receive_mail_imap_once_prints_its_counts(imap_mailbox: ImapMailbox, fake: FakeIncoming) -> None:
    imap_mailbox.append(raw_mail("Re: One"))
    imap_mailbox.append(raw_mail("Re: Two"))
    imap_mailbox.append(raw_mail("Re: Three"))
    fake.outcomes = [
        posted(),
        incoming.MailRejected("Not a member."),
        incoming.MailRejected("Busy", permanent=False),
    ]
    out = StringIO()

    call_command("receive_mail", "imap", "--once", stdout=out)

    assert out.getvalue() == "INBOX: posted 1, duplicates 0, bounced 1, left 1\n"
    assert imap_mailbox.unseen_count() == 1


def test_receive_mail_imap_names_a_missing_setting(settings: Any) -> None:
    settings.KONTOR_IMAP_HOST = "imap.kontor.example"
    settings.KONTOR_IMAP_USER = "kontor"
    settings.KONTOR_IMAP_PASSWORD = ""
    with pytest.raises(CommandError, match="KONTOR_IMAP_PASSWORD is not set"):
        call_command("receive_mail", "imap", "--once")


def test_receive_mail_imap_reports_a_refused_login(imap_mailbox: ImapMailbox, settings: Any) -> None:
    settings.KONTOR_IMAP_PASSWORD = "wrong"
    with pytest.raises(CommandError, match="IMAP login as 'kontor'"):
        call_command("receive_mail", "imap", "--once")


# --- LMTP and SMTP -------------------------------------------------------------------------------


@pytest.fixture(params=["lmtp", "smtp"])
def listener(request: pytest.FixtureRequest, fake: FakeIncoming) -> Iterator[Callable[[], smtplib.SMTP]]:
    """The reply listener on a free loopback port; calling the result connects a
    client of the same protocol (greeted)."""
    is_lmtp = request.param == "lmtp"
    port = free_port()
    controller = lmtp.ReplyController(port=port, lmtp=is_lmtp)
    controller.start()
    clients: list[smtplib.SMTP] = []

    def connect() -> smtplib.SMTP:
        client = smtplib.LMTP("127.0.0.1", port) if is_lmtp else smtplib.SMTP("127.0.0.1", port, timeout=10)
        client.ehlo_or_helo_if_needed()
        clients.append(client)
        return client

    yield connect
    for client in clients:
        try:
            client.quit()
        except smtplib.SMTPException:
            client.close()
    controller.stop()


def test_listener_posts_a_reply_and_answers_250(
    listener: Callable[[], smtplib.SMTP], fake: FakeIncoming
) -> None:
    raw = raw_mail()
    client = listener()

    assert client.sendmail("alice@kontor.example", [OURS], raw) == {}
    assert fake.received == [(raw, [OURS])]
    assert fake.checked == [OURS]

    client.mail("alice@kontor.example")
    client.rcpt(OURS)
    code, message = client.data(raw)
    assert (code, message) == (250, b"2.0.0 Posted")


def test_listener_reports_a_duplicate_as_delivered(
    listener: Callable[[], smtplib.SMTP], fake: FakeIncoming
) -> None:
    fake.outcomes = [posted(duplicate=True)]
    client = listener()
    client.mail("alice@kontor.example")
    client.rcpt(OURS)
    assert client.data(raw_mail()) == (250, b"2.0.0 Already posted")


def test_listener_refuses_a_recipient_that_is_not_ours(
    listener: Callable[[], smtplib.SMTP], fake: FakeIncoming
) -> None:
    client = listener()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        client.sendmail("alice@kontor.example", ["postmaster@kontor.example"], raw_mail())
    code, message = refused.value.recipients["postmaster@kontor.example"]
    assert code == 550 and message.startswith(b"5.1.1 ")
    assert fake.received == []


def test_listener_hands_over_only_the_recipients_that_are_ours(
    listener: Callable[[], smtplib.SMTP], fake: FakeIncoming
) -> None:
    client = listener()
    refused = client.sendmail("alice@kontor.example", [OURS, "someone@kontor.example"], raw_mail())
    assert refused == {"someone@kontor.example": (550, b"5.1.1 No such reply address here")}
    assert fake.received[0][1] == [OURS]


def test_listener_refuses_a_rejected_mail_with_550_and_the_reason(
    listener: Callable[[], smtplib.SMTP], fake: FakeIncoming
) -> None:
    fake.outcomes = [
        incoming.MailRejected("Unterhaltung geschlossen \u2013 bitte im Browser antworten.\r\n250 forged")
    ]
    client = listener()
    with pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail("alice@kontor.example", [OURS], raw_mail())
    assert refused.value.smtp_code == 550
    # One ASCII line: the reply cannot be split into a forged second reply.
    assert (
        refused.value.smtp_error == b"5.7.1 Unterhaltung geschlossen bitte im Browser antworten. 250 forged"
    )


@pytest.mark.parametrize(
    ("failure", "logged"),
    [(incoming.MailRejected("Database busy", permanent=False), False), (RuntimeError("a bug"), True)],
    ids=["temporary rejection", "unexpected error"],
)
def test_listener_defers_with_451(
    listener: Callable[[], smtplib.SMTP],
    fake: FakeIncoming,
    failure: Exception,
    logged: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.outcomes = [failure]
    client = listener()
    client.mail("alice@kontor.example")
    client.rcpt(OURS)
    with caplog.at_level(logging.WARNING, logger="messenger.mail.lmtp"):
        code, message = client.data(raw_mail())
    assert code == 451 and message.startswith(b"4.3.0 ")
    errors = [r for r in caplog.records if r.name == "messenger.mail.lmtp" and r.exc_info]
    assert bool(errors) is logged
    if logged:
        assert errors[0].exc_info and errors[0].exc_info[1] is failure


def test_listener_defers_when_the_recipient_cannot_be_checked(
    listener: Callable[[], smtplib.SMTP], fake: FakeIncoming, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(address: str) -> bool:
        raise RuntimeError("database down")

    monkeypatch.setattr(incoming, "address_is_ours", broken)
    client = listener()
    client.mail("alice@kontor.example")
    code, message = client.rcpt(OURS)
    assert code == 451 and message.startswith(b"4.3.0 ")


def test_listener_refuses_an_oversized_mail_with_552(
    listener: Callable[[], smtplib.SMTP], fake: FakeIncoming, settings: Any
) -> None:
    settings.KONTOR_EMAIL_MAX_BYTES = 4000
    client = listener()
    assert client.has_extn("size") and client.esmtp_features["size"] == "4000"
    # smtplib announces the size in MAIL FROM: refused before the data is sent.
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        client.sendmail("alice@kontor.example", [OURS], raw_mail(size=10_000))
    assert refused.value.smtp_code == 552
    # A client that does not announce it is refused after DATA.
    client.rset()
    client.mail("alice@kontor.example")
    client.rcpt(OURS)
    code, _message = client.data(raw_mail(size=10_000))
    assert code == 552
    assert fake.received == []
    # The session is still in step: a small mail goes through.
    assert client.sendmail("alice@kontor.example", [OURS], raw_mail()) == {}


class RawLMTP:
    """A bare LMTP client: smtplib.LMTP reads a single reply after DATA, even
    for several recipients (RFC 2033 wants one each)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=GENEROUS)
        self.file = self.sock.makefile("rb")
        assert self.reply()[0] == 220

    def reply(self) -> tuple[int, str]:
        lines = []
        while True:
            line = self.file.readline().decode()
            lines.append(line[4:].strip())
            if line[3:4] != "-":
                return int(line[:3]), "\n".join(lines)

    def command(self, line: str) -> tuple[int, str]:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def send_data(self, raw: bytes, recipients: int) -> list[tuple[int, str]]:
        assert self.command("DATA")[0] == 354
        self.sock.sendall(raw + b".\r\n")
        return [self.reply() for _ in range(recipients)]

    def close(self) -> None:
        self.command("QUIT")
        self.file.close()
        self.sock.close()


@pytest.fixture
def raw_lmtp(fake: FakeIncoming) -> Iterator[RawLMTP]:
    port = free_port()
    controller = lmtp.ReplyController(port=port, lmtp=True)
    controller.start()
    client = RawLMTP(port)
    try:
        assert client.command("LHLO test.kontor.example")[0] == 250
        yield client
    finally:
        client.close()
        controller.stop()


def _transaction(client: RawLMTP, recipients: list[str]) -> None:
    assert client.command("MAIL FROM:<alice@kontor.example>")[0] == 250
    for recipient in recipients:
        client.command(f"RCPT TO:<{recipient}>")


def test_lmtp_answers_data_once_per_recipient(raw_lmtp: RawLMTP, fake: FakeIncoming) -> None:
    _transaction(raw_lmtp, [OURS, "nobody@kontor.example", OTHER])
    assert raw_lmtp.send_data(raw_mail(), 2) == [(250, "2.0.0 Posted"), (250, "2.0.0 Posted")]
    assert fake.received[0][1] == [OURS, OTHER]

    fake.outcomes = [incoming.MailRejected("Not a member.")]
    _transaction(raw_lmtp, [OURS, OTHER])
    assert raw_lmtp.send_data(raw_mail(), 2) == [(550, "5.7.1 Not a member.")] * 2
    # Still in step with the client:
    assert raw_lmtp.command("NOOP")[0] == 250


def test_lmtp_refuses_oversized_data_once_per_recipient(
    raw_lmtp: RawLMTP, fake: FakeIncoming, settings: Any
) -> None:
    settings.KONTOR_EMAIL_MAX_BYTES = 4000
    raw_lmtp.command("RSET")
    # The limit is read per connection: a new one sees the 4000 bytes.
    port = raw_lmtp.sock.getpeername()[1]
    client = RawLMTP(port)
    try:
        client.command("LHLO test.kontor.example")
        _transaction(client, [OURS, OTHER])
        replies = client.send_data(raw_mail(size=10_000), 2)
        assert [code for code, _text in replies] == [552, 552]
        assert client.command("NOOP")[0] == 250
        assert fake.received == []
    finally:
        client.close()


def test_lmtp_refuses_smtp_greetings(raw_lmtp: RawLMTP) -> None:
    assert raw_lmtp.command("EHLO test.kontor.example")[0] == 500


def test_serve_runs_in_the_foreground_until_stopped(fake: FakeIncoming) -> None:
    stop = threading.Event()
    bound: list[tuple[str, int]] = []
    ready = threading.Event()

    def on_ready(host: str, port: int) -> None:
        bound.append((host, port))
        ready.set()

    port = free_port()
    thread = threading.Thread(
        target=lmtp.serve, kwargs={"host": "127.0.0.1", "port": port, "stop": stop, "ready": on_ready}
    )
    thread.start()
    try:
        assert ready.wait(GENEROUS)
        assert bound == [("127.0.0.1", port)]
        with smtplib.LMTP("127.0.0.1", port) as client:
            assert client.sendmail("alice@kontor.example", [OURS], raw_mail()) == {}
        assert len(fake.received) == 1
    finally:
        stop.set()
        thread.join(GENEROUS)
    assert not thread.is_alive()


def test_receive_mail_lmtp_says_when_it_cannot_listen() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CommandError, match=rf"Cannot listen for SMTP on 127\.0\.0\.1:{port}"):
            call_command("receive_mail", "lmtp", "--host", "127.0.0.1", "--port", str(port), "--smtp")


# --- The test servers themselves -----------------------------------------------------------------


def test_smtp_outbox_receives_what_django_sends(smtp_outbox: SmtpOutbox) -> None:
    django_mail.send_mail("Grüße", "Hallo Bob", "kontor@kontor.example", ["bob@kontor.example"])

    [mail] = smtp_outbox.wait_for(1)
    assert mail.mail_from == "kontor@kontor.example"
    assert mail.rcpt_tos == ["bob@kontor.example"]
    assert isinstance(mail.message, EmailMessage)
    assert mail.message["Subject"] == "Grüße"
    assert mail.message.get_content().strip() == "Hallo Bob"
    assert mail.raw.startswith(b"Content-Type") or b"Subject:" in mail.raw
    with pytest.raises(AssertionError, match="expected 2 mail"):
        smtp_outbox.wait_for(2, timeout=0.2)


def test_imap_mailbox_starts_empty_and_appends(imap_mailbox: ImapMailbox) -> None:
    assert imap_mailbox.unseen_count() == 0
    uid = imap_mailbox.append(raw_mail())
    assert imap_mailbox.unseen_count() == 1
    assert imap_mailbox.flags(uid) == set()


# --- The management command in the foreground, as an operator runs it ---------------------------


def _start_command(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "receive_mail", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _first_line(process: subprocess.Popen[str], timeout: float = GENEROUS) -> str:
    assert process.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.append(process.stdout.readline() if process.stdout else "")
    )
    reader.start()
    reader.join(timeout)
    assert lines, "the command printed nothing"
    return lines[0]


def _stop(process: subprocess.Popen[str], signum: int) -> tuple[int, str]:
    process.send_signal(signum)
    try:
        rest, _ = process.communicate(timeout=GENEROUS)
    except subprocess.TimeoutExpired:
        process.kill()
        rest, _ = process.communicate()
        raise AssertionError(f"receive_mail did not stop on signal {signum}: {rest}") from None
    return process.returncode, rest


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_receive_mail_lmtp_listens_until_a_signal(signum: int) -> None:
    port = free_port()
    process = _start_command("lmtp", "--host", "127.0.0.1", "--port", str(port))
    try:
        assert _first_line(process) == f"Listening for LMTP on 127.0.0.1:{port} (Ctrl-C to stop)\n"
        with smtplib.LMTP("127.0.0.1", port) as client:
            assert client.ehlo()[0] == 250
    finally:
        returncode, rest = _stop(process, signum)
    assert returncode == 0, rest
    assert rest.rstrip().endswith("Stopped.")


def test_receive_mail_imap_watches_until_ctrl_c(imap_mailbox: ImapMailbox, imap_relay: ImapRelay) -> None:
    env = {
        "KONTOR_IMAP_HOST": "127.0.0.1",
        "KONTOR_IMAP_PORT": str(imap_relay.port),
        "KONTOR_IMAP_SSL": "false",
        "KONTOR_IMAP_USER": imap_mailbox.user,
        "KONTOR_IMAP_PASSWORD": imap_mailbox.password,
    }
    process = _start_command("imap", env=env)
    try:
        assert _first_line(process).startswith(f"Watching 'INBOX' of kontor@127.0.0.1:{imap_relay.port}")
        imap_relay.wait_for_idles(1)  # Ctrl-C while it waits in IDLE, as an operator would
    finally:
        returncode, rest = _stop(process, signal.SIGINT)
    assert returncode == 0, rest
    assert rest.rstrip().endswith("Stopped.")
