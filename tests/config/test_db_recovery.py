"""PostgreSQL terminating Kontor's sessions (a failover, a restart, an operator's
``pg_terminate_backend``) is survived in seconds, by the web and by the worker.

psycopg's pool checks a connection before handing it out, but it waits a growing
back-off (1, 2, 4, 8 … s) after each dead one it finds: a pool of six dead
connections used to block every database call for 30 s and end in
``PoolTimeout``. These run on PostgreSQL only (the CI's second pass).
"""

import asyncio
import json
import os
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from django.db import connection

from accounts.models import User
from messenger import services
from messenger.models import Message
from tests.live import TASK_QUEUE, celery_worker, daphne, database_url_for_server
from tests.messenger.test_multiprocess import connect, session_cookie

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="terminates PostgreSQL sessions (the PostgreSQL + Redis pass runs it)",
    ),
]

# What a user may wait for an acknowledgement while the database comes back.
ACK_WITHIN = 3.0
# A pool that grew under load holds this many idle connections when they die.
POOL_SIZE = "6"


def terminate_sessions(application_name_prefix: str) -> int:
    """End every session of the test database whose application name starts so
    (never this test's own), from a connection of its own; how many."""
    database_url = database_url_for_server()
    maintenance = urlsplit(database_url)._replace(path="/postgres").geturl()
    with psycopg.connect(maintenance, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name LIKE %s AND pid <> pg_backend_pid()",
            [connection.settings_dict["NAME"], application_name_prefix + "%"],
        ).fetchall()
    return sum(1 for (ended,) in rows if ended)


def sessions_of(application_name_prefix: str) -> int:
    database_url = database_url_for_server()
    maintenance = urlsplit(database_url)._replace(path="/postgres").geturl()
    with psycopg.connect(maintenance, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name LIKE %s",
            [connection.settings_dict["NAME"], application_name_prefix + "%"],
        ).fetchone()
    return int(row[0]) if row else 0


class Sender:
    """A tab that sends and, like the page's script, sends an unacknowledged
    message again with the same ``client_id`` when the server says it failed."""

    def __init__(self, ws: Any, conversation_id: int) -> None:
        self.ws = ws
        self.conversation_id = conversation_id
        self.acked: dict[str, int] = {}

    async def send(self, body: str, give_up_after: float = 60) -> float:
        """Send until acknowledged; the seconds that took."""
        client_id = str(uuid.uuid4())
        frame = {"type": "send", "conversation": self.conversation_id, "body": body, "client_id": client_id}
        started = time.monotonic()
        deadline = started + give_up_after
        await self.ws.send(json.dumps(frame))
        while True:
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), max(0.1, deadline - time.monotonic())))
            if reply.get("client_id") != client_id:
                continue
            if reply["type"] == "ack":
                self.acked[client_id] = reply["message"]
                return time.monotonic() - started
            assert reply["type"] == "error" and reply["code"] == "unavailable", reply
            await asyncio.sleep(0.1)
            await self.ws.send(json.dumps(frame))


def test_sends_are_acknowledged_within_3_seconds_after_the_database_ended_every_session(
    alice: User, bob: User
) -> None:
    conversation = services.direct_open(actor=alice, other_user_id=bob.pk)
    cookies = [session_cookie(alice), session_cookie(bob)]
    durations_after: list[float] = []

    async def scenario(server: str) -> None:
        app_name = f"kontor-test-daphne-{os.getpid()}-{urlsplit(server).port}"
        senders = [Sender(await connect(server, cookie), conversation.pk) for cookie in cookies]
        # Warm up: the server's pool opens its connections and serves sends.
        for n in range(3):
            for sender in senders:
                await sender.send(f"before {n}")
        deadline = time.monotonic() + 30
        while sessions_of(app_name) < int(POOL_SIZE):
            assert time.monotonic() < deadline, "the server's pool never opened its connections"
            await asyncio.sleep(0.1)

        async def traffic(sender: Sender, label: str, rounds: int) -> list[float]:
            return [await sender.send(f"{label} {n}") for n in range(rounds)]

        # Mid-traffic: both tabs keep sending while every session is ended, twice.
        for fault in range(2):
            running = [
                asyncio.create_task(traffic(s, f"fault {fault} tab {i}", 5)) for i, s in enumerate(senders)
            ]
            await asyncio.sleep(0.05)
            ended = await asyncio.to_thread(terminate_sessions, app_name)
            assert ended >= 1
            for durations in await asyncio.gather(*running):
                durations_after.extend(durations)
            # And the next sends after the fault.
            for n in range(5):
                for sender in senders:
                    durations_after.append(await sender.send(f"after fault {fault} #{n}"))
        for sender in senders:
            await sender.ws.close()
        acked = {mid for sender in senders for mid in sender.acked.values()}
        assert len(acked) == sum(len(s.acked) for s in senders)
        stored = await asyncio.to_thread(
            lambda: set(Message.objects.filter(pk__in=acked).values_list("pk", flat=True))
        )
        assert stored == acked, "an acknowledged message is missing from the database"

    with daphne("db-recovery", extra_env={"DATABASE_POOL_MIN": POOL_SIZE}) as server:
        asyncio.run(scenario(server))
    slow = [round(d, 2) for d in durations_after if d > ACK_WITHIN]
    assert not slow, f"acknowledgements after the fault took {slow} s (of {len(durations_after)} sends)"


def test_a_task_queued_after_the_database_ended_the_workers_sessions_still_runs() -> None:
    from compliance.tasks import snapshot_due

    app_name = f"kontor-test-celery-{os.getpid()}"

    def wait_for_runs(log: Any, count: int, timeout: float) -> None:
        """Until the worker's log shows ``count`` successful runs of the task."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in log.read_text(errors="replace").splitlines() if "snapshot_due[" in line]
            failed = [line for line in lines if "raised unexpected" in line]
            assert not failed, failed
            if sum("succeeded in" in line for line in lines) >= count:
                return
            assert time.monotonic() < deadline, f"the task did not run within {timeout:.0f} s: {lines}"
            time.sleep(0.1)

    with celery_worker("db-recovery-worker", extra_env={"DATABASE_POOL_MIN": POOL_SIZE}) as log:
        snapshot_due.apply_async(queue=TASK_QUEUE)
        wait_for_runs(log, 1, 60)
        deadline = time.monotonic() + 30
        while sessions_of(app_name) < int(POOL_SIZE):
            assert time.monotonic() < deadline, "the worker's pool never opened its connections"
            time.sleep(0.1)
        for fault in range(2):
            assert terminate_sessions(app_name) >= 1
            queued = time.monotonic()
            snapshot_due.apply_async(queue=TASK_QUEUE)
            wait_for_runs(log, 2 + fault, 60)
            assert time.monotonic() - queued < 10


def test_every_pool_gets_the_sweeping_check() -> None:
    """config/db.py sets psycopg_pool's private ``_check``: if an upgrade renames it,
    this fails instead of recovery silently going back to 30 s."""
    from config.db import sweeping_check_installed

    connection.ensure_connection()
    pool = getattr(connection, "pool", None)

    assert pool is not None
    assert sweeping_check_installed(pool)
