"""Fault drill: crash the stack's parts under live traffic and count what was lost.

It runs the production shape on this machine, loopback only: two daphne
processes, a Celery worker with beat (``celery -A config worker --beat``, as
``scripts/run_stack.py`` starts it), PostgreSQL, and a Redis server of its own
(channel layer, cache and broker), started by the drill on a free port so that
restarting it touches nobody else's Redis. Twenty people, each with one tab
(``tests/wsclient.py``'s ``Tab``: it resumes from the server's marks, shows an
event once and sends unacknowledged messages again with the same
``client_id``; here it also retries a send answered ``unavailable`` as the page
does, and reloads on ``resync``), half of the tabs on each daphne, chat in a channel of all
twenty, four groups and six direct conversations, so that events from several
senders interleave across both processes. With that traffic flowing it injects,
one after another:

1. ``daphne-kill``: ``kill -9`` of daphne A, started again at once (its tabs
   reconnect to B while A is down, as behind a load balancer, and are sent home
   once A answers again);
2. ``worker-kill``: ``kill -9`` of the worker's process group (worker, pool and
   beat), started again at once; the drill queues ``compliance.snapshot_due``
   every few seconds on top of beat's minute so that the kill lands on running
   snapshots;
3. ``redis-restart``: ``kill -9`` of the drill's own Redis, started again on the
   same port, empty (in-flight layer messages, group memberships and queued
   tasks are gone);
4. ``pg-terminate``: ``pg_terminate_backend`` of every backend of the drill's
   database (nothing else; PostgreSQL itself keeps running);
5. ``socket-drops``: tabs' TCP connections aborted (no close frame) at random
   moments for the whole phase.

After the last phase it stops sending, lets every tab settle (unconfirmed sends
are sent again until acknowledged), stops the servers, runs the snapshot sweep
until nothing is due (``compliance.services.conversations_due`` /
``archive_conversation``, as ``bench/snapshots.py`` does) and checks. Per fault
(its phase: from the fault until the next one; what a phase's sends, events and
revisions are is decided by when they were made) it prints:

- acked lost: acknowledged messages whose id (with its ``client_id``) is not in
  the database;
- duplicates: messages stored more than once for one author and ``client_id``;
- never shown: for each tab, journal events it may see after its first mark
  (``messenger.selectors.events_after``) that are not in its ``shown`` list;
- archive gaps: message revisions that no retention record holds (every record's
  canonical JSON is read), plus whether ``manage.py verify_archive`` passed;
- recovery s: from the fault until a send issued after it is acknowledged
  (each affected tab sends one at once): the first tab / the last affected tab.
  For ``socket-drops`` each drop counts as a fault of that tab.
- shown after s: from an event's commit until a tab showed it (p50 / p99 / max).

It ends with PASS (exit status 0) when every loss column is 0, ``verify_archive``
passed and every tab's first send after the database fault was acknowledged
within 5 s; otherwise with FAIL and the reasons (exit status 1).

Missing events are listed with their id, type, conversation, the tab's user and
which daphne the tab and the sender were connected to when the event was made.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kontor_drill_bench \\
        .venv/bin/python bench/faults.py --seconds-per-fault 20

The database must be disposable and have "bench" in its name: it is dropped and
created again (``WITH (FORCE)``), and it is the only database whose backends
the drill terminates. ``KONTOR_DATA_DIR`` is a new temporary folder, removed at
the end unless ``--keep`` (the processes' logs are in its ``logs/`` folder).
Every process the drill starts runs in its own process group and is stopped at
the end, also on Ctrl-C, SIGTERM or an error. ``--naive-resume`` makes the tabs
resume the way the page did before issue 16 (after the highest event id seen),
to show that the drill reports the events that loses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import free_port, percentile, prepare  # noqa: E402
from bench.snapshots import Databases, close_django_connections  # noqa: E402
from tests.wsclient import EVENT_TYPES, Tab  # noqa: E402

PY = sys.executable
FAULTS = ["daphne-kill", "worker-kill", "redis-restart", "pg-terminate", "socket-drops"]
PEOPLE = 20
MAX_PENDING = 12  # a tab stops typing while this many of its sends are unconfirmed
RESEND_AFTER = 15.0  # seconds before an unconfirmed send first goes out again on a live socket
STOP_GRACE_SECONDS = 15
DATABASE_RECOVERY_LIMIT = 5.0  # the demand for the database fault


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# --- Processes -----------------------------------------------------------------


class Proc:
    """A child in its own process group, with a log file per start."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.command, self.env, self.logs = name, command, env, logs
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.cpu_seconds = 0.0  # user + system time of its process groups, all starts
        self.log_path = logs / f"{name}.log"

    def start(self) -> None:
        self.starts += 1
        self.log_path = self.logs / f"{self.name}-{self.starts}.log"
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def count_cpu(self) -> None:
        """Add the CPU time of the running group's processes (read before they go)."""
        if self.popen is None or self.popen.poll() is not None:
            return
        tick = os.sysconf("SC_CLK_TCK")
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.popen.pid:  # its process group
                    self.cpu_seconds += (int(fields[11]) + int(fields[12])) / tick

    def kill9(self) -> None:
        """``kill -9`` of the whole group (a worker's pool and beat die with it)."""
        if self.popen is None:
            return
        self.count_cpu()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL of the group after the grace period; leftovers too."""
        if self.popen is None:
            return
        self.count_cpu()
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=STOP_GRACE_SECONDS)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


async def wait_for_port(port: int, proc: Proc, timeout: float = 90) -> float:
    """Seconds until ``port`` accepts a connection; raises if the process exits."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not proc.running:
            raise RuntimeError(f"{proc.name} exited; see {proc.log_path}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        return time.monotonic() - started
    raise RuntimeError(f"{proc.name} did not answer on port {port} within {timeout:.0f} s")


async def wait_for_log(proc: Proc, text: str, timeout: float = 90) -> float:
    started = time.monotonic()
    while text not in proc.log_text():
        if not proc.running:
            raise RuntimeError(f"{proc.name} exited; see {proc.log_path}")
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{proc.name} did not log {text!r} within {timeout:.0f} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def redis_ping(port: int, timeout: float = 30) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"PING\r\n")
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 2)
            writer.close()
            if line.startswith(b"+PONG"):
                return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise RuntimeError(f"redis on port {port} did not answer within {timeout:.0f} s")


