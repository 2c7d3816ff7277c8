"""Email bridge benchmark: how fast Kontor turns replies into messages and
messages into mails, with real servers on loopback.

Three figures, each over the real code path:

1. reply extraction: ``messenger.mail.reply_text.extract_reply`` over the
   real-client fixtures in tests/messenger/mail_fixtures (Outlook, Gmail,
   Apple Mail, Thunderbird, …), per mail;
2. notification mail: ``--messages`` messages mentioning ``--recipients``
   people, then ``messenger.mail.delivery.deliver_due`` sends every batch
   through Django's SMTP backend to an aiosmtpd server; mails per second;
3. replies in: ``--replies`` replies delivered one after another over LMTP
   (``smtplib.LMTP``) to Kontor's listener (``messenger.mail.lmtp``), each
   authenticated, stripped and posted through ``message_send``; latency from
   the client's DATA to the 250, p50 / p95, and replies per second.

It runs in a throw-away data folder on SQLite by default, or on the database of
``DATABASE_URL`` (disposable, with "bench" in its name: it is migrated and filled).

    .venv/bin/python bench/mail.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kontor_bench_email .venv/bin/python bench/mail.py
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--recipients", type=int, default=5)
    parser.add_argument("--replies", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=20, help="passes over the fixtures")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if url and "bench" not in url.rsplit("/", 1)[-1]:
        print("DATABASE_URL must name a disposable database with 'bench' in its name.", file=sys.stderr)
        return 2
    os.environ.setdefault("KONTOR_DATA_DIR", tempfile.mkdtemp(prefix="kontor-bench-email-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["KONTOR_EMAIL_REPLY_ADDRESS"] = "reply@bench.example"

    import django

    django.setup()
    from aiosmtpd.controller import Controller
    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    from accounts.models import User
    from messenger import services
    from messenger.mail import delivery, lmtp, reply_text, tokens
    from messenger.models import Message
    from tests.live import free_port

    call_command("migrate", verbosity=0)

    # 1. Reply extraction.
    import email
    import email.policy

    fixtures = sorted((ROOT / "tests" / "messenger" / "mail_fixtures").glob("*.eml"))
    parts = []
    for path in fixtures:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        plain, html = message.get_body(("plain",)), message.get_body(("html",))
        parts.append((plain.get_content() if plain else None, html.get_content() if html else None))
    timings = []
    for _ in range(args.rounds):
        for text, html in parts:
            start = time.perf_counter()
            reply_text.extract_reply(text=text, html=html)
            timings.append(time.perf_counter() - start)
    print(
        f"reply extraction: {len(timings)} mails ({len(fixtures)} real-client fixtures): "
        f"p50 {statistics.median(timings) * 1000:.2f} ms, p95 {_percentile(timings, 0.95) * 1000:.2f} ms, "
        f"{len(timings) / sum(timings):,.0f} mails/s"
    )

    # 2. Notification mail through a real SMTP server.
    class Sink:
        count = 0

        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            Sink.count += 1
            return "250 OK"

    smtp_port = free_port()
    sink = Controller(Sink(), hostname="127.0.0.1", port=smtp_port)
    sink.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    stamp = int(time.time())
    people = [
        User.objects.create_user(f"p{n}.{stamp}@bench.example", display_name=f"Person {n}")
        for n in range(args.recipients + 1)
    ]
    author, readers = people[0], people[1:]
    channel = services.channel_create(
        actor=author, name=f"bench-{stamp}", member_ids=[p.pk for p in readers], is_private=True
    )
    mentions = " ".join(f"@{p.handle}" for p in readers)
    start = time.perf_counter()
    for n in range(args.messages):
        services.message_send(actor=author, conversation_id=channel.pk, body=f"{mentions} update {n}")
    posting = time.perf_counter() - start
    start = time.perf_counter()
    sent = delivery.deliver_due(now=timezone.now() + timedelta(days=2))
    mailing = time.perf_counter() - start
    print(
        f"notification mail: {args.messages} messages mentioning {args.recipients} people posted in "
        f"{posting:.1f} s ({args.messages / posting:,.0f} msg/s, notices queued in the same transaction); "
        f"{sent} batched mails sent in {mailing:.2f} s ({sent / mailing:,.1f} mails/s; "
        f"SMTP server received {Sink.count})"
    )

    # 3. Replies in over LMTP.
    import smtplib

    listener_port = free_port()
    listener = lmtp.ReplyController(port=listener_port)
    listener.start()
    replier = readers[0]
    address = tokens.reply_address(conversation_id=channel.pk, user_id=replier.pk)
    latencies = []
    with smtplib.LMTP("127.0.0.1", listener_port) as client:
        for n in range(args.replies):
            mail = EmailMessage()
            mail["From"], mail["To"] = replier.email, address
            mail["Subject"], mail["Message-ID"] = "Re: bench", make_msgid(domain="client.example")
            mail.set_content(f"Answer {n}\n\nOn Mon, 7 Dec 2026 at 10:00, Kontor wrote:\n> update {n}\n")
            start = time.perf_counter()
            client.sendmail(replier.email, [address], mail.as_bytes())
            latencies.append(time.perf_counter() - start)
    listener.stop()
    sink.stop()
    posted = Message.objects.filter(conversation=channel, author=replier).count()
    print(
        f"replies in (LMTP): {args.replies} replies, {posted} posted; DATA to 250 p50 "
        f"{statistics.median(latencies) * 1000:.1f} ms, p95 {_percentile(latencies, 0.95) * 1000:.1f} ms, "
        f"{args.replies / sum(latencies):,.0f} replies/s"
    )
    print(f"database: {str(settings.DATABASES['default']['ENGINE']).rsplit('.', 1)[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
