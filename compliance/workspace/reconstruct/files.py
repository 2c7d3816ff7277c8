"""Where a record of a conversation names a file."""

import json
import re
from dataclasses import dataclass

from compliance.models import RecordContent
from compliance.workspace.reconstruct.results import ArchivedFile

SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class FileReference:
    """Where a record of the conversation names a file: the file as captured
    and the record (position and hash) that names it first."""

    file: ArchivedFile
    record_seq: int
    record_sha256: str
    message_id: int
    version: int


def file_reference(conversation_id: int, sha256: str) -> FileReference | None:
    """The first record of the conversation whose message versions name a
    file with this SHA-256, or None. Only readable records count; the text is
    matched in the database first, then confirmed in the parsed revisions (a
    message body quoting a hash is no reference)."""
    if not SHA256.fullmatch(sha256):
        return None
    candidates = (
        RecordContent.objects.filter(
            record__conversation_id=conversation_id, canonical_json__contains=f'"sha256":"{sha256}"'
        )
        .order_by("record__seq")
        .values_list("record__seq", "record__sha256", "canonical_json")
    )
    for seq, record_sha256, content in candidates.iterator(chunk_size=1):
        for entry in json.loads(content).get("events") or []:
            revision, message = entry.get("revision") or {}, entry.get("message") or {}
            for captured in revision.get("files") or []:
                if captured.get("sha256") == sha256 and message.get("id"):
                    return FileReference(
                        file=ArchivedFile.captured(captured),
                        record_seq=seq,
                        record_sha256=record_sha256,
                        message_id=int(message["id"]),
                        version=int(revision.get("number") or 0),
                    )
    return None
