"""Sending what is due: claim the batches, build each mail, send it outside
any transaction, then record its Message-ID (or give the claim back)."""

import logging
import smtplib
from datetime import datetime

from messenger.mail import outgoing
from messenger.services import notifications

logger = logging.getLogger(__name__)


def deliver_due(*, now: datetime | None = None) -> int:
    """Send every due notification mail (due by ``now``, default: now); returns
    how many mails left."""
    sent = 0
    for batch in notifications.notifications_claim_due(now=now):
        if batch.digest:
            mail = outgoing.digest_mail(recipient=batch.user, messages=batch.messages)
        else:
            mail = outgoing.conversation_mail(
                recipient=batch.user, conversation=batch.conversations[0], messages=batch.messages
            )
        try:
            mail.send()
        except (TimeoutError, smtplib.SMTPException, OSError) as error:
            # The mail server is down or refused: the next run tries again.
            logger.warning("Could not mail %s (%s): %s", batch.user.pk, len(batch.notices), error)
            notifications.notifications_release(batch=batch)
            continue
        notifications.notifications_mark_sent(batch=batch, mail_message_id=mail.extra_headers["Message-ID"])
        sent += 1
    return sent
