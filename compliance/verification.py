"""Recompute every hash and link of the archive and name the first break."""

import hmac
import json
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

from accounts.models import User
from compliance import archive_store
from compliance.audit import audit_event_record
from compliance.checks import archive_guards
from compliance.models import (
    GENESIS_HASH,
    AuditEvent,
    PurgeEntry,
    RecordContent,
    RetentionRecord,
    SnapshotCursor,
)
from compliance.records import record_hash, record_hmac
from compliance.sealing import verify_seals
from compliance.services import alert_contacts

logger = logging.getLogger(__name__)


@dataclass
class Report:
    chains: int = 0
    records: int = 0
    events: int = 0
    purged: int = 0
    seals: int = 0
    stamped: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(*, conversation_id: int | None = None, copies: bool = True) -> Report:
    """Check each chain: positions 1..n without gaps, each link to the previous
    hash, each content against its hash (and HMAC when keyed), and the chain's
    end against the snapshot cursor, so a removed tail or a removed chain shows.
    Without a conversation filter, also the seals and their anchors outside the
    database (``compliance.sealing.verify_seals``)."""
    report = Report()
    cursors = SnapshotCursor.objects.all()
    chains = RetentionRecord.objects.order_by().values_list("conversation_id", flat=True).distinct()
    if conversation_id is not None:
        cursors, chains = (
            cursors.filter(conversation_id=conversation_id),
            chains.filter(conversation_id=conversation_id),
        )
    by_conversation = {cursor.conversation_id: cursor for cursor in cursors}
    # Every chain with a cursor and every chain with records: a chain whose
    # cursor was removed is still checked, and named.
    for chain in sorted(set(by_conversation) | set(chains)):
        report.chains += 1
        cursor = by_conversation.get(chain)
        if cursor is None:
            report.problems.append(
                f"conversation {chain}: its records have no snapshot cursor: the cursor was removed"
            )
            cursor = SnapshotCursor(conversation_id=chain, last_seq=-1, last_hash="")
        _verify_chain(cursor, report, copies=copies)
    if conversation_id is None:
        # The seals and their anchors outside the database: a removed or
        # consistently rewritten chain no longer matches the heads they name.
        verify_seals(report)
        # The database's guards themselves (Django checks them only with
        # ``check --database``): a dropped or disabled trigger is a failure.
        for message in archive_guards(databases=[DEFAULT_DB_ALIAS]):
            report.problems.append(f"database guard: {message.msg}")
    return report


def _verify_chain(cursor: SnapshotCursor, report: Report, *, copies: bool = True) -> None:
    conversation_id = cursor.conversation_id
    expected_seq, expected_previous, last_event = 1, GENESIS_HASH, 0
    keyed_before = False
    records = RetentionRecord.objects.filter(conversation_id=conversation_id).order_by("seq")
    contents = {
        c.record_id: c.canonical_json
        for c in RecordContent.objects.filter(record__conversation_id=conversation_id).only(
            "record_id", "canonical_json"
        )
    }
    purged = dict(
        PurgeEntry.objects.filter(record__conversation_id=conversation_id).values_list("record_id", "sha256")
    )
    for record in records.iterator():
        report.records += 1
        report.events += record.event_count
        name = f"conversation {conversation_id}, record {record.seq} (id {record.pk})"
        if record.seq != expected_seq:
            report.problems.append(
                f"{name}: expected position {expected_seq}: a record is missing or reordered"
            )
            return
        if record.previous_hash != expected_previous:
            report.problems.append(f"{name}: does not link to the record before it")
            return
        if record.first_event_id <= last_event:
            report.problems.append(f"{name}: its events overlap the record before it")
            return
        content = contents.get(record.pk)
        if content is None and record.pk in purged:
            # Purged after retention: the link and hash are still checked.
            if purged[record.pk] != record.sha256:
                report.problems.append(f"{name}: its purge entry names another hash")
                return
            report.purged += 1
            expected_seq, expected_previous, last_event = record.seq + 1, record.sha256, record.last_event_id
            continue
        if content is None:
            report.problems.append(f"{name}: its content is missing (and it was not purged)")
            return
        raw = content.encode("utf-8")
        if record_hash(raw) != record.sha256:
            report.problems.append(f"{name}: its content does not match its hash (altered)")
            return
        payload = json.loads(content)
        # Records made before a key was configured carry no HMAC; their hash,
        # the chain and the seals still hold them. A record made with a key says
        # so inside its hash ("keyed"), and once a chain carries HMACs every
        # later record must too: a blanked HMAC is a removed one.
        if not record.hmac and (payload.get("keyed") or (settings.KONTOR_ARCHIVE_HMAC_KEY and keyed_before)):
            made = "it was made with a key" if payload.get("keyed") else "the records before it carry one"
            report.problems.append(f"{name}: its HMAC was removed ({made})")
            return
        keyed = settings.KONTOR_ARCHIVE_HMAC_KEY and record.hmac
        keyed_before = keyed_before or bool(record.hmac)
        if keyed and not hmac.compare_digest(record_hmac(raw), record.hmac):
            report.problems.append(f"{name}: its HMAC does not match")
            return
        if (payload.get("seq"), payload.get("previous_hash"), payload.get("last_event")) != (
            record.seq,
            record.previous_hash,
            record.last_event_id,
        ):
            report.problems.append(f"{name}: its content describes another position in the chain")
            return
        if payload.get("retain_until") != record.retain_until.isoformat():
            report.problems.append(
                f"{name}: its retention date {record.retain_until} is not the one it was sealed with"
            )
            return
        # The write-once copy in the archive storage, and its files' copies
        # (``copies=False`` skips them: one storage read per record and file).
        # A purged record's copy is gone with its content and not required.
        problem = archive_store.check_record(record, raw, payload) if copies else None
        if problem is not None:
            report.problems.append(f"{name}: {problem}")
            return
        expected_seq, expected_previous, last_event = record.seq + 1, record.sha256, record.last_event_id
    if cursor.last_seq >= 0 and (
        cursor.last_seq != expected_seq - 1 or cursor.last_hash != expected_previous
    ):
        report.problems.append(
            f"conversation {conversation_id}: the chain ends at record {expected_seq - 1} but "
            f"{cursor.last_seq} were written: records at its end are missing"
        )


def verify_and_report(*, actor: User | None = None) -> Report:
    """Verify the whole archive, log the result as an audit event and, when
    anything is broken, mail the compliance contacts (the daily task)."""
    report = verify()
    audit_event_record(
        kind=AuditEvent.Kind.VERIFIED,
        actor=actor,
        detail={
            "ok": report.ok,
            "chains": report.chains,
            "records": report.records,
            "events": report.events,
            "purged": report.purged,
            "seals": report.seals,
            "stamped": report.stamped,
            "problems": report.problems[:20],
        },
    )
    if not report.ok:
        alert_contacts(
            "ARCHIVE VERIFICATION FAILED",
            "The daily verification of the compliance archive found "
            f"{len(report.problems)} problem(s). The first:\n\n  {report.problems[0]}\n\n"
            "All of them:\n\n" + "\n".join(f"- {p}" for p in report.problems) + "\n\n"
            "Run `manage.py verify_archive` for the full report. Do not change the archive: "
            "secure the database and the archive storage as they are and inform the data "
            "protection officer.",
        )
    return report
