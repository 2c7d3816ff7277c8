"""``manage.py health``: the health report for the console; exit 0 when healthy, 1 when not."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from config import health


class Command(BaseCommand):
    help = (
        "Check the database, Redis, the broker, beat and worker liveness and the age of the "
        "last snapshot sweep, seal and verification; exit 1 when any fails or is overdue."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = health.report()
        width = max(len(check.name) for check in report.checks)
        for check in report.checks:
            mark = "ok  " if check.ok else "FAIL"
            line = f"{mark}  {check.name.ljust(width)}  {check.status}"
            if check.detail:
                line += f": {check.detail}"
            self.stdout.write(self.style.SUCCESS(line) if check.ok else self.style.ERROR(line))
        if not report.ok:
            failing = ", ".join(check.name for check in report.checks if not check.ok)
            raise CommandError(f"Kontor is not healthy: {failing}.", returncode=1)
        self.stdout.write("Kontor is healthy.")
