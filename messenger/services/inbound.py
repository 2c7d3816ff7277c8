"""The log of mail that reached the reply address (``InboundMail``)."""

from django.db import IntegrityError, transaction

from messenger.models import InboundMail


def inbound_mail_record(
    *,
    mail_message_id: str,
    outcome: str,
    sender: str = "",
    recipient: str = "",
    subject: str = "",
    reason: str = "",
    user_id: int | None = None,
    conversation_id: int | None = None,
    message_id: int | None = None,
) -> InboundMail | None:
    """Note what became of a mail; None when it was noted already (a redelivery)."""
    try:
        with transaction.atomic():
            return InboundMail.objects.create(
                mail_message_id=mail_message_id[:250],
                outcome=outcome,
                sender=sender[:254],
                recipient=recipient[:254],
                subject=subject[:250],
                reason=reason[:250],
                user_id=user_id,
                conversation_id=conversation_id,
                message_id=message_id,
            )
    except IntegrityError:
        return None
