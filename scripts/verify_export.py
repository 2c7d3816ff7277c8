#!/usr/bin/env python3
"""Check a Kontor archive export offline, with Python's standard library only.

    python3 verify_export.py kontor-export-12.zip [--manifest-sha256 HEX]

What it checks, stopping at the first mismatch (exit 1, naming the file):

1. ``manifest.sha256`` holds the SHA-256 of ``manifest.json`` (and, with
   ``--manifest-sha256``, that is the hash you were given separately, e.g.
   in the letter that came with the export: only then is a consistently
   rewritten ZIP caught too).
2. Every file the manifest lists is in the ZIP with that SHA-256 and size,
   and the ZIP holds nothing else.
3. Every record file hashes to the record's SHA-256 in the manifest, says
   the conversation, position (seq) and previous hash the manifest says, and
   links to the record before it: a record's ``previous_hash`` is the SHA-256
   of the previous record of its conversation when both are in the export
   (the first record of a chain links to 64 zeros).
4. Every message version in ``messages.jsonl`` is in the record it names,
   with the same message, version, kind, time, text and files.
5. Every message in ``messages.mbox`` names a record of the export, and each
   attachment's bytes hash to the SHA-256 its part declares, which its
   record lists for that version.

Exit 0 prints a summary. The ZIP's own SHA-256 (``sha256sum``) can be compared
with the one the exports page and the audit trail show; the records' hashes
with the archive's own (``manage.py verify_archive`` and its daily seals).
Needs Python 3.10 or newer.
"""

import argparse
import email
import hashlib
import json
import mailbox
import os
import shutil
import sys
import tempfile
import zipfile
from typing import Any

CHUNK = 1024 * 1024
GENESIS = "0" * 64
MANIFEST, MANIFEST_HASH = "manifest.json", "manifest.sha256"


class Mismatch(Exception):
    """The export does not verify; the message names the file."""


