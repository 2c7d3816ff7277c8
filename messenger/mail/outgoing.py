"""The mails Kontor sends about conversations: notifications to employees and
the relay to external contacts. HTML and plain text, threaded per person and
conversation, and answerable: the ``Reply-To`` is the signed reply address.

Threading: every mail about conversation C to person U says it follows
``<conversation.C.U@domain>`` (``In-Reply-To`` and ``References``), so mail
clients keep one thread per conversation; the subject stays the same for the
same reason (Gmail also threads by subject).
"""

from email.utils import formataddr, make_msgid
from urllib.parse import quote
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import User
from messenger import notices
from messenger.mail.tokens import base_address, reply_address, reply_domain
from messenger.models import Conversation, Membership, Message

# External contacts cannot download, so their mail carries the files, up to this much.
ATTACH_LIMIT_BYTES = 15 * 1024 * 1024


def thread_root(conversation_id: int, user_id: int) -> str:
    return f"<conversation.{conversation_id}.{user_id}@{reply_domain()}>"


def new_message_id(kind: str, user_id: int) -> str:
    return make_msgid(idstring=f"{kind}.{user_id}", domain=reply_domain())


def absolute(path: str) -> str:
    return settings.KONTOR_BASE_URL.rstrip("/") + path


def _settings_url() -> str:
    return absolute(reverse("accounts:profile")) + "#id_email_notifications"


def conversation_title(conversation: Conversation, *, for_user: User) -> str:
    """What the conversation is called from ``for_user``'s side."""
    if conversation.is_direct:
        other = (
            User.objects.filter(memberships__conversation=conversation)
            .exclude(pk=for_user.pk)
            .only("display_name", "email", "processing_restricted_at", "erased_at")
            .first()
        )
        return str(other) if other else str(for_user)
    return str(conversation)


def _zone(user: User) -> ZoneInfo:
    try:
        return ZoneInfo(user.time_zone)
    except (KeyError, ValueError):
        return ZoneInfo(settings.KONTOR_TIME_ZONE)


def _entries(messages: list[Message], recipient: User) -> list[dict[str, object]]:
    zone = _zone(recipient)
    return [
        {
            "message": m,
            "author": m.author.chat_name,
            "time": m.created_at.astimezone(zone),
            "url": absolute(m.get_absolute_url()),
            "files": list(m.attachments.all()),
        }
        for m in messages
    ]


def _sender(messages: list[Message]) -> str:
    authors = {m.author_id: m.author for m in messages}
    name = settings.KONTOR_COMPANY_NAME
    if len(authors) == 1:
        name = f"{next(iter(authors.values())).chat_name} via {name}"
    return formataddr((name, base_address()))


def _external_banner(conversation: Conversation) -> bool:
    return Membership.objects.filter(
        conversation=conversation, left_at__isnull=True, user__is_external=True
    ).exists()


def conversation_mail(
    *, recipient: User, conversation: Conversation, messages: list[Message]
) -> EmailMultiAlternatives:
    """One mail about new messages of one conversation, answerable by email."""
    title = conversation_title(conversation, for_user=recipient)
    reply_to = reply_address(conversation_id=conversation.pk, user_id=recipient.pk)
    context = {
        "recipient": recipient,
        "conversation": conversation,
        "title": title,
        "entries": _entries(messages, recipient),
        "external": recipient.is_external,
        "has_externals": _external_banner(conversation),
        "conversation_url": absolute(conversation.get_absolute_url()),
        "settings_url": _settings_url(),
        "company": settings.KONTOR_COMPANY_NAME,
        "reply_to": reply_to,
    }
    subject = title if conversation.is_channel or conversation.is_direct else f"Group: {title}"
    mail = EmailMultiAlternatives(
        subject=f"[{settings.KONTOR_COMPANY_NAME}] {subject}",
        body=render_to_string("messenger/mail/conversation.txt", context),
        from_email=_sender(messages),
        to=[recipient.email],
        reply_to=[reply_to],
        headers=_headers(conversation.pk, recipient, kind=f"m{messages[-1].pk}"),
    )
    mail.attach_alternative(render_to_string("messenger/mail/conversation.html", context), "text/html")
    if recipient.is_external:
        _attach_files(mail, messages)
    return mail


