"""The archive storage's write-once copies of records and their files.

In a folder (the default) and in an S3 bucket with Object Lock, served by
moto's standalone server on loopback. moto answers ``get_object_retention``
with a 500 and accepts a shortened COMPLIANCE retention, so the lock is read
from ``head_object`` and "never shortened" is checked on what Kontor asked for.
"""

import hashlib
import io
import stat
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from django.core.files.storage import storages
from django.core.management import CommandError, call_command
from moto.server import ThreadedMotoServer
from storages.backends.s3 import S3Storage

from accounts.models import User
from archive import services as files
from compliance import archive_store, lifecycle, records, services
from compliance.models import RecordContent, RecordPerson, RetentionRecord
from compliance.verification import verify
from messenger import services as chat
from messenger.models import Conversation
from tests.archive.conftest import PDF
from tests.config.test_settings import _run as run_python

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("file_storage")]

BUCKET = "kontor-archive"
REGION = "us-east-1"


def snapshot_with_file(alice: User, dm: Conversation, body: str = "Angebot anbei") -> RetentionRecord:
    stored = files.file_store(upload=io.BytesIO(PDF), name="Angebot.pdf", uploader=alice)
    chat.message_send(actor=alice, conversation_id=dm.pk, body=body, file_ids=[stored.pk])
    record = services.snapshot_conversation(conversation_id=dm.pk).record
    assert record is not None
    return record


def snapshot(alice: User, dm: Conversation, body: str) -> RetentionRecord:
    chat.message_send(actor=alice, conversation_id=dm.pk, body=body)
    record = services.snapshot_conversation(conversation_id=dm.pk).record
    assert record is not None
    return record


def broken(conversation: Conversation) -> str:
    """Run ``verify_archive`` expecting it to fail; what it told the operator."""
    err = io.StringIO()
    with pytest.raises(CommandError, match="BROKEN"):
        call_command("verify_archive", stdout=io.StringIO(), stderr=err)
    return err.getvalue()


def rewrite(path: Path, data: bytes) -> None:
    """What someone with shell access would do to a read-only copy."""
    path.chmod(0o640)
    path.write_bytes(data)


# --- In a folder --------------------------------------------------------------


def test_a_snapshot_writes_its_json_and_its_files_as_read_only_copies(
    alice: User, dm: Conversation, archive_storage: Path
) -> None:
    record = snapshot_with_file(alice, dm)

    copy = archive_storage / archive_store.record_name(record)
    assert copy.relative_to(archive_storage).as_posix() == (f"records/{dm.pk}/00000001-{record.sha256}.json")
    assert copy.read_bytes() == RecordContent.objects.get(record=record).canonical_json.encode()
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == record.sha256
    sha256 = hashlib.sha256(PDF).hexdigest()
    file_copy = archive_storage / "files" / sha256[:2] / sha256[2:4] / sha256
    assert file_copy.read_bytes() == PDF
    for path in (copy, file_copy):
        assert stat.S_IMODE(path.stat().st_mode) == 0o440
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o750
    leftovers = [p.name for p in archive_storage.rglob(".incoming-*")]
    assert leftovers == []
    assert verify().ok


def test_a_file_shared_by_two_records_is_copied_once(
    alice: User, dm: Conversation, archive_storage: Path
) -> None:
    first = snapshot_with_file(alice, dm, "first")
    second = snapshot_with_file(alice, dm, "second")

    assert (first.seq, second.seq) == (1, 2)
    assert len([p for p in (archive_storage / "files").rglob("*") if p.is_file()]) == 1
    assert verify().ok


def test_verify_archive_names_the_record_whose_copy_was_altered(
    alice: User, dm: Conversation, archive_storage: Path
) -> None:
    snapshot(alice, dm, "Preis: 1.200 EUR")
    second = snapshot(alice, dm, "Lieferung am Montag")
    copy = archive_storage / archive_store.record_name(second)
    rewrite(copy, copy.read_bytes().replace(b"Montag", b"Freitag"))

    err = broken(dm)

    assert f"conversation {dm.pk}, record 2 (id {second.pk})" in err
    assert "differs" in err
    assert "record 1 " not in err


