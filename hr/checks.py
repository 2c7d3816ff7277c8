"""A system check that fails loudly when an offboarding report guard is missing or off.

The guards are the triggers ``accounts`` migration 0006 put on the report's
table, which kept its name when the model moved to ``hr``."""

from importlib import import_module
from typing import Any

from django.core.checks import CheckMessage, Tags, register

from compliance.checks import guard_problems

_MIGRATION = "0006_offboarding"


@register(Tags.database)
def report_guards(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    migration = import_module(f"accounts.migrations.{_MIGRATION}")
    return guard_problems(
        kwargs.get("databases"),
        migration=("accounts", _MIGRATION),
        prefix="accounts_",
        expected=list(migration.TRIGGERS),
        pg_only=list(migration.PG_ONLY_TRIGGERS),
        what="offboarding report guard",
        check_id="accounts",
    )
