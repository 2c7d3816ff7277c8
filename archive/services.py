"""The only writer of stored files."""

import hashlib
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction

from archive import validation
from archive.errors import FileRefused
from archive.models import StoredFile

if TYPE_CHECKING:
    # A type hint only: archive is a leaf that imports no other Kontor app.
    from accounts.models import User

CHUNK = 1024 * 1024


def blob_key(sha256: str) -> str:
    return f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def file_store(*, upload: IO[bytes], name: str, uploader: "User") -> StoredFile:
    """Check and keep an upload; returns its record.

    The bytes are copied to a temporary file while their SHA-256 and size are
    taken, checked there, and only then written to storage, once per content.
    A refusal raises ``FileRefused`` and leaves nothing behind.
    """
    name = validation.clean_name(name)
    limit = settings.KONTOR_UPLOAD_MAX_BYTES
    digest = hashlib.sha256()
    size = 0
    with tempfile.NamedTemporaryFile(prefix="kontor-upload-") as temp:
        while chunk := upload.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise FileRefused("too_large", f"Files are limited to {limit // (1024 * 1024)} MB.")
            digest.update(chunk)
            temp.write(chunk)
        temp.flush()
        if size == 0:
            raise FileRefused("empty", "The file is empty.")
        path = Path(temp.name)
        content_type = validation.check_name_matches(name, validation.sniff(path))
        dimensions = validation.check_image(path, content_type)
        sha256 = digest.hexdigest()
        key = _keep_blob(path, sha256)
    previewable = dimensions is not None or content_type == "application/pdf"
    with transaction.atomic():
        stored = StoredFile.objects.create(
            sha256=sha256,
            size=size,
            content_type=content_type,
            name=name,
            storage_key=key,
            uploaded_by=uploader,
            width=dimensions[0] if dimensions else None,
            height=dimensions[1] if dimensions else None,
            preview_state=StoredFile.State.PENDING if previewable else StoredFile.State.NONE,
            text_state=StoredFile.State.PENDING if _has_text(content_type) else StoredFile.State.NONE,
        )
        # robust: a broker that is down must not fail an upload that is already
        # stored; the file keeps its placeholder and the error is logged.
        transaction.on_commit(lambda: _schedule_processing(stored), robust=True)
    return stored


def _schedule_processing(stored: StoredFile) -> None:
    # Imported here: the tasks call back into this module.
    from archive import tasks

    if stored.preview_state == StoredFile.State.PENDING:
        tasks.make_preview.delay(stored.pk)
    if stored.text_state == StoredFile.State.PENDING:
        tasks.extract_text.delay(stored.pk)


def file_set_preview(*, file_id: int, state: StoredFile.State, key: str = "") -> bool:
    """Record how making the preview ended, once: only a file whose preview is
    still pending changes, so a duplicate or late task changes nothing.
    Returns whether this call recorded it."""
    changed = StoredFile.objects.filter(pk=file_id, preview_state=StoredFile.State.PENDING).update(
        preview_state=state, preview_key=key
    )
    return changed == 1


def file_set_text(*, file_id: int, state: StoredFile.State, text: str = "") -> bool:
    """Record the extracted text, once (see ``file_set_preview``)."""
    changed = StoredFile.objects.filter(pk=file_id, text_state=StoredFile.State.PENDING).update(
        text_state=state, text=text
    )
    return changed == 1


def _has_text(content_type: str) -> bool:
    return content_type in (
        "application/pdf",
        "text/plain",
        "text/csv",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    )


def _keep_blob(path: Path, sha256: str) -> str:
    """Store the bytes under their hash unless the same content is there already."""
    existing = StoredFile.objects.filter(sha256=sha256).values_list("storage_key", flat=True).first()
    if existing and default_storage.exists(existing):
        return existing
    key = blob_key(sha256)
    if default_storage.exists(key):
        return key
    with path.open("rb") as handle:
        return default_storage.save(key, File(handle, name=key))


def files_delete_unattached(*, file_ids: list[int]) -> int:
    """Delete the given files that no message holds any more, and their bytes
    and previews once no other file shares them. Called by the compliance purge
    after retention; the bytes go after the transaction commits."""
    doomed = list(
        StoredFile.objects.filter(pk__in=file_ids, attachments__isnull=True).values_list(
            "pk", "storage_key", "preview_key"
        )
    )
    if not doomed:
        return 0
    StoredFile.objects.filter(pk__in=[pk for pk, _, _ in doomed]).delete()
    keys = {key for _, storage_key, preview in doomed for key in (storage_key, preview) if key}

    def remove_bytes() -> None:
        shared = set(
            StoredFile.objects.filter(storage_key__in=keys).values_list("storage_key", flat=True)
        ) | set(StoredFile.objects.filter(preview_key__in=keys).values_list("preview_key", flat=True))
        for key in sorted(keys - shared):
            default_storage.delete(key)

    transaction.on_commit(remove_bytes)
    return len(doomed)
