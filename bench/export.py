"""Export benchmark: how fast the ``compliance.export`` task turns archived
records into the export ZIP (mbox, JSON Lines, PDF transcript, records,
manifest), and how much memory it needs while doing so.

It fills a fresh database with one group conversation of ``--messages``
messages (about 5 % of them edited, 1 % deleted, 3 % replies, 1 % with a
``--file-kb`` attachment), written in bulk the way the messenger's services
write them (message, revision, journal event), archives it with
``compliance.services.snapshot_conversation`` (as the Celery task does), opens
a case and then times the export task itself, run in this process. It prints
message versions per second, MB per second (of the ZIP, and of what went into
it), the ZIP's size, the peak resident memory before and after the export,
and runs ``scripts/verify_export.py`` on the result.

    # embedded default (a temporary SQLite database):
    .venv/bin/python bench/export.py --messages 20000
    # PostgreSQL: a disposable database whose name contains "bench" (dropped and made again)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kontor_bench_export \\
        .venv/bin/python bench/export.py --messages 20000

KONTOR_DATA_DIR defaults to a new temporary folder (files, archive copies and
the export land there) and is removed afterwards unless ``--keep``.
"""

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = [
    *("Angebot", "Preis", "Lieferung", "Rechnung", "Termin", "Vertrag", "bitte", "danke", "prüfen"),
    *("freigeben", "Quartal", "Umsatz", "offer", "price", "delivery", "invoice", "meeting", "contract"),
    *("please", "thanks", "review", "approve", "quarter", "revenue"),
]


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it is
    not inherited from the parent that started the process)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prepare_database() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        return "SQLite (temporary file)"
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "bench" not in name:
        sys.exit("DATABASE_URL must name a disposable database whose name contains 'bench'.")
    admin = url.replace(parts.path, "/postgres")
    import psycopg

    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"PostgreSQL ({name})"


def body(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 40)))


def generate(messages: int, file_kb: int, rng: random.Random) -> dict[str, Any]:
    """One group's history, in bulk, with the rows the services write."""
    import io

    from archive import services as files
    from compliance import services
    from messenger import services as chat
    from messenger.models import Conversation, Event, Message, MessageRevision
    from tests.factories import make_user

    alice = make_user(email="alice@bench.example", display_name="Alice Adler")
    bob = make_user(email="bob@bench.example", display_name="Bob Brandt")
    carla = make_user(email="carla@bench.example", display_name="Carla Conti")
    people = [alice, bob, carla]
    group = chat.group_create(actor=alice, name="Vertrieb", member_ids=[bob.pk, carla.pk])
    attachments = []
    for n in range(5):
        data = b"%PDF-1.4\n" + rng.randbytes(file_kb * 1024) + b"\n%%EOF\n"
        stored = files.file_store(upload=io.BytesIO(data), name=f"Angebot-{n}.pdf", uploader=alice)
        attachments.append(
            {
                "id": stored.pk,
                "sha256": stored.sha256,
                "name": stored.name,
                "size": stored.size,
                "type": stored.content_type,
            }
        )
    made = Message.objects.bulk_create(
        Message(
            conversation=group,
            author=rng.choice(people),
            seq=group.last_seq + n + 1,
            body=body(rng),
            html="",
            reply_to=None,
        )
        for n in range(messages)
    )
    revisions = MessageRevision.objects.bulk_create(
        MessageRevision(
            message=m,
            number=1,
            kind="created",
            body=m.body,
            actor=m.author,
            files=[rng.choice(attachments)] if rng.random() < 0.01 else [],
        )
        for m in made
    )
    events = [
        Event(conversation=group, type=Event.Type.MESSAGE, actor=m.author, message=m, revision=r)
        for m, r in zip(made, revisions, strict=True)
    ]
    later: list[tuple[Message, MessageRevision, str]] = []
    for m, first in zip(made, revisions, strict=True):
        if rng.random() < 0.05:
            edited = MessageRevision(
                message=m,
                number=2,
                kind="edited",
                body=m.body + " (korrigiert)",
                actor=m.author,
                files=first.files,
            )
            later.append((m, edited, Event.Type.MESSAGE_EDITED))
            if rng.random() < 0.2:
                later.append(
                    (
                        m,
                        MessageRevision(
                            message=m,
                            number=3,
                            kind="deleted",
                            body=edited.body,
                            actor=m.author,
                            files=first.files,
                        ),
                        Event.Type.MESSAGE_DELETED,
                    )
                )
    MessageRevision.objects.bulk_create([r for _m, r, _t in later])
    events += [Event(conversation=group, type=t, actor=m.author, message=m, revision=r) for m, r, t in later]
    Event.objects.bulk_create(events, batch_size=2000)
    replies = [m for m in made[1:] if rng.random() < 0.03]
    for m in replies:
        m.reply_to_id = made[max(0, m.seq - group.last_seq - 3)].pk
    Message.objects.bulk_update(replies, ["reply_to"], batch_size=2000)
    Conversation.objects.filter(pk=group.pk).update(last_seq=group.last_seq + messages)
    started = time.perf_counter()
    records = 0
    while services.snapshot_conversation(conversation_id=group.pk).record is not None:
        records += 1
    return {
        "conversation": group,
        "versions": len(revisions) + len(later),
        "records": records,
        "snapshot_seconds": time.perf_counter() - started,
    }


