"""Real mail servers on loopback for tests: an SMTP outbox and a Dovecot IMAP server.

Use them with ``pytest_plugins = ["tests.mailservers"]`` in a test module (or in
the root conftest). Import names from here only under ``TYPE_CHECKING``: imported
before pytest loads it as a plugin, the module escapes assertion rewriting
(PytestAssertRewriteWarning).

- ``smtp_outbox``: an aiosmtpd ``Controller`` on 127.0.0.1 that keeps every
  mail it receives; Django's SMTP backend is pointed at it for the test.
- ``dovecot`` (session): Dovecot 2.3 with a config of its own in a temporary
  folder (loopback, a free high port, no TLS, plaintext login, one passwd-file
  user). Debian's ``dovecot-imapd`` package is needed; without it the tests skip,
  or fail under CI.
- ``imap_mailbox``: the user's INBOX emptied, ``KONTOR_IMAP_*`` pointed at it,
  and helpers to append messages and read flags.
"""

import email
import email.policy
import imaplib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from messenger.mail.imap import mailbox_name
from tests.live import free_port  # a port free a moment ago: aiosmtpd cannot bind port 0

DOVECOT = Path("/usr/sbin/dovecot")
INSTALL_HINT = "apt-get install -y dovecot-imapd"
# Dovecot refuses mail users with uid 0; any unused uid/gid does.
MAIL_UID = MAIL_GID = 5000
IMAP_USER = "kontor"
IMAP_PASSWORD = "kontor-test-password"
# A second user whose password imaplib's LOGIN cannot send (not ASCII).
IMAP_UTF8_USER = "umlaut"
IMAP_UTF8_PASSWORD = "Pässwörtchen-ß"
START_TIMEOUT = 20.0


# --- SMTP outbox ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxMail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage


class _CollectingHandler:
    def __init__(self, outbox: "SmtpOutbox") -> None:
        self.outbox = outbox

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        self.outbox.add(OutboxMail(str(envelope.mail_from), list(envelope.rcpt_tos), raw, message))
        return "250 2.0.0 OK"


class SmtpOutbox:
    """What the test SMTP server received, in order."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.messages: list[OutboxMail] = []
        self._changed = threading.Condition()

    def add(self, mail: OutboxMail) -> None:
        with self._changed:
            self.messages.append(mail)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 30) -> list[OutboxMail]:
        """The first ``count`` mails, once that many arrived; AssertionError after ``timeout``."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"expected {count} mail(s) within {timeout} s, got {len(self.messages)}")
            return list(self.messages[:count])


