"""People and membership, as the records captured and replayed them."""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

JOINS = frozenset({"member_joined", "member_added"})
LEAVES = frozenset({"member_left", "member_removed"})


@dataclass(frozen=True)
class Person:
    """Someone as a record captured them (name, email, department at capture)."""

    id: int
    name: str
    email: str = ""
    department: str = ""

    @classmethod
    def captured(cls, user_id: int, entry: Mapping[str, Any] | None) -> "Person":
        if not entry:
            return cls(id=user_id, name=f"Person {user_id}")
        return cls(
            id=user_id,
            name=str(entry.get("name") or entry.get("email") or f"Person {user_id}"),
            email=str(entry.get("email") or ""),
            department=str(entry.get("department") or ""),
        )


class People:
    """Everyone as the latest record read captured them (its ``people``)."""

    def __init__(self) -> None:
        self._entries: dict[int, dict[str, Any]] = {}
        self._persons: dict[int, Person] = {}

    def capture(self, people: Mapping[str, Any]) -> None:
        """Take a record's ``people``: the newest capture of each from here on."""
        for key, entry in people.items():
            if entry:
                self._entries[int(key)] = entry
                self._persons.pop(int(key), None)

    def entry(self, user_id: int | None) -> dict[str, Any]:
        """The captured entry (every field the record holds), or a stand-in
        naming the id for someone no record read captured."""
        if user_id is None:
            return {"id": None, "name": "Unknown", "email": "", "department": None}
        unknown = {"id": user_id, "name": f"Person {user_id}", "email": "", "department": None}
        return self._entries.get(int(user_id)) or unknown

    def person(self, user_id: int) -> Person:
        person = self._persons.get(user_id)
        if person is None:
            person = self._persons[user_id] = Person.captured(user_id, self._entries.get(user_id))
        return person

    def payload(self) -> dict[str, Any]:
        """The captured entries keyed as a record keys them (for titles)."""
        return {str(pk): entry for pk, entry in self._entries.items()}


@dataclass(frozen=True)
class Member:
    person: Person
    role: str
    since: datetime | None


class Membership:
    """Who was a member at each moment, replayed record by record in chain
    order (rule 3 of ``compliance.workspace.chain``).

    For each record: ``arrive`` (every record, in order: returns the range of
    positions missing before it), then either ``skip`` (its content cannot be
    read) or ``begin`` (before its events), then ``apply`` for each of its
    membership events up to the moment that counts."""

    def __init__(self) -> None:
        self.people = People()
        self.members: dict[int, Member] = {}
        # The record whose capture the members were last seeded from (None:
        # replayed from the conversation's creation, so exact).
        self.seeded_from: int | None = None
        self._expected_seq = 1
        self._gap = False
        self._read_any = False

    @property
    def exact(self) -> bool:
        return self.seeded_from is None

    def arrive(self, seq: int) -> tuple[int, int] | None:
        """A record at chain position ``seq``: the positions missing before it, if any."""
        missing = (self._expected_seq, seq - 1) if seq != self._expected_seq else None
        if missing is not None:
            self._gap = True
        self._expected_seq = seq + 1
        return missing

    def skip(self) -> None:
        """The record's content (or part of it) cannot be read: a gap."""
        self._gap = True

    def begin(self, seq: int, payload: Mapping[str, Any], events: list[dict[str, Any]]) -> bool:
        """A readable record, before its events: take its people and, after a
        gap or when the chain does not begin with the conversation's creation,
        seed the members from its capture. True when it seeded."""
        self.people.capture(payload.get("people") or {})
        seeded = self._gap or (
            not self._read_any and not any(e.get("type") == "conversation_created" for e in events)
        )
        if seeded:
            self._seed(seq, payload, events)
        self._gap, self._read_any = False, True
        return seeded

    def _seed(self, seq: int, payload: Mapping[str, Any], events: list[dict[str, Any]]) -> None:
        """The members a record captured when it was written, wound back over
        its own membership events: the members before its first event. Roles
        and join times are not captured."""
        members = {int(pk) for pk in payload.get("members") or []}
        for entry in reversed(events):
            subject = entry.get("subject")
            if subject is None:
                continue
            if entry.get("type") in JOINS:
                members.discard(int(subject))
            elif entry.get("type") in LEAVES:
                members.add(int(subject))
        self.members = {pk: Member(self.people.person(pk), role="", since=None) for pk in sorted(members)}
        self.seeded_from = seq

    def apply(self, entry: Mapping[str, Any], moment: datetime | None) -> None:
        """A journal event: a join, leave or role change changes the members."""
        kind, subject = entry.get("type"), entry.get("subject")
        if subject is None:
            return
        data = entry.get("data") or {}
        if kind in JOINS:
            person = self.people.person(int(subject))
            self.members[person.id] = Member(person, role=str(data.get("role") or "member"), since=moment)
        elif kind in LEAVES:
            self.members.pop(int(subject), None)
        elif kind == "role_changed" and int(subject) in self.members:
            self.members[int(subject)] = replace(self.members[int(subject)], role=str(data.get("role") or ""))
