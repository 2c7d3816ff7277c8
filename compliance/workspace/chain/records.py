"""Records of a conversation's chain, read in chain order with their content
checked against the record's hash (and HMAC)."""

import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime

from django.conf import settings
from django.db.models import QuerySet

from compliance.models import RetentionRecord
from compliance.records import record_hash, record_hmac


class RecordAltered(Exception):
    """A record's content does not prove itself (its hash or HMAC)."""


@dataclass(frozen=True)
class RecordRef:
    """A record of the chain as the workspace knows it: its row (position,
    hashes, events, company days, purge) and what reading its content found:
    ``readable`` when the content is there, ``problem`` when it does not
    match the record's hash or HMAC ("" when it does)."""

    pk: int
    conversation_id: int
    seq: int
    sha256: str
    previous_hash: str
    first_event: int
    last_event: int
    event_count: int
    period_start: date
    period_end: date
    created_at: datetime
    purged_at: datetime | None = None
    readable: bool = True
    problem: str = ""

    @property
    def intact(self) -> bool:
        return self.readable and not self.problem

    @property
    def name(self) -> str:
        return f"Record {self.seq} of conversation {self.conversation_id}"

    @property
    def file(self) -> str:
        """Its name in an export (and in the archive storage)."""
        return f"records/{self.conversation_id}/{self.seq:08d}-{self.sha256}.json"


@dataclass(frozen=True)
class RecordRead:
    """A record and its canonical JSON as stored (None: purged or missing)."""

    ref: RecordRef
    content: bytes | None

    def proven(self) -> bytes | None:
        """The content, only if it matches the record's hash (and HMAC);
        None when there is none. Raises ``RecordAltered`` naming the record
        otherwise."""
        if self.ref.problem:
            raise RecordAltered(self.ref.problem)
        return self.content


def content_checked(
    ref: RecordRef, content: bytes | None, mac: str = "", *, keyed_before: bool = False
) -> RecordRead:
    """``ref`` with what its content says of it: readable or not, and the
    problem when the content does not match the record's hash, its HMAC (when
    the archive is keyed and the record carries one), or carries no HMAC
    although it was made with a key or earlier records of its chain carry one
    (``keyed_before``)."""
    if content is None:
        return RecordRead(replace(ref, readable=False, problem=""), None)
    problem = ""
    if record_hash(content) != ref.sha256:
        problem = f"{ref.name} does not match its hash: the archive may have been altered"
    elif settings.KONTOR_ARCHIVE_HMAC_KEY and mac and not hmac.compare_digest(record_hmac(content), mac):
        problem = f"{ref.name} does not match its HMAC: the archive may have been altered"
    elif settings.KONTOR_ARCHIVE_HMAC_KEY and keyed_before and not mac:
        problem = (
            f"{ref.name} carries no HMAC although the records before it do: the archive may have been altered"
        )
    elif not mac and json.loads(content).get("keyed") is True:
        problem = (
            f"{ref.name} carries no HMAC although it was made with a key: the archive may have been altered"
        )
    return RecordRead(replace(ref, readable=True, problem=problem), content)


_FIELDS = (
    "pk",
    "conversation_id",
    "seq",
    "sha256",
    "previous_hash",
    "first_event_id",
    "last_event_id",
    "event_count",
    "period_start",
    "period_end",
    "created_at",
    "purge__purged_at",
    "hmac",
    "content__canonical_json",
)


def chain_read(records: QuerySet[RetentionRecord], *, chunk: int) -> Iterator[RecordRead]:
    """``records`` (of one conversation, from its first record on) in chain
    order, each with its content checked (``content_checked``). ``chunk``
    records are fetched at a time: memory holds at most that many contents."""
    keyed_before = False
    rows = records.order_by("seq").values_list(*_FIELDS).iterator(chunk_size=chunk)
    for *fields, mac, text in rows:
        ref = RecordRef(*fields)
        yield content_checked(
            ref, text.encode("utf-8") if text is not None else None, mac, keyed_before=keyed_before
        )
        keyed_before = keyed_before or bool(mac)
