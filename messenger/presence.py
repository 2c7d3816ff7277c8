"""Who is online: a count of open sockets per person in the shared cache.

The cache is Redis in production (shared by every daphne process) and local
memory on the embedded default (one process). Counts expire, so a process that
died without closing its sockets cannot keep someone "online" for long.
"""

import time
from datetime import UTC, datetime

from django.core.cache import cache

_TTL = 6 * 3600
# When someone was last connected, for HR's "last seen" (a cache entry, so that
# connecting writes nothing to the database).
_SEEN_TTL = 400 * 24 * 3600


def _key(user_id: int) -> str:
    return f"presence:{user_id}"


def _seen_key(user_id: int) -> str:
    return f"presence-seen:{user_id}"


def presence_connect(*, user_id: int) -> bool:
    """Count one more open socket; True when the person just came online."""
    cache.add(_key(user_id), 0, _TTL)
    try:
        count = cache.incr(_key(user_id))
    except ValueError:
        cache.set(_key(user_id), 1, _TTL)
        count = 1
    cache.touch(_key(user_id), _TTL)
    cache.set(_seen_key(user_id), int(time.time()), _SEEN_TTL)
    return count == 1


def presence_disconnect(*, user_id: int) -> bool:
    """Count one socket less; True when the person just went offline."""
    try:
        count = cache.decr(_key(user_id))
    except ValueError:
        return False
    cache.set(_seen_key(user_id), int(time.time()), _SEEN_TTL)
    if count <= 0:
        cache.delete(_key(user_id))
        return True
    return False


def online_user_ids(user_ids: list[int]) -> set[int]:
    found = cache.get_many([_key(i) for i in user_ids])
    return {int(key.split(":", 1)[1]) for key, count in found.items() if count and count > 0}


def last_connected(user_ids: list[int]) -> dict[int, datetime]:
    """When each of these people last had Kontor open (as far as the cache remembers)."""
    found = cache.get_many([_seen_key(i) for i in user_ids])
    return {int(key.rsplit(":", 1)[1]): datetime.fromtimestamp(stamp, tz=UTC) for key, stamp in found.items()}
