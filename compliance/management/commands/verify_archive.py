"""``manage.py verify_archive [--conversation ID] [--skip-copies]``: recompute every hash and link.

Exits with status 1 and names the first broken record when anything was
altered, removed or reordered; over the whole archive it also checks the daily
seals, their storage copies and RFC 3161 timestamps, and the heads they name.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.verification import verify


class Command(BaseCommand):
    help = "Verify the hash chains of the compliance archive."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--conversation", type=int, help="Only this conversation's chain.")
        parser.add_argument(
            "--skip-copies",
            action="store_true",
            help="Do not read the archive storage's copies of records and files (slow on S3).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify(conversation_id=options.get("conversation"), copies=not options["skip_copies"])
        summary = f"{report.chains} chains, {report.records} records, {report.events} journal events"
        if report.purged:
            summary += f" ({report.purged} records purged after retention; their hashes still verified)"
        if options["skip_copies"]:
            summary += ", archive storage copies NOT checked"
        if options.get("conversation") is None:
            summary += f", {report.seals} seals ({report.stamped} with an RFC 3161 timestamp)"
        if report.ok:
            self.stdout.write(self.style.SUCCESS(f"Archive intact: {summary}."))
            return
        for problem in report.problems:
            self.stderr.write(problem)
        raise CommandError(f"Archive BROKEN ({len(report.problems)} problem(s); {summary}).")
