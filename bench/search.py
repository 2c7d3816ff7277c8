"""Archive search benchmark: how fast an auditor's search answers over
1,000,000 archived message versions on PostgreSQL.

It times ``compliance.workspace.search`` itself, in this process, the way the
search page calls it: a new search is ``count()`` (exact up to 1,000) plus
the first ``page()``; a further page is one ``page()`` after a keyset cursor.
About fifty queries of different kinds are each run ``--rounds`` times after
one warm-up run: common words, medium and rare words, words found nowhere,
phrases, alternatives and exclusions, each filter alone and combined,
"include edited and deleted versions", and pages deep into large results
(10,000th and 100,000th hit). It prints the latency of each kind, p50 / p95
over all of them, the plans of two representative queries (the GIN index at
work), and the cost of the form's choices (people, conversations,
departments) that every search page loads.

The data, in the database named in DATABASE_URL (disposable, with "bench" in
its name: it is dropped and created again):

- ``--reuse [SOURCE]`` (default ``kontor_bench``): a copy of the snapshot
  benchmark's database (``bench/snapshots.py``: 1,000,000 messages, their
  edits and deletions, archived into retention records), if it exists and
  holds records; ``manage.py reindex_archive`` then fills (or checks) the
  search index from the records, and is timed.
- otherwise (or when SOURCE has no records): ``--messages`` index rows
  written directly (COPY), with text drawn from a Zipf-distributed
  vocabulary of 20,000 words (a few very common, most rare), 5 % of messages
  edited, 1 % deleted, 4 % with attachments and their text, spread over a
  year, 1,000 conversations and 500 people; the retention records they point
  to are made by the real snapshot service from one message per conversation
  (so each conversation's rows hang on one record, and a participant filter
  reaches whole conversations: slower than over real records of at most
  1,000 events each).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kontor_bench_search \\
        KONTOR_DATA_DIR=/tmp/kontor-bench-search .venv/bin/python bench/search.py --reuse
    # without the snapshot benchmark's data:
    DATABASE_URL=... .venv/bin/python bench/search.py --messages 1000000
"""

import argparse
import functools
import importlib
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEPARTMENTS = ["Sales", "Finance", "Legal", "Engineering", "Support", "Marketing", "HR", "Operations"]
FILE_TYPES = [
    ("application/pdf", "pdf"),
    ("image/png", "png"),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    ("text/csv", "csv"),
]


