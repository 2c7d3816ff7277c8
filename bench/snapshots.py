"""Compliance archive benchmark: snapshot throughput and verification time.

It fills a PostgreSQL database with a company's worth of chat (people,
conversations of about ten members, messages with their journal), then times
``compliance.services.snapshot_conversation`` archiving all of it, the way the
Celery task does (repeat per conversation until it writes no record), across
one or more worker processes, and then ``compliance.verification.verify`` and
``manage.py verify_archive`` over the whole archive. It prints events archived
per second, records written, per-record latency, verification speed and a
table of the figures at the end.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kontor_bench KONTOR_DATA_DIR=/tmp/kontor-bench \\
        .venv/bin/python bench/snapshots.py --messages 1000000 --conversations 1000 --workers 1 2
    # again, on the same data (about a minute instead of several):
    ... bench/snapshots.py --messages 1000000 --conversations 1000 --workers 2 --reuse

The data is written in bulk (PostgreSQL COPY) rather than through
``messenger.services.message_send`` (about 10 ms a message), with the rows the
services write: a ``Message`` with its per-conversation ``seq`` (and the
conversation's ``last_seq`` / ``last_message_at``), revision 1 ``created``
with ``files=[]`` and a ``message`` journal event pointing at both;
``message_edited`` with a new revision (about 5 % of messages, within the edit
window), ``message_deleted`` with a revision keeping the body (about 1 %),
``reaction_added`` / ``reaction_removed`` with ``{"emoji": ...}`` (about 10 %
/ 1 %); every conversation opens with ``conversation_created`` and one
``member_joined`` / ``member_added`` event per member. Conversations are
groups and public channels; their sizes follow a mild Zipf law (the busiest of
1,000 holds about 6 % of the messages), the journal interleaves them over a
year, and about 3 % of messages are replies. Bodies are drawn from a pool of
rendered Markdown (the same ``render_body`` the services call). Ids and
sequences continue from there, so the services can write on top.

The database named in DATABASE_URL must be a disposable one whose name contains
"bench": it is dropped and created again. Generated data is kept in a copy,
``<name>_seed`` (a template database); each pass (each ``--workers`` value)
starts from a fresh copy of it, so every pass archives the same journal from
scratch, and ``--reuse`` skips generation when the seed holds the same
figures. KONTOR_DATA_DIR (default: a new temporary folder) must be disposable
too: files the archive writes there (the archive-storage copies of records)
are removed before each pass; its size after a pass is printed.
"""

import argparse
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MARKER = ".kontor-bench"
EMOJI = ["👍", "❤️", "😂", "🎉", "👀", "🙏", "✅", ":+1:", ":tada:", ":eyes:"]
DEPARTMENTS = ["Sales", "Finance", "Legal", "Engineering", "Support", "Marketing", "HR", "Operations"]
FIRST = "Anna Ben Clara David Eva Felix Greta Hannah Ida Jonas Karl Lena Mia Noah Olga Paul Rosa Sven Tom Ute"
LAST = "Adler Berg Claus Dietz Engel Fuchs Graf Hahn Illing Jung Keller Lang Maier Neumann Otto Peters Roth"
WORDS_TEXT = (
    "the a we you they offer invoice contract customer order delivery meeting call today tomorrow "
    "please thanks sure agreed draft review numbers quarter budget update price discount approved "
    "signed sent attached check again next week monday friday morning afternoon soon later done "
    "open issue ticket release deploy server report figures sales tax audit deadline client supplier "
    "shipment payment due overdue reminder project plan team lunch office remote holiday back "
    "question answer ok fine great looks good not yet waiting on for with about from into this that"
)
WORDS = WORDS_TEXT.split()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def say(label: str, text: str) -> None:
    print(f"{label:<18}{text}", flush=True)


# --- The database: drop, create, copy from the seed ---------------------------


