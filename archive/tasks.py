"""Work on a stored file after its upload committed: a thumbnail, and the text
for search.

Rules (as for every task here): a stable name, the file's id as the only
argument, time limits, re-fetch and return if the file is gone or no longer
pending, and one service call to record the outcome. A duplicate delivery is a
no-op because the database says so: the service only changes a file that is
still pending, and the second run finds it ready or failed and returns. There
is no "working" state to claim: with ``acks_late`` a task lost with its worker
is delivered again and must be able to redo the work, which is harmless since
the preview is content-addressed and the text is written once.

Damaged or hostile files end ``failed`` (logged), never as an exception:
retrying cannot repair bytes.
"""

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from archive import extraction, previews, selectors, services
from archive.models import StoredFile

logger = logging.getLogger(__name__)


@shared_task(name="archive.make_preview", time_limit=120, soft_time_limit=100, acks_late=True)
def make_preview(file_id: int) -> str:
    """Make ``file_id``'s thumbnail; returns what became of it (for logs and tests)."""
    stored = selectors.file_with_preview_pending(file_id=file_id)
    if stored is None:
        return "skipped"
    try:
        key = previews.preview_store(stored)
    except (previews.Unpreviewable, SoftTimeLimitExceeded) as error:
        logger.warning("No preview for stored file %s (%s): %s", file_id, stored.content_type, error)
        services.file_set_preview(file_id=file_id, state=StoredFile.State.FAILED)
        return StoredFile.State.FAILED
    recorded = services.file_set_preview(file_id=file_id, state=StoredFile.State.READY, key=key)
    return StoredFile.State.READY if recorded else "skipped"


@shared_task(name="archive.extract_text", time_limit=120, soft_time_limit=100, acks_late=True)
def extract_text(file_id: int) -> str:
    """Take ``file_id``'s text out for search; returns what became of it."""
    stored = selectors.file_with_text_pending(file_id=file_id)
    if stored is None:
        return "skipped"
    try:
        text = extraction.extract_text(stored)
    except (extraction.Unextractable, SoftTimeLimitExceeded) as error:
        logger.warning("No text from stored file %s (%s): %s", file_id, stored.content_type, error)
        services.file_set_text(file_id=file_id, state=StoredFile.State.FAILED)
        return StoredFile.State.FAILED
    recorded = services.file_set_text(file_id=file_id, state=StoredFile.State.READY, text=text)
    return StoredFile.State.READY if recorded else "skipped"
