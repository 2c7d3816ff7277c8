"""Mail that reaches Kontor: authenticate it, then post its reply.

Contract used by the transports (``lmtp``, ``imap``):

- ``mail_receive(raw=..., recipients=[...])`` posts the reply and returns a
  ``Received``; it raises ``MailRejected`` (with a reason fit for a bounce) and
  then changes nothing. A mail delivered twice is posted once.
- ``mail_bounce(raw=..., reason=...)`` mails the sender that their mail was
  not posted (for transports that cannot refuse during delivery, like IMAP).
- ``address_is_ours(address)`` tells whether an envelope recipient is a reply
  address of this Kontor.

A mail is posted only when all of these hold, else it is rejected:
1. it is addressed to a reply address whose HMAC verifies (``tokens``);
2. its ``From`` is the address of the person the token names (the token is
   bound to its recipient: a forwarded notification cannot be answered by
   someone else), and the receiving MTA did not record a DMARC failure;
3. that person may still write there: an active employee who is a member, or
   an external contact still in a conversation that allows externals;
4. something new is left once quotes and signatures are removed, or it
   carries files, which pass the same checks as uploads.
Automatic mail (out-of-office replies, delivery reports) is ignored without a
bounce, so two robots never answer each other forever.
"""

import email
import email.policy
import hashlib
import io
import logging
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, getaddresses, make_msgid, parseaddr

from django.conf import settings
from django.core.mail import EmailMessage as OutgoingMail
from django.db import transaction

from accounts.models import User
from archive.errors import FileRefused
from archive.services import file_store
from messenger import services
from messenger.errors import MessengerError, NotFound
from messenger.mail import reply_text, tokens
from messenger.models import InboundMail
from messenger.services.inbound import inbound_mail_record

logger = logging.getLogger(__name__)

# uuid5 namespace: a mail's Message-ID becomes the posted message's client_id,
# so the same mail delivered again maps onto the message it already made.
_CLIENT_ID_NAMESPACE = uuid.UUID("6f1c4d1e-6a43-4f0e-9a55-5b0c8a4a1e2d")
_AUTOMATIC_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}


class MailRejected(Exception):
    """A mail that is not posted. ``reason`` is shown to the sender in the bounce;
    ``permanent`` False means "try again later" (4xx instead of 5xx)."""

    def __init__(self, reason: str, *, permanent: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True)
class Received:
    conversation_id: int | None
    message_id: int | None
    duplicate: bool = False
    # Automatic mail (an out-of-office reply, a delivery report): accepted and dropped.
    ignored: bool = False


def address_is_ours(address: str) -> bool:
    """Whether an envelope recipient could be a reply address of this Kontor
    (its HMAC is checked when the mail itself arrives)."""
    found = parseaddr(address)[1].lower()
    base_local, domain = tokens.base_address().rsplit("@", 1)
    return found.endswith(f"@{domain}") and found.split("@", 1)[0].startswith(f"{base_local}+")


def _parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _mail_id(message: EmailMessage, raw: bytes) -> str:
    found = str(message.get("Message-ID", "") or "").strip()
    # Without a Message-ID, the bytes themselves identify a redelivery.
    return found or f"<sha256.{hashlib.sha256(raw).hexdigest()}@kontor.invalid>"


def _is_automatic(message: EmailMessage) -> bool:
    auto = str(message.get("Auto-Submitted", "no") or "no").strip().lower()
    precedence = str(message.get("Precedence", "") or "").strip().lower()
    return (
        auto != "no"
        or precedence in _AUTOMATIC_PRECEDENCE
        or "X-Autoreply" in message
        or "X-Autorespond" in message
        or message.get_content_type() == "multipart/report"
    )


def _token(message: EmailMessage, recipients: list[str] | None) -> tuple[int, int, str]:
    candidates = list(recipients or [])
    for header in ("Delivered-To", "X-Original-To", "To", "Cc"):
        candidates += [address for _, address in getaddresses(message.get_all(header, []))]
    for address in candidates:
        parsed = tokens.parse_reply_address(address)
        if parsed is not None:
            return parsed[0], parsed[1], address
    if any(address_is_ours(a) for a in candidates):
        raise MailRejected("The reply address is not valid. Reply to a notification mail from Kontor.")
    raise MailRejected("This mail is not addressed to a Kontor reply address.")


def _authenticate(message: EmailMessage, user_id: int) -> User:
    user = User.objects.filter(pk=user_id).first()
    sender = parseaddr(str(message.get("From", "")))[1].strip().lower()
    if user is None or not sender or sender != user.email.lower():
        raise MailRejected(
            "This reply address belongs to someone else. Reply from the address the notification was sent to."
        )
    # Only the topmost header is our MTA's own verdict; lower ones came with the mail.
    results = str(message.get("Authentication-Results", "") or "").lower()
    if "dmarc=fail" in results.replace(" ", ""):
        raise MailRejected("Your mail failed the sender checks of the receiving server (DMARC).")
    if not user.is_external and not user.is_active:
        raise MailRejected("Your account is closed: replies by email are not accepted.")
    return user


def _parts(message: EmailMessage) -> tuple[str | None, str | None]:
    plain = message.get_body(preferencelist=("plain",))
    rich = message.get_body(preferencelist=("html",))
    text = plain.get_content() if isinstance(plain, EmailMessage) else None
    if text is not None and isinstance(plain, EmailMessage) and plain.get_param("format") == "flowed":
        # RFC 3676 (Thunderbird and Roundcube in plain-text mode): soft line breaks.
        text = reply_text.unflow_text(text, delsp=str(plain.get_param("delsp", "no")).lower() == "yes")
    html = rich.get_content() if isinstance(rich, EmailMessage) else None
    return text, html


