"""Celery tasks of the messenger: the email bridge's sending.

Rules as everywhere here: stable names, no arguments but ids, time limits, one
service call. A duplicate run is harmless: notices are claimed by a
conditional UPDATE, so only one run mails a batch.
"""

from celery import shared_task

from messenger.mail import delivery


@shared_task(name="messenger.notify_due", time_limit=300, soft_time_limit=240, acks_late=True)
def notify_due() -> int:
    """Mail every due notification (beat runs this every minute; sends schedule it at once)."""
    return delivery.deliver_due()
