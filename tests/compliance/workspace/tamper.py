"""What an attacker with access to the database or the archive storage could
do, for tests that show the workspace notices it."""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.db import connection

from compliance import archive_store


def without_guards(sql: str, params: Sequence[Any] | None = None) -> None:
    """What a database superuser could do: switch the triggers off and write
    (as tests/compliance/test_snapshots.py does; the test's rollback restores them)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE compliance_recordcontent DISABLE TRIGGER ALL")
            cursor.execute(sql, params)
        else:
            names = [
                row[0]
                for row in cursor.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'compliance_%'"
                ).fetchall()
            ]
            for name in names:
                cursor.execute(f"DROP TRIGGER {name}")
            cursor.execute(sql, params)


def alter_archive_copy(archive_storage: Path, sha256: str, data: bytes) -> None:
    """Overwrite the write-once archive copy of a file (read-only on disk: made
    writable first, as someone with the storage's credentials could)."""
    copy = archive_storage / archive_store.file_name(sha256)
    os.chmod(copy, 0o640)
    copy.write_bytes(data)
