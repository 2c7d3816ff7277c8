"""Building an export's ZIP in a temporary folder, one version at a time:
its formats, the covering records, the attachments (each fetched and checked
through the chain reader: an altered copy is refused and listed, never
replaced), the manifest and its hash."""

import hashlib
import json
import logging
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db.models.functions import Now

from compliance.models import GENESIS_HASH, Export
from compliance.workspace.chain import RecordRef, file_fetch
from compliance.workspace.exports import formats
from compliance.workspace.exports.formats import Attachment, Mbox, Transcript, Version, jsonl_entry
from compliance.workspace.exports.parameters import describe_scope, zone
from compliance.workspace.exports.walk import Walk

logger = logging.getLogger(__name__)

FORMAT = "kontor.export/1"
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class _FileState:
    """What fetching a file found: its bytes match (available), or they were
    refused (``refused``: why), or they are gone."""

    available: bool
    refused: str = ""


class _Files:
    """Each version's files: their bytes for the mbox (read again for every
    version that carries them, never kept), and which ones are missing or
    refused."""

    def __init__(self, *, with_bytes: bool) -> None:
        self.with_bytes = with_bytes
        self.states: dict[str, _FileState] = {}
        self.missing: list[dict[str, Any]] = []
        self.refused: list[dict[str, Any]] = []

    def _fetch(self, sha256: str) -> bytes | None:
        fetched = file_fetch(sha256)
        try:
            data = fetched.content.read() if fetched.content is not None and self.with_bytes else None
        finally:
            fetched.close()
        self.states[sha256] = _FileState(
            available=fetched.content is not None, refused=fetched.problem if fetched.altered else ""
        )
        if fetched.altered:
            logger.warning("Export: file %s refused: %s", sha256, fetched.problem)
        return data

    def of(self, version: Version) -> tuple[list[Attachment], list[dict[str, Any]]]:
        attachments, summaries = [], []
        for summary in version.revision.get("files") or []:
            sha256 = str(summary.get("sha256") or "")
            data = None
            if self.with_bytes or sha256 not in self.states:
                data = self._fetch(sha256)
            state = self.states[sha256]
            attachments.append(Attachment(summary, data, refused=state.refused))
            entry = {**summary, "available": state.available}
            if state.refused:
                entry["refused"] = state.refused
            summaries.append(entry)
            if not state.available:
                named = {
                    "sha256": sha256,
                    "name": summary.get("name"),
                    "message": version.message["id"],
                    "version": version.number,
                }
                if state.refused:
                    self.refused.append({**named, "reason": state.refused})
                else:
                    self.missing.append(named)
        return attachments, summaries


def _hash_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class _Progress:
    """Writes the percentage to the row when it moves (the walk up to 90, the
    transcript up to 95, hashing and zipping up to 99), once per percent."""

    def __init__(self, export: Export) -> None:
        self.export_id, self.shown = export.pk, -1

    def set(self, percent: int, items: int | None = None) -> None:
        percent = max(0, min(99, percent))
        if percent <= self.shown:
            return
        self.shown = percent
        changes: dict[str, Any] = {"progress": percent}
        if items is not None:
            changes["items"] = items
        Export.objects.filter(pk=self.export_id, status=Export.Status.RUNNING).update(**changes)


def _title_page(export: Export, started: datetime, walk: Walk, files: _Files) -> list[tuple[str, str]]:
    case, who = export.case, export.requested_by
    return [
        ("Case", f"{case.name} (case {case.pk})"),
        ("Legal basis", case.legal_basis),
        ("Scope", describe_scope(export.parameters, walk.titles)),
        ("Requested by", f"{who.display_name or who.email} <{who.email}>"),
        ("Exported at", f"{started.astimezone(zone()):%Y-%m-%d %H:%M:%S %Z} (database clock)"),
        (
            "Contents",
            f"{walk.versions} message versions from {len(walk.records)} records",
        ),
        *_refusals(files),
    ]


def _refusals(files: _Files) -> list[tuple[str, str]]:
    """The title page's word on files refused because their copy was altered."""
    refused = {entry["sha256"]: entry for entry in files.refused}
    return [
        (
            "Refused attachments",
            f"{entry['name']} (SHA-256 {sha256}): {entry['reason']}",
        )
        for sha256, entry in refused.items()
    ]