def say(label: str, text: str) -> None:
    print(f"{label:>22}  {text}", flush=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


# --- The databases --------------------------------------------------------------


class Server:
    """The PostgreSQL server of DATABASE_URL, through its maintenance database."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql"):
            raise SystemExit("The search benchmark runs on PostgreSQL: set DATABASE_URL=postgres://…")
        self.name = parts.path.lstrip("/")
        if "bench" not in self.name:
            raise SystemExit(f"{self.name!r}: the benchmark's database must have 'bench' in its name.")
        self.admin = parts._replace(path="/postgres").geturl()

    def run(
        self, sql: str, params: tuple[Any, ...] = (), database: str | None = None
    ) -> list[tuple[Any, ...]]:
        import psycopg

        url = self.admin if database is None else urlsplit(self.admin)._replace(path=f"/{database}").geturl()
        with psycopg.connect(url, autocommit=True) as connection:
            cursor = connection.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def exists(self, database: str) -> bool:
        return bool(self.run("SELECT 1 FROM pg_database WHERE datname = %s", (database,)))

    def records(self, database: str) -> int:
        try:
            return int(self.run("SELECT count(*) FROM compliance_retentionrecord", database=database)[0][0])
        except Exception:  # no such table: not a Kontor database
            return 0

    def recreate(self, template: str | None = None) -> None:
        self.run(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.run(f'CREATE DATABASE "{self.name}"' + (f' TEMPLATE "{template}"' if template else ""))


# --- Generated data (without the snapshot benchmark's) ----------------------------


def vocabulary(rng: random.Random, size: int) -> list[str]:
    consonants, vowels = "bcdfghklmnprstvwz", "aeiou"
    words: set[str] = set()
    while len(words) < size:
        syllables = rng.choice((2, 2, 3, 3, 4))
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables)))
    ranked = sorted(words)
    rng.shuffle(ranked)
    return ranked


def generate(messages: int, rng: random.Random) -> None:
    """People, 1,000 conversations archived by the snapshot service, then the
    index rows themselves by COPY (the GIN index is built after, as a restore would)."""
    from django.db import connection

    from accounts.models import Department, User
    from compliance import services
    from compliance.models import ArchivedMessage, RetentionRecord
    from messenger import services as chat

    departments = [Department.objects.create(name=name) for name in DEPARTMENTS]
    people = User.objects.bulk_create(
        User(email=f"search-{n}@bench.invalid", display_name=f"Person {n}", department=departments[n % 8])
        for n in range(500)
    )
    conversations = []
    for n in range(1000):
        members = rng.sample(people, 10)
        group = chat.group_create(
            actor=members[0], name=f"Project {n}", member_ids=[m.pk for m in members[1:]]
        )
        chat.message_send(actor=members[0], conversation_id=group.pk, body=f"Kick-off of project {n}")
        services.snapshot_conversation(conversation_id=group.pk)
        conversations.append((group.pk, f"Project {n}", members))
    records = dict(RetentionRecord.objects.values_list("conversation_id", "pk"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'compliance_archived_fts'")
        (fts_index,) = cursor.fetchone()
        cursor.execute("DROP INDEX compliance_archived_fts")
        cursor.execute("SELECT COALESCE(MAX(message_id), 0) + 1 FROM compliance_archivedmessage")
        next_message = cursor.fetchone()[0]

    words = vocabulary(rng, 20_000)
    cumulative = list(itertools.accumulate(1 / (rank + 1) ** 1.07 for rank in range(len(words))))
    start = datetime.now(tz=UTC) - timedelta(days=366)
    columns = [
        "record_id", "conversation_id", "conversation_title", "event_id", "message_id", "message_seq",
        "version", "kind", "author_id", "author_name", "author_department", "body", "file_text", "files",
        "has_files", "file_types", "at",
    ]  # fmt: skip
    table = ArchivedMessage._meta.db_table

    def text(n: int) -> str:
        return " ".join(rng.choices(words, cum_weights=cumulative, k=n))

    def rows() -> Any:
        event = 10_000_000
        for n in range(messages):
            conversation_id, title, members = conversations[min(int(rng.paretovariate(1.2)) - 1, 999)]
            author = rng.choice(members)
            at = start + timedelta(seconds=n * 366 * 86400 / messages + rng.random())
            body = text(min(120, max(1, int(rng.lognormvariate(2.3, 0.8)))))
            files, file_text, has_files, types = "[]", "", False, ""
            if rng.random() < 0.04:
                kind, extension = rng.choice(FILE_TYPES)
                summary = {"name": f"doc-{n}.{extension}", "sha256": f"{n:064x}", "size": 1000, "type": kind}
                files = json.dumps([summary])
                file_text = text(rng.randint(50, 2000)) if kind != "image/png" else ""
                has_files, types = True, kind
            versions = [("created", body)]
            roll = rng.random()
            if roll < 0.05:
                versions.append(("edited", body + " " + text(3)))
            elif roll < 0.06:
                versions.append(("deleted", body))
            for number, (kind_, version_body) in enumerate(versions, start=1):
                event += 1
                yield (
                    records[conversation_id], conversation_id, title, event, next_message + n, n + 1,
                    number, kind_, author.pk, author.display_name, DEPARTMENTS[author.pk % 8],
                    version_body, file_text, files, has_files, types,
                    at + timedelta(minutes=5 * (number - 1)),
                )  # fmt: skip

    t0 = time.perf_counter()
    written = 0
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows():
            copy.write_row(row)
            written += 1
    say("copy", f"{written:,} index rows in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(fts_index)
    say("GIN index", f"built in {time.perf_counter() - t0:.1f} s")


# --- The queries ----------------------------------------------------------------


@dataclass
class Query:
    kind: str
    label: str
    criteria: Any
    deep: int = 0  # start after the hit at this position (a deep page)
    after: Any = None
    page_ms: list[float] = field(default_factory=list)
    count_ms: list[float] = field(default_factory=list)
    hits: int = 0
    total: tuple[int, bool] = (0, False)


def sample_words() -> dict[str, list[str]]:
    """Words of the archive by the share of versions that hold them (from a
    sample of about 20,000 versions), most common first. A rare "word" may be
    any token (a link, a number)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT max(id) FROM compliance_archivedmessage")
        step = max(1, (cursor.fetchone()[0] or 0) // 20_000)
        sample = f"FROM compliance_archivedmessage WHERE id % {step} = 0"
        cursor.execute(f"SELECT count(*) {sample}")
        total = max(1, cursor.fetchone()[0])
        cursor.execute(
            f"SELECT word, ndoc FROM ts_stat($$SELECT to_tsvector('simple', body) {sample}$$) "  # noqa: S608
            "ORDER BY ndoc DESC, word"
        )
        rows = cursor.fetchall()
    plain = [(w, n) for w, n in rows if w.isalpha() and len(w) >= 3]
    return {
        "common": [w for w, n in plain if n > total * 0.05][:40],
        "medium": [w for w, n in plain if total * 0.001 < n <= total * 0.01][:200],
        "rare": [w for w, n in rows if n == 1 and len(w) >= 4 and "'" not in w][-400:],
    }


def make_queries(rng: random.Random) -> list[Query]:
    from django.db.models import Count

    from compliance.models import ArchivedMessage, RecordPerson
    from compliance.workspace.search import Criteria

    words = sample_words()
    if len(words["common"]) < 6 or len(words["rare"]) < 6:
        raise SystemExit("The archive holds too little text to benchmark its search.")
    top = words["common"][0]
    common = rng.sample(words["common"], 6)
    # Without words of middling frequency (a small vocabulary), the common ones stand in.
    medium = rng.sample(words["medium"], 6) if len(words["medium"]) >= 6 else common
    rare = rng.sample(words["rare"], 6)
    busiest = list(
        ArchivedMessage.objects.values("conversation_id").annotate(n=Count("id")).order_by("-n")[:200]
    )
    conversation_ids = [row["conversation_id"] for row in busiest]
    people = list(RecordPerson.objects.order_by("?").values_list("user_id", flat=True)[:20])
    departments = list(
        ArchivedMessage.objects.exclude(author_department="")
        .values_list("author_department", flat=True)
        .distinct()[:8]
    )
    newest = ArchivedMessage.objects.order_by("-at").values_list("at", flat=True).first()
    assert newest is not None
    month = (newest - timedelta(days=200)).date()
    week = (newest - timedelta(days=100)).date()

    def q(kind: str, label: str, **criteria: Any) -> Query:
        return Query(kind=kind, label=label, criteria=Criteria(**criteria))

    queries = [
        *(q("common word", w, q=w) for w in common[:4]),
        q("common word", f"{common[4]} (all versions)", q=common[4], all_versions=True),
        *(q("medium word", w, q=w) for w in medium[:4]),
        *(q("rare word", w, q=w) for w in rare[:4]),
        q("rare word", f"{rare[4]} (all versions)", q=rare[4], all_versions=True),
        q("no hit", "zzqxv", q="zzqxv"),
        q("no hit", "zzqxv kwyjibo", q="zzqxv kwyjibo"),
        q("two words", f"{common[0]} {medium[0]}", q=f"{common[0]} {medium[0]}"),
        q("two words", f"{common[1]} {common[2]}", q=f"{common[1]} {common[2]}"),
        q("two words", f"{medium[1]} {rare[0]}", q=f"{medium[1]} {rare[0]}"),
        q("phrase", f'"{common[0]} {common[1]}"', q=f'"{common[0]} {common[1]}"'),
        q("phrase", f'"{common[2]} {common[3]}"', q=f'"{common[2]} {common[3]}"'),
        q("phrase", f'"{medium[0]} {common[0]}"', q=f'"{medium[0]} {common[0]}"'),
        q("or / not", f"{rare[1]} or {rare[2]}", q=f"{rare[1]} or {rare[2]}"),
        q("or / not", f"{medium[2]} -{common[0]}", q=f"{medium[2]} -{common[0]}"),
        q("or / not", f"{common[3]} -{common[4]}", q=f"{common[3]} -{common[4]}"),
        *(q("filter", f"{common[i]} + participant", q=common[i], participant_id=people[i]) for i in range(2)),
        q("filter", f"{medium[0]} + participant", q=medium[0], participant_id=people[2]),
        *(
            q("filter", f"{common[i]} + conversation", q=common[i], conversation_id=conversation_ids[i * 50])
            for i in range(2)
        ),
        q("filter", f"{rare[3]} + conversation", q=rare[3], conversation_id=conversation_ids[0]),
        q("filter", f"{common[0]} + department", q=common[0], department=departments[0]),
        q("filter", f"{medium[1]} + department", q=medium[1], department=departments[1 % len(departments)]),
        q(
            "filter",
            f"{common[1]} + one month",
            q=common[1],
            date_from=month,
            date_to=month + timedelta(days=30),
        ),
        q("filter", f"{rare[5]} + one month", q=rare[5], date_from=month, date_to=month + timedelta(days=30)),
        q("filter", f"{common[2]} + attachments", q=common[2], has_files=True),
        q("filter", f"{common[3]} + PDF", q=common[3], file_type="application/pdf"),
        q(
            "filter",
            "participant + department + week, no words",
            participant_id=people[3],
            department=departments[0],
            date_from=week,
            date_to=week + timedelta(days=7),
        ),
        q("filter", "conversation, no words", conversation_id=conversation_ids[10]),
        q("filter", "everything, no words", all_versions=True),
        q(
            "filter",
            f"{common[0]} + participant + month + all versions",
            q=common[0],
            participant_id=people[4],
            date_from=month,
            date_to=month + timedelta(days=60),
            all_versions=True,
        ),
    ]
    deep = [
        q("deep page", f"{common[0]} after 10,000", q=common[0]),
        q("deep page", f"{common[1]} after 10,000", q=common[1]),
        q("deep page", f"{top} after 100,000", q=top),
        q("deep page", "no words, after 100,000", all_versions=False),
        q("deep page", "no words, after 500,000", all_versions=True),
        q("deep page", f"{medium[0]} after 1,000", q=medium[0]),
        q("deep page", f"{common[2]} + department after 10,000", q=common[2], department=departments[0]),
    ]
    for query, position in zip(deep, (10_000, 10_000, 100_000, 100_000, 500_000, 1_000, 10_000), strict=True):
        query.deep = position
    return queries + deep


def place_cursors(queries: list[Query]) -> None:
    """Where each deep page starts: the position of its n-th hit (found once,
    with OFFSET, outside the timing: the page itself never uses OFFSET)."""
    from compliance.workspace import search

    for query in queries:
        if not query.deep:
            continue
        row = (
            search.matching(query.criteria)
            .order_by("-at", "-id")
            .values_list("at", "id")[query.deep - 1 : query.deep]
            .first()
        )
        if row is None:
            say("left out", f"{query.label}: fewer than {query.deep:,} hits")
            continue
        query.after = search.Position(at=row[0], id=row[1])
        query.total = search.count(query.criteria)  # the cursor carries it from the search's first page
    queries[:] = [query for query in queries if not query.deep or query.after is not None]


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = call()
    return (time.perf_counter() - t0) * 1000, result


def run(queries: list[Query], rounds: int) -> None:
    from compliance.workspace import search

    for query in queries:
        for n in range(rounds + 1):  # the first run warms the cache and is not counted
            if not query.deep:  # a new search: the count, then the first page (as the page does)
                ms, total = timed(functools.partial(search.count, query.criteria))
                if n:
                    query.count_ms.append(ms)
                query.total = total
            few = not query.total[1]
            ms, page = timed(functools.partial(search.page, query.criteria, after=query.after, few=few))
            if n:
                query.page_ms.append(ms)
            query.hits = len(page.hits)


def explain(query: Query) -> str:
    """The plan of the query's page, as ``search.page`` runs it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from compliance.workspace import search

    with CaptureQueriesContext(connection) as captured:
        search.page(query.criteria, after=query.after, few=not query.total[1])
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN ANALYZE {captured.captured_queries[-1]['sql']}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return f"{query.label}:\n{plan}"


def upgrade_draft_index() -> None:
    """A copy migrated by a draft of migration 0007 (an expression index, no
    stored document, no index of the versions with files) gets what the
    migration makes now."""
    from django.db import connection

    from compliance.models import ArchivedMessage

    migration = importlib.import_module("compliance.migrations.0007_archive_search")
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_name = 'compliance_archivedmessage' AND column_name = 'search_document'"
        )
        has_document = bool(cursor.fetchone())
        indexes = connection.introspection.get_constraints(cursor, ArchivedMessage._meta.db_table)
    with connection.schema_editor() as editor:
        if not has_document:
            editor.execute(f"DROP INDEX IF EXISTS {migration.INDEX}")
            migration.add_document(None, editor)
        for index in ArchivedMessage._meta.indexes:
            if index.name not in indexes:
                editor.add_index(ArchivedMessage, index)
                has_document = False
    if not has_document:
        say("draft of 0007", f"the copy brought up to date in {time.perf_counter() - t0:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--reuse",
        nargs="?",
        const="kontor_bench",
        default=None,
        metavar="SOURCE",
        help="copy this database of the snapshot benchmark (default kontor_bench) if it holds records",
    )
    parser.add_argument(
        "--messages", type=int, default=1_000_000, help="messages to generate without --reuse"
    )
    parser.add_argument(
        "--again", action="store_true", help="measure the last run's database again, as it is"
    )
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each query (after one warm-up)")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        raise SystemExit(
            "Set DATABASE_URL=postgres://…/kontor_bench_search (a disposable PostgreSQL database)."
        )
    server = Server(url)
    os.environ.setdefault("KONTOR_DATA_DIR", tempfile.mkdtemp(prefix="kontor-bench-search-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["LOG_LEVEL"] = "warning"
    os.environ["DATABASE_POOL"] = "false"
    rng = random.Random(args.seed)

    source = args.reuse
    reuse = bool(source) and source != server.name and server.exists(source) and server.records(source) > 0
    if args.again:
        if not server.records(server.name):
            raise SystemExit(f"--again: {server.name} holds no archive yet.")
    else:
        if source and not reuse:
            say("data", f"{source} has no retention records: generating instead")
        t0 = time.perf_counter()
        try:
            server.recreate(template=source if reuse else None)
        except Exception as error:  # the source is in use: another benchmark writes it
            raise SystemExit(f"Could not copy {source}: {error}") from error
        if reuse:
            say("copy", f"{server.name} from {source} in {time.perf_counter() - t0:.1f} s")

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from compliance.models import ArchivedMessage, RetentionRecord
    from compliance.workspace import search

    version = getattr(connection, "pg_version", 0) // 10000
    say("machine", f"{os.cpu_count()} cores, PostgreSQL {version}, load {os.getloadavg()[0]:.1f}")
    call_command("migrate", verbosity=0, interactive=False)
    upgrade_draft_index()
    if args.again:
        say("data", f"measuring {server.name} as the last run left it")
    elif reuse:
        t0 = time.perf_counter()
        call_command("reindex_archive")
        say("reindex_archive", f"{time.perf_counter() - t0:.1f} s wall")
    else:
        generate(args.messages, rng)
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE compliance_archivedmessage")
        cursor.execute("VACUUM ANALYZE compliance_recordperson")
        cursor.execute("SELECT pg_size_pretty(pg_relation_size('compliance_archived_fts'))")
        gin_size = cursor.fetchone()[0]
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('compliance_archivedmessage'))")
        table_size = cursor.fetchone()[0]
    versions = ArchivedMessage.objects.count()
    current = search.count(search.Criteria(), cap=10**9)[0]
    say("vacuum analyze", f"{time.perf_counter() - t0:.1f} s")
    say(
        "index",
        f"{versions:,} message versions ({current:,} current) from {RetentionRecord.objects.count():,} "
        f"records; table with indexes {table_size}, GIN index {gin_size}",
    )

    queries = make_queries(rng)
    place_cursors(queries)
    choices_ms = [timed(search.filter_choices)[0] for _ in range(args.rounds + 1)][1:]
    run(queries, args.rounds)

    print()
    print(f"{'kind':<12} {'query':<46} {'hits':>9} {'page p50':>9} {'count p50':>10}")
    for query in queries:
        total = "-" if query.deep else f"{query.total[0]:,}{'+' if query.total[1] else ''}"
        count = f"{statistics.median(query.count_ms):9.1f}" if query.count_ms else f"{'-':>9}"
        page = f"{statistics.median(query.page_ms):9.1f}"
        print(f"{query.kind:<12} {query.label[:46]:<46} {total:>9} {page} {count:>10}")
    pages = [ms for query in queries for ms in query.page_ms]
    first = [query for query in queries if not query.deep]
    deep = [ms for query in queries if query.deep for ms in query.page_ms]
    counts = [ms for query in first for ms in query.count_ms]
    new_search = [p + c for query in first for p, c in zip(query.page_ms, query.count_ms, strict=True)]
    print()
    print(f"{'figure (ms)':<52}{'p50':>9}{'p95':>9}{'max':>9}")
    for label, values in (
        ("page (any), one query", pages),
        ("deep page (after 1,000 … 500,000 hits)", deep),
        ("count (exact up to 1,000)", counts),
        ("new search: count + first page", new_search),
        ("the form's choices (3 queries)", choices_ms),
    ):
        print(f"{label:<52}{percentile(values, 50):9.1f}{percentile(values, 95):9.1f}{max(values):9.1f}")
    print(f"\n{len(queries)} queries, {args.rounds} rounds each; {date.today()}")
    print("\nPlans of a rare word's first page and of the deepest page:")
    print(explain(next(q for q in queries if q.kind == "rare word")))
    print(explain(max(queries, key=lambda q: q.deep)))
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (other work on the machine skews figures)")


if __name__ == "__main__":
    main()
