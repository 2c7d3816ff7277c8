"""Reconstruction: a conversation as it stood at a moment, from the archive alone.

The rules, enforced here:

1. Only the records' content (``RecordContent.canonical_json``) is read, in
   chain order: never the live messenger tables, whose messages may have been
   edited, deleted or purged since.
2. Only records that can hold events up to the moment are read (their first
   day is not after the moment's day), one bounded chunk at a time, and only
   events made up to the moment count.
3. Every version of a message up to the moment is kept: edits are its
   history, a deletion keeps the deleted content, attachments travel with
   each version.
4. Members are replayed from the journal's membership events. Where the chain
   has a gap (records purged after retention, or missing), the members the
   next readable record lists at its capture are the new starting point,
   wound back over that record's own events.
5. A page holds a bounded window of messages (keyset by message seq), so
   memory and output stay bounded however long the conversation is.
6. The conversation's chain is verified (``compliance.verification.verify``)
   and the result goes with the reconstruction; each record read is also
   checked against its own hash, so a version from an altered record is marked.
"""

import hashlib
import heapq
import io
import json
import re
import tempfile
from bisect import bisect_right
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import IO, Any

from django.core.files.storage import default_storage
from django.db.models import Count, Max, Min, Q, Subquery, Value
from django.db.models.functions import StrIndex, Substr

from archive.models import StoredFile
from archive.services import blob_key
from compliance import archive_store
from compliance.index import conversation_title
from compliance.models import ArchivedMessage, RecordContent, RecordPerson, RetentionRecord
from compliance.records import company_day
from compliance.verification import verify

PAGE_SIZE = 100
# Records are read this many at a time: a record holds up to 1,000 events.
RECORDS_CHUNK = 20
# Records written this long after a moment are still read for it: a journal
# event is written (and timed) before the transaction that carries it commits.
RECORD_MARGIN = timedelta(minutes=5)
SHA256 = re.compile(r"[0-9a-f]{64}")
# A file up to this size is checked in memory, a larger one in a temporary file.
SPOOL_IN_MEMORY = 8 * 1024 * 1024

MESSAGE_EVENTS = frozenset({"message", "message_edited", "message_deleted"})
REACTION_EVENTS = frozenset({"reaction_added", "reaction_removed"})
JOINS = frozenset({"member_joined", "member_added"})
LEAVES = frozenset({"member_left", "member_removed"})


class NotArchived(LookupError):
    """The archive holds no record of that conversation."""


# --- What a reconstruction is made of -----------------------------------------


@dataclass(frozen=True)
class Person:
    """Someone as a record captured them (name, email, department at capture)."""

    id: int
    name: str
    email: str = ""
    department: str = ""

    @classmethod
    def captured(cls, user_id: int, snapshot: dict[str, Any] | None) -> "Person":
        if not snapshot:
            return cls(id=user_id, name=f"Person {user_id}")
        return cls(
            id=user_id,
            name=str(snapshot.get("name") or snapshot.get("email") or f"Person {user_id}"),
            email=str(snapshot.get("email") or ""),
            department=str(snapshot.get("department") or ""),
        )


@dataclass(frozen=True)
class ArchivedFile:
    """An attachment as the record names it; its bytes are fetched by hash."""

    sha256: str
    name: str
    type: str
    size: int | None

    @classmethod
    def captured(cls, entry: dict[str, Any]) -> "ArchivedFile":
        size = entry.get("size")
        return cls(
            sha256=str(entry.get("sha256") or ""),
            name=str(entry.get("name") or "file"),
            type=str(entry.get("type") or ""),
            size=size if isinstance(size, int) else None,
        )


@dataclass(frozen=True)
class Version:
    """One version of a message: created, edited or deleted (with the content
    it had when deleted)."""

    number: int
    kind: str
    body: str
    files: tuple[ArchivedFile, ...]
    at: datetime
    actor: Person
    event_id: int
    record_seq: int
    record_intact: bool

    @property
    def is_deletion(self) -> bool:
        return self.kind == "deleted"


