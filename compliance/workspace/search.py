"""Searching the archive: the auditors' full-text search over the index of
message versions (``ArchivedMessage``), never over the live chat.

- PostgreSQL: the stored ``search_document`` column (migration 0007:
  ``to_tsvector('simple', body || ' ' || file_text)``, GIN-indexed) matched
  against ``websearch_to_tsquery('simple', q)`` (words, "quoted phrases",
  ``or``, ``-not``). ``simple`` neither stems nor drops stop words: an auditor
  finds the words that were written, in any language.
- SQLite (the embedded default): every word (or quoted phrase) must occur,
  case-insensitively, in the body or in the attachments' text; ``-word``
  excludes, ``or`` between words allows either.
- By default only what a reader saw last: the latest version of each message,
  unless that version is its deletion. ``all_versions`` adds every edited-away
  and deleted version.
- Newest first by ``(at, id)``, paged by keyset (the last hit's position),
  never by OFFSET, so page 1,000 costs what page 1 costs. A page is one query.
- A search is one audit event, written when it is made (``search_results``);
  its further pages continue it through a signed cursor and write nothing.
"""

import hashlib
import html
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.core import signing
from django.db import connection
from django.db.models import DateTimeField, Exists, Expression, F, Func, OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import Col
from django.db.models.functions import Left
from django.utils.safestring import SafeString, mark_safe

from accounts.models import Department, User
from compliance.audit import Origin, audit_event_record
from compliance.models import ArchivedMessage, AuditEvent, Case, RecordPerson, RetentionRecord

PAGE_SIZE = 25
# The count an audit event and the page show is exact up to this, "more than"
# beyond; it also tells a page whether its hits are few (see ``page``).
COUNT_CAP = 1_000
QUERY_MAX = 500
# The part of the attachments' text a page loads to cut a snippet from.
FILE_TEXT_HEAD = 20_000
SNIPPET_WIDTH = 240
CURSOR_SALT = "compliance.workspace.search.cursor"
CURSOR_MAX_AGE = 24 * 3600


def _document_column() -> Any:
    from django.contrib.postgres.search import SearchVectorField

    column = SearchVectorField()
    column.set_attributes_from_name("search_document")
    return column


class Document(Expression):
    """The row's ``search_document`` column (PostgreSQL only; not a model field).

    Resolved like a model field's column, so the query may become a subquery
    of another (its table then gets an alias) and still name the right row.
    """

    def resolve_expression(
        self,
        query: Any = None,
        allow_joins: bool = True,
        reuse: set[str] | None = None,
        summarize: bool = False,
        for_save: bool = False,
    ) -> Any:
        column = _document_column()
        return Col(query.get_initial_alias(), column, output_field=column)


# --- The query's words --------------------------------------------------------

_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_EDGE = re.compile(r"^[^\w]+|[^\w]+$")


@dataclass(frozen=True)
class Term:
    text: str
    negated: bool = False

    @property
    def words(self) -> list[str]:
        return self.text.split()


def parse_query(q: str) -> list[list[Term]]:
    """The query as web search syntax reads it: groups that must all match,
    each a list of alternatives (``or``); ``-`` excludes; quotes make a phrase.
    Punctuation around words is dropped."""
    groups: list[list[Term]] = []
    join_next = False
    for match in _TOKEN.finditer(q):
        sign, phrase, word = match.groups()
        if word is not None:
            if word.lower() == "or" and groups and not groups[-1][-1].negated:
                join_next = True
                continue
            sign, word = ("-", word[1:]) if word.startswith("-") and len(word) > 1 else ("", word)
            text = _EDGE.sub("", word)
        else:
            text = " ".join(_EDGE.sub("", w) for w in (phrase or "").split())
            text = " ".join(text.split())
        if not text:
            continue
        term = Term(text=text, negated=sign == "-")
        if join_next and not term.negated and groups:
            groups[-1].append(term)
        else:
            groups.append([term])
        join_next = False
    return groups


def wanted_terms(q: str) -> list[Term]:
    return [term for group in parse_query(q) for term in group if not term.negated]


# --- Criteria and cursors -----------------------------------------------------