class Databases:
    """CREATE / DROP DATABASE through the server's maintenance database."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.name = parts.path.lstrip("/")
        if parts.scheme not in ("postgres", "postgresql", "pgsql"):
            raise SystemExit("bench/snapshots.py needs PostgreSQL: DATABASE_URL=postgres://…")
        if "bench" not in self.name:
            raise SystemExit(
                f"The database {self.name!r} would be dropped and created again: "
                "use a disposable one whose name contains 'bench'."
            )
        self.seed = f"{self.name}_seed"
        self.admin_url = parts._replace(path="/postgres").geturl()

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def comment(self, db: str) -> str | None:
        rows = self._run(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (db,)
        )
        return rows[0][0] if rows else None

    def exists(self, db: str) -> bool:
        return bool(self._run("SELECT 1 FROM pg_database WHERE datname = %s", (db,)))

    def drop(self, db: str) -> None:
        self._run(f'DROP DATABASE IF EXISTS "{db}"')

    def create(self, db: str, template: str | None = None, comment: str | None = None) -> None:
        self._run(f'CREATE DATABASE "{db}"' + (f' TEMPLATE "{template}"' if template else ""))
        if comment is not None:
            self._run(f"COMMENT ON DATABASE \"{db}\" IS '{comment}'")

    def size(self, db: str) -> int:
        return int(self._run("SELECT pg_database_size(%s)", (db,))[0][0])


def close_django_connections() -> None:
    """Close every connection and pool, so that the database can be dropped or copied."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        conn.close()
        close_pool = getattr(conn, "close_pool", None)
        if close_pool is not None:
            close_pool()


# --- Generating the data --------------------------------------------------------


def body_pool(rng: random.Random, size: int) -> list[tuple[str, str]]:
    """Message bodies (a little Markdown now and then) with the HTML the services store."""
    from messenger.rendering import render_body

    pool = []
    for _ in range(size):
        n = min(120, max(1, int(rng.lognormvariate(2.3, 0.8))))
        words = [rng.choice(WORDS) for _ in range(n)]
        roll = rng.random()
        if roll < 0.10:
            i = rng.randrange(n)
            words[i] = f"**{words[i]}**"
        elif roll < 0.15:
            i = rng.randrange(n)
            words[i] = f"`{words[i]}`"
        elif roll < 0.18:
            words.append(f"https://intranet.example.com/docs/{rng.randrange(10_000)}")
        body = " ".join(words)
        body = body[0].upper() + body[1:]
        if rng.random() < 0.02:
            body += "\n\n- " + "\n- ".join(rng.sample(WORDS, 3))
        pool.append((body, render_body(body, people={}).html))
    return pool


def next_id(cursor: Any, table: str) -> int:
    cursor.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")  # noqa: S608 (our table names)
    return int(cursor.fetchone()[0])


def cols(names: str) -> list[str]:
    return names.split()


def copy_rows(raw: Any, table: str, columns: list[str], rows: Any) -> int:
    count = 0
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def check_columns(model: Any, columns: list[str]) -> None:
    """Fail early, and clearly, when the model gained a column this script does not fill."""
    from django.db.models.fields import NOT_PROVIDED

    needed = {
        f.column
        for f in model._meta.concrete_fields
        if not f.null and f.db_default is NOT_PROVIDED and not f.primary_key
    }
    missing = needed - set(columns)
    if missing:
        raise SystemExit(
            f"{model._meta.db_table} has NOT NULL columns the generator does not fill: {sorted(missing)}"
        )


