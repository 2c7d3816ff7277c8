"""Real daphne processes on the test database, for browser and multi-process tests.

The server process must see what the test committed, so it gets a
``DATABASE_URL`` that names pytest-django's test database (a file on SQLite,
``test_<name>`` on PostgreSQL) and the same Redis.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.db import connection

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"
SERVER_START_TIMEOUT = 30.0


class ServerFailed(Exception):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url_for_server() -> str:
    """A ``DATABASE_URL`` for the test database that pytest-django has set up."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        name = str(db["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            raise ServerFailed(
                f"The SQLite test database is {name!r}; a server process needs a file "
                '(DATABASES["default"]["TEST"]["NAME"]).'
            )
        return f"sqlite:///{Path(name).resolve()}"
    if db["ENGINE"] == "django.db.backends.postgresql":
        user = quote(str(db.get("USER") or ""), safe="")
        password = str(db.get("PASSWORD") or "")
        auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
        host = str(db.get("HOST") or "")
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgres://{auth}{host}{port}/{quote(str(db['NAME']), safe='')}"
    raise ServerFailed(f"Cannot hand {db['ENGINE']} to a server process.")


def log_tail(path: Path, limit: int = 6000) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-limit:] or "(no output)"


# The Celery queue of this test process's servers and workers: tasks they queue
# reach only a worker started here (not another run's on the same Redis or
# broker folder, nor messages that earlier tests left in ``data/celery``).
TASK_QUEUE = f"kontor-test-{os.getpid()}"
# What the test process itself queues (a file's preview after an upload, an export
# on commit) waits on a queue no worker consumes; ``purge_test_queues`` empties both
# when the run ends, so nothing is left for the next worker on this data folder or Redis.
OWN_QUEUE = f"{TASK_QUEUE}-unconsumed"


def purge_test_queues() -> int:
    """Drop the messages still waiting on this test process's queues, and the
    queues' routing tables (one per queue and run); how many messages."""
    from config.celery import app, ensure_broker_folders

    ensure_broker_folders()
    dropped = 0
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for name in (TASK_QUEUE, OWN_QUEUE):
            dropped += channel.queue_purge(name) or 0
            # Each queue has an exchange of its name (Celery's default for a queue).
            if hasattr(channel, "keyprefix_queue"):  # Redis: a set per exchange
                channel.client.delete(
                    channel.keyprefix_queue % name, channel.keyprefix_binding_permanent % name
                )
            else:  # the filesystem transport: a file per exchange
                (Path(settings.CELERY_BROKER_CONTROL_DIR) / f"{name}.exchange").unlink(missing_ok=True)
    return dropped


def _server_env(database_url: str, extra_env: dict[str, str] | None) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KONTOR_DATA_DIR": str(settings.DATA_DIR),
        "KONTOR_CELERY_QUEUE": TASK_QUEUE,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings"),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    return env


def _log_path(name: str) -> Path:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return ARTIFACTS_DIR / f"{name}{'-' + worker if worker else ''}.log"


@contextmanager
def celery_worker(name: str = "celery-worker", *, extra_env: dict[str, str] | None = None) -> Iterator[Path]:
    """A Celery worker on the test database, consuming ``TASK_QUEUE`` (what the
    servers of ``daphne()`` queue); yields its log once it is ready.

    Queue a task for it from the test with ``task.apply_async(args, queue=TASK_QUEUE)``.
    It is stopped with a cold shutdown: wait for what it runs before leaving."""
    database_url = database_url_for_server()
    env = _server_env(database_url, extra_env)
    log_path = _log_path(name)
    options = "--pool solo --loglevel INFO --without-gossip --without-mingle --without-heartbeat"
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", *options.split()]
    command += ["-n", f"{name}-{os.getpid()}@%h"]
    app_name = f"kontor-test-celery-{os.getpid()}"
    env["PGAPPNAME"] = app_name
    with log_path.open("w") as log:
        log.write(f"$ {' '.join(command)}\n# DATABASE_URL={database_url} queue={TASK_QUEUE}\n")
        log.flush()
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while " ready." not in log_path.read_text(errors="replace"):
            if process.poll() is not None:
                raise ServerFailed(f"the Celery worker exited (log: {log_path}):\n{log_tail(log_path)}")
            if time.monotonic() > deadline:
                raise ServerFailed(f"the Celery worker did not start within 60 s (log: {log_path})")
            time.sleep(0.2)
        yield log_path
    finally:
        stop_process(process, signal.SIGQUIT)  # a cold shutdown: the worker is idle by now
        _wait_for_sessions_to_end(database_url, app_name)


@contextmanager
def daphne(name: str = "live-server", *, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Run daphne on the test database; yields ``http://127.0.0.1:PORT``.

    The caller must have the test database set up (and, on pytest, unblocked
    while this reads the connection settings). The server's output goes to
    ``test-artifacts/<name>.log``; its tasks go to ``TASK_QUEUE``.
    """
    database_url = database_url_for_server()
    port = free_port()
    env = _server_env(database_url, extra_env)
    # libpq tags the server's PostgreSQL sessions, so teardown can wait for them.
    app_name = f"kontor-test-daphne-{os.getpid()}-{port}"
    env["PGAPPNAME"] = app_name
    log_path = _log_path(name)
    # Handshakes queue behind one another on the process's database thread: on a loaded
    # machine hundreds of them at once take longer than daphne's 5 s default.
    command = [
        sys.executable,
        "-m",
        "daphne",
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        "--websocket_connect_timeout",
        "60",
        "config.asgi:application",
    ]
    with log_path.open("w") as log:
        log.write(f"$ {' '.join(command)}\n# DATABASE_URL={database_url}\n")
        log.flush()
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise ServerFailed(
                    f"daphne exited with status {process.returncode} before answering "
                    f"(log: {log_path}):\n{log_tail(log_path)}"
                )
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise ServerFailed(
                        f"daphne did not answer on port {port} within {SERVER_START_TIMEOUT:.0f} s "
                        f"(log: {log_path}):\n{log_tail(log_path)}"
                    ) from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process, signal.SIGTERM)
        _wait_for_sessions_to_end(database_url, app_name)


def stop_process(process: subprocess.Popen[bytes], first: signal.Signals, timeout: float = 30) -> None:
    """Ask with ``first``, then kill if it has not exited within ``timeout`` seconds."""
    process.send_signal(first)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def _wait_for_sessions_to_end(database_url: str, app_name: str, timeout: float = 30) -> None:
    """PostgreSQL ends a dead client's sessions a moment after it exits; the
    test database cannot be dropped before that."""
    if not database_url.startswith("postgres"):
        return
    import psycopg

    maintenance = urlsplit(database_url)._replace(path="/postgres").geturl()
    deadline = time.monotonic() + timeout
    with psycopg.connect(maintenance, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [app_name]
            ).fetchone()
            if row is None or row[0] == 0:
                return
            time.sleep(0.1)


@contextmanager
def beat_worker(
    *, data_dir: Path, queue: str, log_path: Path, name: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A Celery worker with beat inside, as ``scripts/run.sh`` starts one, on its
    own data folder and queue (so no other test's tasks reach it); stopped with
    SIGTERM, killed if it does not exit."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_server(),
        "KONTOR_DATA_DIR": str(data_dir),
        "KONTOR_CELERY_QUEUE": queue,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONUNBUFFERED": "1",
    }
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--beat", "--pool", "solo"]
    command += [
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "-n",
        f"{name}-{os.getpid()}@%h",
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        stop_process(process, signal.SIGTERM)