def _attachments(message: EmailMessage, html: str | None) -> list[tuple[str, bytes]]:
    """The files the sender attached. Pictures embedded by reference in the
    HTML (``cid:``) are left out: they are signature logos and quoted images
    far more often than something the sender meant to share."""
    found: list[tuple[str, bytes]] = []
    for part in message.iter_attachments():
        if not isinstance(part, EmailMessage):
            continue
        content_id = str(part.get("Content-ID", "") or "").strip("<> ")
        if content_id and html and f"cid:{content_id}" in html and part.get_content_maintype() == "image":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload:
            continue
        name = part.get_filename() or f"attachment-{len(found) + 1}"
        found.append((name, payload))
    return found


def mail_receive(*, raw: bytes, recipients: list[str] | None = None) -> Received:
    """Post the reply in ``raw`` as the person it authenticates; see the module rules."""
    if len(raw) > settings.KONTOR_EMAIL_MAX_BYTES:
        raise MailRejected(f"Mails are limited to {settings.KONTOR_EMAIL_MAX_BYTES // (1024 * 1024)} MB.")
    message = _parse(raw)
    if _is_automatic(message):
        logger.info("Ignored an automatic mail from %s", message.get("From", ""))
        return Received(conversation_id=None, message_id=None, ignored=True)
    mail_id = _mail_id(message, raw)
    earlier = InboundMail.objects.filter(mail_message_id=mail_id[:250]).first()
    if earlier is not None:
        if earlier.outcome == InboundMail.Outcome.REJECTED:
            raise MailRejected(earlier.reason)
        return Received(earlier.conversation_id, earlier.message_id, duplicate=True)
    sender = parseaddr(str(message.get("From", "")))[1]
    subject = str(message.get("Subject", "") or "")
    try:
        conversation_id, user_id, address = _token(message, recipients)
        user = _authenticate(message, user_id)
        received = _post(message, user, conversation_id, mail_id)
    except MailRejected as rejected:
        if rejected.permanent:
            inbound_mail_record(
                mail_message_id=mail_id,
                outcome=InboundMail.Outcome.REJECTED,
                sender=sender,
                subject=subject,
                reason=rejected.reason,
            )
        logger.info("Rejected a mail from %s: %s", sender, rejected.reason)
        raise
    inbound_mail_record(
        mail_message_id=mail_id,
        outcome=InboundMail.Outcome.POSTED,
        sender=sender,
        recipient=address,
        subject=subject,
        user_id=user.pk,
        conversation_id=received.conversation_id,
        message_id=received.message_id,
    )
    return received


def _post(message: EmailMessage, user: User, conversation_id: int, mail_id: str) -> Received:
    client_id = uuid.uuid5(_CLIENT_ID_NAMESPACE, mail_id)
    text, html = _parts(message)
    body = reply_text.extract_reply(text=text, html=html)
    files = _attachments(message, html)
    if not body and not files:
        raise MailRejected("Your reply had no new text: only quoted text or a signature was found.")
    try:
        # One transaction: a refused attachment or a refused send leaves no
        # file row and no message behind.
        with transaction.atomic():
            stored = [file_store(upload=io.BytesIO(data), name=name, uploader=user) for name, data in files]
            sent = services.message_send(
                actor=user,
                conversation_id=conversation_id,
                body=body,
                client_id=client_id,
                file_ids=[f.pk for f in stored],
            )
    except FileRefused as refused:
        raise MailRejected(f"An attachment was refused: {refused.detail}") from None
    except NotFound:
        raise MailRejected(
            "You are not a member of this conversation any more, so your reply was not posted."
        ) from None
    except MessengerError as error:
        raise MailRejected(str(error)) from None
    return Received(conversation_id=sent.message.conversation_id, message_id=sent.message.pk)


def mail_bounce(*, raw: bytes, reason: str) -> None:
    """Tell the sender their mail was not posted, and why. Never answers
    automatic mail, nor mail without a sender, nor our own address."""
    message = _parse(raw)
    sender = parseaddr(str(message.get("Return-Path") or message.get("From", "")))[1]
    local_part = sender.split("@", 1)[0].lower()
    if (
        not sender
        or _is_automatic(message)
        or sender.lower() == tokens.base_address()
        or local_part in ("mailer-daemon", "postmaster")
    ):
        return
    subject = str(message.get("Subject", "") or "(no subject)")
    original_id = str(message.get("Message-ID", "") or "")
    body = (
        f"Your mail “{subject}” was not posted to {settings.KONTOR_COMPANY_NAME}.\n\n"
        f"Reason: {reason}\n\n"
        "Nothing of it was shared. If you meant to answer a conversation, reply to its latest "
        "notification mail from the address it was sent to.\n"
    )
    headers = {
        "Message-ID": make_msgid(idstring="bounce", domain=tokens.reply_domain()),
        "Auto-Submitted": "auto-replied",
        "X-Auto-Response-Suppress": "All",
    }
    if original_id:
        headers["In-Reply-To"] = original_id
        headers["References"] = original_id
    OutgoingMail(
        subject=f"Not delivered: {subject}",
        body=body,
        from_email=formataddr((settings.KONTOR_COMPANY_NAME, tokens.base_address())),
        to=[sender],
        headers=headers,
    ).send()
