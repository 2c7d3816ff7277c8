"""The email bridge end to end, against real mail servers on loopback: an
aiosmtpd SMTP server receives what Kontor sends (Django's SMTP backend), a
Dovecot IMAP server holds the replies Kontor polls, and Kontor's own LMTP
listener takes replies the way a company MTA hands them over.

The cast: alice, bob and charlie are colleagues; ``#deals`` is a channel of
alice and bob that allows external participants; jana@client.example is a
client's buyer taking part by email.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
import json
import smtplib
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from typing import TYPE_CHECKING, Any

import pytest
from django.utils import timezone

from accounts.models import User
from archive.models import StoredFile
from archive.services import file_store
from compliance import policies
from compliance import services as compliance_services
from compliance.models import RetentionPolicy, RetentionRecord
from messenger import services
from messenger.errors import Forbidden, Invalid
from messenger.mail import delivery, imap, incoming, lmtp, tokens
from messenger.models import Conversation, InboundMail, MailNotification, Message
from tests.archive.conftest import PDF, png_bytes
from tests.factories import settings_change
from tests.live import free_port
from tests.messenger import test_reply_text as reply_cases
from tests.messenger.conftest import open_socket

if TYPE_CHECKING:
    # For the types only: imported before pytest loads it as a plugin, the module
    # would escape pytest's assertion rewriting.
    from tests.mailservers import ImapMailbox, SmtpOutbox

pytest_plugins = ["tests.mailservers"]

BASE_URL = "https://chat.kontor.example"


@pytest.fixture(autouse=True)
def _mail_settings(settings: Any, file_storage: Any) -> None:
    settings.KONTOR_EMAIL_REPLY_ADDRESS = "reply@kontor.example"
    settings.DEFAULT_FROM_EMAIL = "Kontor <kontor@kontor.example>"
    settings.KONTOR_BASE_URL = BASE_URL
    settings.KONTOR_COMPANY_NAME = "Kontor"


@pytest.fixture
def deals(alice: User, bob: User) -> Conversation:
    channel = services.channel_create(actor=alice, name="deals", member_ids=[bob.pk], is_private=True)
    return services.conversation_set_allows_external(actor=alice, conversation_id=channel.pk, allowed=True)


def later(minutes: float) -> Any:
    return timezone.now() + timedelta(minutes=minutes)


def reply(
    *,
    to: str,
    sender: str,
    text: str,
    html: str | None = None,
    subject: str = "Re: [Kontor] #deals",
    attachments: tuple[tuple[str, bytes, str], ...] = (),
    headers: dict[str, str] | None = None,
) -> bytes:
    """A reply as a mail client sends it."""
    mail = EmailMessage(policy=email.policy.SMTP)
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain="client.example")
    for name, value in (headers or {}).items():
        mail[name] = value
    mail.set_content(text)
    if html is not None:
        mail.add_alternative(html, subtype="html")
    for name, data, content_type in attachments:
        maintype, subtype = content_type.split("/")
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return mail.as_bytes()


def part(mail: EmailMessage, kind: str) -> str:
    """The text of a mail's plain or HTML part."""
    body = mail.get_body(preferencelist=(kind,))
    assert body is not None, f"no {kind} part"
    return str(body.get_content())


def address_of(user: User, conversation: Conversation) -> str:
    return tokens.reply_address(conversation_id=conversation.pk, user_id=user.pk)


def texts(conversation: Conversation) -> list[str]:
    return list(
        Message.objects.filter(conversation=conversation).order_by("seq").values_list("body", flat=True)
    )


# --- Missed-message mails --------------------------------------------------------------------


