"""Load generator: real daphne processes, real sockets, real sessions.

It prepares people and a conversation in the configured database, starts one
or more daphne processes, opens the sockets, sends messages at a given rate
and measures, for every recipient socket, the time from a send until the
message arrives there. It prints p50 / p95 / p99 latency and throughput.

    .venv/bin/python bench/load.py --scenario dm                      # 2 people, embedded default
    .venv/bin/python bench/load.py --scenario channel --sockets 500   # one channel, 500 sockets
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kontor_bench REDIS_URL=redis://127.0.0.1:6379/1 \\
        .venv/bin/python bench/load.py --scenario channel --sockets 500 --processes 2

Without DATABASE_URL it works in a fresh temporary data folder (SQLite, the
in-memory channel layer, hence one process). With DATABASE_URL the database
should be a disposable one: bench people (``bench-N@bench.invalid``) are added
to it. Sessions are created directly in the session store, as a login would,
so that 500 people need not each pay for a password hash.
"""

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(people: int, scenario: str) -> tuple[int, list[str]]:
    """Create people, their sessions and the conversation; return its id and session keys."""
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from accounts.models import User
    from messenger import services
    from messenger.models import Conversation

    call_command("migrate", verbosity=0, interactive=False)
    users = []
    for i in range(people):
        user, _ = User.objects.get_or_create(
            email=f"bench-{i}@bench.invalid", defaults={"display_name": f"Bench {i}"}
        )
        users.append(user)
    keys = []
    for user in users:
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        keys.append(session.session_key or "")
    if scenario == "dm":
        conversation = services.direct_open(actor=users[0], other_user_id=users[1].pk)
    else:
        name = f"bench-{people}"
        existing = Conversation.objects.filter(kind="channel", name=name).first()
        conversation = existing or services.channel_create(
            actor=users[0], name=name, member_ids=[u.pk for u in users[1:]]
        )
    return conversation.pk, keys


def start_servers(count: int, env: dict[str, str]) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    processes, ports = [], []
    for _ in range(count):
        port = free_port()
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "config.asgi:application",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        ports.append(port)
    for port in ports:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit(f"daphne on port {port} did not start")
    return processes, ports


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