def sha256_of(archive: zipfile.ZipFile, name: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    try:
        with archive.open(name) as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except zipfile.BadZipFile as error:  # a damaged member fails its CRC
        raise Mismatch(f"{name}: damaged in the ZIP ({error})") from error
    return digest.hexdigest(), size


def read_manifest(archive: zipfile.ZipFile, expected: str | None) -> dict[str, Any]:
    names = set(archive.namelist())
    for name in (MANIFEST, MANIFEST_HASH):
        if name not in names:
            raise Mismatch(f"{name} is missing from the ZIP")
    data = archive.read(MANIFEST)
    actual = hashlib.sha256(data).hexdigest()
    stated = archive.read(MANIFEST_HASH).decode("ascii", "replace").split()
    if not stated or stated[0].lower() != actual:
        raise Mismatch(f"{MANIFEST} does not match {MANIFEST_HASH} (its SHA-256 is {actual})")
    if expected and expected.lower() != actual:
        raise Mismatch(
            f"{MANIFEST} is not the manifest you were given: its SHA-256 is {actual}, not {expected}"
        )
    try:
        manifest = json.loads(data)
    except ValueError as error:
        raise Mismatch(f"{MANIFEST} is not JSON ({error})") from error
    if not isinstance(manifest, dict) or not str(manifest.get("format", "")).startswith("kontor.export/"):
        raise Mismatch(f"{MANIFEST} is not a Kontor export manifest")
    return manifest


def check_files(archive: zipfile.ZipFile, manifest: dict[str, Any]) -> int:
    listed = {}
    for entry in manifest.get("files") or []:
        listed[entry["name"]] = entry
    present = set(archive.namelist())
    for name, entry in listed.items():
        if name not in present:
            raise Mismatch(f"{name} is listed in the manifest but missing from the ZIP")
        digest, size = sha256_of(archive, name)
        if digest != entry.get("sha256"):
            raise Mismatch(f"{name}: its SHA-256 {digest} differs from the manifest's {entry.get('sha256')}")
        if size != entry.get("size"):
            raise Mismatch(f"{name}: its size {size} differs from the manifest's {entry.get('size')}")
    for name in sorted(present - set(listed) - {MANIFEST, MANIFEST_HASH}):
        if not name.endswith("/"):
            raise Mismatch(f"{name} is in the ZIP but not in the manifest")
    return len(listed)


def check_records(
    archive: zipfile.ZipFile, manifest: dict[str, Any]
) -> tuple[dict[str, dict[str, Any]], int]:
    """The records by hash (with their file), after checking each and its links."""
    records: dict[str, dict[str, Any]] = {}
    files = {entry["name"] for entry in manifest.get("files") or []}
    ordered = sorted(manifest.get("records") or [], key=lambda r: (r["conversation"], r["seq"]))
    links = 0
    previous: dict[str, Any] | None = None
    for entry in ordered:
        name = entry.get("file")
        if entry.get("purged"):
            label = f"record {entry['seq']} of conversation {entry['conversation']} (purged)"
        else:
            label = name
            if not name or name not in files:
                raise Mismatch(
                    f"{name or 'a record'} is named by the manifest's records but not listed in its files"
                )
            digest, _size = sha256_of(archive, name)
            if digest != entry["sha256"]:
                raise Mismatch(f"{name} does not match the record's SHA-256 in the manifest")
            try:
                content = json.loads(archive.read(name))
            except ValueError as error:
                raise Mismatch(f"{name} is not JSON ({error})") from error
            stated = (
                (content.get("conversation") or {}).get("id"),
                content.get("seq"),
                content.get("previous_hash"),
            )
            if stated != (entry["conversation"], entry["seq"], entry["previous_hash"]):
                raise Mismatch(
                    f"{name} says conversation/seq/previous hash {stated}, the manifest says otherwise"
                )
        if entry["seq"] == 1 and entry["previous_hash"] != GENESIS:
            raise Mismatch(f"{label} is the first of its chain but does not start it")
        if previous is not None and previous["conversation"] == entry["conversation"]:
            if previous["seq"] == entry["seq"]:
                raise Mismatch(f"{label} appears twice")
            if previous["seq"] + 1 == entry["seq"]:
                links += 1
                if entry["previous_hash"] != previous["sha256"]:
                    raise Mismatch(f"{label} does not link to the record before it ({previous.get('file')})")
        records[entry["sha256"]] = entry
        previous = entry
    record_files = {r.get("file") for r in ordered}
    for name in sorted(files):
        if name.startswith("records/") and name not in record_files:
            raise Mismatch(f"{name} is not among the manifest's records")
    return records, links


class RecordCache:
    """One record's events at a time (versions come in record order)."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive, self.name = archive, ""
        self.events: dict[int, dict[str, Any]] = {}
        self.files: set[str] = set()

    def load(self, name: str) -> None:
        if name != self.name:
            content = json.loads(self.archive.read(name))
            self.events = {int(e["id"]): e for e in content.get("events") or []}
            self.files = {
                str(summary.get("sha256"))
                for event in self.events.values()
                for summary in (event.get("revision") or {}).get("files") or []
            }
            self.name = name

    def events_of(self, name: str) -> dict[int, dict[str, Any]]:
        self.load(name)
        return self.events

    def files_of(self, name: str) -> set[str]:
        """The SHA-256 of every file the record's versions carry."""
        self.load(name)
        return self.files


def check_jsonl(archive: zipfile.ZipFile, records: dict[str, dict[str, Any]]) -> int:
    name = "messages.jsonl"
    if name not in archive.namelist():
        return 0
    cache = RecordCache(archive)
    count = 0
    with archive.open(name) as handle:
        for number, raw in enumerate(handle, 1):
            where = f"{name} line {number}"
            try:
                version = json.loads(raw)
                record_ref = version["record"]
            except (ValueError, KeyError) as error:
                raise Mismatch(f"{where} is not a message version ({error})") from error
            record = records.get(record_ref.get("sha256"))
            if record is None or not record.get("file"):
                raise Mismatch(f"{where}: its record {record_ref.get('file')} is missing from the export")
            event = cache.events_of(record["file"]).get(int(version["event"]["id"]))
            if event is None:
                raise Mismatch(f"{where}: its event is not in {record['file']}")
            revision, message = event.get("revision") or {}, event.get("message") or {}
            expected = (
                message.get("id"),
                revision.get("number"),
                revision.get("kind"),
                revision.get("at") or event.get("at"),
                revision.get("body", ""),
                [f.get("sha256") for f in revision.get("files") or []],
            )
            actual = (
                version["message"]["id"],
                version["version"],
                version["kind"],
                version["at"],
                version["body"],
                [f.get("sha256") for f in version.get("files") or []],
            )
            if actual != expected:
                raise Mismatch(f"{where} differs from its record {record['file']}")
            count += 1
    return count


def check_mbox(archive: zipfile.ZipFile, records: dict[str, dict[str, Any]]) -> tuple[int, int]:
    name = "messages.mbox"
    if name not in archive.namelist():
        return 0, 0
    folder = tempfile.mkdtemp(prefix="verify-export-")
    path = os.path.join(folder, "messages.mbox")
    try:
        with archive.open(name) as source, open(path, "wb") as target:
            shutil.copyfileobj(source, target, CHUNK)
        box = mailbox.mbox(path, create=False)
        cache = RecordCache(archive)
        messages = attachments = 0
        try:
            for number, key in enumerate(box.iterkeys(), 1):
                # compat32 (the default) parses several times faster than policy.default.
                message = email.message_from_bytes(box.get_bytes(key))
                where = f"{name} message {number} ({message.get('Message-ID', 'no Message-ID')})"
                record = records.get(str(message.get("X-Kontor-Record-SHA256", "")).strip())
                if record is None or not record.get("file"):
                    raise Mismatch(f"{where}: the record it names is missing from the export")
                listed = cache.files_of(record["file"])
                for part in message.walk():
                    if part.get_content_disposition() != "attachment":
                        continue
                    declared = str(part.get("X-Kontor-File-SHA256", "")).strip()
                    if str(part.get("X-Kontor-File-Status", "")).strip() == "missing":
                        continue
                    data = part.get_payload(decode=True)
                    if not isinstance(data, bytes):
                        data = b""
                    if hashlib.sha256(data).hexdigest() != declared:
                        raise Mismatch(
                            f"{where}: attachment {part.get_filename()!r} does not match its SHA-256"
                        )
                    if declared not in listed:
                        raise Mismatch(f"{where}: attachment {part.get_filename()!r} is not in its record")
                    attachments += 1
                messages += 1
        finally:
            box.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return messages, attachments


def verify(path: str, expected_manifest: str | None) -> str:
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        raise Mismatch(f"{path} cannot be opened as a ZIP ({error})") from error
    with archive:
        manifest = read_manifest(archive, expected_manifest)
        manifest_hash = hashlib.sha256(archive.read(MANIFEST)).hexdigest()
        files = check_files(archive, manifest)
        records, links = check_records(archive, manifest)
        versions = check_jsonl(archive, records)
        messages, attachments = check_mbox(archive, records)
    export = manifest.get("export") or {}
    case = export.get("case") or {}
    conversations = len({r["conversation"] for r in records.values()})
    return (
        f"OK: {path}\n"
        f"  export {export.get('id')} of case {case.get('id')} ({case.get('name')}), "
        f"made {export.get('exported_at')}\n"
        f"  {files} files match the manifest (manifest SHA-256 {manifest_hash})\n"
        f"  {len(records)} records of {conversations} conversation(s), {links} chain links checked\n"
        f"  {versions} message versions match their records; {messages} mbox messages, "
        f"{attachments} attachments match their hashes"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Kontor archive export (ZIP) offline.")
    parser.add_argument("zip", help="the export's ZIP file")
    parser.add_argument(
        "--manifest-sha256",
        help="the manifest's SHA-256 as you were given it apart from the ZIP",
        default=None,
    )
    args = parser.parse_args(argv)
    try:
        print(verify(args.zip, args.manifest_sha256))
    except Mismatch as error:
        print(f"FAILED: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
