"""The archive's search index (``ArchivedMessage``): one row per message
version in a retention record, derived from the record's content alone.

- Written by ``compliance.services.snapshot_conversation`` in the snapshot's
  transaction (``index_record``: one COPY, or one bulk insert on SQLite), so
  a record and its index rows appear together; removed with a record's
  content by the purge (``unindex_record``).
- Never read from the live chat: body, files, author and times come from the
  record's payload, names and departments from its ``people`` (the identity
  snapshot at capture). Only the attachments' extracted text comes from the
  company file storage (``archive.StoredFile.text``, by SHA-256), as it is
  when the record is written: a file whose text is not extracted yet is
  indexed without it, and ``manage.py reindex_archive`` adds it later.
- The index is derived data, not a record: it can be rebuilt at any time from
  the records (``reindex_record``); the records' hashes never depend on it.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from archive.models import StoredFile
from compliance.models import ArchivedMessage, RetentionRecord

# PostgreSQL refuses a text-search vector over 1 MiB, and the index's
# expression is computed on every insert: an oversized text would make the
# snapshot itself fail. Capped, the worst case (distinct short words in a
# two-byte script) stays well under it. The record keeps everything.
BODY_MAX = 100_000
FILE_TEXT_MAX = 200_000
FILE_TYPES_MAX = 500
TITLE_MAX = 300
NAME_MAX = 200
DEPARTMENT_MAX = 120
# The columns an index row is written with (all but its id), and what the
# comparison of an existing row with a rebuilt one looks at.
COMPARED = (
    "record_id",
    "conversation_id",
    "conversation_title",
    "event_id",
    "message_id",
    "message_seq",
    "version",
    "kind",
    "author_id",
    "author_name",
    "author_department",
    "body",
    "file_text",
    "files",
    "has_files",
    "file_types",
    "at",
)


def _person_name(person: dict[str, Any] | None, user_id: int) -> str:
    if not person:
        return f"Person {user_id}"
    return str(person.get("name") or person.get("email") or f"Person {user_id}")


def conversation_title(payload: dict[str, Any]) -> str:
    """The conversation as the record names it: a channel's ``#name``, a
    group's name, otherwise the members at capture."""
    conversation = payload.get("conversation") or {}
    name = str(conversation.get("name") or "").strip()
    if name:
        title = f"#{name}" if conversation.get("kind") == "channel" else name
    else:
        people = payload.get("people") or {}
        names = sorted(_person_name(people.get(str(pk)), pk) for pk in payload.get("members") or [])
        if not names:
            kind = "Direct message" if conversation.get("kind") == "direct" else "Conversation"
            title = f"{kind} {conversation.get('id', '')}".strip()
        elif conversation.get("kind") == "direct":
            title = " & ".join(names)
        else:
            shown = ", ".join(names[:4])
            title = shown + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return title[:TITLE_MAX]


def _file_types(files: list[dict[str, Any]]) -> str:
    types: list[str] = []
    for summary in files:
        kind = str(summary.get("type") or "").strip()
        if kind and kind not in types and len(" ".join([*types, kind])) <= FILE_TYPES_MAX:
            types.append(kind)
    return " ".join(types)


def _hashes(payload: dict[str, Any]) -> set[str]:
    return {
        str(f["sha256"])
        for entry in payload.get("events") or []
        for f in (entry.get("revision") or {}).get("files") or []
        if f.get("sha256")
    }


def file_texts(hashes: Iterable[str]) -> dict[str, str]:
    """The extracted text of stored files by SHA-256 (one query; none without hashes)."""
    wanted = set(hashes)
    if not wanted:
        return {}
    texts: dict[str, str] = {}
    for sha256, text in (
        StoredFile.objects.filter(sha256__in=wanted).exclude(text="").values_list("sha256", "text")
    ):
        texts.setdefault(sha256, text)
    return texts


