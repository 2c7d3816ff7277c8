"""Who is online: the open sockets of each person, in the shared cache.

The cache is Redis in production (shared by every daphne process) and local
memory on the embedded default (one process). Each socket has its own entry
with a short lifetime that its heartbeat renews (``HEARTBEAT`` seconds, from
the consumer), so a socket whose process died, or whose ``disconnect()`` never
ran, stops counting within ``ENTRY_TTL`` seconds by itself; nothing has to be
released for a person to show as offline again.

The entries of one person live in one cache value (a dict of socket name to
expiry time). Two sockets of one person connecting on two processes at the same
instant may overwrite each other's entry; the next heartbeat writes it again.
"""

import time
from datetime import UTC, datetime

from django.core.cache import cache

# A socket's entry lasts this long unless its heartbeat renews it.
ENTRY_TTL = 75
HEARTBEAT = 20
# When someone was last connected, for HR's "last seen" (a cache entry, so that
# connecting writes nothing to the database).
_SEEN_TTL = 400 * 24 * 3600

Sockets = dict[str, float]


def _key(user_id: int) -> str:
    return f"presence:{user_id}"


def _seen_key(user_id: int) -> str:
    return f"presence-seen:{user_id}"


def _live(value: object, now: float) -> Sockets:
    if not isinstance(value, dict):
        return {}
    return {name: expiry for name, expiry in value.items() if expiry > now}


def _store(user_id: int, sockets: Sockets, now: float) -> None:
    if sockets:
        cache.set(_key(user_id), sockets, ENTRY_TTL)
    else:
        cache.delete(_key(user_id))
    cache.set(_seen_key(user_id), int(now), _SEEN_TTL)


def _renew(user_id: int, socket: str) -> bool:
    """Write this socket's entry with a fresh lifetime; True when it is the person's only one."""
    now = time.time()
    sockets = _live(cache.get(_key(user_id)), now)
    alone = not (sockets.keys() - {socket})
    sockets[socket] = now + ENTRY_TTL
    _store(user_id, sockets, now)
    return alone


def presence_connect(*, user_id: int, socket: str) -> bool:
    """Count one more open socket; True when the person just came online."""
    return _renew(user_id, socket)


def presence_heartbeat(*, user_id: int, socket: str) -> None:
    """This socket is still open: renew its entry (and write it again if lost)."""
    _renew(user_id, socket)


def presence_disconnect(*, user_id: int, socket: str) -> bool:
    """Count one socket less; True when the person just went offline."""
    now = time.time()
    before = _live(cache.get(_key(user_id)), now)
    if socket not in before:
        return False
    del before[socket]
    _store(user_id, before, now)
    return not before


def online_user_ids(user_ids: list[int]) -> set[int]:
    now = time.time()
    found = cache.get_many([_key(i) for i in user_ids])
    return {int(key.split(":", 1)[1]) for key, value in found.items() if _live(value, now)}


def last_connected(user_ids: list[int]) -> dict[int, datetime]:
    """When each of these people last had Kontor open (as far as the cache remembers)."""
    found = cache.get_many([_seen_key(i) for i in user_ids])
    return {int(key.rsplit(":", 1)[1]): datetime.fromtimestamp(stamp, tz=UTC) for key, stamp in found.items()}
