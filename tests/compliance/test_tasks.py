"""A Celery worker registers every compliance task under its stable name,
the workspace's included, the way a worker starts (a fresh process that loads
the task modules), not through whatever this test run imported already."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The names beat's schedule, queued tasks and running installations use.
COMPLIANCE_TASKS = [
    "compliance.export",
    "compliance.export_requeue",
    "compliance.purge_expired",
    "compliance.reconcile",
    "compliance.seal",
    "compliance.snapshot_conversation",
    "compliance.snapshot_due",
    "compliance.verify",
]
WORKER_START = """
import json
from config.celery import app
app.loader.import_default_modules()
print(json.dumps(sorted(name for name in app.tasks if name.startswith("compliance."))))
"""


def test_a_worker_registers_every_compliance_task_by_its_stable_name() -> None:
    started = subprocess.run(
        [sys.executable, "-c", WORKER_START],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    assert json.loads(started.stdout.strip().splitlines()[-1]) == COMPLIANCE_TASKS