def build_rows(
    *, record_id: int, conversation_id: int, payload: dict[str, Any], texts: dict[str, str]
) -> list[dict[str, Any]]:
    """The index rows of one record's payload, one per message version: the
    values of ``COMPARED`` (the model's columns but its id)."""
    people = payload.get("people") or {}
    title = conversation_title(payload)
    rows = []
    for entry in payload.get("events") or []:
        revision, message = entry.get("revision"), entry.get("message")
        if not revision or not message:
            continue  # not a message version (a reaction, a membership change)
        author_id = int(message.get("author") or entry["actor"])
        author = people.get(str(author_id))
        files = list(revision.get("files") or [])
        file_text = "\n".join(texts[f["sha256"]] for f in files if f.get("sha256") in texts)[:FILE_TEXT_MAX]
        rows.append(
            {
                "record_id": record_id,
                "conversation_id": conversation_id,
                "conversation_title": title,
                "event_id": int(entry["id"]),
                "message_id": int(message["id"]),
                "message_seq": int(message.get("seq") or 0),
                "version": int(revision["number"]),
                "kind": str(revision["kind"]),
                "author_id": author_id,
                "author_name": _person_name(author, author_id)[:NAME_MAX],
                "author_department": str((author or {}).get("department") or "")[:DEPARTMENT_MAX],
                "body": str(revision.get("body") or "")[:BODY_MAX],
                "file_text": file_text,
                "files": files,
                "has_files": bool(files),
                "file_types": _file_types(files),
                "at": datetime.fromisoformat(revision.get("at") or entry["at"]),
            }
        )
    return rows


def _insert(rows: list[dict[str, Any]]) -> None:
    """Write index rows. PostgreSQL takes them by COPY, a few times faster than
    an INSERT of as many rows (it runs inside every snapshot); elsewhere one
    bulk insert."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        table = ArchivedMessage._meta.db_table
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(COMPARED)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row([json.dumps(row[name]) if name == "files" else row[name] for name in COMPARED])
        return
    ArchivedMessage.objects.bulk_create((ArchivedMessage(**row) for row in rows), batch_size=500)


def index_record(record: RetentionRecord, payload: dict[str, Any]) -> int:
    """Index a record just written, inside the snapshot's transaction: the
    files' text (one query, only when the record has files) and one insert.

    A record's rows appear with it; no other writer can have indexed them
    before (a rebuild sees the record only once it is committed)."""
    rows = build_rows(
        record_id=record.pk,
        conversation_id=record.conversation_id,
        payload=payload,
        texts=file_texts(_hashes(payload)),
    )
    _insert(rows)
    return len(rows)


def unindex_record(record: RetentionRecord) -> int:
    """Remove a record's index rows (its content is purged)."""
    deleted, _ = ArchivedMessage.objects.filter(record=record).delete()
    return deleted


def _key(values: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(values[name] for name in COMPARED)


@dataclass(frozen=True)
class Reindexed:
    rows: int
    changed: bool


def reindex_record(*, record_id: int, conversation_id: int, canonical_json: str | None) -> Reindexed:
    """Make a record's index rows what its content says (idempotent).

    Without content (purged) the rows go. Otherwise the rows are rebuilt when
    they differ from the content; an attachment text that was indexed before
    but whose file is no longer in the company storage (purged since) is kept:
    it is the text at capture.
    """
    existing = {
        (row["message_id"], row["version"]): row
        for row in ArchivedMessage.objects.filter(record_id=record_id).values(*COMPARED)
    }
    if canonical_json is None:
        if not existing:
            return Reindexed(rows=0, changed=False)
        ArchivedMessage.objects.filter(record_id=record_id).delete()
        return Reindexed(rows=0, changed=True)
    payload = json.loads(canonical_json)
    rows = build_rows(
        record_id=record_id,
        conversation_id=conversation_id,
        payload=payload,
        texts=file_texts(_hashes(payload)),
    )
    for row in rows:
        before = existing.get((row["message_id"], row["version"]))
        if before and not row["file_text"] and before["file_text"] and row["files"]:
            row["file_text"] = before["file_text"]
    wanted = {(row["message_id"], row["version"]): _key(row) for row in rows}
    if wanted == {key: _key(values) for key, values in existing.items()}:
        return Reindexed(rows=len(rows), changed=False)
    with transaction.atomic():
        ArchivedMessage.objects.filter(record_id=record_id).delete()
        _insert(rows)
    return Reindexed(rows=len(rows), changed=True)
