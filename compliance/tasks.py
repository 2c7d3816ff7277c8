"""Celery tasks of the compliance archive: stable names, ids as arguments, one
service call each. A duplicate delivery does nothing because the database says
so (the cursor lock and the unique chain position), never because a worker was
asked.

The auditor workspace's tasks (``compliance.export``, ``compliance.export_requeue``)
live beside its services in ``compliance.workspace.tasks``; ``ComplianceConfig.ready``
imports that module so every process that runs Django registers them (Celery's
autodiscovery looks only at each app's ``tasks.py``)."""

import logging
from typing import Any

from celery import shared_task
from celery.signals import task_failure

from compliance import lifecycle, sealing, services, verification

logger = logging.getLogger(__name__)


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
    return services.archive_conversation(conversation_id=conversation_id)


@shared_task(name="compliance.purge_expired", time_limit=3600, soft_time_limit=3500)
def purge_expired() -> dict[str, int]:
    """Delete the content of expired records no legal hold covers (daily)."""
    result = lifecycle.purge_expired()
    return {
        "purged": result.purged,
        "held": result.held,
        "messages": result.messages,
        "files": result.files,
        "people": result.people,
    }


@shared_task(name="compliance.reconcile", time_limit=1800, soft_time_limit=1700)
def reconcile() -> int:
    """Hourly: archive any journal event the sweep missed and alert with the count."""
    return services.reconcile().missing_events


@shared_task(name="compliance.seal", time_limit=1800, soft_time_limit=1700)
def seal() -> int:
    """Daily: seal every chain head, anchored outside the database; returns the seal's position."""
    return sealing.seal_heads().seq


@shared_task(name="compliance.verify", time_limit=6 * 3600, soft_time_limit=6 * 3600 - 60)
def verify() -> bool:
    """Daily: verify every chain, seal and copy; mail the compliance contacts on failure."""
    return verification.verify_and_report().ok


@task_failure.connect
def alert_on_failure(
    sender: Any = None, task_id: str = "", exception: BaseException | None = None, **_: Any
) -> None:
    """A compliance task that fails (the archive storage down, a database error)
    is an alert, not just a log line: the contacts get a mail naming it."""
    name = getattr(sender, "name", "") or ""
    if not name.startswith("compliance."):
        return
    services.alert_contacts(
        f"Compliance task failed: {name}",
        f"The task {name} (id {task_id}) failed:\n\n  {exception!r}\n\n"
        "Until it runs again successfully, the archive may be behind. Snapshots, the "
        "reconciliation and the seal catch up on their next run; check the worker's log.",
        fail_silently=True,
    )