# --- Tabs ------------------------------------------------------------------------


@dataclass
class DrillTab(Tab):
    """A ``Tab`` that also records when things happened and where it was connected."""

    user_id: int = 0
    home: int = 0  # index of its daphne
    conversations: list[int] = field(default_factory=list)
    process: int | None = None  # the daphne it is connected to now
    first_mark: int | None = None
    created_at: dict[str, float] = field(default_factory=dict)  # client_id -> wall time
    acked_at: dict[str, float] = field(default_factory=dict)
    last_sent: dict[str, float] = field(default_factory=dict)
    next_resend: dict[str, float] = field(default_factory=dict)
    duplicate_acks: int = 0
    # (from, to, daphne index): wall-clock intervals of its sockets.
    intervals: list[list[Any]] = field(default_factory=list)
    event_types: Counter[str] = field(default_factory=Counter)
    reloads: list[tuple[int, int]] = field(default_factory=list)
    want_reload: bool = False
    sent_count: int = 0
    unavailable_tries: dict[str, int] = field(default_factory=dict)
    retried: int = 0  # sends answered `unavailable` and sent again
    shown_at: dict[int, float] = field(default_factory=dict)  # event id -> wall time
    # --naive-resume: the old page's resume point, the highest event id of any
    # frame (acks included); shows that the drill catches the loss it causes.
    naive: bool = False

    def _handle(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        retry = None
        if kind == "error" and frame.get("code") == "unavailable":
            # Nothing was stored: send the same frame again a little later, as the
            # page does (static/js/chat.js: after 1, 2, … 5 s, then it shows the
            # send as failed). Tab drops it as refused for good.
            client_id = frame.get("client_id")
            tries = self.unavailable_tries[str(client_id)] = self.unavailable_tries.get(str(client_id), 0) + 1
            if client_id in self.pending and tries <= 5:
                retry = (client_id, self.pending[client_id], tries)
        before = len(self.shown)
        super()._handle(frame)
        if len(self.shown) > before:
            self.shown_at[self.shown[-1]] = time.time()
        if self.naive and isinstance(frame.get("event"), int) and kind in (*EVENT_TYPES, "ack"):
            if kind == "ack" and frame["event"] not in self._seen and frame["event"] > self.mark:
                # The page shows its own message from the ack.
                self._seen.add(frame["event"])
                self.shown.append(frame["event"])
                self.shown_at[frame["event"]] = time.time()
            self.mark = max(self.mark, frame["event"])
        if retry is not None:
            client_id, pending, tries = retry
            self.pending[client_id] = pending
            self.next_resend[client_id] = time.time() + tries
            self.errors.pop()
            self.retried += 1
        if kind == "ack":
            self.acked_at.setdefault(frame["client_id"], time.time())
            if frame.get("duplicate"):
                self.duplicate_acks += 1
        elif kind == "error" and frame.get("code") == "rate_limited" and frame.get("client_id"):
            self.next_resend[frame["client_id"]] = time.time() + 1.0
        elif kind == "resync":
            # The browser reloads the page: a fresh mark from the next hello.
            self.want_reload = True
        elif kind in EVENT_TYPES:
            self.event_types[str(kind)] += 1

    async def send(self, conversation: int, body: str) -> str:
        now = time.time()
        client_id = await self.send_message(conversation, body)
        self.created_at[client_id] = now
        self.sent_at(client_id, now)
        self.sent_count += 1
        return client_id

    def sent_at(self, client_id: str, now: float) -> None:
        self.last_sent[client_id] = now
        self.next_resend[client_id] = now + RESEND_AFTER

    async def resend_stale(self) -> None:
        """Send again, on the live socket, what stayed unconfirmed (the wait doubles
        each time: a slow server is not flooded), or was refused as rate-limited."""
        ws = self._ws
        if ws is None:
            return
        now = time.time()
        for client_id, frame in list(self.pending.items()):
            if now >= self.next_resend.get(client_id, now + 1):
                gap = max(RESEND_AFTER, 2 * (now - self.last_sent.get(client_id, now)))
                self.last_sent[client_id] = now
                self.next_resend[client_id] = now + gap
                with contextlib.suppress(Exception):
                    await ws.send(json.dumps(frame))

    def process_at(self, moment: float) -> int | None:
        for start, end, process in self.intervals:
            if start <= moment and (end is None or moment <= end):
                return int(process)
        return None


# --- The drill -----------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    started: float  # wall time
    first_event: int  # events with a larger id belong to this phase (or a later one)
    instances: list[tuple[DrillTab, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Drill:
    def __init__(self, args: argparse.Namespace, env: dict[str, str], logs: Path, database_url: str) -> None:
        self.args = args
        self.env = env
        self.logs = logs
        self.database_url = database_url
        self.rng = random.Random(args.seed)
        self.redis_port = int(env["DRILL_REDIS_PORT"])
        self.ports = [free_port(), free_port()]
        self.redis = Proc(
            "redis",
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(logs),
            ],
            env,
            logs,
        )
        self.daphnes = [
            Proc(
                f"daphne-{'ab'[i]}",
                [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
                {**env, "PGAPPNAME": f"kontor-drill-daphne-{'ab'[i]}"},
                logs,
            )
            for i, port in enumerate(self.ports)
        ]
        worker_command = [PY, "-m", "celery", "-A", "config", "worker", "--beat", "--loglevel", "INFO"]
        worker_command += ["--concurrency", "2", "-n", f"drill-{os.getpid()}@%h"]
        self.worker = Proc("worker", worker_command, {**env, "PGAPPNAME": "kontor-drill-worker"}, logs)
        self.tabs: list[DrillTab] = []
        self.phases: list[Phase] = []
        self.traffic = True
        self.running = True
        self.db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drill-db")
        self.sweep_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drill-sweep")
        self.sweep_busy = False
        self.sweeps_queued = 0
        self.sweeps_failed = 0

    @property
    def processes(self) -> list[Proc]:
        return [*self.daphnes, self.worker, self.redis]

    def stop_all(self) -> None:
        for proc in [*self.daphnes, self.worker]:
            proc.stop()
        self.redis.stop()

    # --- Database helpers (psycopg, no Django: they run during the faults) ------

    def max_event_id(self) -> int:
        import psycopg

        from messenger.models import Event

        with psycopg.connect(self.database_url, application_name="kontor-drill-harness") as conn:
            table = Event._meta.db_table
            row = conn.execute(f'SELECT coalesce(max(id), 0) FROM "{table}"').fetchone()  # noqa: S608
            return int(row[0]) if row else 0

    def terminate_backends(self) -> Counter[str]:
        import psycopg

        name = Databases(self.database_url).name
        with psycopg.connect(Databases(self.database_url).admin_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT application_name, pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchall()
        return Counter(str(app or "?") for app, ok in rows if ok)

    # --- Tabs --------------------------------------------------------------------

    async def connect_tab(self, tab: DrillTab) -> bool:
        """Connect to the tab's own daphne, or to the other one while it is down."""
        for index in (tab.home, 1 - tab.home):
            tab.base_url = f"http://127.0.0.1:{self.ports[index]}"
            try:
                await tab.connect(timeout=10)
            except Exception:
                await tab.drop()
                continue
            now = time.time()
            for client_id in tab.pending:  # Tab.connect sent them again
                tab.sent_at(client_id, now)
            tab.process = index
            tab.intervals.append([now, None, index])
            if tab.first_mark is None:
                tab.first_mark = tab.mark
            return True
        return False

    def note_disconnect(self, tab: DrillTab) -> None:
        if tab.intervals and tab.intervals[-1][1] is None:
            tab.intervals[-1][1] = time.time()
        tab.process = None

    async def keep_connected(self, tab: DrillTab) -> None:
        """The tab's life: reconnect when the socket is gone, reload on ``resync``,
        send again what stays unconfirmed."""
        while self.running:
            if tab.want_reload:
                tab.want_reload = False
                old_mark = tab.mark
                await tab.drop()
                self.note_disconnect(tab)
                tab.connects, tab.mark = 0, 0  # the next hello gives the page's mark
                if await self.connect_tab(tab):
                    tab.reloads.append((old_mark, tab.mark))
                continue
            if not tab.connected:
                self.note_disconnect(tab)
                if not await self.connect_tab(tab):
                    await asyncio.sleep(0.2)
                continue
            await tab.resend_stale()
            await asyncio.sleep(0.1)
        await tab.close()
        self.note_disconnect(tab)

    async def type_messages(self, tab: DrillTab) -> None:
        interval = PEOPLE / self.args.rate
        await asyncio.sleep(self.rng.uniform(0, interval))
        while self.traffic:
            if len(tab.pending) < MAX_PENDING:
                conversation = self.rng.choice(tab.conversations)
                await tab.send(conversation, f"drill {tab.user_id} #{tab.sent_count}")
            await asyncio.sleep(interval * self.rng.uniform(0.5, 1.5))

    async def probe(self, tabs: list[DrillTab], at: float) -> None:
        """Each affected tab sends at once, so recovery is measured from the fault."""
        for tab in tabs:
            await tab.send(self.rng.choice(tab.conversations), f"probe {tab.user_id} after fault")
            self.phases[-1].instances.append((tab, at))

    def queue_sweep(self) -> None:
        """``snapshot_due`` on the drill's broker (beat does it every minute)."""
        if self.sweep_busy:
            return
        self.sweep_busy = True

        def run() -> None:
            from compliance.tasks import snapshot_due

            try:
                snapshot_due.delay()
                self.sweeps_queued += 1
            except Exception:
                self.sweeps_failed += 1
            finally:
                self.sweep_busy = False

        self.sweep_thread.submit(run)

    async def sweeper(self) -> None:
        while self.traffic:
            self.queue_sweep()
            await asyncio.sleep(self.args.sweep_every)

    # --- Faults ------------------------------------------------------------------

    async def begin_phase(self, name: str) -> Phase:
        loop = asyncio.get_running_loop()
        first_event = await loop.run_in_executor(self.db_thread, self.max_event_id)
        phase = Phase(name=name, started=time.time(), first_event=first_event)
        self.phases.append(phase)
        return phase

    async def crash_and_restart(
        self,
        proc: Proc,
        affected: list[DrillTab],
        what: str,
        ready: Callable[[], Awaitable[float]],
        back: str,
    ) -> None:
        """``kill -9``, the affected tabs send at once, start again, wait until it serves."""
        at = time.time()
        proc.kill9()
        say(f"{self.phases[-1].name}: {what}; starting it again")
        await self.probe(affected, at)
        proc.start()
        await ready()
        self.phases[-1].notes.append(f"{back} after {time.time() - at:.1f} s")

    async def inject(self, name: str, phase: Phase, until: float) -> None:
        if name == "daphne-kill":
            affected = [t for t in self.tabs if t.process == 0]
            await self.crash_and_restart(
                self.daphnes[0],
                affected,
                f"kill -9 daphne A (pid group), {len(affected)} tabs on it",
                lambda: wait_for_port(self.ports[0], self.daphnes[0]),
                "A back",
            )
            # The load balancer sends its tabs home again (their sockets on B are dropped).
            for tab in self.tabs:
                if tab.home == 0 and tab.process == 1:
                    await tab.drop()
                    await asyncio.sleep(0.05)
        elif name == "worker-kill":
            await self.crash_and_restart(
                self.worker,
                self.tabs,
                "kill -9 of the worker's group",
                lambda: wait_for_log(self.worker, " ready."),
                "worker ready",
            )
        elif name == "redis-restart":
            await self.crash_and_restart(
                self.redis,
                self.tabs,
                "kill -9 of the drill's Redis (it comes back empty)",
                lambda: redis_ping(self.redis_port),
                "Redis back",
            )
        elif name == "pg-terminate":
            loop = asyncio.get_running_loop()
            at = time.time()
            killed = await loop.run_in_executor(self.db_thread, self.terminate_backends)
            say(
                f"pg-terminate: {sum(killed.values())} backends of the drill database terminated "
                f"({', '.join(f'{k}: {v}' for k, v in sorted(killed.items()))})"
            )
            await self.probe(list(self.tabs), at)
            phase.notes.append(f"{sum(killed.values())} backends terminated")
        elif name == "socket-drops":
            drops = 0
            say(f"socket-drops: aborting random tabs' connections, {self.args.drop_rate}/s")
            while time.time() < until - 2:
                connected = [t for t in self.tabs if t.connected]
                if connected:
                    tab = self.rng.choice(connected)
                    at = time.time()
                    await tab.drop()
                    drops += 1
                    await self.probe([tab], at)
                await asyncio.sleep(self.rng.expovariate(self.args.drop_rate))
            phase.notes.append(f"{drops} drops")
        else:
            raise ValueError(name)

    async def run(self) -> None:
        for proc in self.daphnes:
            proc.start()
        self.worker.start()
        for port, proc in zip(self.ports, self.daphnes, strict=True):
            await wait_for_port(port, proc)
        await wait_for_log(self.worker, " ready.")
        say(f"running: daphne A :{self.ports[0]}, B :{self.ports[1]}, worker+beat, Redis :{self.redis_port}")

        keepers = [asyncio.create_task(self.keep_connected(tab)) for tab in self.tabs]
        deadline = time.monotonic() + 60
        while not all(t.connected and t.first_mark is not None for t in self.tabs):
            if time.monotonic() > deadline:
                raise RuntimeError("not every tab could connect within 60 s")
            await asyncio.sleep(0.1)
        say(f"{len(self.tabs)} tabs connected; traffic at {self.args.rate} msg/s")
        typists = [asyncio.create_task(self.type_messages(tab)) for tab in self.tabs]
        sweeper = asyncio.create_task(self.sweeper())
        try:
            await self.begin_phase("warm-up")
            await asyncio.sleep(self.args.warmup)
            for name in self.args.faults:
                waited = await self.quiet()
                phase = await self.begin_phase(name)
                if waited >= self.args.quiet_timeout:
                    phase.notes.append(f"backlog not drained after {waited:.0f} s")
                until = phase.started + self.args.seconds_per_fault
                await self.inject(name, phase, until)
                await asyncio.sleep(max(0.0, until - time.time()))
            self.traffic = False
            await asyncio.gather(*typists, sweeper)
            say("traffic stopped; waiting for every send to be confirmed and every tab to settle")
            await self.settle()
        finally:
            self.traffic = False
            self.running = False
            for task in typists:
                task.cancel()
            await asyncio.gather(*keepers, return_exceptions=True)
            await asyncio.gather(*typists, return_exceptions=True)

    async def quiet(self) -> float:
        """Wait until every tab is connected and no send waits for its ack longer than
        a second or two, so that a fault's recovery is not the previous one's backlog."""
        started = time.monotonic()
        while time.monotonic() - started < self.args.quiet_timeout:
            now = time.time()
            if all(t.connected for t in self.tabs) and not any(
                now - t.created_at.get(c, now) > 2 for t in self.tabs for c in t.pending
            ):
                break
            await asyncio.sleep(0.2)
        return time.monotonic() - started

    async def settle(self) -> None:
        loop = asyncio.get_running_loop()
        # Sends: a tab whose sends stay unconfirmed reconnects (which sends them again).
        deadline = time.monotonic() + self.args.settle * 3
        while any(t.pending for t in self.tabs) and time.monotonic() < deadline:
            for tab in self.tabs:
                if (
                    tab.pending
                    and tab.connected
                    and all(time.time() - tab.created_at.get(c, 0) > 2 * RESEND_AFTER for c in tab.pending)
                ):
                    await tab.drop()
            await asyncio.sleep(0.5)
        # Events: wait until every tab showed what it may see, or nothing moved for a while.
        last_missing, quiet_since = -1, time.monotonic()
        while True:
            missing = await loop.run_in_executor(self.db_thread, self.count_missing)
            if missing == 0:
                break
            if missing != last_missing:
                last_missing, quiet_since = missing, time.monotonic()
            elif time.monotonic() - quiet_since > self.args.settle:
                say(f"{missing} events still not shown after {self.args.settle:.0f} s without progress")
                break
            await asyncio.sleep(1)

    def expected_events(self) -> dict[int, list[Any]]:
        from accounts.models import User
        from messenger import selectors

        expected = {}
        for tab in self.tabs:
            user = User.objects.get(pk=tab.user_id)
            events, _ = selectors.events_after(user=user, after=tab.first_mark or 0, limit=10**7)
            expected[tab.user_id] = events
        return expected

    def count_missing(self) -> int:
        expected = self.expected_events()
        return sum(len({e.id for e in expected[tab.user_id]} - set(tab.shown)) for tab in self.tabs)


# --- Setting up ---------------------------------------------------------------------


def make_people(drill: Drill, keys: list[str]) -> None:
    """Groups and direct conversations on top of ``prepare()``'s channel of all."""
    from accounts.models import User
    from messenger import services
    from messenger.models import Membership

    users = [User.objects.get(email=f"bench-{i}@bench.invalid") for i in range(PEOPLE)]
    for k in range(4):  # groups of five, members on both daphnes
        members = [u for i, u in enumerate(users) if i % 4 == k]
        services.group_create(actor=members[0], name=f"drill group {k}", member_ids=[u.pk for u in members])
    for i in range(6):  # direct conversations across the two daphnes
        services.direct_open(actor=users[i], other_user_id=users[PEOPLE - 1 - i].pk)
    for i, user in enumerate(users):
        conversations = list(
            Membership.objects.filter(user=user, left_at__isnull=True).values_list(
                "conversation_id", flat=True
            )
        )
        drill.tabs.append(
            DrillTab(
                base_url="",
                cookie=f"sessionid={keys[i]}",
                user_id=user.pk,
                home=0 if i < PEOPLE // 2 else 1,
                conversations=sorted(conversations),
                naive=drill.args.naive_resume,
            )
        )


# --- Checking -----------------------------------------------------------------------


def phase_of_time(phases: list[Phase], moment: float) -> int:
    index = 0
    for i, phase in enumerate(phases):
        if moment >= phase.started:
            index = i
    return index


def phase_of_event(phases: list[Phase], event_id: int) -> int:
    index = 0
    for i, phase in enumerate(phases):
        if event_id > phase.first_event:
            index = i
    return index


def sweep_until_quiet() -> tuple[int, int]:
    """What the snapshot task does, until nothing is due; (rounds, events archived)."""
    from compliance.services import archive_conversation, conversations_due

    rounds = archived = 0
    while due := conversations_due():
        rounds += 1
        for conversation_id in due:
            archived += archive_conversation(conversation_id=conversation_id)
        if rounds > 50:
            raise RuntimeError(f"the journal kept moving: {due}")
    return rounds, archived


def archive_gaps() -> tuple[list[tuple[int, int, int]], int]:
    """Revisions no record holds: (message id, revision number, its event id); and
    how many records were read."""
    from compliance.models import RecordContent
    from messenger.models import Event, MessageRevision

    archived: set[tuple[int, int]] = set()
    records = 0
    for content in RecordContent.objects.only("canonical_json").iterator():
        records += 1
        for entry in json.loads(content.canonical_json)["events"]:
            if "message" in entry and "revision" in entry:
                archived.add((entry["message"]["id"], entry["revision"]["number"]))
    event_of = dict(Event.objects.filter(revision__isnull=False).values_list("revision_id", "id"))
    gaps = [
        (message_id, number, event_of.get(pk, 0))
        for pk, message_id, number in MessageRevision.objects.values_list("pk", "message_id", "number")
        if (message_id, number) not in archived
    ]
    return gaps, records


def report(
    drill: Drill, expected: dict[int, list[Any]], gaps: list[tuple[int, int, int]], verified: bool
) -> tuple[str, list[str]]:
    """The table and the figures under it; and what fails the issue's demands."""
    from messenger.models import Message

    phases = drill.phases
    rows: dict[int, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    by_user = {tab.user_id: tab for tab in drill.tabs}

    # Acknowledged sends, their messages in the database.
    acked = [(tab, cid, mid) for tab in drill.tabs for cid, mid in tab.acked.items()]
    stored = {
        (author, str(cid)): pk
        for pk, author, cid in Message.objects.filter(client_id__isnull=False).values_list(
            "pk", "author_id", "client_id"
        )
    }
    lost_details = []
    for tab, cid, mid in acked:
        row = rows[phase_of_time(phases, tab.created_at.get(cid, 0))]
        row["acked"] += 1
        if stored.get((tab.user_id, cid)) != mid:
            row["lost"] += 1
            lost_details.append(f"  acked but missing: user {tab.user_id} client_id {cid} message {mid}")
    for tab in drill.tabs:
        for cid in tab.pending:
            rows[phase_of_time(phases, tab.created_at.get(cid, 0))]["unconfirmed"] += 1
        for cid, tries in tab.unavailable_tries.items():
            rows[phase_of_time(phases, tab.created_at.get(cid, 0))]["retried"] += tries
        for error in tab.errors:
            moment = tab.created_at.get(str(error.get("client_id")), time.time())
            rows[phase_of_time(phases, moment)]["refused"] += 1

    # Duplicates: more than one row for one author and client_id.
    counts = Counter(
        (author, str(cid))
        for author, cid in Message.objects.filter(client_id__isnull=False).values_list(
            "author_id", "client_id"
        )
    )
    for (author, cid), n in counts.items():
        if n > 1:
            author_tab = by_user.get(author)
            moment = author_tab.created_at.get(cid, 0) if author_tab else 0
            rows[phase_of_time(phases, moment)]["duplicates"] += n - 1

    # Events a tab never showed; how late it showed the others (from the commit).
    missing_details = []
    delays: dict[int, list[float]] = defaultdict(list)
    for tab in drill.tabs:
        shown = set(tab.shown)
        for event in expected[tab.user_id]:
            if event.id in shown:
                delays[phase_of_event(phases, event.id)].append(
                    tab.shown_at[event.id] - event.created_at.timestamp()
                )
                continue
            index = phase_of_event(phases, event.id)
            rows[index]["never_shown"] += 1
            moment = event.created_at.timestamp()
            sender = by_user.get(event.actor_id)
            where = tab.process_at(moment)
            via = sender.process_at(moment) if sender else None
            missing_details.append(
                f"  {phases[index].name}: event {event.id} ({event.type}, conversation "
                f"{event.conversation_id}, by user {event.actor_id} on daphne {name_of(via)}) never shown "
                f"to user {tab.user_id} (home {name_of(tab.home)}, on daphne {name_of(where)} then; "
                f"mark now {tab.mark})"
            )
    for _message, _number, event_id in gaps:
        rows[phase_of_event(phases, event_id)]["gaps"] += 1

    # How long sends waited for their ack, by phase.
    waits: dict[int, list[float]] = defaultdict(list)
    for tab in drill.tabs:
        for cid, at in tab.acked_at.items():
            if cid in tab.created_at:
                waits[phase_of_time(phases, tab.created_at[cid])].append(at - tab.created_at[cid])
    for index, values in waits.items():
        rows[index]["ack_wait"] = (percentile(values, 50), max(values))

    # Recovery: each affected tab's first acknowledged send issued after the fault.
    for index, phase in enumerate(phases):
        times = []
        for tab, at in phase.instances:
            after = [tab.acked_at[c] for c, t in tab.created_at.items() if t >= at and c in tab.acked_at]
            times.append(min(after) - at if after else float("inf"))
        rows[index]["recovery"] = (min(times), max(times)) if times else None

    log_figures = server_log_figures(drill)
    header = (
        f"| {'fault':<14} | acked | acked lost | duplicates | never shown | archive gaps "
        f"| recovery s (first / all) | shown after s (p50 / p99 / max) | notes |"
    )
    lines = [header, "|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|"]
    for index, phase in enumerate(phases):
        row = rows[index]
        rec = row["recovery"]
        recovery = f"{fmt_s(rec[0])} / {fmt_s(rec[1])}" if rec else "—"
        notes = list(phase.notes)
        logged = log_figures.get(index, Counter())
        if logged["journal A"] or logged["journal B"]:
            notes.append(f"via journal check A {logged['journal A']} / B {logged['journal B']}")
        if logged["crashed A"] or logged["crashed B"]:
            notes.append(f"consumers crashed A {logged['crashed A']} / B {logged['crashed B']}")
        if row["ack_wait"]:
            notes.append(f"ack p50 {row['ack_wait'][0]:.2f} s, max {row['ack_wait'][1]:.1f} s")
        for key, label in (
            ("retried", "answered unavailable, sent again"),
            ("refused", "refused"),
            ("unconfirmed", "never confirmed"),
        ):
            if row[key]:
                notes.append(f"{row[key]} {label}")
        late = delays.get(index, [])
        shown_after = (
            f"{percentile(late, 50):.2f} / {percentile(late, 99):.1f} / {max(late):.1f}" if late else "—"
        )
        lines.append(
            f"| {phase.name:<14} | {row['acked']:>5} | {row['lost']:>10} | {row['duplicates']:>10} "
            f"| {row['never_shown']:>11} | {row['gaps']:>12} | {recovery:>24} | {shown_after:>31} "
            f"| {'; '.join(notes)} |"
        )
    totals = {
        "sent": sum(t.sent_count for t in drill.tabs),
        "acked": len(acked),
        "repeats": sum(t.repeats for t in drill.tabs),
        "dup_acks": sum(t.duplicate_acks for t in drill.tabs),
        "connects": sum(t.connects for t in drill.tabs),
        "resyncs": sum(t.resyncs for t in drill.tabs),
        "reloads": sum(len(t.reloads) for t in drill.tabs),
        "shown": sum(len(t.shown) for t in drill.tabs),
        "expected": sum(len(v) for v in expected.values()),
    }
    lines.append("")
    lines.append(
        f"sends {totals['sent']}, acknowledged {totals['acked']} ({totals['dup_acks']} answered as repeats); "
        f"events shown {totals['shown']} of {totals['expected']} expected; repeated frames dropped "
        f"by the tabs {totals['repeats']}; socket connects {totals['connects']}; resync {totals['resyncs']} "
        f"(page reloads {totals['reloads']})"
    )
    lines.append(
        f"archive: {'verify_archive passed' if verified else 'verify_archive FAILED'}; "
        f"extra snapshot_due queued {drill.sweeps_queued} (failed while the broker was down: "
        f"{drill.sweeps_failed})"
    )
    worker_logs = "".join(
        path.read_text(errors="replace") for path in sorted(drill.logs.glob("worker-*.log"))
    )
    snapshots = sum(
        1
        for line in worker_logs.splitlines()
        if "compliance.snapshot_conversation[" in line and "succeeded" in line
    )
    lines.append(
        f"worker: beat started {worker_logs.count('beat: Starting')} time(s); snapshot tasks that "
        f"succeeded {snapshots}; FileNotFoundError in its logs {worker_logs.count('FileNotFoundError')}"
    )
    wall = time.time() - phases[0].started
    cpu = ", ".join(f"{p.name} {p.cpu_seconds:.0f} s" for p in drill.processes)
    lines.append(
        f"CPU time over {wall:.0f} s of traffic and settling: {cpu}; load average {os.getloadavg()[0]:.1f}"
    )
    if lost_details:
        lines.append("acknowledged messages missing:")
        lines.extend(lost_details[:50])
    if missing_details:
        lines.append(f"events never shown ({len(missing_details)}; first 60):")
        lines.extend(missing_details[:60])
    if gaps:
        lines.append(f"revisions in no record ({len(gaps)}; first 20): {gaps[:20]}")
    failures = [
        f"{phases[i].name}: {row[key]} {label}"
        for i, row in rows.items()
        for key, label in (
            ("lost", "acknowledged messages lost"),
            ("duplicates", "duplicates"),
            ("never_shown", "events never shown"),
            ("gaps", "revisions in no record"),
        )
        if row[key]
    ]
    if not verified:
        failures.append("manage.py verify_archive failed")
    for i, phase in enumerate(phases):
        recovered = rows[i]["recovery"]
        # Every tab's first send after the database fault, not only the quickest one.
        if phase.name == "pg-terminate" and (recovered is None or recovered[1] >= DATABASE_RECOVERY_LIMIT):
            failures.append(
                f"pg-terminate: not every tab's sends succeeded again within {DATABASE_RECOVERY_LIMIT:g} s"
            )
    return "\n".join(lines), failures


def dump_timeline(drill: Drill, path: Path) -> None:
    """What each tab did, for a closer look (kept with ``--keep``)."""
    tabs = [
        {
            "user": tab.user_id,
            "home": name_of(tab.home),
            "first_mark": tab.first_mark,
            "sockets": [[start, end, name_of(p)] for start, end, p in tab.intervals],
            "sends": {c: [tab.created_at.get(c), tab.acked_at.get(c)] for c in tab.created_at},
            "reloads": tab.reloads,
            "errors": tab.errors,
        }
        for tab in drill.tabs
    ]
    phases = [{"name": p.name, "started": p.started, "first_event": p.first_event} for p in drill.phases]
    path.write_text(json.dumps({"phases": phases, "tabs": tabs}, indent=1))


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) (.*)$")
FROM_JOURNAL = re.compile(r"(\d+) events came from the journal")


def server_log_figures(drill: Drill) -> dict[int, Counter[str]]:
    """Per phase, from the daphne logs: events a socket's journal check had to
    fetch because the live stream had not brought them, and consumers that died
    with an exception, per process."""
    figures: dict[int, Counter[str]] = defaultdict(Counter)
    for index, proc in enumerate(drill.daphnes):
        for path in sorted(drill.logs.glob(f"{proc.name}-*.log")):
            for line in path.read_text(errors="replace").splitlines():
                match = LOG_LINE.match(line)
                if not match:
                    continue
                moment = time.mktime(time.strptime(match[1], "%Y-%m-%d %H:%M:%S")) + int(match[2]) / 1000
                phase = phase_of_time(drill.phases, moment)
                if found := FROM_JOURNAL.search(match[3]):
                    figures[phase][f"journal {name_of(index)}"] += int(found[1])
                elif "Exception inside application" in match[3]:
                    figures[phase][f"crashed {name_of(index)}"] += 1
    return figures


def name_of(index: int | None) -> str:
    return "?" if index is None else "AB"[index]


def fmt_s(value: float) -> str:
    return "never" if value == float("inf") else f"{value:.2f}"


# --- Main ---------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds-per-fault", type=float, default=20, help="length of each fault's phase")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of traffic before the first fault")
    parser.add_argument("--rate", type=float, default=5, help="messages per second from all 20 people")
    parser.add_argument("--drop-rate", type=float, default=2, help="socket drops per second (socket-drops)")
    parser.add_argument("--sweep-every", type=float, default=3, help="seconds between extra snapshot_due")
    parser.add_argument(
        "--quiet-timeout",
        type=float,
        default=30,
        help="before a fault, wait at most this long for the previous one's backlog to drain",
    )
    parser.add_argument("--settle", type=float, default=20, help="seconds without progress before giving up")
    parser.add_argument("--faults", nargs="+", choices=FAULTS, default=FAULTS, help="in this order")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument(
        "--naive-resume",
        action="store_true",
        help="tabs resume after the highest event id they saw (the page before issue 16): a check "
        "that the drill reports the events this loses",
    )
    parser.add_argument("--keep", action="store_true", help="keep the data folder and its logs")
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("The drill needs PostgreSQL: DATABASE_URL=postgres://…/kontor_drill_bench")
    databases = Databases(database_url)  # refuses a name without "bench"
    databases._run(f'DROP DATABASE IF EXISTS "{databases.name}" WITH (FORCE)')
    databases.create(databases.name, comment="Kontor fault drill (bench/faults.py): disposable")

    data_dir = Path(tempfile.mkdtemp(prefix="kontor-drill-"))
    logs = data_dir / "logs"
    logs.mkdir()
    redis_port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "DRILL_REDIS_PORT": str(redis_port),
        "KONTOR_DATA_DIR": str(data_dir),
        "KONTOR_CELERY_QUEUE": f"kontor-drill-{os.getpid()}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    # This process: the same settings, but no pool (its connection dies in the
    # PostgreSQL fault too, and it only reads at the start and the end).
    os.environ.update({k: v for k, v in env.items() if k != "DRILL_REDIS_PORT"})
    os.environ["DATABASE_POOL"] = "false"
    os.environ["LOG_LEVEL"] = "warning"

    drill = Drill(args, env, logs, database_url)
    interrupted = False

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    # Ctrl-C stops everything too, even when started where SIGINT is ignored (a `&` job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    failed = True
    try:
        drill.redis.start()
        asyncio.run(redis_ping(redis_port))
        say(f"preparing {databases.name}: migrate, {PEOPLE} people, sessions, conversations")
        _, keys = prepare(PEOPLE, "channel")
        make_people(drill, keys)
        close_django_connections()
        asyncio.run(drill.run())
        drill.stop_all()
        say("servers stopped; snapshot sweep until nothing is due")
        close_django_connections()
        rounds, archived = sweep_until_quiet()
        say(f"sweep: {rounds} round(s), {archived} journal events archived")
        gaps, records = archive_gaps()
        verify = subprocess.run(
            [PY, "manage.py", "verify_archive"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        say(f"verify_archive (exit {verify.returncode}): {(verify.stdout + verify.stderr).strip()[-400:]}")
        expected = drill.expected_events()
        print()
        print(
            f"Fault drill: {PEOPLE} people, 2 daphne, worker+beat, PostgreSQL, Redis; "
            f"{args.rate:g} msg/s, {args.seconds_per_fault:g} s per fault; {records} records"
        )
        table, failures = report(drill, expected, gaps, verify.returncode == 0)
        print(table)
        print(
            "\nFAIL: " + "; ".join(failures)
            if failures
            else "\nPASS: nothing lost; every tab sent again within 5 s of the database fault"
        )
        dump_timeline(drill, data_dir / "timeline.json")
        failed = bool(failures)
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted; stopping everything")
    finally:
        drill.stop_all()
        drill.db_thread.shutdown(wait=False, cancel_futures=True)
        drill.sweep_thread.shutdown(wait=False, cancel_futures=True)
        if args.keep or failed:
            say(f"data folder and logs kept: {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 130 if interrupted else (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