@pytest.mark.django_db
def test_mentions_that_arrive_meanwhile_go_out_in_one_mail(
    alice: User, bob: User, deals: Conversation, smtp_outbox: SmtpOutbox
) -> None:
    services.message_send(actor=alice, conversation_id=deals.pk, body="@bob can you check the offer?")
    services.message_send(actor=alice, conversation_id=deals.pk, body="Not for bob: general chatter")
    services.message_send(actor=alice, conversation_id=deals.pk, body="@bob and the **delivery date**")

    assert delivery.deliver_due() == 0  # bob waits 10 minutes by default
    assert delivery.deliver_due(now=later(11)) == 1
    assert delivery.deliver_due(now=later(30)) == 0  # nothing is mailed twice

    [sent] = smtp_outbox.wait_for(1)
    mail = sent.message
    assert sent.rcpt_tos == ["bob@kontor.example"]
    assert mail["Subject"] == "[Kontor] #deals"
    text = part(mail, "plain")
    html = part(mail, "html")
    assert "@bob can you check the offer?" in text and "@bob and the **delivery date**" in text
    assert "general chatter" not in text
    assert "<strong>delivery date</strong>" in html
    assert f"{BASE_URL}/c/{deals.pk}/" in html and f"{BASE_URL}/c/{deals.pk}/" in text
    assert tokens.parse_reply_address(mail["Reply-To"]) == (deals.pk, bob.pk)
    root = f"<conversation.{deals.pk}.{bob.pk}@kontor.example>"
    assert mail["In-Reply-To"] == root and mail["References"] == root
    assert mail["Message-ID"].endswith("@kontor.example>")
    assert mail["Auto-Submitted"] == "auto-generated"
    assert (
        MailNotification.objects.get(user=bob, message__body__startswith="@bob can").mail_message_id
        # A header line over 78 characters is folded; unfolded, it keeps the fold's space.
        == mail["Message-ID"].strip()
    )


@pytest.mark.django_db
def test_a_message_read_in_time_is_not_mailed(
    alice: User, bob: User, dm: Conversation, smtp_outbox: SmtpOutbox
) -> None:
    services.message_send(actor=alice, conversation_id=dm.pk, body="Lunch?")
    services.conversation_mark_read(actor=bob, conversation_id=dm.pk)

    assert delivery.deliver_due(now=later(11)) == 0
    assert smtp_outbox.messages == []
    assert MailNotification.objects.get(user=bob).skipped is True


@pytest.mark.django_db
def test_nobody_is_mailed_who_switched_mail_off(
    alice: User, bob: User, dm: Conversation, smtp_outbox: SmtpOutbox
) -> None:
    settings_change(bob, email_notifications="off")
    services.message_send(actor=alice, conversation_id=dm.pk, body="Lunch?")
    assert delivery.deliver_due(now=later(60)) == 0
    assert not MailNotification.objects.exists()


@pytest.mark.django_db
def test_immediately_means_at_once_when_no_tab_is_open(
    alice: User, bob: User, dm: Conversation, smtp_outbox: SmtpOutbox, django_capture_on_commit_callbacks: Any
) -> None:
    settings_change(bob, email_notifications="immediately")
    with django_capture_on_commit_callbacks() as callbacks:
        services.message_send(actor=alice, conversation_id=dm.pk, body="The customer is on the phone")
    assert callbacks  # the send schedules the mail task on commit
    assert delivery.deliver_due() == 1
    [sent] = smtp_outbox.wait_for(1)
    assert sent.message["Subject"] == "[Kontor] Alice Adler"
    assert "Alice Adler via Kontor" in sent.message["From"]


@pytest.mark.django_db
def test_a_daily_digest_collects_every_conversation_at_the_digest_hour(
    alice: User,
    bob: User,
    charlie: User,
    dm: Conversation,
    deals: Conversation,
    smtp_outbox: SmtpOutbox,
    settings: Any,
) -> None:
    settings.KONTOR_EMAIL_DIGEST_HOUR = 8
    settings_change(bob, email_notifications="digest", time_zone="Europe/Berlin")
    services.message_send(actor=alice, conversation_id=dm.pk, body="Quarterly numbers are in")
    services.message_send(actor=alice, conversation_id=deals.pk, body="@bob please sign")
    due = MailNotification.objects.filter(user=bob).values_list("due_at", flat=True)
    assert {d.astimezone(timezone.get_fixed_timezone(60)).hour in (8, 9) for d in due} == {True}

    assert delivery.deliver_due(now=later(25 * 60)) == 1
    [sent] = smtp_outbox.wait_for(1)
    text = part(sent.message, "plain")
    assert "Quarterly numbers are in" in text and "@bob please sign" in text
    assert address_of(bob, dm) in text and address_of(bob, deals) in text