def test_verify_archive_names_the_record_whose_copy_was_removed(
    alice: User, dm: Conversation, archive_storage: Path
) -> None:
    record = snapshot(alice, dm, "Vertrag unterschrieben")
    (archive_storage / archive_store.record_name(record)).unlink()

    err = broken(dm)

    assert f"conversation {dm.pk}, record 1 (id {record.pk})" in err
    assert "missing" in err
    # Skipping the copies (slow on S3) passes, and says what it left out.
    out = io.StringIO()
    call_command("verify_archive", "--skip-copies", stdout=out)
    assert "archive storage copies NOT checked" in out.getvalue()


@pytest.mark.parametrize("damage", ["altered", "removed"])
def test_verify_archive_names_the_record_whose_file_copy_was_damaged(
    alice: User, dm: Conversation, archive_storage: Path, damage: str
) -> None:
    record = snapshot_with_file(alice, dm)
    file_copy = archive_storage / archive_store.file_name(hashlib.sha256(PDF).hexdigest())
    if damage == "altered":
        rewrite(file_copy, PDF.replace(b"Catalog", b"Katalog"))
    else:
        file_copy.unlink()

    err = broken(dm)

    assert f"conversation {dm.pk}, record 1 (id {record.pk})" in err
    assert "Angebot.pdf" in err
    assert ("does not match" if damage == "altered" else "is missing") in err


def test_put_never_overwrites_an_archived_name(archive_storage: Path) -> None:
    name = archive_store.seal_name(1, "ab" * 32)
    archive_store.put(name, b'{"heads":1}', date(2032, 12, 31))
    archive_store.put(name, b'{"heads":1}', date(2032, 12, 31))  # the same bytes: nothing happens

    with pytest.raises(archive_store.ArchiveConflict, match="never overwritten"):
        archive_store.put(name, b'{"heads":2}', date(2032, 12, 31))

    assert archive_store.get(name) == b'{"heads":1}'
    assert (archive_storage / "seals" / f"00000001-{'ab' * 32}.json").read_bytes() == b'{"heads":1}'
    assert archive_store.get("seals/never-written.json") is None


