"""What a reconstruction is made of."""

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from compliance.workspace.chain import Member, Person, RecordRef


class NotArchived(LookupError):
    """The archive holds no record of that conversation."""


@dataclass(frozen=True)
class ArchivedFile:
    """An attachment as the record names it; its bytes are fetched by hash.

    ``problem`` is set once the file was checked and cannot be served:
    ``refused`` when bytes were found that do not match (an altered copy),
    otherwise they are gone."""

    sha256: str
    name: str
    type: str
    size: int | None
    problem: str = ""
    refused: bool = False

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

    @property
    def refused_files(self) -> list[ArchivedFile]:
        """The page's files that were found altered, each once."""
        found = {f.sha256: f for m in self.messages for v in m.versions for f in v.files if f.refused}
        return list(found.values())