@pytest.fixture
def smtp_outbox(settings: Any) -> Iterator[SmtpOutbox]:
    """An SMTP server on 127.0.0.1 that keeps what it receives; Django mails go to it."""
    port = free_port()
    outbox = SmtpOutbox("127.0.0.1", port)
    controller = Controller(_CollectingHandler(outbox), hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    try:
        yield outbox
    finally:
        controller.stop()


# --- Dovecot ------------------------------------------------------------------------------------

_DOVECOT_CONFIG = """\
# Written by tests/mailservers.py: a throw-away IMAP server on loopback.
protocols = imap
listen = 127.0.0.1
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
info_log_path = {folder}/dovecot.log
debug_log_path = {folder}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# Wrong passwords are refused at once, not after Dovecot's usual 2 s.
auth_failure_delay = 0
first_valid_uid = {uid}
last_valid_uid = {uid}
mail_location = maildir:~/Maildir
# Tests open several connections at once (a watcher, a helper, the code under test).
mail_max_userip_connections = 100
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {folder}/users
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
# No growing delay for the tests' deliberate wrong passwords (anvil's auth penalty).
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""


@dataclass(frozen=True)
class Dovecot:
    host: str
    port: int
    user: str
    password: str
    folder: Path
    config: Path
    # A second user, whose password imaplib's LOGIN cannot send (not ASCII).
    utf8_user: str = IMAP_UTF8_USER
    utf8_password: str = IMAP_UTF8_PASSWORD

    def connect(self, user: str | None = None, password: str | None = None) -> imaplib.IMAP4:
        """A logged-in imaplib connection (the caller logs out)."""
        connection = imaplib.IMAP4(self.host, self.port, timeout=10)
        connection.login(user or self.user, password or self.password)
        return connection

    def log(self, limit: int = 4000) -> str:
        path = self.folder / "dovecot.log"
        return path.read_text(errors="replace")[-limit:] if path.exists() else ""


def _users_line(user: str, password: str, folder: Path) -> str:
    home = folder / "home" / user
    home.mkdir(parents=True)
    os.chown(home, MAIL_UID, MAIL_GID)
    return f"{user}:{{PLAIN}}{password}:{MAIL_UID}:{MAIL_GID}::{home}::\n"


def _wait_for_greeting(process: subprocess.Popen[bytes], port: int, dovecot: Dovecot) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot exited with {process.returncode}:\n{dovecot.log()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(
        f"dovecot did not answer on 127.0.0.1:{port} within {START_TIMEOUT} s:\n{dovecot.log()}"
    )


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """A Dovecot IMAP server of the test session's own on 127.0.0.1."""
    if not DOVECOT.exists():
        if os.environ.get("CI"):
            pytest.fail(f"Dovecot is not installed ({DOVECOT} is missing): {INSTALL_HINT}")
        pytest.skip(f"Dovecot is not installed: {INSTALL_HINT}")
    # Not under pytest's tmp_path: its parents are 0700 (Dovecot's auth process runs
    # as user dovecot and the mail processes as uid 5000, both must get in), and
    # Dovecot's unix sockets need a short base_dir path.
    folder = Path(tempfile.mkdtemp(prefix="kontor-dovecot-"))
    try:
        folder.chmod(0o711)
        users = folder / "users"
        users.write_text(
            _users_line(IMAP_USER, IMAP_PASSWORD, folder)
            + _users_line(IMAP_UTF8_USER, IMAP_UTF8_PASSWORD, folder)
        )
        users.chmod(0o644)  # test passwords only; the auth process must read it
        port = free_port()
        config = folder / "dovecot.conf"
        config.write_text(_DOVECOT_CONFIG.format(folder=folder, port=port, uid=MAIL_UID))
        check = subprocess.run([str(DOVECOT), "-n", "-c", str(config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"dovecot -n refused the test config:\n{check.stderr}")
        server = Dovecot("127.0.0.1", port, IMAP_USER, IMAP_PASSWORD, folder, config)
        process = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            _wait_for_greeting(process, port, server)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class ImapMailbox:
    """The test user's INBOX on the session's Dovecot. Each helper uses a
    connection of its own, apart from the code under test."""

    folder = "INBOX"

    def __init__(self, server: Dovecot) -> None:
        self.server = server
        self.host = server.host
        self.port = server.port
        self.user = server.user
        self.password = server.password

    def _session(self, folder: str | None = None) -> "_Session":
        return _Session(self.server, folder or self.folder)

    def append(self, raw: bytes, *, flags: str = "", folder: str | None = None) -> int:
        """Store ``raw`` (CRLF line ends, or imaplib rewrites them) and return its UID."""
        with self._session(folder) as connection:
            status, data = connection.append(mailbox_name(folder or self.folder), flags, None, raw)
            assert status == "OK", data
            # Dovecot answers "[APPENDUID <validity> <uid>] Append completed." (UIDPLUS)
            code = data[0].decode()
            return int(code.split("APPENDUID ", 1)[1].split()[1].rstrip("]"))

    def flags(self, uid: int, *, folder: str | None = None) -> set[str]:
        with self._session(folder) as connection:
            status, data = connection.uid("FETCH", str(uid), "(FLAGS)")
            assert status == "OK" and data and data[0], data
            flags = imaplib.ParseFlags(data[0])
            return {flag.decode() for flag in flags}

    def unseen_count(self, *, folder: str | None = None) -> int:
        with self._session(folder) as connection:
            status, data = connection.uid("SEARCH", "UNSEEN")
            assert status == "OK", data
            return len(data[0].split())

    def create_folder(self, name: str) -> None:
        """Create ``name`` (modified UTF-7 encoded); an existing one is kept."""
        connection = self.server.connect()
        try:
            connection.create(mailbox_name(name))
        finally:
            connection.logout()

    def empty(self, folder: str | None = None) -> None:
        with self._session(folder) as connection:
            status, data = connection.uid("SEARCH", "ALL")
            assert status == "OK", data
            if data[0]:
                connection.uid("STORE", b",".join(data[0].split()).decode(), "+FLAGS.SILENT", "(\\Deleted)")
                connection.expunge()


class _Session:
    def __init__(self, server: Dovecot, folder: str) -> None:
        self.server = server
        self.folder = folder

    def __enter__(self) -> imaplib.IMAP4:
        self.connection = self.server.connect()
        status, data = self.connection.select(mailbox_name(self.folder))
        assert status == "OK", data
        return self.connection

    def __exit__(self, *exc_info: object) -> None:
        self.connection.logout()


@pytest.fixture
def imap_mailbox(dovecot: Dovecot, settings: Any) -> ImapMailbox:
    """The test user's empty INBOX; ``KONTOR_IMAP_*`` point at it (no TLS)."""
    mailbox = ImapMailbox(dovecot)
    mailbox.empty()
    settings.KONTOR_IMAP_HOST = dovecot.host
    settings.KONTOR_IMAP_PORT = dovecot.port
    settings.KONTOR_IMAP_SSL = False
    settings.KONTOR_IMAP_USER = dovecot.user
    settings.KONTOR_IMAP_PASSWORD = dovecot.password
    settings.KONTOR_IMAP_FOLDER = "INBOX"
    return mailbox
