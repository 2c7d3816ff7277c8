"""Exports: a ZIP built from the retention records alone, whose mbox, JSON
Lines, PDF and records a third party can check offline with
``scripts/verify_export.py``; requested and downloaded with one audit event
each, by auditors only, streamed with bounded memory."""

import email
import hashlib
import io
import json
import mailbox
import re
import subprocess
import sys
import tracemalloc
import zipfile
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import generate_totp_secret
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.http import Http404
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader
from pytest_django import DjangoAssertNumQueries, DjangoCaptureOnCommitCallbacks

from accounts.models import User
from archive import services as files
from compliance import archive_store, lifecycle, records, services
from compliance.models import AuditEvent, Case, Export, RecordContent, RetentionRecord
from compliance.workspace import cases, chain, exports
from compliance.workspace import tasks as workspace_tasks
from compliance.workspace.exports import build as export_build
from compliance.workspace.exports import formats as export_formats
from compliance.workspace.exports import walk as export_walk
from messenger import services as chat
from messenger.models import Conversation, Event, Message, MessageRevision
from tests.archive.conftest import png_bytes
from tests.compliance.workspace.tamper import alter_archive_copy, without_guards
from tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("file_storage")]

ROOT = Path(__file__).resolve().parents[3]
VERIFY = ROOT / "scripts" / "verify_export.py"
SHEET = png_bytes((120, 80), "darkorange")  # binary: base64 in the mbox, exact bytes out
# The session, the user, the guard (role, second factor), the navigation's
# roles, the case, the conversations to choose from (three queries of the
# search's choices) and the case's exports.
PAGE_MAX_QUERIES = 12


# --- The cast -----------------------------------------------------------------


def with_totp(user: User) -> User:
    Authenticator.objects.create(
        user=user, type=Authenticator.Type.TOTP, data={"secret": generate_totp_secret()}
    )
    return user


@pytest.fixture
def otto(auditor: User) -> User:
    """The auditor, with the second factor the workspace demands."""
    return with_totp(auditor)


@pytest.fixture
def case(otto: User) -> Case:
    return cases.case_open(
        actor=otto, name="Betriebsprüfung 2026", legal_basis="AO §147 (6): access by the tax auditor"
    )


@pytest.fixture
def otto_client(otto: User) -> Client:
    client = Client(headers={"user-agent": "KontorExportTest/1.0"}, REMOTE_ADDR="203.0.113.9")
    client.force_login(otto)
    return client