@dataclass(frozen=True)
class Criteria:
    q: str = ""
    participant_id: int | None = None
    conversation_id: int | None = None
    department: str = ""
    date_from: date | None = None
    date_to: date | None = None
    has_files: bool = False
    file_type: str = ""
    all_versions: bool = False
    # The days of the date range are the searcher's (the pages show times in it).
    time_zone: str = "UTC"

    def filters(self) -> dict[str, Any]:
        """The filters that are set, as JSON (for the audit event)."""
        values = {name: value for name, value in asdict(self).items() if name not in ("q", "time_zone")}
        shown: dict[str, Any] = {}
        for name, value in values.items():
            if value in (None, "", False):
                continue
            shown[name] = value.isoformat() if isinstance(value, date) else value
        if self.date_from or self.date_to:
            shown["time_zone"] = self.time_zone
        return shown

    def fingerprint(self) -> str:
        described = json.dumps({"q": self.q, **self.filters()}, sort_keys=True)
        return hashlib.sha256(described.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Position:
    """A hit's place in the order: (at, id), newest first."""

    at: datetime
    id: int


@dataclass(frozen=True)
class Resume:
    """Where a page continues a search already made (and logged); no
    position is its first page again."""

    position: Position | None
    total: int
    capped: bool
    case_id: int


def cursor_token(
    *, case_id: int, criteria: Criteria, position: Position | None, total: int, capped: bool
) -> str:
    """A signed token for the next page: it holds the position and binds it to
    the case and the criteria, so a page of another search cannot pass as
    the continuation of a logged one."""
    return signing.dumps(
        {
            "k": case_id,
            "f": criteria.fingerprint(),
            "at": position.at.isoformat() if position else None,
            "id": position.id if position else None,
            "n": total,
            "c": capped,
        },
        salt=CURSOR_SALT,
        compress=True,
    )


def read_cursor(token: str | None, *, case_id: int, criteria: Criteria) -> Resume | None:
    """The continuation ``token`` stands for, or None when it is missing,
    forged, stale, or belongs to another case or other criteria."""
    if not token:
        return None
    try:
        data = signing.loads(token, salt=CURSOR_SALT, max_age=CURSOR_MAX_AGE)
        if data["k"] != case_id or data["f"] != criteria.fingerprint():
            return None
        position = Position(at=datetime.fromisoformat(data["at"]), id=int(data["id"])) if data["at"] else None
        return Resume(
            position=position,
            total=int(data["n"]),
            capped=bool(data["c"]),
            case_id=case_id,
        )
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


# --- The query ----------------------------------------------------------------


def _day_start(day: date, time_zone: str) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(time_zone))


def _text_filter(hits: QuerySet[ArchivedMessage], q: str) -> QuerySet[ArchivedMessage]:
    if not parse_query(q):
        return hits.none()  # punctuation only: no word to find (PostgreSQL agrees)
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery

        query = SearchQuery(q, config="simple", search_type="websearch")
        return hits.alias(document=Document()).filter(document=query)
    for group in parse_query(q):
        either = Q()
        for term in group:
            either |= Q(body__icontains=term.text) | Q(file_text__icontains=term.text)
        hits = hits.exclude(either) if group[0].negated else hits.filter(either)
    return hits


def matching(criteria: Criteria) -> QuerySet[ArchivedMessage]:
    """Every index row the criteria select, unordered and unpaged."""
    hits = ArchivedMessage.objects.all()
    if criteria.q.strip():
        hits = _text_filter(hits, criteria.q.strip())
    if not criteria.all_versions:
        newer = ArchivedMessage.objects.filter(
            message_id=OuterRef("message_id"), version__gt=OuterRef("version")
        )
        hits = hits.exclude(kind="deleted").exclude(Exists(newer))
    if criteria.participant_id is not None:
        # Sender or member at the time: a record names its authors, actors and
        # the members at capture (``RecordPerson``).
        hits = hits.filter(
            record_id__in=RecordPerson.objects.filter(user_id=criteria.participant_id).values("record_id")
        )
    if criteria.conversation_id is not None:
        hits = hits.filter(conversation_id=criteria.conversation_id)
    if criteria.department:
        hits = hits.filter(author_department=criteria.department)
    if criteria.date_from is not None:
        hits = hits.filter(at__gte=_day_start(criteria.date_from, criteria.time_zone))
    if criteria.date_to is not None:
        hits = hits.filter(at__lt=_day_start(criteria.date_to + timedelta(days=1), criteria.time_zone))
    if criteria.has_files or criteria.file_type:
        # Through the index of the versions with files: a few percent of all,
        # which bounds what a file filter costs whatever the words.
        hits = hits.filter(has_files=True)
    if criteria.file_type:
        # A type ("application/pdf") or a family ("image/") at the start of a
        # word of the space-separated list.
        kind = criteria.file_type
        hits = hits.filter(Q(file_types__startswith=kind) | Q(file_types__contains=f" {kind}"))
    return hits