def generate(args: argparse.Namespace) -> dict[str, int]:
    """Write people, conversations, messages and their journal; returns row counts."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction

    from accounts.models import Department, User
    from messenger.models import (
        Conversation,
        Event,
        Membership,
        Message,
        MessageRevision,
        Reaction,
    )

    rng = random.Random(args.seed)
    now = time.time()
    start = now - 366 * 86400
    end = now - 2 * 86400  # late edits and reactions still land in the past

    # People and departments, through the ORM (few rows).
    departments = [Department.objects.get_or_create(name=f"{name} (bench)")[0] for name in DEPARTMENTS]
    first, last = FIRST.split(), LAST.split()
    password = make_password(None)
    people = [
        User(
            email=f"archive-{i}@bench.invalid",
            display_name=f"{rng.choice(first)} {rng.choice(last)}",
            department=departments[i % len(departments)],
            password=password,
        )
        for i in range(args.people)
    ]
    user_ids = [u.pk for u in User.objects.bulk_create(people, batch_size=1000)]

    pool = body_pool(rng, 4000)

    with connection.cursor() as cur:
        conv_base = next_id(cur, "messenger_conversation")
        member_base = next_id(cur, "messenger_membership")
        msg_base = next_id(cur, "messenger_message")
        rev_base = next_id(cur, "messenger_messagerevision")
        event_base = next_id(cur, "messenger_event")
        reaction_base = next_id(cur, "messenger_reaction")

    def ts(t: float) -> datetime:
        return datetime.fromtimestamp(t, tz=UTC)

    # Conversations: created one after another on the first day, ~10 members each.
    n_conv = args.conversations
    step = min(30.0, 80_000 / n_conv)
    conv_members: list[list[int]] = []
    conv_rows = []
    member_rows: list[tuple[Any, ...]] = []
    event_rows: list[tuple[Any, ...]] = []
    event_id = event_base
    for c in range(n_conv):
        cid = conv_base + c
        created = ts(start + c * step)
        members = rng.sample(user_ids, min(args.members, len(user_ids)))
        conv_members.append(members)
        owner = members[0]
        if c % 3 == 2:
            kind, name, private = "channel", f"bench-{cid}-{rng.choice(WORDS)}", False
            data: dict[str, Any] = {"kind": "channel", "name": name, "topic": "", "private": False}
        else:
            kind, name, private = "group", f"Project {rng.choice(WORDS)} {cid}", True
            data = {"kind": "group", "name": name}
        conv_rows.append([cid, kind, name, "", private, None, owner, created, None, 0, None])
        event_rows.append(
            (event_id, cid, "conversation_created", owner, None, None, None, json.dumps(data), created)
        )
        event_id += 1
        for n, person in enumerate(members):
            role = "owner" if n == 0 else "member"
            member_rows.append((member_base + len(member_rows), cid, person, role, created, None, False, 0))
            type_ = "member_joined" if n == 0 else "member_added"
            event_rows.append(
                (event_id, cid, type_, owner, None, None, person, json.dumps({"role": role}), created)
            )
            event_id += 1

    # Messages: times spread over the year, conversations by a mild Zipf law.
    n_msg = args.messages
    weights = [1 / (rank**0.8) for rank in range(1, n_conv + 1)]
    rng.shuffle(weights)
    msg_conv = rng.choices(range(n_conv), weights=weights, k=n_msg)
    first_msg = start + n_conv * step + 60
    msg_time = sorted(rng.uniform(first_msg, end) for _ in range(n_msg))
    msg_author = [0] * n_msg
    msg_seq = [0] * n_msg
    msg_reply: list[int | None] = [None] * n_msg
    msg_body = [0] * n_msg
    last_seq = [0] * n_conv
    last_at: list[float | None] = [None] * n_conv
    recent: list[list[int]] = [[] for _ in range(n_conv)]
    timeline: list[tuple[float, int, int, int]] = []  # time, order, kind, message index
    CREATE, EDIT, DELETE, REACT, UNREACT = range(5)
    order = 0
    for i in range(n_msg):
        c = msg_conv[i]
        t = msg_time[i]
        msg_author[i] = rng.choice(conv_members[c])
        last_seq[c] += 1
        msg_seq[i] = last_seq[c]
        last_at[c] = t
        msg_body[i] = rng.randrange(len(pool))
        if recent[c] and rng.random() < 0.03:
            msg_reply[i] = msg_base + rng.choice(recent[c])
        recent[c].append(i)
        if len(recent[c]) > 50:
            recent[c].pop(0)
        timeline.append((t, order, CREATE, i))
        order += 1
        deleted = rng.random() < 0.01
        if rng.random() < 0.05:
            timeline.append((t + rng.uniform(10, 600), order, EDIT, i))
            order += 1
        if deleted:
            timeline.append((t + rng.uniform(900, 3600), order, DELETE, i))
            order += 1
        elif rng.random() < 0.10:
            added = t + rng.uniform(30, 600)  # before any deletion could come
            timeline.append((added, order, REACT, i))
            order += 1
            if rng.random() < 0.10:
                timeline.append((added + rng.uniform(30, 600), order, UNREACT, i))
                order += 1
    timeline.sort()

    # Walk the journal in time order: ids, revision numbers, the messages' final state.
    revision_rows: list[tuple[Any, ...]] = []
    reaction_rows: list[tuple[Any, ...]] = []
    rev_number = [0] * n_msg
    final_body = list(msg_body)
    edited_at: list[datetime | None] = [None] * n_msg
    deleted_at: list[datetime | None] = [None] * n_msg
    created_at: list[datetime | None] = [None] * n_msg
    reaction_of: dict[int, tuple[int, str, datetime]] = {}
    rev_id = rev_base
    type_names = ("message", "message_edited", "message_deleted", "reaction_added", "reaction_removed")
    for t, _, step_kind, i in timeline:
        cid = conv_base + msg_conv[i]
        mid = msg_base + i
        at = ts(t)
        author = msg_author[i]
        if step_kind in (CREATE, EDIT, DELETE):
            rev_number[i] += 1
            if step_kind == CREATE:
                created_at[i] = at
                revision_rows.append((rev_id, mid, 1, "created", pool[msg_body[i]][0], "[]", author, at))
            elif step_kind == EDIT:
                final_body[i] = rng.randrange(len(pool))
                edited_at[i] = at
                revision_rows.append(
                    (rev_id, mid, rev_number[i], "edited", pool[final_body[i]][0], None, author, at)
                )
            else:
                deleted_at[i] = at
                revision_rows.append(
                    (rev_id, mid, rev_number[i], "deleted", pool[final_body[i]][0], "[]", author, at)
                )
            event_rows.append((event_id, cid, type_names[step_kind], author, mid, rev_id, None, "{}", at))
            rev_id += 1
        else:
            if step_kind == REACT:
                others = [u for u in conv_members[msg_conv[i]] if u != author] or [author]
                reaction_of[i] = (rng.choice(others), rng.choice(EMOJI), at)
            actor, emoji, _ = reaction_of[i]
            if step_kind == UNREACT:
                del reaction_of[i]
            emoji_data = json.dumps({"emoji": emoji})
            event_rows.append((event_id, cid, type_names[step_kind], actor, mid, None, None, emoji_data, at))
        event_id += 1
    for n, (i, (actor, emoji, at)) in enumerate(sorted(reaction_of.items())):
        reaction_rows.append((reaction_base + n, msg_base + i, actor, emoji, at))
    del timeline

    def message_rows() -> Any:
        for i in range(n_msg):
            gone = deleted_at[i] is not None
            body, html = ("", "") if gone else pool[final_body[i]]
            yield (
                msg_base + i,
                conv_base + msg_conv[i],
                msg_author[i],
                msg_seq[i],
                body,
                html,
                uuid.UUID(int=rng.getrandbits(128), version=4),
                msg_reply[i],
                False,
                created_at[i],
                edited_at[i],
                deleted_at[i],
            )

    for c in range(n_conv):
        conv_rows[c][9] = last_seq[c]
        newest = last_at[c]
        conv_rows[c][10] = ts(newest) if newest is not None else None
    seq_by_conv = {conv_base + c: last_seq[c] for c in range(n_conv)}
    member_rows = [(*row[:7], seq_by_conv[row[1]]) for row in member_rows]

    columns = {
        Conversation: cols(
            "id kind name topic is_private direct_key created_by_id created_at archived_at last_seq "
            "last_message_at"
        ),
        Membership: cols("id conversation_id user_id role joined_at left_at is_muted last_read_seq"),
        Message: cols(
            "id conversation_id author_id seq body html client_id reply_to_id mentions_everyone "
            "created_at edited_at deleted_at"
        ),
        MessageRevision: cols("id message_id number kind body files actor_id created_at"),
        Event: cols("id conversation_id type actor_id message_id revision_id subject_id data created_at"),
        Reaction: cols("id message_id user_id emoji created_at"),
    }
    for model, names in columns.items():
        check_columns(model, names)
    sources = {
        Conversation: conv_rows,
        Membership: member_rows,
        Message: message_rows(),
        MessageRevision: revision_rows,
        Event: event_rows,
        Reaction: reaction_rows,
    }
    counts: dict[str, int] = {}
    with transaction.atomic():
        raw = connection.connection
        for model, rows in sources.items():
            table = model._meta.db_table
            t0 = time.perf_counter()
            counts[table] = copy_rows(raw, table, columns[model], rows)
            say("  copy", f"{table:<28}{counts[table]:>10,} rows in {time.perf_counter() - t0:6.1f} s")
        with connection.cursor() as cur:
            for model in sources:
                table = model._meta.db_table
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT MAX(id) FROM {table}))"
                )
    return counts


# --- Snapshot workers -------------------------------------------------------------


def snapshot_worker(queue: Any, results: Any, barrier: Any) -> None:
    """One process: take conversations off the queue and archive each to its end."""
    import django

    django.setup()
    from django.db import connection

    from compliance.services import snapshot_conversation

    connection.ensure_connection()
    barrier.wait()
    per_record: list[float] = []
    events = empty = 0
    error = None
    try:
        while (conversation_id := queue.get()) is not None:
            while True:
                t0 = time.perf_counter()
                snapshot = snapshot_conversation(conversation_id=conversation_id)
                elapsed = time.perf_counter() - t0
                if snapshot.record is None:
                    empty += 1
                    break
                per_record.append(elapsed * 1000)
                events += snapshot.events
    except Exception as exc:  # reported by the parent, which stops the run
        error = f"{type(exc).__name__}: {exc}"
    results.put({"per_record": per_record, "events": events, "empty": empty, "error": error})


def run_snapshots(workers: int) -> dict[str, Any]:
    from compliance.services import conversations_due

    t0 = time.perf_counter()
    due = conversations_due()
    due_seconds = time.perf_counter() - t0
    close_django_connections()
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no connection or pool crosses over
    queue, results = ctx.Queue(), ctx.Queue()
    for conversation_id in due:
        queue.put(conversation_id)
    for _ in range(workers):
        queue.put(None)
    barrier = ctx.Barrier(workers + 1)
    processes = [ctx.Process(target=snapshot_worker, args=(queue, results, barrier)) for _ in range(workers)]
    for process in processes:
        process.start()
    barrier.wait(timeout=120)
    started = time.perf_counter()
    outcomes = [results.get() for _ in processes]
    seconds = time.perf_counter() - started
    for process in processes:
        process.join()
    errors = [o["error"] for o in outcomes if o["error"]]
    if errors:
        raise SystemExit("A snapshot worker failed: " + "; ".join(errors))
    per_record = [ms for o in outcomes for ms in o["per_record"]]
    return {
        "workers": workers,
        "conversations": len(due),
        "due_seconds": due_seconds,
        "records": len(per_record),
        "events": sum(o["events"] for o in outcomes),
        "seconds": seconds,
        "p50": percentile(per_record, 50),
        "p95": percentile(per_record, 95),
        "max": max(per_record, default=float("nan")),
    }


# --- Main ---------------------------------------------------------------------------


def describe(args: argparse.Namespace) -> str:
    return (
        f"kontor bench archive: messages={args.messages} conversations={args.conversations} "
        f"members={args.members} people={args.people} seed={args.seed}"
    )


def prepare_data_dir() -> Path:
    given = os.environ.get("KONTOR_DATA_DIR")
    if not given:
        os.environ["KONTOR_DATA_DIR"] = tempfile.mkdtemp(prefix="kontor-bench-")
    path = Path(os.environ["KONTOR_DATA_DIR"]).resolve()
    if path == (ROOT / "data").resolve():
        raise SystemExit("KONTOR_DATA_DIR must be a disposable folder, not the project's data folder.")
    path.mkdir(parents=True, exist_ok=True)
    if not (path / MARKER).exists():
        if any(path.iterdir()):
            raise SystemExit(f"{path} holds files this benchmark did not make: give an empty or new folder.")
        (path / MARKER).write_text("Files of bench/snapshots.py: emptied before each pass.\n")
    return path


def empty_data_dir(path: Path) -> None:
    """Remove what a pass wrote (archive-storage copies), keeping the secret key."""
    for item in path.iterdir():
        if item.name in (MARKER, "secret_key"):
            continue
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item)
        else:
            item.unlink()


def folder_size(path: Path) -> tuple[int, int]:
    files = size = 0
    for item in path.rglob("*"):
        if item.is_file() and item.name not in (MARKER, "secret_key"):
            files += 1
            size += item.stat().st_size
    return files, size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--conversations", type=int, default=1_000)
    parser.add_argument("--members", type=int, default=10, help="members per conversation (default 10)")
    parser.add_argument("--people", type=int, default=None, help="people in all (default conversations/2)")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1],
        help="snapshot processes; several values, several passes",
    )
    parser.add_argument("--reuse", action="store_true", help="keep the generated data if its figures match")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.people = args.people or max(args.members * 2, args.conversations // 2)
    if args.messages < 1 or args.conversations < 1 or args.members < 2 or min(args.workers) < 1:
        raise SystemExit("--messages, --conversations, --workers must be positive, --members at least 2.")
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("Set DATABASE_URL=postgres://…/kontor_bench (a disposable PostgreSQL database).")
    dbs = Databases(url)
    data_dir = prepare_data_dir()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["LOG_LEVEL"] = "warning"

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    say("machine", f"{os.cpu_count()} cores, PostgreSQL {dbs.name}, data folder {data_dir}")
    wanted = describe(args)
    if args.reuse and dbs.comment(dbs.seed) == wanted:
        say("data", f"reusing {dbs.seed} ({wanted.split(': ', 1)[1]})")
    else:
        if args.reuse:
            say("data", f"no {dbs.seed} with these figures: generating")
        started = time.perf_counter()
        close_django_connections()
        dbs.drop(dbs.name)
        dbs.drop(dbs.seed)
        dbs.create(dbs.name)
        t0 = time.perf_counter()
        call_command("migrate", verbosity=0, interactive=False)
        say("migrate", f"{time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        counts = generate(args)
        say("generate", f"{sum(counts.values()):,} rows in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        with connection.cursor() as c:
            c.execute("VACUUM ANALYZE")
        say("vacuum analyze", f"{time.perf_counter() - t0:.1f} s")
        close_django_connections()
        t0 = time.perf_counter()
        dbs.create(dbs.seed, template=dbs.name, comment=wanted)
        say("seed copy", f"{dbs.seed} in {time.perf_counter() - t0:.1f} s")
        say(
            "data ready",
            f"{time.perf_counter() - started:.1f} s in all, database {dbs.size(dbs.name) / 2**20:,.0f} MiB",
        )

    from messenger.models import Event, Message

    passes = []
    for n, workers in enumerate(args.workers):
        close_django_connections()
        if n > 0 or args.reuse:
            t0 = time.perf_counter()
            dbs.drop(dbs.name)
            dbs.create(dbs.name, template=dbs.seed)
            say("fresh copy", f"{dbs.name} from {dbs.seed} in {time.perf_counter() - t0:.1f} s")
        # The code may have gained migrations since the seed was made.
        call_command("migrate", verbosity=0, interactive=False)
        empty_data_dir(data_dir)
        if n == 0:
            say("journal", f"{Message.objects.count():,} messages, {Event.objects.count():,} events")
        load = os.getloadavg()[0]
        result = run_snapshots(workers)
        result["load"] = (load, os.getloadavg()[0])
        files, size = folder_size(data_dir)
        result["files"], result["file_bytes"] = files, size
        passes.append(result)
        say(
            f"snapshot x{workers}",
            f"{result['events']:,} events in {result['records']:,} records "
            f"({result['conversations']} conversations) in {result['seconds']:.1f} s: "
            f"{result['events'] / result['seconds']:,.0f} events/s, "
            f"{result['records'] / result['seconds']:.1f} records/s",
        )
        say(
            "  per record ms",
            f"p50 {result['p50']:.1f}   p95 {result['p95']:.1f}   max {result['max']:.1f}"
            f"   (conversations_due {result['due_seconds'] * 1000:.0f} ms)",
        )
        say(
            "  load average",
            "{:.1f} before, {:.1f} after (other work on the machine skews figures)".format(*result["load"]),
        )
        if files:
            say("  storage copies", f"{files:,} files, {size / 2**20:,.1f} MiB in {data_dir}")

    from compliance.verification import verify

    t0 = time.perf_counter()
    report = verify()
    verify_seconds = time.perf_counter() - t0
    state = "intact" if report.ok else "BROKEN: " + "; ".join(report.problems[:3])
    say(
        "verify()",
        f"{report.chains} chains, {report.records:,} records, {report.events:,} events in "
        f"{verify_seconds:.1f} s: {report.records / verify_seconds:,.0f} records/s, "
        f"{report.events / verify_seconds:,.0f} events/s ({state})",
    )
    close_django_connections()
    t0 = time.perf_counter()
    command = subprocess.run(
        [sys.executable, "manage.py", "verify_archive"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    command_seconds = time.perf_counter() - t0
    output = (command.stdout + command.stderr).strip().splitlines()
    say(
        "verify_archive",
        f"{command_seconds:.1f} s wall (exit {command.returncode}): {output[-1] if output else ''}",
    )
    with connection.cursor() as c:
        c.execute("SELECT pg_total_relation_size('compliance_recordcontent')")
        content_bytes = c.fetchone()[0]
    close_django_connections()

    print()
    print(f"{'figure':<44}{'value':>16}")
    for p in passes:
        w = p["workers"]
        print(f"{f'snapshot, {w} worker(s): events/s':<44}{p['events'] / p['seconds']:>16,.0f}")
        print(f"{f'snapshot, {w} worker(s): records written':<44}{p['records']:>16,}")
        print(f"{f'snapshot, {w} worker(s): total s':<44}{p['seconds']:>16.1f}")
        print(f"{f'snapshot, {w} worker(s): per record p50 / p95 ms':<44}{p['p50']:>8.1f} /{p['p95']:>6.1f}")
    if not report.ok:
        print("(the archive did not verify: verify() stopped early, its figures are not comparable)")
    print(f"{'verify(): records/s':<44}{report.records / verify_seconds:>16,.0f}")
    print(f"{'verify(): total s':<44}{verify_seconds:>16.1f}")
    print(f"{'manage.py verify_archive: wall s':<44}{command_seconds:>16.1f}")
    print(f"{'record content in the database: MiB':<44}{content_bytes / 2**20:>16,.0f}")


if __name__ == "__main__":
    main()
