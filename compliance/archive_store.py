"""Write-once copies of retention records, and of the files they reference, in
the archive storage (``STORAGES["archive"]``). Its rules:

1. A name is written once. Writing it again with the same bytes does nothing;
   with other bytes it raises ``ArchiveConflict``: an archived object is never
   overwritten. Names are deterministic (chain position and hash, or the
   file's hash), so a retried snapshot writes the same names and bytes.
2. On S3 every object carries Object Lock (``KONTOR_ARCHIVE_LOCK_MODE``,
   compliance by default) until the end of its ``retain_until`` day, UTC, the
   day the database's content-delete trigger stops refusing. The bucket must
   have been created with Object Lock enabled, so it is versioned: even a
   second write or a delete marker leaves the locked version in place.
3. Retention is lengthened, never shortened (``extend``); a file shared by
   several records is kept as long as the longest of them.
4. In a folder, each copy appears whole (written to a temporary file, synced,
   then linked into place) and read-only.
5. Only the purge deletes a copy, after its retention (``delete``); on S3 the
   lock itself refuses anything earlier.

``check_record`` tells ``verify_archive`` whether a record's copy and its
files' copies are there and intact.
"""

import base64
import errno
import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import IO, Any

from botocore.exceptions import ClientError
from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, default_storage, storages
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

from archive.models import StoredFile
from archive.services import blob_key
from compliance.models import RetentionRecord

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024


class ArchiveConflict(Exception):
    """The name is archived already, with other bytes: it is never overwritten."""


# --- Names ------------------------------------------------------------------


def record_name(record: RetentionRecord) -> str:
    return f"records/{record.conversation_id}/{record.seq:08d}-{record.sha256}.json"


def file_name(sha256: str) -> str:
    return f"files/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def seal_name(seq: int, sha256: str) -> str:
    return f"seals/{seq:08d}-{sha256}.json"


# --- Objects ----------------------------------------------------------------


def put(name: str, content: bytes, retain_until: date | None) -> None:
    """Archive ``content`` under ``name``, locked until the end of ``retain_until``
    (no lock of its own when None: an S3 bucket's default retention applies).

    Does nothing when ``name`` holds these bytes already; raises
    ``ArchiveConflict`` when it holds other bytes."""
    _put(name, io.BytesIO(content), hashlib.sha256(content).hexdigest(), retain_until)


def get(name: str) -> bytes | None:
    """The archived bytes, or None when ``name`` is not archived."""
    chunks = _chunks(name)
    return None if chunks is None else b"".join(chunks)


def extend(name: str, retain_until: date) -> None:
    """Keep ``name`` at least until the end of ``retain_until``; a later lock
    stays as it is. In a folder there is no lock to lengthen: nothing happens."""
    storage = _storage()
    if not isinstance(storage, S3Storage):
        return
    client, key = _s3_client(storage), _s3_key(storage, name)
    head = client.head_object(Bucket=storage.bucket_name, Key=key)
    until = _end_of_day(retain_until)
    current = head.get("ObjectLockRetainUntilDate")
    if current is not None and current >= until:
        return
    client.put_object_retention(
        Bucket=storage.bucket_name,
        Key=key,
        VersionId=head["VersionId"],
        Retention={
            "Mode": head.get("ObjectLockMode") or settings.KONTOR_ARCHIVE_LOCK_MODE,
            "RetainUntilDate": until,
        },
    )


def delete(name: str) -> None:
    """Remove ``name`` for good (the purge, after retention). On S3 every version
    and delete marker of the key is removed; a version still locked is refused
    by S3 and the error raised. A name not archived is not an error."""
    storage = _storage()
    if not isinstance(storage, S3Storage):
        storage.delete(name)
        return
    client, key = _s3_client(storage), _s3_key(storage, name)
    # A plain DELETE on a versioned bucket only adds a delete marker and keeps
    # the bytes: delete each version by its id.
    for page in client.get_paginator("list_object_versions").paginate(Bucket=storage.bucket_name, Prefix=key):
        for version in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            if version["Key"] == key:
                client.delete_object(Bucket=storage.bucket_name, Key=key, VersionId=version["VersionId"])