def test_a_writer_that_loses_a_race_does_not_replace_the_winners_copy(
    archive_storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = archive_store.seal_name(2, "ab" * 32)
    target = archive_storage / name
    make_temp = tempfile.mkstemp

    def racing(*args: Any, **kwargs: Any) -> tuple[int, str]:
        target.write_bytes(b"theirs")  # another process got there in between
        return make_temp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", racing)

    with pytest.raises(archive_store.ArchiveConflict):
        archive_store.put(name, b"ours", date(2032, 12, 31))

    assert target.read_bytes() == b"theirs"
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_a_snapshot_retried_after_a_failure_writes_the_same_copy(
    alice: User, dm: Conversation, archive_storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat.message_send(actor=alice, conversation_id=dm.pk, body="retry me")

    def fail(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("the database went away")

    with monkeypatch.context() as patch:
        patch.setattr(RecordPerson.objects, "bulk_create", fail)
        with pytest.raises(ConnectionError):
            services.snapshot_conversation(conversation_id=dm.pk)
    assert not RetentionRecord.objects.exists()
    written = sorted(p.relative_to(archive_storage) for p in archive_storage.rglob("*.json"))

    record = services.snapshot_conversation(conversation_id=dm.pk).record

    assert record is not None
    assert written == [Path(archive_store.record_name(record))]
    assert verify().ok


def test_the_purge_deletes_the_record_copy_and_keeps_the_file_copies(
    alice: User, dm: Conversation, archive_storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "retain_until", lambda policy, made_on: date(2015, 12, 31))
    record = snapshot_with_file(alice, dm)

    assert lifecycle.purge_expired().purged == 1

    assert not (archive_storage / archive_store.record_name(record)).exists()
    assert (archive_storage / archive_store.file_name(hashlib.sha256(PDF).hexdigest())).exists()
    report = verify()
    assert report.ok and report.purged == 1


# --- In an S3 bucket with Object Lock ------------------------------------------


@pytest.fixture(scope="module")
def s3_client() -> Iterator[Any]:
    """An S3 server on a free loopback port, with a bucket made with Object Lock."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = boto3.client(
            "s3",
            endpoint_url=f"http://{host}:{port}",
            region_name=REGION,
            aws_access_key_id="kontor-test-access",
            aws_secret_access_key="kontor-test-secret",
            config=boto3.session.Config(s3={"addressing_style": "path"}),
        )
        client.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        yield client
    finally:
        server.stop()


@pytest.fixture
def s3_archive(settings: Any, s3_client: Any) -> Any:
    """The archive storage in the bucket, as ``KONTOR_ARCHIVE_STORAGE=s3`` configures it.

    Locked versions cannot be removed between tests: each test writes under a
    prefix of its own instead (the storage's ``location``)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_client.meta.endpoint_url,
                "region_name": REGION,
                "access_key": "kontor-test-access",
                "secret_key": "kontor-test-secret",
                "addressing_style": "path",
                "default_acl": None,
                "file_overwrite": False,
                "location": f"test-{datetime.now(UTC).timestamp()}",
            },
        },
    }
    return s3_client


def key(name: str) -> str:
    storage = storages["archive"]
    assert isinstance(storage, S3Storage)
    return f"{storage.location}/{name}"


def end_of(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def test_on_s3_each_copy_is_locked_in_compliance_mode_until_its_retention_ends(
    alice: User, dm: Conversation, s3_archive: Any
) -> None:
    record = snapshot_with_file(alice, dm)
    record_key = key(archive_store.record_name(record))
    file_key = key(archive_store.file_name(hashlib.sha256(PDF).hexdigest()))

    for object_key in (record_key, file_key):
        head = s3_archive.head_object(Bucket=BUCKET, Key=object_key)
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert head["ObjectLockRetainUntilDate"] == end_of(record.retain_until)
    kept = s3_archive.get_object(Bucket=BUCKET, Key=record_key)["Body"].read()
    assert kept == record.content.canonical_json.encode()
    assert hashlib.sha256(kept).hexdigest() == record.sha256
    assert s3_archive.get_object(Bucket=BUCKET, Key=file_key)["Body"].read() == PDF
    assert verify().ok


def test_on_s3_governance_mode_is_used_when_configured(
    alice: User, dm: Conversation, s3_archive: Any, settings: Any
) -> None:
    settings.KONTOR_ARCHIVE_LOCK_MODE = "GOVERNANCE"
    record = snapshot(alice, dm, "governed")

    head = s3_archive.head_object(Bucket=BUCKET, Key=key(archive_store.record_name(record)))

    assert head["ObjectLockMode"] == "GOVERNANCE"


def test_on_s3_deleting_a_locked_copy_is_refused_and_hiding_it_is_noticed(
    alice: User, dm: Conversation, s3_archive: Any
) -> None:
    record = snapshot(alice, dm, "Beweis")
    record_key = key(archive_store.record_name(record))
    version = s3_archive.head_object(Bucket=BUCKET, Key=record_key)["VersionId"]

    with pytest.raises(ClientError, match="AccessDenied"):
        s3_archive.delete_object(Bucket=BUCKET, Key=record_key, VersionId=version)
    with pytest.raises(ClientError, match="AccessDenied"):
        archive_store.delete(archive_store.record_name(record))
    assert s3_archive.get_object(Bucket=BUCKET, Key=record_key, VersionId=version)["Body"].read() == (
        record.content.canonical_json.encode()
    )
    # A plain DELETE only puts a delete marker on top: the bytes stay, and
    # verification notices the copy is no longer there to read.
    s3_archive.delete_object(Bucket=BUCKET, Key=record_key)
    assert f"conversation {dm.pk}, record 1 (id {record.pk}): its archive copy" in broken(dm)


def test_on_s3_put_never_overwrites_an_archived_name(s3_archive: Any) -> None:
    name = archive_store.seal_name(7, "cd" * 32)
    archive_store.put(name, b'{"heads":1}', date(2032, 12, 31))
    archive_store.put(name, b'{"heads":1}', date(2032, 12, 31))

    with pytest.raises(archive_store.ArchiveConflict, match="never overwritten"):
        archive_store.put(name, b'{"heads":2}', date(2032, 12, 31))

    versions = s3_archive.list_object_versions(Bucket=BUCKET, Prefix=key(name)).get("Versions", [])
    assert len(versions) == 1
    assert archive_store.get(name) == b'{"heads":1}'
    assert archive_store.get("seals/never-written.json") is None


def test_on_s3_retention_is_lengthened_and_never_shortened(s3_archive: Any) -> None:
    name = archive_store.file_name("ef" * 32)
    archive_store.put(name, b"bytes", date(2030, 6, 30))

    archive_store.extend(name, date(2033, 12, 31))
    archive_store.extend(name, date(2031, 1, 1))

    head = s3_archive.head_object(Bucket=BUCKET, Key=key(name))
    assert head["ObjectLockRetainUntilDate"] == end_of(date(2033, 12, 31))
    assert head["ObjectLockMode"] == "COMPLIANCE"


def test_on_s3_a_file_shared_by_a_longer_kept_record_is_kept_longer(
    alice: User, dm: Conversation, s3_archive: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = snapshot_with_file(alice, dm, "first")
    later = first.retain_until + timedelta(days=3650)
    monkeypatch.setattr(records, "retain_until", lambda policy, made_on: later)
    snapshot_with_file(alice, dm, "second")

    head = s3_archive.head_object(
        Bucket=BUCKET, Key=key(archive_store.file_name(hashlib.sha256(PDF).hexdigest()))
    )

    assert head["ObjectLockRetainUntilDate"] == end_of(later)


def test_on_s3_delete_removes_every_version_once_nothing_locks_it(s3_archive: Any) -> None:
    name = archive_store.seal_name(9, "01" * 32)
    archive_store.put(name, b"unlocked", None)
    s3_archive.delete_object(Bucket=BUCKET, Key=key(name))  # a delete marker on top

    archive_store.delete(name)

    listing = s3_archive.list_object_versions(Bucket=BUCKET, Prefix=key(name))
    assert listing.get("Versions", []) == listing.get("DeleteMarkers", []) == []


# --- Configuration -------------------------------------------------------------


def test_the_archive_bucket_is_configured_from_the_environment(tmp_path: Path) -> None:
    code = (
        "import os, django\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'\n"
        "django.setup()\n"
        "from django.conf import settings\n"
        "from django.core.files.storage import storages\n"
        "s = storages['archive']\n"
        "print(type(s).__name__, s.bucket_name, s.endpoint_url, s.file_overwrite,"
        " settings.KONTOR_ARCHIVE_LOCK_MODE)\n"
    )
    env = {
        "KONTOR_ARCHIVE_STORAGE": "s3",
        "ARCHIVE_S3_BUCKET": "kontor-worm",
        "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "KONTOR_ARCHIVE_LOCK_MODE": "governance",
    }

    result = run_python(tmp_path, env, "-c", code)
    refused = run_python(tmp_path, {"KONTOR_ARCHIVE_STORAGE": "s3"}, "-c", "import config.settings")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "S3Storage",
        "kontor-worm",
        "http://127.0.0.1:9000",
        "False",
        "GOVERNANCE",
    ]
    assert refused.returncode != 0 and "ARCHIVE_S3_BUCKET" in refused.stderr


def test_the_default_archive_storage_is_a_read_only_folder_in_the_data_folder(tmp_path: Path) -> None:
    code = (
        "import os, django\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'\n"
        "django.setup()\n"
        "from django.conf import settings\n"
        "from django.core.files.storage import storages\n"
        "s = storages['archive']\n"
        "print(type(s).__name__, s.location, oct(s.file_permissions_mode), oct(s.directory_permissions_mode),"
        " settings.KONTOR_ARCHIVE_LOCK_MODE)\n"
    )

    result = run_python(tmp_path, {}, "-c", code)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "FileSystemStorage",
        str((tmp_path / "data" / "archive").resolve()),
        "0o440",
        "0o750",
        "COMPLIANCE",
    ]