async def run_load(args: argparse.Namespace, conversation_id: int, keys: list[str], ports: list[int]) -> None:
    import websockets
    from websockets.typing import Origin

    latencies: list[float] = []
    errors: dict[str, int] = {}
    received = 0
    sent_at: dict[str, float] = {}
    expected_per_message = 0
    done = asyncio.Event()
    total_expected = 0

    async def open_one(index: int) -> Any:
        port = ports[index % len(ports)]
        key = keys[index % len(keys)]
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws/",
            origin=Origin(f"http://127.0.0.1:{port}"),
            additional_headers={"Cookie": f"sessionid={key}"},
            max_size=2**20,
            open_timeout=60,
            ping_interval=None,
        )
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello", hello
        # As the page does: resume from where it stands, which starts the socket's mark.
        await ws.send(json.dumps({"type": "resume", "after": hello["event"]}))
        return ws

    started = time.perf_counter()
    semaphore = asyncio.Semaphore(100)

    async def guarded(index: int) -> Any:
        async with semaphore:
            return await open_one(index)

    sockets = await asyncio.gather(*(guarded(i) for i in range(args.sockets)))
    connect_seconds = time.perf_counter() - started
    expected_per_message = len(sockets)  # every member socket, the sender's included

    async def reader(ws: Any) -> None:
        nonlocal received
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") == "error":
                errors[frame.get("code", "?")] = errors.get(frame.get("code", "?"), 0) + 1
                continue
            if frame.get("type") != "message":
                continue
            client_id = frame["message"].get("client_id")
            t0 = sent_at.get(client_id)
            if t0 is None:
                continue
            latencies.append(time.perf_counter() - t0)
            received += 1
            if total_expected and received >= total_expected:
                done.set()

    readers = [asyncio.create_task(reader(ws)) for ws in sockets]
    senders = sockets[: args.senders]
    total_messages = args.count
    total_expected = total_messages * expected_per_message
    interval = 1.0 / args.rate
    # Warm-up, not measured: a fresh server process compiles its templates and
    # fills its caches on its first sends (the readers skip unknown client_ids).
    for n in range(args.warmup):
        await senders[n % len(senders)].send(
            json.dumps(
                {
                    "type": "send",
                    "conversation": conversation_id,
                    "body": f"warm-up {n}",
                    "client_id": str(uuid.uuid4()),
                }
            )
        )
        await asyncio.sleep(interval)
    if args.warmup:
        await asyncio.sleep(2.0)
    send_started = time.perf_counter()
    for n in range(total_messages):
        ws = senders[n % len(senders)]
        client_id = str(uuid.uuid4())
        sent_at[client_id] = time.perf_counter()
        await ws.send(
            json.dumps(
                {
                    "type": "send",
                    "conversation": conversation_id,
                    "body": f"bench {n}",
                    "client_id": client_id,
                }
            )
        )
        next_at = send_started + (n + 1) * interval
        delay = next_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    send_seconds = time.perf_counter() - send_started
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout=args.timeout)
    total_seconds = time.perf_counter() - send_started
    for task in readers:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)

    ms = [x * 1000 for x in latencies]
    backend = "PostgreSQL + Redis" if os.environ.get("DATABASE_URL") else "embedded (SQLite, in-memory layer)"
    worst = max(ms) if ms else float("nan")
    lines = [
        f"scenario          {args.scenario} ({len(keys)} people, {len(sockets)} sockets, "
        f"{len(ports)} daphne)",
        f"backend           {backend}",
        f"connect           {len(sockets)} sockets in {connect_seconds:.2f} s",
        f"sent              {total_messages} messages in {send_seconds:.2f} s "
        f"({total_messages / send_seconds:.1f} msg/s)",
        f"delivered         {received} of {total_expected} ({100 * received / max(1, total_expected):.1f} %)",
        f"throughput        {received / total_seconds:.0f} deliveries/s, "
        f"{total_messages / total_seconds:.1f} msg/s end to end",
        f"latency ms        p50 {percentile(ms, 50):.1f}   p95 {percentile(ms, 95):.1f}   "
        f"p99 {percentile(ms, 99):.1f}   max {worst:.1f}",
    ]
    if errors:
        lines.append(f"refused           {', '.join(f'{code}: {n}' for code, n in sorted(errors.items()))}")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", choices=["dm", "channel"], default="dm")
    parser.add_argument("--sockets", type=int, default=None, help="sockets to open (dm: 2)")
    parser.add_argument(
        "--senders", type=int, default=None, help="sockets that send (default: 2 for dm, 5 for channel)"
    )
    parser.add_argument(
        "--rate", type=float, default=None, help="messages per second in all (default 20 dm, 10 channel)"
    )
    parser.add_argument(
        "--count", type=int, default=None, help="messages to send (default 400 dm, 100 channel)"
    )
    parser.add_argument(
        "--processes", type=int, default=1, help="daphne processes (more than one needs REDIS_URL)"
    )
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument(
        "--warmup", type=int, default=10, help="messages sent first, not measured (0: measure from the start)"
    )
    args = parser.parse_args()
    dm = args.scenario == "dm"
    args.sockets = args.sockets or (2 if dm else 100)
    args.senders = min(args.sockets, args.senders or (2 if dm else 5))
    args.rate = args.rate or (20.0 if dm else 10.0)
    args.count = args.count or (400 if dm else 100)
    if args.processes > 1 and not os.environ.get("REDIS_URL"):
        raise SystemExit("--processes > 1 needs REDIS_URL: the in-memory layer cannot span processes.")
    # Each socket may send 10 frames a second (the server's rate limit).
    if args.rate / args.senders > 10:
        raise SystemExit(
            f"{args.rate} msg/s over {args.senders} senders exceeds 10/s per socket; add --senders."
        )

    if not os.environ.get("DATABASE_URL"):
        os.environ["KONTOR_DATA_DIR"] = tempfile.mkdtemp(prefix="kontor-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["LOG_LEVEL"] = "warning"
    people = 2 if dm else args.sockets
    conversation_id, keys = prepare(people, args.scenario)
    processes, ports = start_servers(args.processes, dict(os.environ))
    try:
        asyncio.run(run_load(args, conversation_id, keys, ports))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)


if __name__ == "__main__":
    main()