# --- Records ----------------------------------------------------------------


def write_record(record: RetentionRecord, content: bytes, payload: dict[str, Any] | None = None) -> None:
    """Archive a record's canonical JSON and a copy of every file it references,
    each kept until the record's ``retain_until``.

    A file copy that exists already (another record shares the file) is kept
    longer when this record's retention ends later. A file whose bytes are gone
    from the file storage, or no longer match their hash, is logged and left
    out rather than blocking the chain: ``verify_archive`` names the record."""
    put(record_name(record), content, record.retain_until)
    for sha256 in _referenced_files(content, payload):
        name = file_name(sha256)
        if _exists(name):
            extend(name, record.retain_until)
            continue
        with tempfile.SpooledTemporaryFile(max_size=8 * CHUNK) as copy:
            if not _read_blob(sha256, copy):
                logger.error(
                    "Record %s of conversation %s references file %s, whose bytes are missing "
                    "from the file storage or do not match their hash: it has no archive copy.",
                    record.seq,
                    record.conversation_id,
                    sha256,
                )
                continue
            copy.seek(0)
            _put(name, copy, sha256, record.retain_until)


def check_record(
    record: RetentionRecord, content: bytes | None, payload: dict[str, Any] | None = None
) -> str | None:
    """What is wrong with the archive copies of a record, or None.

    ``content`` is the record's canonical JSON from the database; None for a
    purged record, whose copy is not required (if one is left, it must still
    hash to the record's hash)."""
    copy = get(record_name(record))
    if content is None:
        if copy is not None and hashlib.sha256(copy).hexdigest() != record.sha256:
            return f"its archive copy {record_name(record)} does not match its hash"
        return None
    if copy is None:
        return f"its archive copy {record_name(record)} is missing"
    if copy != content or hashlib.sha256(copy).hexdigest() != record.sha256:
        return f"its archive copy {record_name(record)} differs from the record"
    for sha256, entry in _referenced_files(content, payload).items():
        digest = _digest(file_name(sha256))
        label = f"the archive copy of its file {entry.get('name', '')!r} ({file_name(sha256)})"
        if digest is None:
            return f"{label} is missing"
        if digest != sha256:
            return f"{label} does not match the file's SHA-256"
    return None


# --- Helpers ----------------------------------------------------------------


def _storage() -> Storage:
    return storages["archive"]


