"""Celery tasks of the compliance archive: stable names, ids as arguments, one
service call each. A duplicate delivery does nothing because the database says
so (the cursor lock and the unique chain position), never because a worker was
asked."""

from celery import shared_task

from compliance import services


@shared_task(name="compliance.snapshot_due", time_limit=120, soft_time_limit=100)
def snapshot_due() -> int:
    """Queue a snapshot for every conversation whose journal moved on."""
    due = services.conversations_due()
    for conversation_id in due:
        snapshot_conversation.delay(conversation_id)
    return len(due)


@shared_task(name="compliance.snapshot_conversation", time_limit=300, soft_time_limit=270, acks_late=True)
def snapshot_conversation(conversation_id: int) -> int:
    """Archive what is new in one conversation; returns the number of events archived."""
    archived = 0
    while True:
        snapshot = services.snapshot_conversation(conversation_id=conversation_id)
        if snapshot.record is None:
            return archived
        archived += snapshot.events


@shared_task(name="compliance.purge_expired", time_limit=3600, soft_time_limit=3500)
def purge_expired() -> dict[str, int]:
    """Delete the content of expired records no legal hold covers (daily)."""
    result = services.purge_expired()
    return {"purged": result.purged, "held": result.held}


@shared_task(name="compliance.reconcile", time_limit=1800, soft_time_limit=1700)
def reconcile() -> int:
    """Hourly: archive any journal event the sweep missed and alert with the count."""
    return services.reconcile().missing_events
