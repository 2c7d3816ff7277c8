"""Run the whole Kontor stack on one machine: daphne, a Celery worker with beat.

Called by scripts/run.sh after the environment is installed. Migrates, creates
the first administrator if there is none, starts the processes, prints the URL,
and on Ctrl-C (or SIGTERM) stops every process it started before it exits.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
STOP_GRACE_SECONDS = 15


def manage(*args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=True)


def wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    # SIGTERM to each main process: daphne closes its sockets, Celery finishes
    # the running task and stops its pool and beat. Whatever is left after the
    # grace period is killed with its whole process group.
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> int:
    host = os.environ.get("KONTOR_HOST", "127.0.0.1")
    port = int(os.environ.get("KONTOR_PORT", "8000"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

    print("==> Preparing the database", flush=True)
    manage("migrate", "--no-input", "-v", "0")
    manage("ensure_admin")
    # The data folder's subfolders (the filesystem broker's, beat's schedule, the
    # storages') must exist before the worker starts; the worker makes them too.
    subprocess.run(
        [
            PY,
            "-c",
            "import django; django.setup(); from config.celery import ensure_data_folders as f; f()",
        ],
        cwd=ROOT,
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
    )

    commands = {
        "web": [PY, "-m", "daphne", "-b", host, "-p", str(port), "config.asgi:application"],
        "worker": [
            PY,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--beat",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
        ],
    }
    # Replies by email from a mailbox, when one is configured (docs/email.md).
    if os.environ.get("KONTOR_IMAP_HOST"):
        commands["mail"] = [PY, "manage.py", "receive_mail", "imap"]
    processes: list[subprocess.Popen[bytes]] = []
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for command in commands.values():
            # Own session: Ctrl-C reaches only this script, which then stops
            # each child in order instead of racing their own signal handlers.
            processes.append(subprocess.Popen(command, cwd=ROOT, start_new_session=True))
        if not wait_for_port(host, port, processes[0]):
            print("The web server did not start; see the messages above.", file=sys.stderr)
            return 1
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
        print(f"\n  Kontor is running at http://{shown}:{port}/", flush=True)
        print("  Sign in with the administrator above; `.venv/bin/python manage.py seed_demo`", flush=True)
        print("  adds a demo company. Press Ctrl-C to stop.\n", flush=True)
        while not stopping:
            for name, process in zip(commands, processes, strict=True):
                if process.poll() is not None:
                    print(f"The {name} process exited ({process.returncode}); stopping.", file=sys.stderr)
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        print("\n==> Stopping Kontor", flush=True)
        stop(processes)


if __name__ == "__main__":
    sys.exit(main())