@pytest.mark.django_db
def test_when_the_mail_server_is_down_the_mail_goes_out_on_the_next_run(
    alice: User, bob: User, dm: Conversation, smtp_outbox: SmtpOutbox, settings: Any
) -> None:
    services.message_send(actor=alice, conversation_id=dm.pk, body="Are you there?")
    settings.EMAIL_PORT = free_port()  # nothing listens there
    assert delivery.deliver_due(now=later(11)) == 0
    settings.EMAIL_PORT = smtp_outbox.port
    assert delivery.deliver_due(now=later(12)) == 1
    assert len(smtp_outbox.wait_for(1)) == 1


# --- Replies by email ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_reply_by_imap_is_posted_as_the_person_without_the_quote(
    alice: User, bob: User, deals: Conversation, imap_mailbox: ImapMailbox, smtp_outbox: SmtpOutbox
) -> None:
    raw = reply(
        to=address_of(bob, deals),
        sender="Bob Brandt <Bob@Kontor.example>",
        text="Looks good, I'll sign today.\n\n"
        "On Mon, 7 Dec 2026 at 10:00, Kontor <reply@kontor.example> wrote:\n"
        "> @bob can you check the offer?\n",
    )
    imap_mailbox.append(raw)

    result = imap.mailbox_poll()

    assert (result.posted, result.bounced) == (1, 0)
    assert imap_mailbox.unseen_count() == 0
    message = Message.objects.get(conversation=deals)
    assert (message.author, message.body) == (bob, "Looks good, I'll sign today.")
    assert InboundMail.objects.get().outcome == "posted"
    assert smtp_outbox.messages == []  # no bounce


@pytest.mark.django_db
def test_a_mail_delivered_twice_is_posted_once(alice: User, bob: User, deals: Conversation) -> None:
    raw = reply(to=address_of(bob, deals), sender="bob@kontor.example", text="Once only")
    first = incoming.mail_receive(raw=raw)
    second = incoming.mail_receive(raw=raw)
    assert second.duplicate and second.message_id == first.message_id
    assert texts(deals) == ["Once only"]


@pytest.mark.django_db
def test_attachments_arrive_as_files_through_the_upload_checks(
    alice: User, bob: User, deals: Conversation, imap_mailbox: ImapMailbox
) -> None:
    picture = png_bytes((320, 200))
    imap_mailbox.append(
        reply(
            to=address_of(bob, deals),
            sender="bob@kontor.example",
            text="Signed contract and the site photo attached.",
            attachments=(("contract.pdf", PDF, "application/pdf"), ("site.png", picture, "image/png")),
        )
    )
    assert imap.mailbox_poll().posted == 1
    message = Message.objects.get(conversation=deals)
    files = [a.file for a in message.attachments.order_by("position")]
    assert [(f.name, f.content_type, f.uploaded_by_id) for f in files] == [
        ("contract.pdf", "application/pdf", bob.pk),
        ("site.png", "image/png", bob.pk),
    ]
    assert files[1].width == 320
    journaled = message.revisions.get().files
    assert journaled is not None and journaled[0]["sha256"] == files[0].sha256


@pytest.mark.django_db
def test_an_attachment_that_lies_about_its_type_bounces_and_nothing_is_posted(
    alice: User, bob: User, deals: Conversation, imap_mailbox: ImapMailbox, smtp_outbox: SmtpOutbox
) -> None:
    imap_mailbox.append(
        reply(
            to=address_of(bob, deals),
            sender="bob@kontor.example",
            text="The invoice",
            attachments=(("invoice.pdf", b"MZ\x90\x00" + b"\x00" * 300, "application/pdf"),),
        )
    )
    result = imap.mailbox_poll()
    assert (result.posted, result.bounced) == (0, 1)
    assert not Message.objects.filter(conversation=deals).exists()
    assert not StoredFile.objects.exists()
    [bounce] = smtp_outbox.wait_for(1)
    assert bounce.rcpt_tos == ["bob@kontor.example"]
    assert "An attachment was refused" in bounce.message.get_content()