@dataclass(frozen=True)
class Notice:
    """Something other than a message, in the transcript: a membership change,
    a rename, a gap in the chain. ``anchor`` is the seq of the message it came
    after (0: before the first message)."""

    kind: str
    anchor: int
    at: datetime | None = None
    actor: Person | None = None
    subject: Person | None = None
    value: str = ""
    reason: str = ""
    first_record: int = 0
    last_record: int = 0
    period_start: date | None = None
    period_end: date | None = None
    purged_from: datetime | None = None
    purged_to: datetime | None = None


@dataclass
class MessageHistory:
    """A message with every version up to the moment, and its reactions then."""

    id: int
    seq: int
    author: Person
    reply_to: int | None
    versions: list[Version] = field(default_factory=list)
    reactions: dict[str, dict[int, Person]] = field(default_factory=dict)
    reply_to_seq: int | None = None
    # What happened right after this message (set for the page shown).
    notices: list[Notice] = field(default_factory=list)

    @property
    def current(self) -> Version:
        return self.versions[-1]

    @property
    def earlier(self) -> list[Version]:
        return self.versions[:-1]

    @property
    def is_deleted(self) -> bool:
        return self.current.is_deletion

    @property
    def is_edited(self) -> bool:
        return any(v.kind == "edited" for v in self.versions)

    @property
    def earlier_versions_purged(self) -> bool:
        """Its first versions lie in records purged after retention (or missing)."""
        return self.versions[0].number > 1

    @property
    def from_altered_record(self) -> bool:
        return not all(v.record_intact for v in self.versions)

    @property
    def reaction_list(self) -> list[tuple[str, list[Person]]]:
        return [(emoji, list(people.values())) for emoji, people in self.reactions.items() if people]


@dataclass(frozen=True)
class Member:
    person: Person
    role: str
    since: datetime | None


@dataclass(frozen=True)
class RecordRef:
    """A chain entry read for the reconstruction."""

    seq: int
    sha256: str
    previous_hash: str
    first_event: int
    last_event: int
    event_count: int
    period_start: date
    period_end: date
    created_at: datetime
    purged_at: datetime | None
    readable: bool
    intact: bool


@dataclass(frozen=True)
class ChainCheck:
    """What ``verify`` says of the conversation's chain, for the badge."""

    ok: bool
    problem: str
    problems: int
    checked: int
    purged: int
    first_seq: int
    last_seq: int
    first_hash: str
    last_hash: str


@dataclass
class Reconstruction:
    conversation_id: int
    at: datetime | None
    kind: str
    name: str
    topic: str
    private: bool | None
    archived_at: datetime | None
    title: str
    members: list[Member]
    # Set when the members come from a record's capture (after a gap), not
    # from a replay since the conversation was created.
    members_seeded_from: int | None
    messages: list[MessageHistory]
    leading: list[Notice]
    records: list[RecordRef]
    page_records: list[RecordRef]
    total_messages: int
    earlier: int | None
    later: int | None
    first_at: datetime | None
    last_at: datetime | None
    chain: ChainCheck | None

    @property
    def first_record(self) -> RecordRef | None:
        return self.records[0] if self.records else None

    @property
    def last_record(self) -> RecordRef | None:
        return self.records[-1] if self.records else None

    @property
    def purged_records(self) -> int:
        return sum(1 for r in self.records if r.purged_at is not None)

    @property
    def message_range(self) -> tuple[int, int] | None:
        return (self.messages[0].seq, self.messages[-1].seq) if self.messages else None


# --- Reading the chain ----------------------------------------------------------


_RECORD_FIELDS = (
    "seq",
    "sha256",
    "previous_hash",
    "first_event_id",
    "last_event_id",
    "event_count",
    "period_start",
    "period_end",
    "created_at",
    "content__canonical_json",
    "purge__purged_at",
)