def digest_mail(*, recipient: User, messages: list[Message]) -> EmailMultiAlternatives:
    """The daily digest: every conversation with something unread, each with a
    reply link of its own (the mail's own Reply-To only when there is one)."""
    sections: dict[int, dict[str, object]] = {}
    for message in messages:
        conversation = message.conversation
        if conversation.pk not in sections:
            address = reply_address(conversation_id=conversation.pk, user_id=recipient.pk)
            title = conversation_title(conversation, for_user=recipient)
            sections[conversation.pk] = {
                "title": title,
                "url": absolute(conversation.get_absolute_url()),
                "mailto": f"mailto:{address}?subject={quote('Re: ' + title)}",
                "reply_to": address,
                "messages": [],
            }
        section_messages = sections[conversation.pk]["messages"]
        assert isinstance(section_messages, list)
        section_messages.append(message)
    for section in sections.values():
        section_messages = section["messages"]
        assert isinstance(section_messages, list)
        section["entries"] = _entries(section_messages, recipient)
    context = {
        "recipient": recipient,
        "sections": list(sections.values()),
        "count": len(messages),
        "company": settings.KONTOR_COMPANY_NAME,
        "settings_url": _settings_url(),
    }
    only = next(iter(sections)) if len(sections) == 1 else None
    mail = EmailMultiAlternatives(
        subject=f"[{settings.KONTOR_COMPANY_NAME}] Daily digest: {len(messages)} unread in "
        f"{len(sections)} conversation{'s' if len(sections) != 1 else ''}",
        body=render_to_string("messenger/mail/digest.txt", context),
        from_email=formataddr((settings.KONTOR_COMPANY_NAME, base_address())),
        to=[recipient.email],
        reply_to=[str(sections[only]["reply_to"])] if only is not None else None,
        headers={
            "Message-ID": new_message_id("digest", recipient.pk),
            "Auto-Submitted": "auto-generated",
            "X-Auto-Response-Suppress": "All",
        },
    )
    mail.attach_alternative(render_to_string("messenger/mail/digest.html", context), "text/html")
    return mail


def _headers(conversation_id: int, recipient: User, *, kind: str) -> dict[str, str]:
    root = thread_root(conversation_id, recipient.pk)
    headers = {
        "Message-ID": new_message_id(kind, recipient.pk),
        "In-Reply-To": root,
        "References": root,
        # No out-of-office replies to notifications (Exchange honours this).
        "X-Auto-Response-Suppress": "All",
    }
    if not recipient.is_external:
        headers["Auto-Submitted"] = "auto-generated"
        headers["List-Unsubscribe"] = f"<{_settings_url()}>"
    return headers


def _attach_files(mail: EmailMultiAlternatives, messages: list[Message]) -> None:
    budget = ATTACH_LIMIT_BYTES
    for message in messages:
        for attachment in message.attachments.all():
            stored = attachment.file
            if stored.size > budget:
                continue
            with default_storage.open(stored.storage_key, "rb") as handle:
                mail.attach(stored.name, handle.read(), stored.content_type)
            budget -= stored.size


def welcome_mail(*, contact: User, conversation: Conversation, added_by: User) -> EmailMultiAlternatives:
    """Tells an external contact they were added, how to take part, and that
    the conversation is archived (and recorded, in a regulated scope: C20)."""
    reply_to = reply_address(conversation_id=conversation.pk, user_id=contact.pk)
    context = {
        "contact": contact,
        "conversation": conversation,
        "title": str(conversation),
        "added_by": added_by,
        "company": settings.KONTOR_COMPANY_NAME,
        "recording": notices.recording_notice(conversation),
    }
    mail = EmailMultiAlternatives(
        subject=f"[{settings.KONTOR_COMPANY_NAME}] {conversation}",
        body=render_to_string("messenger/mail/welcome.txt", context),
        from_email=formataddr((f"{added_by} via {settings.KONTOR_COMPANY_NAME}", base_address())),
        to=[contact.email],
        reply_to=[reply_to],
        headers=_headers(conversation.pk, contact, kind="welcome"),
    )
    mail.attach_alternative(render_to_string("messenger/mail/welcome.html", context), "text/html")
    return mail
