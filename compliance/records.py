"""Pure record functions: what a retention record (and every other hashed
document of the archive) is made of, with no database writes and no imports of
the services that use them.

- ``canonical_json``: the bytes that are hashed (sorted keys, no whitespace,
  UTF-8, no floats);
- ``record_hash`` / ``record_hmac``: SHA-256 of those bytes, and the keyed MAC
  that a database superuser without the key cannot forge;
- ``company_day``: the calendar day in the company's legal time zone;
- ``retain_until``: the last day a record must be kept under a policy;
- ``person_entry``: who a person was at capture (name, department, external).
"""

import hashlib
import hmac
import json
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.conf import settings

if TYPE_CHECKING:
    from accounts.models import User
    from compliance.models import RetentionPolicy


def canonical_json(payload: dict[str, Any]) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8, and no floats (they do not round-trip)."""

    def refuse_floats(value: Any) -> None:
        if isinstance(value, float):
            raise TypeError("Canonical JSON holds no floats.")
        if isinstance(value, dict):
            for item in value.values():
                refuse_floats(item)
        elif isinstance(value, list):
            for item in value:
                refuse_floats(item)

    refuse_floats(payload)
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def record_hmac(content: bytes) -> str:
    key = settings.KONTOR_ARCHIVE_HMAC_KEY
    return hmac.new(key.encode(), content, hashlib.sha256).hexdigest() if key else ""


def company_day(moment: datetime) -> date:
    """The calendar day of ``moment`` in the company's legal time zone: a message
    sent in Berlin at 00:30 on 1 January belongs to the new year."""
    return moment.astimezone(ZoneInfo(settings.KONTOR_TIME_ZONE)).date()


def retain_until(policy: "RetentionPolicy", made_on: date) -> date:
    """The last day a record made on ``made_on`` must be kept under ``policy``.

    With ``from_year_end`` (HGB §257(5), AO §147(4)) the period starts at the
    end of the calendar year in which the record was made.
    """
    start = date(made_on.year, 12, 31) if policy.from_year_end else made_on
    try:
        end = start.replace(year=start.year + policy.years)
    except ValueError:  # 29 February
        end = start.replace(year=start.year + policy.years, day=28)
    return end + timedelta(days=policy.days)


def person_entry(user: "User | None") -> dict[str, Any] | None:
    if user is None:
        return None
    return {
        "id": user.pk,
        "name": user.display_name or user.email,
        "email": user.email,
        "department": user.department.name if user.department else None,
        "active": user.is_active,
        # A client or partner taking part by email (C16: who they were at capture).
        "external": user.is_external,
    }