@pytest.fixture
def _no_worker(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Exports queued on commit are recorded, not sent to a broker."""
    queued: list[int] = []
    monkeypatch.setattr(workspace_tasks.export, "delay", lambda export_id: queued.append(export_id))
    return queued


@pytest.fixture
def story(alice: User, bob: User, charlie: User) -> dict[str, Any]:
    """A group's history in two records: a file, a reply, an edit, a deletion,
    and charlie joining half-way."""
    group = chat.group_create(actor=alice, name="Angebote", member_ids=[bob.pk])
    sheet = files.file_store(upload=io.BytesIO(SHEET), name="Preise.png", uploader=alice)
    offer = chat.message_send(
        actor=alice, conversation_id=group.pk, body="Angebot anbei: 1.200 EUR", file_ids=[sheet.pk]
    ).message
    reply = chat.message_send(
        actor=bob, conversation_id=group.pk, body="Danke, prüfe ich", reply_to_id=offer.pk
    )
    chat.message_edit(actor=alice, message_id=offer.pk, body="Angebot anbei: 1.100 EUR")
    first = services.snapshot_conversation(conversation_id=group.pk).record
    chat.members_add(actor=alice, conversation_id=group.pk, user_ids=[charlie.pk])
    late = chat.message_send(actor=charlie, conversation_id=group.pk, body="From Freitag bin ich dabei")
    chat.message_delete(actor=alice, message_id=offer.pk)
    second = services.snapshot_conversation(conversation_id=group.pk).record
    assert first is not None and second is not None
    return {
        "group": group,
        "offer": offer,
        "reply": reply.message,
        "late": late.message,
        "records": [first, second],
        "sheet": sheet,
    }


def build(export: Export) -> Export:
    """Run the Celery task eagerly, as the worker would."""
    assert workspace_tasks.export(export.pk) == Export.Status.DONE
    export.refresh_from_db()
    return export


def request_export(
    otto: User,
    case: Case,
    conversation: Conversation,
    formats: tuple[str, ...] = exports.FORMATS,
    since: str | None = None,
    until: str | None = None,
) -> Export:
    return exports.export_request(
        actor=otto,
        case_id=case.pk,
        parameters={"kind": "conversation", "conversation_id": conversation.pk, "from": since, "to": until},
        formats=list(formats),
    )


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def audit_mark() -> int:
    return AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def events_since(mark: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(pk__gt=mark).order_by("pk"))


def zip_of(export: Export) -> zipfile.ZipFile:
    with default_storage.open(export.file_key, "rb") as handle:
        return zipfile.ZipFile(io.BytesIO(handle.read()))


def mbox_messages(archive: zipfile.ZipFile, tmp_path: Path) -> list[EmailMessage]:
    path = tmp_path / "messages.mbox"
    path.write_bytes(archive.read("messages.mbox"))
    box = mailbox.mbox(str(path), create=False)
    try:
        return [email.message_from_bytes(box.get_bytes(key), policy=policy.default) for key in box.iterkeys()]
    finally:
        box.close()


def jsonl(archive: zipfile.ZipFile) -> list[dict[str, Any]]:
    return [json.loads(line) for line in archive.read("messages.jsonl").decode().splitlines()]


def run_verify(path: Path, *more: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(VERIFY), str(path), *more],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def rewrite_zip(source: zipfile.ZipFile, target: Path, change: Callable[[str, bytes], bytes | None]) -> None:
    """A copy of the ZIP with members changed (None leaves one out)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            data = change(info.filename, source.read(info.filename))
            if data is not None:
                out.writestr(info.filename, data)


# --- Requesting ---------------------------------------------------------------


def test_a_request_is_one_audit_event_and_queues_the_task_after_commit(
    otto: User,
    case: Case,
    story: dict[str, Any],
    _no_worker: list[int],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    mark = audit_mark()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        export = request_export(otto, case, story["group"], since="2026-01-01")
        assert _no_worker == []  # nothing leaves before the commit

    for callback in callbacks:
        callback()
    assert _no_worker == [export.pk]
    assert export.status == Export.Status.QUEUED
    assert export.parameters == {
        "kind": "conversation",
        "conversation_id": story["group"].pk,
        "from": "2026-01-01",
        "to": None,
    }
    events = events_since(mark)
    assert [e.kind for e in events] == [AuditEvent.Kind.EXPORT_REQUESTED]
    assert events[0].actor == otto and events[0].case == case
    assert events[0].detail["export"] == export.pk


def test_a_broker_that_is_down_keeps_the_request_and_the_sweep_queues_it_again(
    otto: User,
    otto_client: Client,
    case: Case,
    story: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    def broker_down(export_id: int) -> None:
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    monkeypatch.setattr(workspace_tasks.export, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = otto_client.post(
            reverse("compliance:exports", args=[case.pk]),
            {"kind": "conversation", "conversation": story["group"].pk, "formats": list(exports.FORMATS)},
        )

    # The auditor sees the request accepted, not an error page; the row waits.
    assert response.status_code == 302
    export = Export.objects.get(case=case)
    assert export.status == Export.Status.QUEUED

    queued: list[int] = []
    monkeypatch.setattr(workspace_tasks.export, "delay", lambda export_id: queued.append(export_id))
    assert workspace_tasks.export_requeue() == 0  # a fresh request may just be waiting its turn
    fresh = request_export(otto, case, story["group"])
    done = request_export(otto, case, story["group"])
    Export.objects.filter(pk=done.pk).update(status=Export.Status.DONE)
    stale = timezone.now() - exports.STALE_QUEUED_AFTER - timedelta(seconds=1)
    Export.objects.filter(pk__in=[export.pk, done.pk]).update(requested_at=stale)

    assert workspace_tasks.export_requeue() == 1
    assert queued == [export.pk]  # not the fresh one, not the finished one
    assert fresh.pk not in queued
    # The task builds it as if the first message had arrived.
    built = exports.export_build(export_id=export.pk)
    assert built is not None and built.status == Export.Status.DONE


def test_an_export_whose_worker_died_is_built_again_and_a_live_run_is_left_alone(
    otto: User, case: Case, story: dict[str, Any], _no_worker: list[int]
) -> None:
    abandoned = request_export(otto, case, story["group"])
    running = request_export(otto, case, story["group"])
    now = timezone.now()
    # The worker died an hour into the first; the second is two hours into a long run.
    Export.objects.filter(pk=abandoned.pk).update(
        status=Export.Status.RUNNING,
        progress=40,
        started_at=now - exports.ABANDONED_AFTER - timedelta(hours=1),
    )
    Export.objects.filter(pk=running.pk).update(
        status=Export.Status.RUNNING, progress=40, started_at=now - timedelta(hours=2)
    )

    assert workspace_tasks.export_requeue() == 1
    assert _no_worker == [abandoned.pk]
    assert exports.export_build(export_id=running.pk) is None  # a redelivery leaves the live run alone
    built = exports.export_build(export_id=abandoned.pk)
    assert built is not None and built.status == Export.Status.DONE and built.progress == 100
    assert built.started_at is not None and built.started_at > now - timedelta(minutes=1)
    assert exports.export_build(export_id=abandoned.pk) is None  # done: nothing to claim


def test_beat_queues_lost_exports_again_every_five_minutes() -> None:
    from django.conf import settings

    from config.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["compliance-export-requeue"]
    assert (entry["task"], entry["schedule"]) == ("compliance.export_requeue", 300.0)
    assert "compliance.export_requeue" in app.tasks


def test_a_request_names_what_is_wrong_and_writes_nothing(
    otto: User, case: Case, story: dict[str, Any]
) -> None:
    before = (Export.objects.count(), AuditEvent.objects.count())
    with pytest.raises(ValidationError, match="no conversation 999999"):
        exports.export_request(
            actor=otto, case_id=case.pk, parameters={"conversation_id": 999999}, formats=["mbox"]
        )
    with pytest.raises(ValidationError, match="at least one format"):
        request_export(otto, case, story["group"], formats=())
    with pytest.raises(ValidationError, match="ends before it starts"):
        request_export(otto, case, story["group"], since="2026-02-01", until="2026-01-01")
    assert (Export.objects.count(), AuditEvent.objects.count()) == before


def test_only_an_auditor_with_a_usable_case_may_export(
    otto: User, alice: User, auditor: User, case: Case, story: dict[str, Any]
) -> None:
    with pytest.raises(Http404):
        request_export(alice, case, story["group"])
    cases.case_close(actor=otto, case_id=case.pk, reason="Audit finished")
    with pytest.raises(PermissionDenied, match="closed"):
        request_export(otto, case, story["group"])
    assert not Export.objects.exists()


# --- The ZIP --------------------------------------------------------------------


def test_the_mbox_has_one_message_per_version_with_threading_and_record_hashes(
    otto: User, case: Case, story: dict[str, Any], alice: User, bob: User, charlie: User, tmp_path: Path
) -> None:
    export = build(request_export(otto, case, story["group"]))
    messages = mbox_messages(zip_of(export), tmp_path)

    offer, reply, late = story["offer"], story["reply"], story["late"]
    first, second = story["records"]
    by_id = {str(m["Message-ID"]): m for m in messages}
    assert len(messages) == 5 == MessageRevision.objects.filter(message__conversation=story["group"]).count()
    assert list(by_id) == [
        f"<kontor-message-{offer.pk}-v1@archive.kontor.invalid>",
        f"<kontor-message-{reply.pk}-v1@archive.kontor.invalid>",
        f"<kontor-message-{offer.pk}-v2@archive.kontor.invalid>",
        f"<kontor-message-{late.pk}-v1@archive.kontor.invalid>",
        f"<kontor-message-{offer.pk}-v3@archive.kontor.invalid>",
    ]
    created, answer, edited, joined, deleted = messages
    assert created["From"].addresses[0].addr_spec == alice.email
    assert created["From"].addresses[0].display_name == "Alice Adler"
    assert [a.addr_spec for a in created["To"].addresses] == [bob.email]  # charlie was not a member yet
    assert sorted(a.addr_spec for a in joined["To"].addresses) == sorted([alice.email, bob.email])
    assert created["Subject"] == "Angebote" and edited["Subject"] == "Angebote (edited)"
    assert deleted["Subject"] == "Angebote (deleted)"
    assert answer["In-Reply-To"] == created["Message-ID"]
    assert edited["In-Reply-To"] == created["Message-ID"]
    assert deleted["In-Reply-To"] == edited["Message-ID"]
    assert str(created["Message-ID"]) in str(deleted["References"])
    assert [m["X-Kontor-Record-SHA256"] for m in messages] == [first.sha256] * 3 + [second.sha256] * 2
    assert created["X-Kontor-Conversation"].startswith(f"{story['group'].pk};")
    assert created["Date"].datetime == offer.created_at.replace(microsecond=0)
    assert text_of(created).strip() == "Angebot anbei: 1.200 EUR"
    assert text_of(edited).strip() == "Angebot anbei: 1.100 EUR"
    # mbox escapes a body line starting with "From " (">From "); the JSON Lines keep it exact.
    assert "Freitag bin ich dabei" in text_of(joined)


def test_attachments_are_byte_identical_in_every_version_that_carries_them(
    otto: User, case: Case, story: dict[str, Any], tmp_path: Path
) -> None:
    export = build(request_export(otto, case, story["group"]))
    messages = mbox_messages(zip_of(export), tmp_path)

    carried = [(m["Message-ID"], list(m.iter_attachments())) for m in messages]
    with_file = [parts for _mid, parts in carried if parts]
    assert len(with_file) == 3  # created, edited and deleted versions of the offer
    for parts in with_file:
        (part,) = parts
        assert part.get_filename() == "Preise.png"
        assert part.get_content_type() == story["sheet"].content_type
        assert part.get_payload(decode=True) == SHEET
        assert part["X-Kontor-File-SHA256"] == hashlib.sha256(SHEET).hexdigest()


def test_an_attachment_whose_bytes_are_gone_is_named_not_silently_dropped(
    otto: User, case: Case, story: dict[str, Any], tmp_path: Path, archive_storage: Path, file_storage: Path
) -> None:
    digest = story["sheet"].sha256
    for root in (archive_storage, file_storage):
        for path in root.rglob("*"):
            if path.is_file() and path.read_bytes() == SHEET:
                path.parent.chmod(0o750)
                path.unlink()
    assert archive_store.get(archive_store.file_name(digest)) is None

    export = build(request_export(otto, case, story["group"]))
    archive = zip_of(export)

    manifest = json.loads(archive.read("manifest.json"))
    assert {m["sha256"] for m in manifest["missing_attachments"]} == {digest}
    assert manifest["counts"]["attachments_missing"] == 3
    versions = [v for v in jsonl(archive) if v["files"]]
    assert versions and all(v["files"][0]["available"] is False for v in versions)
    (first_with_file,) = [m for m in mbox_messages(archive, tmp_path) if list(m.iter_attachments())][:1]
    (part,) = first_with_file.iter_attachments()
    assert part.get_filename() == "Preise.png.missing.txt"
    assert digest in part.get_content()


def test_an_attachment_whose_archive_copy_was_altered_is_refused_and_named(
    otto: User, case: Case, story: dict[str, Any], tmp_path: Path, archive_storage: Path
) -> None:
    """The export is built, and says in every part that the file was refused
    and why; the company file storage's intact bytes do not stand in for the
    altered archive copy."""
    digest = story["sheet"].sha256
    alter_archive_copy(archive_storage, digest, b"not the price sheet")
    assert default_storage.open(story["sheet"].storage_key).read() == SHEET

    export = build(request_export(otto, case, story["group"]))
    archive = zip_of(export)

    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["counts"]["attachments_refused"] == 3 and manifest["counts"]["attachments_missing"] == 0
    refused = {(r["sha256"], r["reason"]) for r in manifest["refused_attachments"]}
    assert refused == {(digest, chain.ALTERED_COPY)}
    files = [v["files"][0] for v in jsonl(archive) if v["files"]]
    assert len(files) == 3
    assert all(f["available"] is False and f["refused"] == chain.ALTERED_COPY for f in files)
    parts = [part for m in mbox_messages(archive, tmp_path) for part in m.iter_attachments()]
    assert len(parts) == 3
    for part in parts:
        assert part.get_filename() == "Preise.png.refused.txt" and part["X-Kontor-File-Refused"] == "altered"
        assert "REFUSED" in part.get_content() and digest in part.get_content()
    pdf = PdfReader(io.BytesIO(archive.read("transcript.pdf")))
    transcript = "".join(page.extract_text() for page in pdf.pages)
    assert "Refused attachments" in transcript and "REFUSED, NOT INCLUDED" in transcript
    path = tmp_path / "refused.zip"
    path.write_bytes(default_storage.open(export.file_key).read())
    assert run_verify(path).returncode == 0


def test_the_json_lines_hold_every_version_with_every_field(
    otto: User, case: Case, story: dict[str, Any], alice: User, charlie: User
) -> None:
    export = build(request_export(otto, case, story["group"]))
    versions = jsonl(zip_of(export))

    offer = story["offer"]
    assert [(v["message"]["id"], v["version"], v["kind"]) for v in versions] == [
        (offer.pk, 1, "created"),
        (story["reply"].pk, 1, "created"),
        (offer.pk, 2, "edited"),
        (story["late"].pk, 1, "created"),
        (offer.pk, 3, "deleted"),
    ]
    created, answer, _edited, late, deleted = versions
    assert created["body"] == "Angebot anbei: 1.200 EUR"
    assert late["body"] == "From Freitag bin ich dabei"  # exact, unlike the mbox's escaping
    assert deleted["body"] == "Angebot anbei: 1.100 EUR"  # a deletion keeps what was deleted
    assert created["author"] == {
        "id": alice.pk,
        "name": "Alice Adler",
        "email": alice.email,
        "department": None,
        "active": True,
        "external": False,
    }
    assert answer["message"]["reply_to"] == offer.pk
    assert charlie.pk not in [m["id"] for m in created["members"]]
    assert charlie.pk in [m["id"] for m in late["members"]] and late["members_exact"] is True
    assert created["files"][0] | {"available": True} == created["files"][0]
    assert created["files"][0]["sha256"] == hashlib.sha256(SHEET).hexdigest()
    assert created["record"]["sha256"] == story["records"][0].sha256
    assert deleted["record"]["seq"] == 2
    assert created["conversation"]["name"] == "Angebote"
    event = Event.objects.get(message=offer, type=Event.Type.MESSAGE)
    assert created["event"]["id"] == event.pk
    assert created["email"]["message_id"] == f"<kontor-message-{offer.pk}-v1@archive.kontor.invalid>"
    expected = {"conversation", "message", "version", "kind", "at", "body", "author", "actor", "members"}
    assert expected | {"members_exact", "files", "event", "record", "email"} == set(created)


def test_the_pdf_transcript_names_the_case_and_shows_every_version(
    otto: User, case: Case, story: dict[str, Any]
) -> None:
    export = build(request_export(otto, case, story["group"]))
    data = zip_of(export).read("transcript.pdf")

    assert data.startswith(b"%PDF")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    assert "Betriebsprüfung 2026" in text
    assert "AO §147 (6)" in text
    assert story["records"][0].sha256 in text.replace("\n", "")
    assert "Angebot anbei: 1.200 EUR" in text and "Angebot anbei: 1.100 EUR" in text
    assert "[deleted]" in text and "[edited, version 2]" in text
    assert "Alice Adler" in text


def test_the_records_are_in_the_zip_exactly_as_archived_and_the_manifest_hashes_every_file(
    otto: User, case: Case, story: dict[str, Any]
) -> None:
    export = build(request_export(otto, case, story["group"]))
    archive = zip_of(export)

    manifest_bytes = archive.read("manifest.json")
    manifest = json.loads(manifest_bytes)
    assert archive.read("manifest.sha256").decode().split()[0] == hashlib.sha256(manifest_bytes).hexdigest()
    for record in story["records"]:
        name = archive_store.record_name(record)
        assert archive.read(name) == RecordContent.objects.get(record=record).canonical_json.encode()
        assert archive.read(name) == archive_store.get(name)
    assert [(r["seq"], r["sha256"], r["previous_hash"]) for r in manifest["records"]] == [
        (r.seq, r.sha256, r.previous_hash) for r in story["records"]
    ]
    listed = {f["name"]: f for f in manifest["files"]}
    assert set(listed) | {"manifest.json", "manifest.sha256"} == set(archive.namelist())
    for name, entry in listed.items():
        assert entry["sha256"] == hashlib.sha256(archive.read(name)).hexdigest()
        assert entry["size"] == len(archive.read(name))
    assert manifest["export"]["case"]["name"] == case.name
    assert manifest["export"]["requested_by"]["email"] == otto.email
    assert manifest["export"]["parameters"]["conversation_id"] == story["group"].pk
    assert export.sha256 == hashlib.sha256(default_storage.open(export.file_key).read()).hexdigest()
    assert export.file_key == f"exports/{export.pk}-{export.sha256}.zip"
    assert (export.progress, export.items, export.status) == (100, 5, Export.Status.DONE)


def test_the_same_versions_give_the_same_mbox_in_every_export(
    otto: User, case: Case, story: dict[str, Any]
) -> None:
    """Stable Message-IDs and MIME boundaries: mail tools de-duplicate two
    exports of the same versions instead of doubling them."""
    first = zip_of(build(request_export(otto, case, story["group"]))).read("messages.mbox")
    second = zip_of(build(request_export(otto, case, story["group"]))).read("messages.mbox")

    assert first == second


def test_only_the_chosen_formats_are_built(otto: User, case: Case, story: dict[str, Any]) -> None:
    export = build(request_export(otto, case, story["group"], formats=("jsonl",)))

    names = zip_of(export).namelist()
    assert "messages.jsonl" in names and "messages.mbox" not in names and "transcript.pdf" not in names
    assert any(n.startswith("records/") for n in names) and "manifest.json" in names


def test_a_range_exports_only_the_versions_made_within_it(
    otto: User, case: Case, story: dict[str, Any]
) -> None:
    edit = Event.objects.get(message=story["offer"], type=Event.Type.MESSAGE_EDITED)
    late = Event.objects.get(message=story["late"], type=Event.Type.MESSAGE)
    export = build(
        request_export(
            otto,
            case,
            story["group"],
            since=edit.created_at.isoformat(),
            until=late.created_at.isoformat(),
        )
    )
    versions = jsonl(zip_of(export))

    # From the edit (included) up to the late message (excluded): the edit and
    # charlie's joining, which is no version.
    assert [(v["message"]["id"], v["version"]) for v in versions] == [(story["offer"].pk, 2)]


def test_a_search_export_holds_the_matching_versions_only(
    otto: User, case: Case, story: dict[str, Any], tmp_path: Path
) -> None:
    from compliance.workspace import search

    criteria = search.Criteria(q="Angebot", all_versions=True)
    export = build(
        exports.export_request(
            actor=otto,
            case_id=case.pk,
            parameters={"kind": "search", "search": exports.search_parameters(criteria)},
            formats=list(exports.FORMATS),
        )
    )
    archive = zip_of(export)

    versions = jsonl(archive)
    assert [(v["message"]["id"], v["version"]) for v in versions] == [
        (story["offer"].pk, n) for n in (1, 2, 3)
    ]
    assert len(mbox_messages(archive, tmp_path)) == 3
    assert export.parameters["search"]["q"] == "Angebot"
    assert run_verify(tmp_path / "x.zip").returncode != 0  # no such file: a clear failure
    target = tmp_path / "search.zip"
    target.write_bytes(default_storage.open(export.file_key).read())
    assert run_verify(target).returncode == 0


# --- verify_export.py -------------------------------------------------------------


@pytest.fixture
def exported(otto: User, case: Case, story: dict[str, Any], tmp_path: Path) -> tuple[Export, Path]:
    export = build(request_export(otto, case, story["group"]))
    path = tmp_path / "export.zip"
    path.write_bytes(default_storage.open(export.file_key).read())
    return export, path


def test_verify_export_passes_on_an_export(exported: tuple[Export, Path]) -> None:
    _export, path = exported
    result = run_verify(path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
    assert "2 records" in result.stdout and "5 message versions" in result.stdout


def test_verify_export_checks_the_manifest_hash_it_was_given(exported: tuple[Export, Path]) -> None:
    _export, path = exported
    manifest_hash = zipfile.ZipFile(path).read("manifest.sha256").decode().split()[0]

    assert run_verify(path, "--manifest-sha256", manifest_hash).returncode == 0
    wrong = run_verify(path, "--manifest-sha256", "0" * 64)
    assert wrong.returncode == 1 and "manifest.json" in wrong.stdout + wrong.stderr


@pytest.mark.parametrize("member", ["messages.mbox", "messages.jsonl", "transcript.pdf", "records"])
def test_verify_export_names_a_member_with_one_changed_byte(
    exported: tuple[Export, Path], tmp_path: Path, member: str
) -> None:
    _export, path = exported
    source = zipfile.ZipFile(path)
    target_name = next(n for n in source.namelist() if n.startswith(member))

    def flip(name: str, data: bytes) -> bytes:
        if name != target_name:
            return data
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]

    tampered = tmp_path / "tampered.zip"
    rewrite_zip(source, tampered, flip)
    result = run_verify(tampered)

    assert result.returncode == 1
    assert target_name in result.stdout + result.stderr


def test_verify_export_names_a_removed_record(exported: tuple[Export, Path], tmp_path: Path) -> None:
    _export, path = exported
    source = zipfile.ZipFile(path)
    removed = sorted(n for n in source.namelist() if n.startswith("records/"))[0]
    tampered = tmp_path / "tampered.zip"
    rewrite_zip(source, tampered, lambda name, data: None if name == removed else data)

    result = run_verify(tampered)

    assert result.returncode == 1
    assert removed in result.stdout + result.stderr


def test_verify_export_names_a_record_removed_from_the_manifest_too(
    exported: tuple[Export, Path], tmp_path: Path
) -> None:
    """Even with a consistent new manifest, the versions still name the
    record they came from, and the chain has a gap."""
    _export, path = exported
    source = zipfile.ZipFile(path)
    manifest = json.loads(source.read("manifest.json"))
    removed = manifest["records"][0]
    manifest["records"] = manifest["records"][1:]
    manifest["files"] = [f for f in manifest["files"] if f["name"] != removed["file"]]
    new_manifest = json.dumps(manifest).encode()

    def change(name: str, data: bytes) -> bytes | None:
        if name == removed["file"]:
            return None
        if name == "manifest.json":
            return new_manifest
        if name == "manifest.sha256":
            return f"{hashlib.sha256(new_manifest).hexdigest()}  manifest.json\n".encode()
        return data

    tampered = tmp_path / "tampered.zip"
    rewrite_zip(source, tampered, change)
    result = run_verify(tampered)

    assert result.returncode == 1
    assert removed["file"] in result.stdout + result.stderr


def test_verify_export_uses_the_standard_library_only() -> None:
    source = VERIFY.read_text()
    imported = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from ")) and not line.startswith("from __future__")
    }
    assert imported <= set(sys.stdlib_module_names)
    assert VERIFY.stat().st_mode & 0o111


# --- Building: the task, progress, failure, memory ----------------------------------


def test_a_duplicate_delivery_builds_nothing(otto: User, case: Case, story: dict[str, Any]) -> None:
    export = build(request_export(otto, case, story["group"]))
    key = export.file_key

    assert workspace_tasks.export(export.pk) == "not queued"
    assert workspace_tasks.export(987654) == "not queued"  # gone: nothing to do
    export.refresh_from_db()
    assert export.file_key == key


def test_a_record_that_fails_its_hash_fails_the_export_with_the_reason(
    otto: User, case: Case, story: dict[str, Any]
) -> None:
    record = story["records"][0]
    (read,) = chain.chain_read(RetentionRecord.objects.filter(pk=record.pk), chunk=1)
    forged = chain.content_checked(replace(read.ref, sha256="f" * 64), read.content)
    with pytest.raises(exports.ExportError, match="does not match its hash"):
        export_walk.proven(forged)

    export = request_export(otto, case, story["group"])
    # What a database superuser could do: change the record's content.
    tampered = record.content.canonical_json.replace("1.200 EUR", "1.000 EUR")
    without_guards(
        "UPDATE compliance_recordcontent SET canonical_json = %s WHERE record_id = %s", [tampered, record.pk]
    )
    assert workspace_tasks.export(export.pk) == Export.Status.FAILED
    export.refresh_from_db()
    assert "Record 1 of conversation" in export.error and "does not match its hash" in export.error
    assert export.file_key == ""


@pytest.fixture
def keyed(settings: Any) -> Any:
    """An archive sealed with an HMAC key (requested before the story, so its records carry one)."""
    settings.KONTOR_ARCHIVE_HMAC_KEY = "the company's key"
    return settings


def test_a_record_that_fails_its_hmac_fails_the_export_with_the_reason(
    keyed: Any, otto: User, case: Case, story: dict[str, Any]
) -> None:
    """Content, hash and links rewritten consistently by someone without the
    key: only the HMAC gives it away, and the export is refused."""
    keyed.KONTOR_ARCHIVE_HMAC_KEY = "not the key the records were sealed with"
    export = request_export(otto, case, story["group"])

    assert workspace_tasks.export(export.pk) == Export.Status.FAILED
    export.refresh_from_db()
    assert "Record 1 of conversation" in export.error and "does not match its HMAC" in export.error


def test_after_a_purged_record_each_version_has_the_members_of_its_moment(
    otto: User, case: Case, alice: User, bob: User, charlie: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Record 1 is purged: the members come from record 2's capture, wound
    back over its own events, so charlie (added in record 2) is not a
    recipient of what was written before he came."""
    monkeypatch.setattr(records, "retain_until", lambda policy, made_on: date(2015, 12, 31))
    group = chat.group_create(actor=alice, name="Einkauf", member_ids=[bob.pk])
    chat.message_send(actor=alice, conversation_id=group.pk, body="Uralt")
    services.snapshot_conversation(conversation_id=group.pk)
    monkeypatch.setattr(records, "retain_until", lambda policy, made_on: date.today() + timedelta(days=3650))
    before = chat.message_send(actor=alice, conversation_id=group.pk, body="Vor Charlie").message
    chat.members_add(actor=alice, conversation_id=group.pk, user_ids=[charlie.pk])
    after = chat.message_send(actor=alice, conversation_id=group.pk, body="Mit Charlie").message
    services.snapshot_conversation(conversation_id=group.pk)
    assert lifecycle.purge_expired().purged == 1

    export = build(request_export(otto, case, group, formats=("jsonl",)))
    versions = {v["message"]["id"]: v for v in jsonl(zip_of(export))}

    assert {p["id"] for p in versions[before.pk]["members"]} == {alice.pk, bob.pk}
    assert {p["id"] for p in versions[after.pk]["members"]} == {alice.pk, bob.pk, charlie.pk}
    assert versions[before.pk]["members_exact"] is False


def test_progress_is_written_as_the_export_runs_and_reaches_100(
    otto: User, case: Case, story: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    export = request_export(otto, case, story["group"])
    seen: list[int] = []
    update = export_build._Progress.set

    def watch(self: export_build._Progress, percent: int, items: int | None = None) -> None:
        update(self, percent, items)
        seen.append(Export.objects.get(pk=export.pk).progress)

    monkeypatch.setattr(export_build._Progress, "set", watch)
    build(export)

    assert seen == sorted(seen) and seen[0] < 90 and 90 in seen and seen[-1] == 99
    assert Export.objects.get(pk=export.pk).progress == 100


def bulk_history(conversation: Conversation, author: User, count: int, body: str) -> None:
    """``count`` messages written the way the services write them (message,
    revision 1, journal event), in bulk: the services take ~10 ms each."""
    start = conversation.last_seq
    messages = Message.objects.bulk_create(
        Message(conversation=conversation, author=author, seq=start + n + 1, body=f"{n} {body}", html="")
        for n in range(count)
    )
    revisions = MessageRevision.objects.bulk_create(
        MessageRevision(message=m, number=1, kind="created", body=m.body, actor=author, files=[])
        for m in messages
    )
    Event.objects.bulk_create(
        Event(conversation=conversation, type=Event.Type.MESSAGE, actor=author, message=m, revision=r)
        for m, r in zip(messages, revisions, strict=True)
    )
    Conversation.objects.filter(pk=conversation.pk).update(last_seq=start + count)


def _peak_of_export(otto: User, case: Case, conversation: Conversation) -> tuple[int, Export]:
    export = request_export(otto, case, conversation, formats=("mbox", "jsonl"))
    tracemalloc.start()
    try:
        export = build(export)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, export


def test_a_large_export_streams_within_bounded_memory(
    otto: User, case: Case, alice: User, bob: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5,000 versions of 2 KB each: the export's peak memory is a fraction of
    what it writes, and hardly more than for 1,000 versions. (The transcript
    is bounded by its volumes, below.)"""
    monkeypatch.setattr(services, "MAX_EVENTS_PER_RECORD", 250)
    body = ("Quartalszahlen und Preise, bitte vertraulich behandeln. " * 36)[:2000]
    small = chat.direct_open(actor=alice, other_user_id=bob.pk)
    large = chat.group_create(actor=alice, name="Bulk", member_ids=[bob.pk])
    bulk_history(small, alice, 1000, body)
    bulk_history(large, alice, 5000, body)
    for conversation in (small, large):
        while services.snapshot_conversation(conversation_id=conversation.pk).record is not None:
            pass

    small_peak, _ = _peak_of_export(otto, case, small)
    large_peak, export = _peak_of_export(otto, case, large)

    written = sum(info.file_size for info in zip_of(export).infolist())
    assert export.items == 5000 and export.progress == 100
    assert written > 30_000_000
    # About 3.5 MB for 40 MB written; holding the versions would need ten times that.
    assert large_peak < written / 8, (large_peak, written)
    # 4,000 versions more cost well under 1.5 MB more (the mbox's table of offsets).
    assert large_peak < small_peak + 1_500_000, (small_peak, large_peak)


def test_a_long_transcript_is_split_into_volumes(
    otto: User, case: Case, story: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """fpdf2 holds a document in memory until it is written: volumes bound it."""
    monkeypatch.setattr(export_formats, "TRANSCRIPT_VOLUME", 2)
    export = build(request_export(otto, case, story["group"], formats=("pdf",)))
    archive = zip_of(export)

    volumes = sorted(n for n in archive.namelist() if n.startswith("transcript"))
    assert volumes == ["transcript-001.pdf", "transcript-002.pdf", "transcript-003.pdf"]
    texts = ["".join(p.extract_text() for p in PdfReader(io.BytesIO(archive.read(v))).pages) for v in volumes]
    assert "Volume 2, continuing transcript-001.pdf" in texts[1]
    assert all(case.name in text for text in texts)
    assert "Angebot anbei: 1.200 EUR" in texts[0] and "[deleted]" in texts[2]
    path = tmp_path / "volumes.zip"
    path.write_bytes(default_storage.open(export.file_key).read())
    assert run_verify(path).returncode == 0


# --- Pages --------------------------------------------------------------------------


def test_the_exports_page_lists_the_case_exports_with_progress_and_a_download(
    otto: User, case: Case, story: dict[str, Any], otto_client: Client
) -> None:
    done = build(request_export(otto, case, story["group"]))
    running = request_export(otto, case, story["group"], formats=("pdf",))
    Export.objects.filter(pk=running.pk).update(status=Export.Status.RUNNING, progress=42)
    url = reverse("compliance:exports", args=[case.pk])
    mark = audit_mark()

    page = otto_client.get(url)

    html = page.content.decode()
    assert page.status_code == 200
    download = reverse("compliance:export_download", args=[case.pk, done.pk])
    assert f'href="{download}"' in html
    status = reverse("compliance:export_status", args=[case.pk, running.pk])
    assert f'hx-get="{status}"' in html and 'hx-trigger="every 1s"' in html
    assert 'value="42"' in html
    # done: no polling
    assert f'hx-get="{reverse("compliance:export_status", args=[case.pk, done.pk])}"' not in html
    assert f"{done.sha256[:32]}<br>{done.sha256[32:]}" in html
    assert "Angebote (conversation" in html
    assert "<script>" not in html and " style=" not in html
    assert events_since(mark) == []  # listing is no look into the archive


def test_the_row_stops_polling_when_the_export_is_done(
    otto: User, case: Case, story: dict[str, Any], otto_client: Client
) -> None:
    export = request_export(otto, case, story["group"])
    url = reverse("compliance:export_status", args=[case.pk, export.pk])
    assert "every 1s" in otto_client.get(url, headers={"hx-request": "true"}).content.decode()

    build(export)
    row = otto_client.get(url, headers={"hx-request": "true"}).content.decode()

    assert "every 1s" not in row and "Download" in row and 'value="100"' in row


def test_the_page_queries_do_not_grow_with_the_exports(
    otto: User,
    case: Case,
    story: dict[str, Any],
    otto_client: Client,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    url = reverse("compliance:exports", args=[case.pk])
    request_export(otto, case, story["group"])
    with django_assert_max_num_queries(PAGE_MAX_QUERIES) as few:
        otto_client.get(url)
    for _ in range(5):
        request_export(otto, case, story["group"])
    with django_assert_max_num_queries(PAGE_MAX_QUERIES) as many:
        otto_client.get(url)
    assert len(many.captured_queries) == len(few.captured_queries)


def test_the_form_requests_an_export_with_one_audit_event(
    case: Case,
    story: dict[str, Any],
    otto_client: Client,
    _no_worker: list[int],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    url = reverse("compliance:exports", args=[case.pk])
    mark = audit_mark()
    with django_capture_on_commit_callbacks(execute=True):
        response = otto_client.post(
            url,
            {
                "kind": "conversation",
                "conversation": story["group"].pk,
                "date_from": "2020-01-01",
                "formats": ["mbox", "pdf"],
            },
        )

    assert response.status_code == 302 and response["Location"] == url
    export = Export.objects.get()
    assert export.formats == ["mbox", "pdf"] and export.parameters["from"] == "2020-01-01"
    assert _no_worker == [export.pk]
    (event,) = events_since(mark)
    assert event.kind == AuditEvent.Kind.EXPORT_REQUESTED
    assert (event.ip, event.user_agent) == ("203.0.113.9", "KontorExportTest/1.0")


def test_the_form_shows_what_is_wrong(case: Case, story: dict[str, Any], otto_client: Client) -> None:
    url = reverse("compliance:exports", args=[case.pk])

    response = otto_client.post(
        url, {"kind": "conversation", "conversation": story["group"].pk, "formats": []}
    )

    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert not Export.objects.exists()


def test_the_search_page_can_export_its_results(
    case: Case, story: dict[str, Any], otto_client: Client, _no_worker: list[int]
) -> None:
    url = reverse("compliance:exports", args=[case.pk])

    response = otto_client.post(url, {"kind": "search", "q": "Angebot", "all_versions": "on"})

    assert response.status_code == 302
    export = Export.objects.get()
    assert export.parameters["kind"] == "search"
    assert export.parameters["search"]["q"] == "Angebot" and export.parameters["search"]["all_versions"]


def test_the_search_pages_export_button_carries_the_search_over(
    case: Case, story: dict[str, Any], otto_client: Client, _no_worker: list[int]
) -> None:
    """``export_search_form.html``, included under a search's results, posts
    the same criteria: the export holds what the auditor searched for."""
    from compliance.workspace import search
    from compliance.workspace.forms.search import SearchForm

    criteria = {"q": "Angebot", "conversation": str(story["group"].pk), "date_from": "2020-01-01"}
    form = SearchForm({**criteria, "all_versions": "on"}, choices=search.filter_choices())
    assert form.is_valid(), form.errors
    html = render_to_string("compliance/export_search_form.html", {"form": form, "case": case})
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))
    assert fields.pop("csrfmiddlewaretoken", None) is None  # rendered without a request: no token
    assert f'action="{reverse("compliance:exports", args=[case.pk])}"' in html

    response = otto_client.post(reverse("compliance:exports", args=[case.pk]), fields)

    assert response.status_code == 302
    given = Export.objects.get().parameters["search"]
    assert (given["q"], given["conversation_id"], given["date_from"], given["all_versions"]) == (
        "Angebot",
        story["group"].pk,
        "2020-01-01",
        True,
    )
    assert given["has_files"] is False


def test_a_download_streams_the_zip_with_one_audit_event(
    otto: User, case: Case, story: dict[str, Any], otto_client: Client
) -> None:
    export = build(request_export(otto, case, story["group"]))
    url = reverse("compliance:export_download", args=[case.pk, export.pk])
    mark = audit_mark()

    response = otto_client.get(url)

    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert hashlib.sha256(body).hexdigest() == export.sha256
    assert f'filename="kontor-export-{export.pk}.zip"' in response["Content-Disposition"]
    (event,) = events_since(mark)
    assert (event.kind, event.actor, event.case) == (AuditEvent.Kind.EXPORT_DOWNLOADED, otto, case)
    assert event.detail["sha256"] == export.sha256


def test_an_unfinished_or_foreign_export_cannot_be_downloaded(
    otto: User, case: Case, story: dict[str, Any], otto_client: Client
) -> None:
    queued = request_export(otto, case, story["group"])
    other = cases.case_open(actor=otto, name="Other matter", legal_basis="GoBD")
    done = build(request_export(otto, other, story["group"]))
    mark = audit_mark()

    assert (
        otto_client.get(reverse("compliance:export_download", args=[case.pk, queued.pk])).status_code == 404
    )
    assert otto_client.get(reverse("compliance:export_download", args=[case.pk, done.pk])).status_code == 404
    assert events_since(mark) == []


@pytest.mark.parametrize("who", ["alice", "hr_user", "auditor_without_mfa", "anonymous"])
def test_everyone_but_an_auditor_gets_404(
    who: str, request: pytest.FixtureRequest, case: Case, story: dict[str, Any], otto: User
) -> None:
    export = build(request_export(otto, case, story["group"]))
    client = Client()
    if who == "auditor_without_mfa":
        client.force_login(make_user(email="ida.audit@kontor.example", roles=["Auditors"]))
    elif who != "anonymous":
        client.force_login(request.getfixturevalue(who))
    mark = audit_mark()

    for url in (
        reverse("compliance:exports", args=[case.pk]),
        reverse("compliance:export_status", args=[case.pk, export.pk]),
        reverse("compliance:export_download", args=[case.pk, export.pk]),
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("compliance:exports", args=[case.pk]), {"conversation": 1}).status_code == 404
    assert events_since(mark) == [] and Export.objects.count() == 1


def test_a_closed_case_opens_no_export(
    otto: User, case: Case, story: dict[str, Any], otto_client: Client
) -> None:
    export = build(request_export(otto, case, story["group"]))
    cases.case_close(actor=otto, case_id=case.pk, reason="Done")

    mark = audit_mark()

    download = otto_client.get(reverse("compliance:export_download", args=[case.pk, export.pk]))
    page = otto_client.get(reverse("compliance:exports", args=[case.pk]))

    assert download.status_code == page.status_code == 403
    assert "This case is closed" in page.content.decode()
    assert events_since(mark) == []  # nothing was downloaded


def test_a_search_offers_to_export_its_results(
    case: Case, story: dict[str, Any], otto_client: Client
) -> None:
    page = otto_client.get(reverse("compliance:search", args=[case.pk]), {"q": "Angebot"}).content.decode()

    assert "Export these results" in page
    assert f'action="{reverse("compliance:exports", args=[case.pk])}"' in page
