"""Archived files: their bytes, checked against the SHA-256 their record holds."""

import hashlib
import io
import tempfile
from dataclasses import dataclass
from typing import IO

from django.core.files.storage import default_storage

from archive.models import StoredFile
from archive.services import blob_key
from compliance import archive_store

# A file up to this size is checked in memory, a larger one in a temporary file.
SPOOL_IN_MEMORY = 8 * 1024 * 1024

ALTERED_COPY = (
    "The archive copy of this file does not match the SHA-256 its record holds: it was altered "
    "after archiving. It is not served; the record's hash is the evidence. Secure the archive "
    "storage as it is and inform the data protection officer."
)
ALTERED_STORED = (
    "The company file storage holds this file only with bytes that do not match the SHA-256 its "
    "record holds, and the archive storage has no copy of it. It is not served."
)
GONE = (
    "The bytes of this file are no longer stored: neither the archive storage nor the company file "
    "storage holds them (purged after retention, or lost). The record still names the file and its SHA-256."
)


@dataclass
class FetchedFile:
    """An archived file's bytes, checked against the SHA-256 its record holds.

    ``content`` is set only when the bytes match; otherwise ``problem`` says
    why nothing may be served (``altered``: bytes were found but differ, so
    they are refused; otherwise they are gone)."""

    content: IO[bytes] | None
    size: int
    source: str
    problem: str = ""
    altered: bool = False

    def close(self) -> None:
        if self.content is not None:
            self.content.close()


def file_fetch(sha256: str) -> FetchedFile:
    """The bytes of an archived file: the write-once archive copy, or where
    there is none the company file storage, each only if it hashes to
    ``sha256``. An archive copy that does not match is refused, never
    replaced by another copy: an altered archive must be seen, not papered over.

    The file storage's bytes are spooled to a temporary file while they are
    hashed (bounded memory), so nothing is handed out before the check. The
    caller closes what it gets (``FetchedFile.close``)."""
    copy = archive_store.get(archive_store.file_name(sha256))
    if copy is not None:
        if hashlib.sha256(copy).hexdigest() != sha256:
            return FetchedFile(None, 0, "archive copy", ALTERED_COPY, altered=True)
        return FetchedFile(io.BytesIO(copy), len(copy), "archive copy")
    keys = dict.fromkeys(StoredFile.objects.filter(sha256=sha256).values_list("storage_key", flat=True))
    mismatched = False
    for key in [*keys, blob_key(sha256)]:
        # Not a context manager: a matching spool is handed to the caller, who closes it.
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        digest, size = hashlib.sha256(), 0
        try:
            with default_storage.open(key, "rb") as handle:
                for chunk in handle.chunks(archive_store.CHUNK):
                    digest.update(chunk)
                    spool.write(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            spool.close()
            continue
        if digest.hexdigest() == sha256:
            spool.seek(0)
            return FetchedFile(spool, size, "file storage")
        spool.close()
        mismatched = True
    if mismatched:
        return FetchedFile(None, 0, "file storage", ALTERED_STORED, altered=True)
    return FetchedFile(None, 0, "", GONE)