@pytest.mark.parametrize(
    ("conversation_id", "user_id"),
    # Base 36 writes 30 as "u", the letter between the two numbers: user 1080 is
    # "u0", conversation 1085 is "u5"; such replies used to bounce.
    [(1, 1080), (7, 1115), (1085, 3), (30, 30), (1080, 1080), (38880, 1399710), (1, 10**12)],
)
def test_every_reply_address_reads_back_as_its_conversation_and_person(
    conversation_id: int, user_id: int
) -> None:
    address = tokens.reply_address(conversation_id=conversation_id, user_id=user_id)

    assert tokens.parse_reply_address(address) == (conversation_id, user_id)
    assert tokens.parse_reply_address(address.upper()) == (conversation_id, user_id)  # a folding server
    local, domain = address.split("@")
    forged = local[:-1] + ("b" if local.endswith("a") else "a")
    assert tokens.parse_reply_address(f"{forged}@{domain}") is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("forged token", "The reply address is not valid"),
        ("another conversation's token", "The reply address is not valid"),
        ("wrong sender", "This reply address belongs to someone else"),
        ("left the conversation", "not a member of this conversation any more"),
        ("dmarc failed", "DMARC"),
    ],
)
def test_mail_that_does_not_authenticate_is_bounced_and_nothing_is_posted(
    case: str,
    expected: str,
    alice: User,
    bob: User,
    charlie: User,
    deals: Conversation,
    dm: Conversation,
    imap_mailbox: ImapMailbox,
    smtp_outbox: SmtpOutbox,
) -> None:
    to, sender, headers = address_of(bob, deals), "bob@kontor.example", {}
    if case == "forged token":
        local = address_of(bob, deals).split("@")[0]
        to = local[: local.rindex("x") + 1] + "a" * 26 + "@kontor.example"
    elif case == "another conversation's token":
        # bob's genuine token for the DM, with the channel's id put in its place.
        mac = address_of(bob, dm).split("@")[0].rsplit("x", 1)[1]
        to = f"reply+c{tokens._base36(deals.pk)}u{tokens._base36(bob.pk)}x{mac}@kontor.example"
    elif case == "wrong sender":
        sender = "Charlie Czerny <charlie@kontor.example>"
    elif case == "left the conversation":
        services.conversation_leave(actor=bob, conversation_id=deals.pk)
    else:
        headers = {"Authentication-Results": "mx.kontor.example; spf=fail; dkim=none; dmarc=fail"}
    before = Message.objects.count()
    imap_mailbox.append(reply(to=to, sender=sender, text="Post this, please", headers=headers))

    result = imap.mailbox_poll()

    assert (result.posted, result.bounced) == (0, 1)
    assert Message.objects.count() == before
    [bounce] = smtp_outbox.wait_for(1)
    assert bounce.rcpt_tos == [parseaddr(sender)[1]]
    assert bounce.message["Auto-Submitted"] == "auto-replied"
    assert expected in bounce.message.get_content()
    assert InboundMail.objects.get().outcome == "rejected"


@pytest.mark.django_db
def test_out_of_office_replies_are_dropped_without_a_bounce(
    alice: User, bob: User, deals: Conversation, imap_mailbox: ImapMailbox, smtp_outbox: SmtpOutbox
) -> None:
    imap_mailbox.append(
        reply(
            to=address_of(bob, deals),
            sender="bob@kontor.example",
            subject="Automatic reply: [Kontor] #deals",
            text="I am out of the office until Monday.",
            headers={"Auto-Submitted": "auto-replied"},
        )
    )
    imap.mailbox_poll()
    assert not Message.objects.filter(conversation=deals).exists()
    assert smtp_outbox.messages == []


