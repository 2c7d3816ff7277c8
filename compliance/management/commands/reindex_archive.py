"""``manage.py reindex_archive [--conversation ID]``: rebuild the archive's
search index from the retention records' content.

Idempotent: a record whose index rows already say what its content says is
left alone, so a second run only reads. Rows of a purged record go; records
archived before the index existed get theirs; attachment text extracted since
a record was written is added. Records themselves are only read.
"""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from compliance.index import reindex_record
from compliance.models import RetentionRecord

BATCH = 50


class Command(BaseCommand):
    help = "Rebuild the archive's search index from the retention records (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--conversation", type=int, help="Only this conversation's records.")

    def handle(self, *args: Any, **options: Any) -> None:
        records = RetentionRecord.objects.order_by("pk")
        if options.get("conversation") is not None:
            records = records.filter(conversation_id=options["conversation"])
        total = records.count()
        started = time.monotonic()
        seen = changed = rows = 0
        last = 0
        while True:
            # Batches by primary key: memory stays bounded whatever the archive's size.
            batch = list(
                records.filter(pk__gt=last).values_list("pk", "conversation_id", "content__canonical_json")[
                    :BATCH
                ]
            )
            if not batch:
                break
            for record_id, conversation_id, canonical_json in batch:
                result = reindex_record(
                    record_id=record_id, conversation_id=conversation_id, canonical_json=canonical_json
                )
                seen += 1
                rows += result.rows
                changed += result.changed
                last = record_id
            if options["verbosity"] > 1:
                self.stdout.write(f"{seen:,} / {total:,} records, {rows:,} message versions")
        self.stdout.write(
            self.style.SUCCESS(
                f"Search index: {seen:,} records, {rows:,} message versions; "
                f"{changed:,} record(s) reindexed, {seen - changed:,} unchanged "
                f"({time.monotonic() - started:.1f} s)."
            )
        )