def _manifest(
    export: Export,
    started: datetime,
    walk: Walk,
    files: _Files,
    members: list[dict[str, Any]],
) -> bytes:
    case, who = export.case, export.requested_by
    manifest = {
        "format": FORMAT,
        "export": {
            "id": export.pk,
            "case": {"id": case.pk, "name": case.name, "legal_basis": case.legal_basis, "scope": case.scope},
            "requested_by": {"id": who.pk, "name": who.display_name or who.email, "email": who.email},
            "requested_at": export.requested_at.isoformat(),
            "exported_at": started.isoformat(),
            "parameters": export.parameters,
            "scope": describe_scope(export.parameters, walk.titles),
            "formats": export.formats,
        },
        "counts": {
            "versions": walk.versions,
            "records": len(walk.records),
            "attachments_missing": len(files.missing),
            "attachments_refused": len(files.refused),
        },
        "files": members,
        "records": walk.records,
        "missing_attachments": files.missing,
        # Bytes were found but do not match the SHA-256 the record holds (an
        # altered archive copy): refused, with the reason, never replaced.
        "refused_attachments": files.refused,
        "genesis_hash": GENESIS_HASH,
        "verify": "python3 verify_export.py THIS.zip (Kontor's scripts/verify_export.py)",
    }
    return (json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


def build(export: Export) -> None:
    """Write the export's ZIP to the file storage and mark it done (raises
    ``ExportError`` when it cannot be built as asked)."""
    progress = _Progress(export)
    started = _database_now(export)
    with tempfile.TemporaryDirectory(
        prefix=f"kontor-export-{export.pk}-", dir=getattr(settings, "FILE_UPLOAD_TEMP_DIR", None)
    ) as temp:
        folder = Path(temp)

        def keep(record: RecordRef, content: bytes) -> None:
            path = folder / record.file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)

        walk = Walk(export.parameters, keep)
        walk.on_record = lambda: progress.set(
            90 * walk.events_done // max(walk.events_total, 1), walk.versions
        )
        mbox = Mbox(folder / "messages.mbox") if "mbox" in export.formats else None
        files = _Files(with_bytes=mbox is not None)
        # The JSON Lines are written in any case: the transcript is rendered from them.
        with (folder / "messages.jsonl").open("w", encoding="utf-8") as jsonl:
            for version in walk:
                attachments, summaries = files.of(version)
                if mbox is not None:
                    mbox.add(version, attachments)
                del attachments
                entry = jsonl_entry(version, summaries)
                jsonl.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
        if mbox is not None:
            mbox.close()
        progress.set(90, walk.versions)

        members = []
        if mbox is not None:
            members.append(folder / "messages.mbox")
        if "jsonl" in export.formats:
            members.append(folder / "messages.jsonl")
        if "pdf" in export.formats:
            title = _title_page(export, started, walk, files)
            transcript = Transcript(
                folder, title, walk.records, settings.KONTOR_TIME_ZONE, formats.TRANSCRIPT_VOLUME
            )
            with (folder / "messages.jsonl").open(encoding="utf-8") as lines:
                for number, line in enumerate(lines, 1):
                    transcript.add(json.loads(line))
                    progress.set(90 + 5 * number // max(walk.versions, 1))
            members += transcript.close()
        members += [folder / r["file"] for r in walk.records if r["file"]]

        listed = []
        for path in members:
            sha256, size = _hash_file(path)
            listed.append({"name": path.relative_to(folder).as_posix(), "sha256": sha256, "size": size})
        progress.set(96)
        manifest = _manifest(export, started, walk, files, listed)
        (folder / "manifest.json").write_bytes(manifest)
        (folder / "manifest.sha256").write_text(
            f"{hashlib.sha256(manifest).hexdigest()}  manifest.json\n", encoding="ascii"
        )
        zip_path = folder / "export.zip"
        with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
            for path in [*members, folder / "manifest.json", folder / "manifest.sha256"]:
                archive.write(path, path.relative_to(folder).as_posix())
        progress.set(99)
        sha256, size = _hash_file(zip_path)
        with zip_path.open("rb") as handle:
            key = default_storage.save(f"exports/{export.pk}-{sha256}.zip", File(handle))
    Export.objects.filter(pk=export.pk).update(
        status=Export.Status.DONE,
        progress=100,
        items=walk.versions,
        file_key=key,
        size=size,
        sha256=sha256,
        finished_at=Now(),
        error="",
    )


def _database_now(export: Export) -> datetime:
    """The database's clock (C17): the export's time is not the worker's."""
    now = Export.objects.filter(pk=export.pk).annotate(now=Now()).values_list("now", flat=True).first()
    return now if isinstance(now, datetime) else datetime.now(UTC)