@pytest.mark.django_db
def test_an_offboarded_persons_reply_is_refused(
    alice: User, bob: User, deals: Conversation, smtp_outbox: SmtpOutbox
) -> None:
    User.objects.filter(pk=bob.pk).update(is_active=False)
    with pytest.raises(incoming.MailRejected, match="account is closed"):
        incoming.mail_receive(
            raw=reply(to=address_of(bob, deals), sender="bob@kontor.example", text="Still here")
        )
    assert texts(deals) == []


# --- Live delivery through the LMTP listener --------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fresh_channel_layer")
def test_a_reply_delivered_by_the_mta_appears_live_for_members(alice: User, bob: User, charlie: User) -> None:
    channel = services.channel_create(actor=alice, name="ops", member_ids=[bob.pk])
    raw = reply(
        to=address_of(bob, channel),
        sender="bob@kontor.example",
        text="Truck arrives at 14:00.\n\n"
        "Am 7. Dez. 2026 um 10:00 schrieb Alice Adler <reply@kontor.example>:\n> When?",
    )

    async def scenario() -> None:
        port = free_port()
        loop = asyncio.get_running_loop()
        # On the test's own loop, as daphne's sockets are: the in-memory layer is per loop.
        server = await loop.create_server(lambda: lmtp.reply_server(lmtp=True), "127.0.0.1", port)
        connected, socket = await open_socket(alice)
        assert connected
        await socket.receive_type("hello")

        def deliver() -> None:
            with smtplib.LMTP("127.0.0.1", port) as client:
                client.sendmail("bob@kontor.example", [address_of(bob, channel)], raw)

        await asyncio.to_thread(deliver)
        frame = await socket.receive_type("message", timeout=30)
        assert frame["message"]["body"] == "Truck arrives at 14:00."
        assert frame["message"]["author"]["name"] == "Bob Brandt"
        await socket.close()
        server.close()
        await server.wait_closed()

    asyncio.run(scenario())
    assert texts(channel) == ["Truck arrives at 14:00."]


# --- External contacts -----------------------------------------------------------------------


@pytest.fixture
def jana(
    alice: User, deals: Conversation, smtp_outbox: SmtpOutbox, django_capture_on_commit_callbacks: Any
) -> Iterator[User]:
    with django_capture_on_commit_callbacks(execute=True):
        services.external_contact_add(
            actor=alice, conversation_id=deals.pk, email="Jana.Novak@Client.example", name="Jana Novák"
        )
    yield User.objects.get(email="jana.novak@client.example")