def count(criteria: Criteria, *, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """How many hits: exact up to ``cap``, else ``(cap, True)``. One query,
    which stops past the cap."""
    found = matching(criteria).order_by()[: cap + 1].count()
    return (cap, True) if found > cap else (found, False)


@dataclass
class Hit:
    message: ArchivedMessage
    snippet: SafeString
    found_in: str = ""
    link: str | None = None

    @property
    def position(self) -> Position:
        return Position(at=self.message.at, id=self.message.pk)


@dataclass
class Page:
    hits: list[Hit] = field(default_factory=list)
    next: Position | None = None


class _Unindexed(Func):
    """``at`` in an expression no index provides: the planner cannot find the
    hits by walking the archive in time order and must collect them through
    their indexes, then sort them."""

    template = "(%(expressions)s + interval '0 seconds')"
    output_field = DateTimeField()


def page(
    criteria: Criteria, *, after: Position | None = None, size: int = PAGE_SIZE, few: bool = False
) -> Page:
    """One page of hits, newest first, after ``after``. One query.

    ``few``: the count found no more than ``COUNT_CAP`` hits. PostgreSQL's
    planner cannot know that of a word it has no statistics for (a name, an
    invoice number: what auditors search most); it may then walk the rows
    newest first looking for a page's worth, through the whole archive when
    there are none. Told, the page collects the few hits through the GIN
    index and sorts them; many hits are best found by the walk, which the
    planner chooses for words it knows are common.
    """
    hits = matching(criteria)
    if after is not None:
        # The first condition alone lets an (at, id) index start at the cursor.
        hits = hits.filter(Q(at__lte=after.at), Q(at__lt=after.at) | Q(id__lt=after.id))
    newest_first = [F("at").desc(), F("id").desc()]
    if few and connection.vendor == "postgresql":
        newest_first[0] = _Unindexed(F("at")).desc()
    rows = list(
        hits.defer("file_text")
        .annotate(file_text_head=Left("file_text", FILE_TEXT_HEAD))
        .order_by(*newest_first)[: size + 1]
    )
    pattern = _pattern(wanted_terms(criteria.q))
    found = [_hit(row, pattern) for row in rows[:size]]
    return Page(hits=found, next=found[-1].position if len(rows) > size else None)


# --- A search, logged once ------------------------------------------------------


@dataclass
class Results:
    """One page of a case's search, with what continues it."""

    case_id: int
    criteria: Criteria
    page: Page
    total: int
    capped: bool
    after: Position | None

    def _token(self, position: Position | None) -> str:
        return cursor_token(
            case_id=self.case_id,
            criteria=self.criteria,
            position=position,
            total=self.total,
            capped=self.capped,
        )

    @property
    def first_token(self) -> str | None:
        """Back to the first page (from a later one) without a new search."""
        return self._token(None) if self.after is not None else None

    @property
    def next_token(self) -> str | None:
        return self._token(self.page.next) if self.page.next else None


def search_results(
    *, actor: User, case: Case, criteria: Criteria, cursor: str | None, origin: Origin = Origin.NONE
) -> Results:
    """One page of hits for ``case``, whose results ``actor`` may open
    (``cases.case_for_results`` checked that).

    A search is logged once, when it is made: one ``SEARCHED`` event with the
    words, the filters and the count. A valid ``cursor`` (from ``Results``'
    tokens) continues that search and logs nothing; a forged or stale one, or
    one of other criteria, counts as a new search and is logged.
    """
    resumed = read_cursor(cursor, case_id=case.pk, criteria=criteria)
    if resumed is None:
        total, capped = count(criteria)
        audit_event_record(
            kind=AuditEvent.Kind.SEARCHED,
            actor=actor,
            case=case,
            origin=origin,
            detail={
                "query": criteria.q,
                "filters": criteria.filters(),
                "results": total,
                "results_capped": capped,
            },
        )
        after = None
    else:
        total, capped, after = resumed.total, resumed.capped, resumed.position
    found = page(criteria, after=after, few=not capped)
    return Results(case_id=case.pk, criteria=criteria, page=found, total=total, capped=capped, after=after)


# --- Snippets -----------------------------------------------------------------


def _pattern(terms: list[Term]) -> re.Pattern[str] | None:
    """Where the terms occur: whole words where PostgreSQL's full-text search
    matched whole words, anywhere where SQLite matched substrings."""
    if not terms:
        return None
    whole = connection.vendor == "postgresql"
    parts = []
    for term in sorted(terms, key=lambda t: len(t.text), reverse=True):
        body = r"\W+".join(re.escape(word) for word in term.words)
        parts.append(rf"(?<!\w){body}(?!\w)" if whole else body)
    return re.compile("|".join(parts), re.IGNORECASE)


def highlight(text: str, pattern: re.Pattern[str] | None, *, width: int = SNIPPET_WIDTH) -> SafeString:
    """An excerpt of ``text`` around the first match, HTML-escaped, with every
    match in ``<mark>``. Each piece is escaped on its own, so markup in a
    message stays text and no entity is cut apart."""
    text = " ".join(text.split())
    first = pattern.search(text) if pattern else None
    start = max(0, (first.start() if first else 0) - width // 3)
    end = min(len(text), start + width)
    excerpt = text[start:end]
    pieces: list[str] = []
    position = 0
    for match in pattern.finditer(excerpt) if pattern else ():
        pieces.append(html.escape(excerpt[position : match.start()]))
        pieces.append(f"<mark>{html.escape(match.group())}</mark>")
        position = match.end()
    pieces.append(html.escape(excerpt[position:]))
    return mark_safe(("…" if start else "") + "".join(pieces) + ("…" if end < len(text) else ""))  # noqa: S308


def _hit(row: ArchivedMessage, pattern: re.Pattern[str] | None) -> Hit:
    file_text: str = getattr(row, "file_text_head", "")
    names = ", ".join(str(f.get("name") or "file") for f in row.files)
    if pattern and not pattern.search(row.body) and file_text and pattern.search(file_text):
        return Hit(message=row, snippet=highlight(file_text, pattern), found_in=names)
    return Hit(message=row, snippet=highlight(row.body, pattern))


# --- What the filters offer ---------------------------------------------------


@dataclass(frozen=True)
class Choices:
    participants: list[tuple[int, str]]
    conversations: list[tuple[int, str]]
    departments: list[str]


def filter_choices() -> Choices:
    """The people, conversations and departments the archive knows: three
    queries, however large the archive (the conversations' titles come from
    the index's newest row of each, found through its (conversation, at)
    index)."""
    people = User.objects.filter(pk__in=RecordPerson.objects.values("user_id")).order_by(
        "display_name", "email"
    )
    participants = [
        (user.pk, f"{user.display_name} <{user.email}>" if user.display_name else user.email)
        for user in people.only("pk", "display_name", "email")
    ]
    newest_title = (
        ArchivedMessage.objects.filter(conversation_id=OuterRef("conversation_id"))
        .order_by("-at")
        .values("conversation_title")[:1]
    )
    firsts = RetentionRecord.objects.filter(seq=1).annotate(title=Subquery(newest_title))
    conversations = sorted(
        (
            (conversation_id, title or f"Conversation {conversation_id}")
            for conversation_id, title in firsts.values_list("conversation_id", "title")
        ),
        key=lambda item: (item[1].lower(), item[0]),
    )
    departments = list(Department.objects.order_by("name").values_list("name", flat=True))
    return Choices(participants=participants, conversations=conversations, departments=departments)