def reconstruct(
    conversation_id: int,
    at: datetime | None = None,
    *,
    after: int | None = None,
    before: int | None = None,
    limit: int | None = None,
    check_chain: bool = True,
) -> Reconstruction:
    """The conversation as it stood at ``at`` (None: as far as it is archived).

    ``limit`` bounds the messages returned (None: all of them): with ``after``
    the first ones whose seq is above it, otherwise the last ones (below
    ``before`` when given). ``earlier``/``later`` of the result are the
    cursors of the neighbouring pages. Raises ``NotArchived`` when the archive
    holds no record of the conversation. ``at`` must be timezone-aware.
    """
    records = RetentionRecord.objects.filter(conversation_id=conversation_id)
    if at is not None:
        # Records are written in chain order, each after its events: those
        # written up to the moment (and a margin) hold everything of it, the
        # first one written later may hold its last events; the rest, and any
        # whose first event's day is after the moment's day, hold nothing of it.
        # (Events of a read record made after the moment are skipped.)
        horizon = at + RECORD_MARGIN
        first_later = records.filter(created_at__gt=horizon).order_by("seq").values("seq")[:1]
        records = records.filter(
            Q(created_at__lte=horizon) | Q(seq__lte=Subquery(first_later)),
            period_start__lte=company_day(at),
        )
    replay = _Replay(at=at, window=_Window(after=after, before=before, size=limit))
    for row in records.order_by("seq").values_list(*_RECORD_FIELDS).iterator(chunk_size=RECORDS_CHUNK):
        replay.read(*row)
    if not replay.records and not RetentionRecord.objects.filter(conversation_id=conversation_id).exists():
        raise NotArchived(f"The archive holds no record of conversation {conversation_id}.")
    result = replay.result(conversation_id)
    if check_chain:
        result.chain = chain_check(conversation_id, result.records)
    return result


def chain_check(conversation_id: int, records: list[RecordRef]) -> ChainCheck:
    """Verify the conversation's whole chain (hashes, links, the cursor, the
    write-once copies in the archive storage) and sum it up for a badge over
    the ``records`` a reconstruction read."""
    report = verify(conversation_id=conversation_id)
    first, last = (records[0], records[-1]) if records else (None, None)
    return ChainCheck(
        ok=report.ok,
        problem=report.problems[0] if report.problems else "",
        problems=len(report.problems),
        checked=report.records,
        purged=report.purged,
        first_seq=first.seq if first else 0,
        last_seq=last.seq if last else 0,
        first_hash=first.sha256 if first else "",
        last_hash=last.sha256 if last else "",
    )