@pytest.mark.django_db
def test_an_external_contact_is_told_how_to_take_part_and_can_never_sign_in(
    jana: User, deals: Conversation, smtp_outbox: SmtpOutbox, client: Any
) -> None:
    assert (jana.is_external, jana.is_active, jana.has_usable_password()) == (True, False, False)
    [welcome] = smtp_outbox.wait_for(1)
    assert welcome.rcpt_tos == ["jana.novak@client.example"]
    assert "Alice Adler added you to “#deals”" in part(welcome.message, "plain")
    assert tokens.parse_reply_address(welcome.message["Reply-To"]) == (deals.pk, jana.pk)
    response = client.post("/accounts/password/reset/", {"email": jana.email})
    assert response.status_code in (200, 302)
    # allauth may say "no account with this address", but never sends a reset link.
    for sent in smtp_outbox.messages[1:]:
        assert b"/password/reset/key/" not in sent.raw
    client.post("/accounts/login/", {"login": jana.email, "password": ""})
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_a_contact_added_to_a_recorded_conversation_is_told_so_in_the_welcome_mail(
    alice: User,
    auditor: User,
    deals: Conversation,
    smtp_outbox: SmtpOutbox,
    django_capture_on_commit_callbacks: Any,
) -> None:
    regulated = RetentionPolicy.objects.get(name="Investment services communications (EU)")
    policies.policy_assign(
        actor=auditor, policy_id=regulated.pk, conversation=deals, reason="Client orders desk"
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.external_contact_add(actor=alice, conversation_id=deals.pk, email="jana@client.example")

    [welcome] = smtp_outbox.wait_for(1)
    assert "This conversation is recorded" in part(welcome.message, "plain")
    assert "This conversation is recorded" in part(welcome.message, "html")


@pytest.mark.django_db
def test_external_contacts_get_every_message_and_post_by_replying(
    alice: User,
    bob: User,
    jana: User,
    deals: Conversation,
    smtp_outbox: SmtpOutbox,
    imap_mailbox: ImapMailbox,
) -> None:
    stored = services_file(alice, "price-list.pdf", PDF)
    services.message_send(
        actor=alice, conversation_id=deals.pk, body="Jana, here is our price list.", file_ids=[stored.pk]
    )
    assert delivery.deliver_due() == 1
    welcome, relay = smtp_outbox.wait_for(2)
    assert relay.rcpt_tos == ["jana.novak@client.example"]
    assert "Jana, here is our price list." in part(relay.message, "plain")
    [attached] = list(relay.message.iter_attachments())
    assert (attached.get_filename(), attached.get_content()) == ("price-list.pdf", PDF)
    assert relay.message["References"] == welcome.message["References"]  # one thread in her mail client

    imap_mailbox.append(
        reply(
            to=relay.message["Reply-To"],
            sender="Jana Novák <jana.novak@client.example>",
            text="Thank you! We order 40 units.\n\n-- \nJana Novák\nPurchasing, Client s.r.o.",
        )
    )
    assert imap.mailbox_poll().posted == 1
    posted = Message.objects.filter(conversation=deals).order_by("-seq").first()
    assert posted is not None and (posted.author, posted.body) == (jana, "Thank you! We order 40 units.")

    compliance_services.archive_conversation(conversation_id=deals.pk)
    record = RetentionRecord.objects.filter(conversation=deals).order_by("-seq").first()
    assert record is not None
    content = json.loads(record.content.canonical_json)
    people = content["people"]
    assert people[str(jana.pk)]["external"] is True
    assert people[str(jana.pk)]["email"] == "jana.novak@client.example"
    assert people[str(alice.pk)]["external"] is False
    by_jana = [e for e in content["events"] if e["actor"] == jana.pk and e["type"] == "message"]
    assert [e["revision"]["body"] for e in by_jana] == ["Thank you! We order 40 units."]
    added = next(e for e in content["events"] if e.get("subject") == jana.pk)
    assert added["data"]["external"] is True


@pytest.mark.django_db
def test_the_conversation_page_shows_the_external_participants_banner(
    client: Any, alice: User, bob: User, jana: User, deals: Conversation
) -> None:
    client.force_login(bob)
    page = client.get(f"/c/{deals.pk}/").content.decode()
    assert "External participants:" in page and "jana.novak@client.example" in page


@pytest.mark.django_db
def test_external_contacts_need_a_conversation_that_allows_them(
    alice: User, bob: User, dm: Conversation
) -> None:
    group = services.group_create(actor=alice, name="Internal", member_ids=[bob.pk])
    with pytest.raises(Forbidden):
        services.external_contact_add(actor=alice, conversation_id=group.pk, email="x@client.example")
    with pytest.raises(Forbidden):  # only owners decide
        services.conversation_set_allows_external(actor=bob, conversation_id=group.pk, allowed=True)
    with pytest.raises(Invalid):
        services.conversation_set_allows_external(actor=alice, conversation_id=dm.pk, allowed=True)
    services.conversation_set_allows_external(actor=alice, conversation_id=group.pk, allowed=True)
    with pytest.raises(Invalid, match="belongs to a colleague"):
        services.external_contact_add(actor=alice, conversation_id=group.pk, email="Bob@kontor.example")
    with pytest.raises(Invalid, match="not an email address"):
        services.external_contact_add(actor=alice, conversation_id=group.pk, email="jana at client")
    assert not User.objects.filter(is_external=True).exists()


@pytest.mark.django_db
def test_a_removed_external_contact_is_refused(
    alice: User, jana: User, deals: Conversation, smtp_outbox: SmtpOutbox
) -> None:
    services.external_contact_remove(actor=alice, conversation_id=deals.pk, user_id=jana.pk)
    with pytest.raises(incoming.MailRejected, match="not a member"):
        incoming.mail_receive(raw=reply(to=address_of(jana, deals), sender=jana.email, text="One more thing"))
    assert texts(deals) == []


def services_file(user: User, name: str, data: bytes) -> StoredFile:
    return file_store(upload=io.BytesIO(data), name=name, uploader=user)


# --- The pages ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_owner_allows_externals_and_a_member_adds_and_removes_one_on_the_settings_page(
    client: Any, alice: User, bob: User, smtp_outbox: SmtpOutbox
) -> None:
    group = services.group_create(actor=alice, name="Tender 2027", member_ids=[bob.pk])
    client.force_login(alice)
    assert client.post(f"/c/{group.pk}/externals/allow/", {"allowed": "on"}).status_code == 302
    client.force_login(bob)
    page = client.get(f"/c/{group.pk}/settings/").content.decode()
    assert "Add external participant" in page

    response = client.post(
        f"/c/{group.pk}/externals/add/", {"email": "tom@partner.example", "name": "Tom Partner"}, follow=True
    )
    assert "tom@partner.example was added" in response.content.decode()
    tom = User.objects.get(email="tom@partner.example")
    assert "Tom Partner (external)" in client.get(f"/c/{group.pk}/").content.decode()

    client.post(f"/c/{group.pk}/externals/{tom.pk}/remove/")
    assert not group.memberships.filter(user=tom, left_at__isnull=True).exists()