def run_export(export_id: int, profile: bool) -> None:
    """The export task in a process of its own: its peak memory is the export's
    (plus Django's), not the data generation's."""
    import django

    django.setup()
    from compliance.workspace import tasks

    baseline = peak_rss_mb()
    started = time.perf_counter()
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        status = profiler.runcall(tasks.export, export_id)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    else:
        status = tasks.export(export_id)
    seconds = time.perf_counter() - started
    print(
        json.dumps({"status": status, "seconds": seconds, "baseline_mb": baseline, "peak_mb": peak_rss_mb()})
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--file-kb", type=int, default=200, help="size of each of the five attachments")
    parser.add_argument("--formats", default="mbox,jsonl,pdf")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the data folder (and the export)")
    parser.add_argument("--profile", action="store_true", help="print where the export spends its time")
    parser.add_argument("--run-export", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # The file previews the generated attachments ask for run here, not on a worker.
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    if args.run_export:
        run_export(args.run_export, args.profile)
        return

    data_dir = Path(os.environ.get("KONTOR_DATA_DIR") or tempfile.mkdtemp(prefix="kontor-bench-export-"))
    os.environ["KONTOR_DATA_DIR"] = str(data_dir)
    database = prepare_database()

    import django

    django.setup()
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
    from django.core.files.storage import default_storage
    from django.core.management import call_command
    from django.db import connections

    from accounts import roles
    from compliance.models import Export
    from compliance.workspace import cases, exports
    from compliance.workspace.exports import services as export_services
    from tests.factories import make_user

    call_command("migrate", verbosity=0)
    rng = random.Random(args.seed)
    print(f"==> {database}; data folder {data_dir}")
    print(f"==> Generating and archiving {args.messages:,} messages")
    made = generate(args.messages, args.file_kb, rng)
    print(
        f"    {made['versions']:,} message versions in {made['records']} records "
        f"(archived in {made['snapshot_seconds']:.1f} s)"
    )
    auditor = make_user(email="otto@bench.example", display_name="Otto Ortmann", roles=[roles.AUDITORS])
    TOTP.activate(auditor, generate_totp_secret())
    case = cases.case_open(actor=auditor, name="Benchmark", legal_basis="Benchmark of the export")
    export_services._queue = lambda export_id: None  # run below, not on a worker
    export = exports.export_request(
        actor=auditor,
        case_id=case.pk,
        parameters={"kind": "conversation", "conversation_id": made["conversation"].pk},
        formats=args.formats.split(","),
    )
    connections.close_all()
    child = subprocess.run(
        [sys.executable, __file__, "--run-export", str(export.pk), *(["--profile"] if args.profile else [])],
        capture_output=True,
        text=True,
        check=False,
    )
    if args.profile:
        print(child.stderr[-12000:])
    try:
        result = json.loads(child.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        sys.exit(f"The export process failed:\n{child.stdout}\n{child.stderr[-4000:]}")
    export = Export.objects.get(pk=export.pk)
    if result["status"] != "done":
        sys.exit(f"The export failed: {export.error}")
    seconds, size = result["seconds"], export.size or 0
    zip_path = Path(default_storage.path(export.file_key))
    with zipfile.ZipFile(zip_path) as archive:
        content = sum(info.file_size for info in archive.infolist())
        members = {info.filename: info.file_size for info in archive.infolist()}
    started_verify = time.perf_counter()
    verified = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "verify_export.py"), str(zip_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    verify_seconds = time.perf_counter() - started_verify
    mb = 1024 * 1024
    print(f"==> Export {export.pk}: {export.items:,} versions in {seconds:.1f} s")
    for name in ("messages.mbox", "messages.jsonl"):
        if name in members:
            print(f"    {name}: {members[name] / mb:.1f} MB")
    volumes = [n for n in members if n.startswith("transcript")]
    print(f"    transcript: {len(volumes)} volume(s), {sum(members[n] for n in volumes) / mb:.1f} MB")
    print()
    print("| figure | value |")
    print("|---|---|")
    print(f"| database | {database} |")
    print(f"| message versions | {export.items:,} ({made['records']} records) |")
    print(f"| export time | {seconds:.1f} s |")
    print(f"| versions per second | {export.items / seconds:,.0f} |")
    print(f"| ZIP | {size / mb:.1f} MB, {size / mb / seconds:.2f} MB/s |")
    print(f"| content (uncompressed) | {content / mb:.1f} MB, {content / mb / seconds:.2f} MB/s |")
    print(
        f"| peak RSS of the export process | {result['peak_mb']:.0f} MB "
        f"(Django loaded: {result['baseline_mb']:.0f} MB) |"
    )
    print(
        f"| verify_export.py | {'OK' if verified.returncode == 0 else 'FAILED'} in {verify_seconds:.1f} s |"
    )
    if verified.returncode != 0:
        print(verified.stdout, verified.stderr)
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