def _moment(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


class _Window:
    """The page's messages, keyset by seq: those above ``after`` (the first
    ``size``), or else the last ``size`` below ``before``.

    Messages arrive in journal order. When the window is full, the one
    furthest from the page's start is dropped and the bound moves onto it,
    so it (and anything beyond it) is never taken in again, not even by a
    later version of it: a message is either kept with every version or not
    at all.
    """

    def __init__(self, *, after: int | None, before: int | None, size: int | None) -> None:
        self.low = after  # exclusive
        self.high = before  # exclusive
        self.size = size
        self.newest = after is None
        self.kept: dict[int, MessageHistory] = {}
        self._heap: list[tuple[int, int]] = []

    def admits(self, seq: int) -> bool:
        return (self.low is None or seq > self.low) and (self.high is None or seq < self.high)

    def add(self, message: MessageHistory) -> None:
        self.kept[message.id] = message
        if self.size is None:
            return
        heapq.heappush(self._heap, (message.seq if self.newest else -message.seq, message.id))
        while len(self.kept) > self.size:
            _key, dropped_id = heapq.heappop(self._heap)
            dropped = self.kept.pop(dropped_id)
            if self.newest:
                self.low = dropped.seq if self.low is None else max(self.low, dropped.seq)
            else:
                self.high = dropped.seq if self.high is None else min(self.high, dropped.seq)


class _Replay:
    """Replays the records' events, in chain order, up to the moment."""

    def __init__(self, *, at: datetime | None, window: _Window) -> None:
        self.at = at
        self.window = window
        self.records: list[RecordRef] = []
        self.notices: list[Notice] = []
        self.people: dict[str, Any] = {}
        self._persons: dict[int, Person] = {}
        self.members: dict[int, Member] = {}
        self.members_seeded_from: int | None = None
        self.conversation: dict[str, Any] = {}
        self.archived_at: datetime | None = None
        # Every message that existed at the moment, by id: its seq.
        self.seqs: dict[int, int] = {}
        self.anchor = 0
        self.expected_seq = 1
        self.gap = False
        self.read_any = False
        self.first_at: datetime | None = None
        self.last_at: datetime | None = None

    # -- records

    def read(
        self,
        seq: int,
        sha256: str,
        previous_hash: str,
        first_event: int,
        last_event: int,
        event_count: int,
        period_start: date,
        period_end: date,
        created_at: datetime,
        content: str | None,
        purged_at: datetime | None,
    ) -> None:
        if seq != self.expected_seq:
            self.notices.append(
                Notice(
                    kind="missing", anchor=self.anchor, first_record=self.expected_seq, last_record=seq - 1
                )
            )
            self.gap = True
        self.expected_seq = seq + 1
        raw = content.encode("utf-8") if content is not None else None
        ref = RecordRef(
            seq=seq,
            sha256=sha256,
            previous_hash=previous_hash,
            first_event=first_event,
            last_event=last_event,
            event_count=event_count,
            period_start=period_start,
            period_end=period_end,
            created_at=created_at,
            purged_at=purged_at,
            readable=raw is not None,
            intact=raw is not None and hashlib.sha256(raw).hexdigest() == sha256,
        )
        self.records.append(ref)
        if content is None:
            self._unreadable(ref)
            return
        # A record is read as the snapshot wrote it. One that is not (its
        # content altered into something else) is shown as unreadable, event
        # by event where possible, rather than failing the page: the badge
        # says why.
        try:
            payload = json.loads(content)
            people = payload.get("people") or {}
            events = list(payload.get("events") or [])
            self.people.update(people)
            for pk in people:  # the newest capture of each person from here on
                self._persons.pop(int(pk), None)
            if self.gap or (
                not self.read_any and not any(e.get("type") == "conversation_created" for e in events)
            ):
                self._seed(ref, payload, events)
            if not self.conversation:
                self.conversation = dict(payload.get("conversation") or {})
        except (AttributeError, KeyError, TypeError, ValueError):
            self._unreadable(ref)
            return
        self.gap, self.read_any = False, True
        for entry in events:
            try:
                self._event(entry, ref)
            except (AttributeError, KeyError, TypeError, ValueError):
                self._unreadable(ref)

    def _unreadable(self, ref: RecordRef) -> None:
        """A purged record (after retention), or one whose content is missing
        or not what a snapshot writes: a gap in the transcript, merged with
        the gap just before it."""
        self.gap = True
        kind = "purged" if ref.purged_at is not None else "unreadable"
        last = self.notices[-1] if self.notices else None
        if last is not None and last.kind == kind and last.last_record == ref.seq:
            return  # this record is named already
        if last is not None and last.kind == kind and last.last_record == ref.seq - 1:
            self.notices[-1] = replace(
                last, last_record=ref.seq, period_end=ref.period_end, purged_to=ref.purged_at
            )
            return
        self.notices.append(
            Notice(
                kind=kind,
                anchor=self.anchor,
                first_record=ref.seq,
                last_record=ref.seq,
                period_start=ref.period_start,
                period_end=ref.period_end,
                purged_from=ref.purged_at,
                purged_to=ref.purged_at,
            )
        )

    def _seed(self, ref: RecordRef, payload: dict[str, Any], events: list[dict[str, Any]]) -> None:
        """Start again from what a record captured: its members when it was
        written, wound back over its own membership events, are the members
        before its first event. Roles and join times are not captured."""
        members = {int(pk) for pk in payload.get("members") or []}
        for entry in reversed(events):
            subject = entry.get("subject")
            if subject is None:
                continue
            if entry.get("type") in JOINS:
                members.discard(int(subject))
            elif entry.get("type") in LEAVES:
                members.add(int(subject))
        self.members = {pk: Member(person=self._person(pk), role="", since=None) for pk in members}
        self.members_seeded_from = ref.seq
        self.conversation = dict(payload.get("conversation") or {})

    # -- events

    def _person(self, user_id: int) -> Person:
        person = self._persons.get(user_id)
        if person is None:
            person = self._persons[user_id] = Person.captured(user_id, self.people.get(str(user_id)))
        return person

    def _event(self, entry: dict[str, Any], ref: RecordRef) -> None:
        revision = entry.get("revision")
        moment = _moment(revision.get("at") if revision else None) or _moment(entry.get("at"))
        if moment is None or (self.at is not None and moment > self.at):
            return
        if self.first_at is None or moment < self.first_at:
            self.first_at = moment
        if self.last_at is None or moment > self.last_at:
            self.last_at = moment
        kind, message = str(entry.get("type") or ""), entry.get("message")
        if revision and message:
            self._version(entry, message, revision, moment, ref)
        elif kind in REACTION_EVENTS and message:
            self._reaction(entry, message, present=kind == "reaction_added")
        elif kind in JOINS or kind in LEAVES or kind == "role_changed":
            self._membership(entry, kind, moment)
        else:
            self._conversation(entry, kind, moment)

    def _version(
        self,
        entry: dict[str, Any],
        message: dict[str, Any],
        revision: dict[str, Any],
        moment: datetime,
        ref: RecordRef,
    ) -> None:
        message_id, seq = int(message["id"]), int(message.get("seq") or 0)
        if message_id not in self.seqs:
            self.seqs[message_id] = seq
            self.anchor = max(self.anchor, seq)
        history = self.window.kept.get(message_id)
        if history is None:
            if not self.window.admits(seq):
                return
            author = int(message.get("author") or entry["actor"])
            reply_to = message.get("reply_to")
            history = MessageHistory(
                id=message_id,
                seq=seq,
                author=self._person(author),
                reply_to=int(reply_to) if reply_to else None,
            )
            self.window.add(history)
            if message_id not in self.window.kept:
                return
        history.versions.append(
            Version(
                number=int(revision.get("number") or 0),
                kind=str(revision.get("kind") or ""),
                body=str(revision.get("body") or ""),
                files=tuple(ArchivedFile.captured(f) for f in revision.get("files") or []),
                at=moment,
                actor=self._person(int(entry["actor"])),
                event_id=int(entry["id"]),
                record_seq=ref.seq,
                record_intact=ref.intact,
            )
        )

    def _reaction(self, entry: dict[str, Any], message: dict[str, Any], *, present: bool) -> None:
        history = self.window.kept.get(int(message["id"]))
        emoji = str((entry.get("data") or {}).get("emoji") or "")
        if history is None or not emoji:
            return
        actor = int(entry["actor"])
        if present:
            history.reactions.setdefault(emoji, {})[actor] = self._person(actor)
            return
        people = history.reactions.get(emoji)
        if people is not None:
            people.pop(actor, None)
            if not people:
                del history.reactions[emoji]

    def _membership(self, entry: dict[str, Any], kind: str, moment: datetime) -> None:
        subject_id = entry.get("subject")
        if subject_id is None:
            return
        subject, actor = self._person(int(subject_id)), self._person(int(entry["actor"]))
        data = entry.get("data") or {}
        if kind in JOINS:
            self.members[subject.id] = Member(
                person=subject, role=str(data.get("role") or "member"), since=moment
            )
        elif kind in LEAVES:
            self.members.pop(subject.id, None)
        elif subject.id in self.members:
            self.members[subject.id] = replace(self.members[subject.id], role=str(data.get("role") or ""))
        notice_kind = {
            "member_joined": "joined",
            "member_added": "added",
            "member_left": "left",
            "member_removed": "removed",
            "role_changed": "role",
        }[kind]
        self.notices.append(
            Notice(
                kind=notice_kind,
                anchor=self.anchor,
                at=moment,
                actor=actor,
                subject=subject,
                value=str(data.get("role") or "") if kind in JOINS or kind == "role_changed" else "",
                reason=str(data.get("reason") or ""),
            )
        )

    def _conversation(self, entry: dict[str, Any], kind: str, moment: datetime) -> None:
        data = entry.get("data") or {}
        actor = self._person(int(entry["actor"])) if entry.get("actor") is not None else None
        if kind == "conversation_created":
            self.conversation.update({k: data[k] for k in ("kind", "name", "topic", "private") if k in data})
            value = str(data.get("name") or "")
        elif kind == "renamed":
            self.conversation["name"] = value = str(data.get("name") or "")
        elif kind == "topic_changed":
            self.conversation["topic"] = value = str(data.get("topic") or "")
        elif kind == "archived":
            self.archived_at, value = moment, ""
        else:
            return  # an event type this archive reader does not know: left to the raw record
        self.notices.append(Notice(kind=kind, anchor=self.anchor, at=moment, actor=actor, value=value))

    # -- the result

    def result(self, conversation_id: int) -> Reconstruction:
        shown = sorted(self.window.kept.values(), key=lambda m: m.seq)
        seqs = self.seqs.values()
        earliest, latest = (min(seqs), max(seqs)) if seqs else (0, 0)
        earlier = shown[0].seq if shown and earliest < shown[0].seq else None
        later = shown[-1].seq if shown and latest > shown[-1].seq else None
        leading = self._place_notices(shown, earlier is not None, later is not None)
        for message in shown:
            if message.reply_to is not None:
                message.reply_to_seq = self.seqs.get(message.reply_to)
        on_page = {v.record_seq for m in shown for v in m.versions} | {
            seq
            for n in [*leading, *(n for m in shown for n in m.notices)]
            if n.first_record
            for seq in range(n.first_record, n.last_record + 1)
        }
        conversation = self.conversation
        members = sorted(self.members.values(), key=lambda m: (m.person.name.lower(), m.person.id))
        title = conversation_title(
            {
                "conversation": {**conversation, "id": conversation_id},
                "members": [m.person.id for m in members],
                "people": self.people,
            }
        )
        return Reconstruction(
            conversation_id=conversation_id,
            at=self.at,
            kind=str(conversation.get("kind") or ""),
            name=str(conversation.get("name") or ""),
            topic=str(conversation.get("topic") or ""),
            private=conversation.get("private") if isinstance(conversation.get("private"), bool) else None,
            archived_at=self.archived_at,
            title=title,
            members=members,
            members_seeded_from=self.members_seeded_from,
            messages=shown,
            leading=leading,
            records=self.records,
            page_records=[r for r in self.records if r.seq in on_page],
            total_messages=len(self.seqs),
            earlier=earlier,
            later=later,
            first_at=self.first_at,
            last_at=self.last_at,
            chain=None,
        )

    def _place_notices(self, shown: list[MessageHistory], earlier: bool, later: bool) -> list[Notice]:
        """Put each notice after the message it followed, on the page that
        shows that message; returns those before the first message."""
        if not shown:
            return list(self.notices)
        leading: list[Notice] = []
        positions = [m.seq for m in shown]
        for notice in self.notices:
            if notice.anchor < positions[0]:
                if not earlier:
                    leading.append(notice)
            elif notice.anchor > positions[-1]:
                if not later:
                    shown[-1].notices.append(notice)
            else:
                shown[bisect_right(positions, notice.anchor) - 1].notices.append(notice)
        return leading


# --- The list of archived conversations ------------------------------------------


@dataclass(frozen=True)
class ArchivedConversation:
    id: int
    title: str
    kind: str
    name: str
    first_day: date
    last_day: date
    records: int
    purged: int


_HEAD = '{"conversation":'


def _head(head: str | None) -> dict[str, Any]:
    """The ``conversation`` object at the start of a record's canonical JSON
    (its keys are sorted: "conversation" comes first, "events" next)."""
    if not head or not head.startswith(_HEAD):
        return {}
    try:
        value, _end = json.JSONDecoder().raw_decode(head, len(_HEAD))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _tail(tail: str | None) -> dict[str, Any]:
    """The members and people at the end of a record's canonical JSON."""
    if not tail or not tail.startswith('"members":'):
        return {}
    try:
        value = json.loads("{" + tail)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def archived_conversations(*, name: str = "", participant: str = "") -> list[ArchivedConversation]:
    """Every conversation the archive holds, from its records: its name (or
    members) as the latest readable record captured it, its kind, its first
    and last archived day and how many records it has; the most recently
    archived first.

    ``name`` matches the captured name or title; ``participant`` anyone a
    record names (by their account's name or email, or as a captured author).
    Three queries, whatever the number of records.
    """
    rows = RetentionRecord.objects.values("conversation_id").annotate(
        first_day=Min("period_start"),
        last_day=Max("period_end"),
        records=Count("id"),
        purged=Count("purge"),
        latest=Max("id", filter=Q(content__isnull=False)),
    )
    participant = participant.strip()
    if participant:
        people = RecordPerson.objects.filter(
            Q(user__display_name__icontains=participant) | Q(user__email__icontains=participant)
        ).values("record__conversation_id")
        authors = ArchivedMessage.objects.filter(author_name__icontains=participant).values("conversation_id")
        rows = rows.filter(Q(conversation_id__in=people) | Q(conversation_id__in=authors))
    found = list(rows.order_by("-last_day", "-conversation_id"))
    latest = [row["latest"] for row in found if row["latest"] is not None]
    heads = {
        record_id: _head(head)
        for record_id, head in RecordContent.objects.filter(record_id__in=latest)
        .annotate(head=Substr("canonical_json", 1, StrIndex("canonical_json", Value('"events":'))))
        .values_list("record_id", "head")
    }
    # A direct conversation, or a group without a name, is called by its members.
    unnamed = [pk for pk, head in heads.items() if not str(head.get("name") or "").strip()]
    tails = {
        record_id: _tail(tail)
        for record_id, tail in RecordContent.objects.filter(record_id__in=unnamed)
        .annotate(tail=Substr("canonical_json", StrIndex("canonical_json", Value('"members":'))))
        .values_list("record_id", "tail")
    }
    wanted = name.strip().casefold()
    result = []
    for row in found:
        head = heads.get(row["latest"], {})
        tail = tails.get(row["latest"], {})
        captured = str(head.get("name") or "")
        if head:
            title = conversation_title(
                {
                    "conversation": {**head, "id": row["conversation_id"]},
                    "members": tail.get("members") or [],
                    "people": tail.get("people") or {},
                }
            )
        else:
            title = f"Conversation {row['conversation_id']}"
        if wanted and wanted not in title.casefold() and wanted not in captured.casefold():
            continue
        result.append(
            ArchivedConversation(
                id=row["conversation_id"],
                title=title,
                kind=str(head.get("kind") or ""),
                name=captured,
                first_day=row["first_day"],
                last_day=row["last_day"],
                records=row["records"],
                purged=row["purged"],
            )
        )
    return result


# --- Files -----------------------------------------------------------------------


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


@dataclass
class FetchedFile:
    """An archived file's bytes, checked against the SHA-256 its record holds.

    ``content`` is set only when the bytes match; otherwise ``problem`` says
    why nothing may be served (``altered``: bytes were found but differ)."""

    content: IO[bytes] | None
    size: int
    source: str
    problem: str = ""
    altered: bool = False


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


def file_fetch(sha256: str) -> FetchedFile:
    """The bytes of an archived file: the write-once archive copy, or where
    there is none the company file storage, each only if it hashes to
    ``sha256``. An archive copy that does not match is refused, never
    replaced by another copy: an altered archive must be seen, not papered over.

    The file storage's bytes are spooled to a temporary file while they are
    hashed (bounded memory), so nothing is sent before the check."""
    copy = archive_store.get(archive_store.file_name(sha256))
    if copy is not None:
        if hashlib.sha256(copy).hexdigest() != sha256:
            return FetchedFile(None, 0, "archive copy", ALTERED_COPY, altered=True)
        return FetchedFile(io.BytesIO(copy), len(copy), "archive copy")
    keys = dict.fromkeys(StoredFile.objects.filter(sha256=sha256).values_list("storage_key", flat=True))
    mismatched = False
    for key in [*keys, blob_key(sha256)]:
        # Not a context manager: a matching spool is handed to the response, which closes it.
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