@pytest.mark.django_db
def test_bad_addresses_and_outsiders_change_nothing(
    client: Any, alice: User, bob: User, charlie: User, deals: Conversation
) -> None:
    client.force_login(bob)
    response = client.post(f"/c/{deals.pk}/externals/add/", {"email": "not an address"}, follow=True)
    assert "Enter a valid email address." in response.content.decode()
    client.force_login(charlie)
    for url, data in [
        (f"/c/{deals.pk}/externals/allow/", {"allowed": ""}),
        (f"/c/{deals.pk}/externals/add/", {"email": "spy@rival.example"}),
        (f"/c/{deals.pk}/externals/{bob.pk}/remove/", {}),
    ]:
        assert client.post(url, data).status_code == 404
    deals.refresh_from_db()
    assert deals.allows_external and not User.objects.filter(is_external=True).exists()
    assert deals.memberships.filter(user=bob, left_at__isnull=True).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "case",
    [
        c
        for c in reply_cases.CASES
        if c.fixture.split("_")[0] in ("outlook", "gmail", "apple", "iphone", "thunderbird")
    ],
    ids=lambda case: case.fixture,
)
def test_real_client_replies_arrive_without_quote_or_signature(
    case: reply_cases.Case, alice: User, bob: User, deals: Conversation, imap_mailbox: ImapMailbox
) -> None:
    """The fixtures of Outlook, Gmail, Apple Mail, iOS Mail and Thunderbird (EN and
    DE), sent to bob's reply address from bob's mailbox, through Dovecot."""
    original = email.message_from_bytes(
        (reply_cases.FIXTURES / case.fixture).read_bytes(), policy=email.policy.SMTP
    )
    del original["To"], original["From"], original["Message-ID"]
    original["To"] = address_of(bob, deals)
    original["From"] = "Bob Brandt <bob@kontor.example>"
    original["Message-ID"] = make_msgid(domain="client.example")
    imap_mailbox.append(original.as_bytes())

    assert imap.mailbox_poll().posted == 1
    [body] = texts(deals)
    assert body == case.expected
    for line in case.absent:
        assert line not in body
