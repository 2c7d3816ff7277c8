"""Read queries on stored files."""

from django.db.models import Sum

from archive.models import StoredFile


def file_with_preview_pending(*, file_id: int) -> StoredFile | None:
    """The file if it still waits for its preview; ``None`` if gone or done."""
    return StoredFile.objects.filter(pk=file_id, preview_state=StoredFile.State.PENDING).first()


def file_with_text_pending(*, file_id: int) -> StoredFile | None:
    """The file if it still waits for its text; ``None`` if gone or done."""
    return StoredFile.objects.filter(pk=file_id, text_state=StoredFile.State.PENDING).first()


def files_size(*, file_ids: list[int]) -> int:
    """The bytes the stored files with these ids take, together."""
    total = StoredFile.objects.filter(pk__in=file_ids).aggregate(total=Sum("size"))["total"]
    return int(total or 0)
