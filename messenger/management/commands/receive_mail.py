"""Receive email replies: ``receive_mail lmtp`` or ``receive_mail imap``.

``lmtp [--host H] [--port P] [--smtp]`` runs the listener the company MTA
delivers replies to (LMTP, or plain SMTP with ``--smtp``) in the foreground,
until SIGINT/SIGTERM. ``imap --once`` polls the mailbox once and prints what it
did; ``imap`` alone keeps watching it (IMAP IDLE, or polling) until stopped.
"""

import imaplib
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from messenger.mail import imap, lmtp


class Command(BaseCommand):
    help = "Receive email replies: run the LMTP/SMTP listener, or poll/watch the IMAP mailbox."

    def add_arguments(self, parser: CommandParser) -> None:
        transports = parser.add_subparsers(dest="transport", required=True, metavar="{lmtp,imap}")
        listener = transports.add_parser("lmtp", help="Listen for mail delivered by the company MTA.")
        listener.add_argument("--host", help="Address to listen on (default KONTOR_LMTP_HOST).")
        listener.add_argument("--port", type=int, help="Port to listen on (default KONTOR_LMTP_PORT).")
        listener.add_argument("--smtp", action="store_true", help="Speak SMTP instead of LMTP.")
        mailbox = transports.add_parser("imap", help="Fetch replies from the KONTOR_IMAP_* mailbox.")
        mailbox.add_argument("--once", action="store_true", help="Poll once, print the counts, exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["transport"] == "lmtp":
            self._listen(options["host"], options["port"], smtp=options["smtp"])
        else:
            self._mailbox(once=options["once"])

    def _listen(self, host: str | None, port: int | None, *, smtp: bool) -> None:
        protocol = "SMTP" if smtp else "LMTP"

        def ready(bound_host: str, bound_port: int) -> None:
            self.stdout.write(f"Listening for {protocol} on {bound_host}:{bound_port} (Ctrl-C to stop)")
            self.stdout.flush()

        host = settings.KONTOR_LMTP_HOST if host is None else host
        port = settings.KONTOR_LMTP_PORT if port is None else port
        try:
            lmtp.serve(host=host, port=port, lmtp=not smtp, ready=ready)
        except OSError as error:
            raise CommandError(f"Cannot listen for {protocol} on {host}:{port}: {error}") from None
        self.stdout.write("Stopped.")

    def _mailbox(self, *, once: bool) -> None:
        try:
            mailbox = imap.Mailbox.from_settings()
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None
        where = f"{mailbox.user}@{mailbox.host}:{mailbox.port}"
        if not once:
            self.stdout.write(f"Watching {mailbox.folder!r} of {where} (Ctrl-C to stop)")
            self.stdout.flush()
            imap.mailbox_watch(mailbox=mailbox, on_poll=self._report)
            self.stdout.write("Stopped.")
            return
        try:
            result = imap.mailbox_poll(mailbox=mailbox)
        except imap.MailboxError as error:
            raise CommandError(str(error)) from None
        except (OSError, EOFError, imaplib.IMAP4.error) as error:
            raise CommandError(f"IMAP mailbox {where}: {error or type(error).__name__}") from None
        self.stdout.write(f"{mailbox.folder}: {result}")

    def _report(self, result: imap.PollResult) -> None:
        if result != imap.PollResult():
            self.stdout.write(str(result))
            self.stdout.flush()
