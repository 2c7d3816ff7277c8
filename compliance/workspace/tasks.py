"""Celery tasks of the auditor workspace (registered through
``compliance.tasks``, which Celery's autodiscovery imports)."""

from celery import shared_task

from compliance.workspace import exports

# Long: a whole conversation with its attachments; the soft limit leaves time
# to mark the export failed with a clear reason.
EXPORT_TIME_LIMIT = exports.EXPORT_TIME_LIMIT


@shared_task(
    name="compliance.export",
    time_limit=EXPORT_TIME_LIMIT,
    soft_time_limit=EXPORT_TIME_LIMIT - 120,
    acks_late=True,
)
def export(export_id: int) -> str:
    """Build one queued export; a duplicate delivery finds it claimed and does nothing."""
    built = exports.export_build(export_id=export_id)
    return built.status if built is not None else "not queued"


@shared_task(name="compliance.export_requeue")
def export_requeue() -> int:
    """Beat's sweep: exports whose task was lost are queued again."""
    return len(exports.exports_requeue_stale())
