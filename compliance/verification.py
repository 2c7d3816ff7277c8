"""Recompute every hash and link of the archive and name the first break."""

import hmac
import json
from dataclasses import dataclass, field

from django.conf import settings

from compliance.models import GENESIS_HASH, PurgeEntry, RecordContent, RetentionRecord, SnapshotCursor
from compliance.services import record_hash, record_hmac


@dataclass
class Report:
    chains: int = 0
    records: int = 0
    events: int = 0
    purged: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(*, conversation_id: int | None = None) -> Report:
    """Check each chain: positions 1..n without gaps, each link to the previous
    hash, each content against its hash (and HMAC when keyed), and the chain's
    end against the snapshot cursor, so a removed tail or a removed chain shows."""
    report = Report()
    cursors = SnapshotCursor.objects.order_by("conversation_id")
    if conversation_id is not None:
        cursors = cursors.filter(conversation_id=conversation_id)
    for cursor in cursors.iterator():
        report.chains += 1
        _verify_chain(cursor, report)
    return report


def _verify_chain(cursor: SnapshotCursor, report: Report) -> None:
    conversation_id = cursor.conversation_id
    expected_seq, expected_previous, last_event = 1, GENESIS_HASH, 0
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
        if settings.KONTOR_ARCHIVE_HMAC_KEY and not hmac.compare_digest(record_hmac(raw), record.hmac):
            report.problems.append(f"{name}: its HMAC does not match")
            return
        payload = json.loads(content)
        if (payload.get("seq"), payload.get("previous_hash"), payload.get("last_event")) != (
            record.seq,
            record.previous_hash,
            record.last_event_id,
        ):
            report.problems.append(f"{name}: its content describes another position in the chain")
            return
        expected_seq, expected_previous, last_event = record.seq + 1, record.sha256, record.last_event_id
    if cursor.last_seq != expected_seq - 1 or cursor.last_hash != expected_previous:
        report.problems.append(
            f"conversation {conversation_id}: the chain ends at record {expected_seq - 1} but "
            f"{cursor.last_seq} were written: records at its end are missing"
        )