def _referenced_files(content: bytes, payload: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The files named in the record's revisions, by SHA-256, in order of
    appearance (``payload``: the content already parsed, when the caller has it)."""
    found: dict[str, dict[str, Any]] = {}
    for event in (payload if payload is not None else json.loads(content)).get("events", []):
        revision = event.get("revision") or {}
        for entry in revision.get("files") or []:
            found.setdefault(entry["sha256"], entry)
    return found


def _read_blob(sha256: str, out: IO[bytes]) -> bool:
    """Copy the file storage's bytes of ``sha256`` into ``out``; False when no
    stored copy exists with bytes matching the hash."""
    keys = dict.fromkeys(StoredFile.objects.filter(sha256=sha256).values_list("storage_key", flat=True))
    for key in [*keys, blob_key(sha256)]:
        out.seek(0)
        out.truncate()
        digest = hashlib.sha256()
        try:
            with default_storage.open(key, "rb") as handle:
                for chunk in handle.chunks(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        except FileNotFoundError:
            continue
        if digest.hexdigest() == sha256:
            return True
    return False


def _chunks(name: str) -> Iterator[bytes] | None:
    storage = _storage()
    if isinstance(storage, S3Storage):
        try:
            response = _s3_client(storage).get_object(Bucket=storage.bucket_name, Key=_s3_key(storage, name))
        except ClientError as error:
            if _s3_missing(error):
                return None
            raise
        chunks: Iterator[bytes] = response["Body"].iter_chunks(CHUNK)
        return chunks
    try:
        handle = storage.open(name, "rb")
    except FileNotFoundError:
        return None

    def read() -> Iterator[bytes]:
        with handle:
            yield from handle.chunks(CHUNK)

    return read()


def _digest(name: str) -> str | None:
    """The SHA-256 of the archived bytes of ``name``, streamed; None when missing."""
    chunks = _chunks(name)
    if chunks is None:
        return None
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def _exists(name: str) -> bool:
    return bool(_storage().exists(name))


def _refuse_unless_same(name: str, sha256: str) -> None:
    if _digest(name) != sha256:
        raise ArchiveConflict(
            f"{name} is archived already with other content; an archived object is never overwritten."
        )


def _put(name: str, source: IO[bytes], sha256: str, retain_until: date | None) -> None:
    storage = _storage()
    if isinstance(storage, S3Storage):
        _s3_put(storage, name, source, sha256, retain_until)
    elif isinstance(storage, FileSystemStorage):
        _folder_put(storage, name, source, sha256)
    else:  # another backend: no lock, but still never overwritten
        if storage.exists(name):
            _refuse_unless_same(name, sha256)
            return
        storage.save(name, source)


def _end_of_day(day: date) -> datetime:
    """The lock's end: the last second of the record's last day, UTC."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def _s3_client(storage: S3Storage) -> Any:
    return storage.connection.meta.client


def _s3_key(storage: S3Storage, name: str) -> str:
    key: str = storage._normalize_name(clean_name(name))
    return key


def _s3_missing(error: ClientError) -> bool:
    return bool(
        error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404
        or error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound")
    )


def _s3_put(storage: S3Storage, name: str, source: IO[bytes], sha256: str, retain_until: date | None) -> None:
    params: dict[str, Any] = {
        "Bucket": storage.bucket_name,
        "Key": _s3_key(storage, name),
        "Body": source,
        "ContentType": "application/json" if name.endswith(".json") else "application/octet-stream",
        # S3 checks the bytes it receives against the hash (and Object Lock
        # needs an integrity header on every upload).
        "ChecksumAlgorithm": "SHA256",
        "ChecksumSHA256": base64.b64encode(bytes.fromhex(sha256)).decode("ascii"),
        # Write once: S3 refuses the PUT when the key exists (412).
        "IfNoneMatch": "*",
    }
    if retain_until is not None:
        params["ObjectLockMode"] = settings.KONTOR_ARCHIVE_LOCK_MODE
        params["ObjectLockRetainUntilDate"] = _end_of_day(retain_until)
    try:
        _s3_client(storage).put_object(**params)
    except ClientError as error:
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 412:
            raise
        _refuse_unless_same(name, sha256)


def _folder_put(storage: FileSystemStorage, name: str, source: IO[bytes], sha256: str) -> None:
    path = Path(storage.path(name))
    if path.exists():
        _refuse_unless_same(name, sha256)
        return
    _make_folders(path.parent, storage.directory_permissions_mode or 0o750, Path(storage.location))
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
    try:
        with os.fdopen(handle, "wb") as out:
            while chunk := source.read(CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, storage.file_permissions_mode or 0o440)
        try:
            # link() never replaces an existing file, unlike rename().
            os.link(temp, path)
        except FileExistsError:
            _refuse_unless_same(name, sha256)
            return
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            # A file system without hard links: the name holds only this
            # content (its hash or chain position), so a race writes the same bytes.
            if path.exists():
                _refuse_unless_same(name, sha256)
                return
            os.rename(temp, path)
        _sync_folder(path.parent)
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)


def _make_folders(folder: Path, mode: int, root: Path) -> None:
    # The storage's root may sit in a data folder not made yet (PostgreSQL and a
    # fresh KONTOR_DATA_DIR): its parents get the default mode, the rest ``mode``.
    root.parent.mkdir(parents=True, exist_ok=True)
    missing: list[Path] = []
    while not folder.exists():
        missing.append(folder)
        if folder == root or folder.parent == folder:
            break
        folder = folder.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        path.chmod(mode)  # explicit: mkdir's mode is cut by the umask


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
