"""``manage.py verify_archive [--conversation ID]``: recompute every hash and link.

Exits with status 1 and names the first broken record when anything was
altered, removed or reordered.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.verification import verify


class Command(BaseCommand):
    help = "Verify the hash chains of the compliance archive."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--conversation", type=int, help="Only this conversation's chain.")

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify(conversation_id=options.get("conversation"))
        summary = f"{report.chains} chains, {report.records} records, {report.events} journal events"
        if report.purged:
            summary += f" ({report.purged} records purged after retention; their hashes still verified)"
        if report.ok:
            self.stdout.write(self.style.SUCCESS(f"Archive intact: {summary}."))
            return
        for problem in report.problems:
            self.stderr.write(problem)
        raise CommandError(f"Archive BROKEN ({len(report.problems)} chain(s) affected; {summary}).")
