"""Reading a conversation's chain up to a moment, one page of messages at a time."""

import heapq
import json
from bisect import bisect_right
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, Subquery

from compliance.index import conversation_title
from compliance.models import RetentionRecord
from compliance.records import company_day
from compliance.verification import verify
from compliance.workspace.chain import (
    JOINS,
    LEAVES,
    Membership,
    Person,
    RecordRead,
    RecordRef,
    chain_read,
    file_fetch,
)
from compliance.workspace.reconstruct.results import (
    ArchivedFile,
    ChainCheck,
    MessageHistory,
    NotArchived,
    Notice,
    Reconstruction,
    Version,
)

PAGE_SIZE = 100
# Records are read this many at a time: a record holds up to 1,000 events.
RECORDS_CHUNK = 20
# Records written this long after a moment are still read for it: a journal
# event is written (and timed) before the transaction that carries it commits.
RECORD_MARGIN = timedelta(minutes=5)

MESSAGE_EVENTS = frozenset({"message", "message_edited", "message_deleted"})
REACTION_EVENTS = frozenset({"reaction_added", "reaction_removed"})


def reconstruct(
    conversation_id: int,
    at: datetime | None = None,
    *,
    after: int | None = None,
    before: int | None = None,
    limit: int | None = None,
    check_chain: bool = True,
    check_files: bool = True,
) -> Reconstruction:
    """The conversation as it stood at ``at`` (None: as far as it is archived).

    ``limit`` bounds the messages returned (None: all of them): with ``after``
    the first ones whose seq is above it, otherwise the last ones (below
    ``before`` when given). ``earlier``/``later`` of the result are the
    cursors of the neighbouring pages. Raises ``NotArchived`` when the archive
    holds no record of the conversation. ``at`` must be timezone-aware.
    ``check_files``: every file the returned messages carry is fetched and
    checked, so the page can say which ones are refused before it is drawn.
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
    for record in chain_read(records, chunk=RECORDS_CHUNK):
        replay.read(record)
    if not replay.records and not RetentionRecord.objects.filter(conversation_id=conversation_id).exists():
        raise NotArchived(f"The archive holds no record of conversation {conversation_id}.")
    result = replay.result(conversation_id)
    if check_chain:
        result.chain = chain_check(conversation_id, result.records)
    if check_files:
        _check_files(result)
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


def _check_files(result: Reconstruction) -> None:
    """Fetch and check each distinct file of the page's messages (the bytes
    are dropped again) and mark those that cannot be served, with why."""
    problems: dict[str, tuple[str, bool]] = {}
    for message in result.messages:
        versions = []
        for version in message.versions:
            for captured in version.files:
                if captured.sha256 not in problems:
                    fetched = file_fetch(captured.sha256)
                    fetched.close()
                    problems[captured.sha256] = (fetched.problem, fetched.altered)
            files = tuple(
                replace(f, problem=problems[f.sha256][0], refused=problems[f.sha256][1])
                for f in version.files
            )
            versions.append(replace(version, files=files) if files else version)
        message.versions = versions


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
        self.membership = Membership()
        self.conversation: dict[str, Any] = {}
        self.archived_at: datetime | None = None
        # Every message that existed at the moment, by id: its seq.
        self.seqs: dict[int, int] = {}
        self.anchor = 0
        self.first_at: datetime | None = None
        self.last_at: datetime | None = None

    # -- records

    def read(self, record: RecordRead) -> None:
        ref = record.ref
        missing = self.membership.arrive(ref.seq)
        if missing is not None:
            self.notices.append(
                Notice(kind="missing", anchor=self.anchor, first_record=missing[0], last_record=missing[1])
            )
        self.records.append(ref)
        if record.content is None:
            self._unreadable(ref)
            return
        # A record is read as the snapshot wrote it. One that is not (its
        # content altered into something else) is shown as unreadable, event
        # by event where possible, rather than failing the page: the badge
        # says why. One that reads but fails its hash is shown, its versions
        # marked (``Version.record_intact``).
        try:
            payload = json.loads(record.content)
            events = list(payload.get("events") or [])
            if self.membership.begin(ref.seq, payload, events) or not self.conversation:
                self.conversation = dict(payload.get("conversation") or {})
        except (AttributeError, KeyError, TypeError, ValueError):
            self._unreadable(ref)
            return
        for entry in events:
            try:
                self._event(entry, ref)
            except (AttributeError, KeyError, TypeError, ValueError):
                self._unreadable(ref)

    def _unreadable(self, ref: RecordRef) -> None:
        """A purged record (after retention), or one whose content is missing
        or not what a snapshot writes: a gap in the transcript, merged with
        the gap just before it."""
        self.membership.skip()
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

    # -- events

    def _person(self, user_id: int) -> Person:
        return self.membership.people.person(user_id)

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
        self.membership.apply(entry, moment)
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
        members = sorted(self.membership.members.values(), key=lambda m: (m.person.name.lower(), m.person.id))
        title = conversation_title(
            {
                "conversation": {**conversation, "id": conversation_id},
                "members": [m.person.id for m in members],
                "people": self.membership.people.payload(),
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
            members_seeded_from=self.membership.seeded_from,
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
