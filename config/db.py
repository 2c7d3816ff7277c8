"""Recovering from dead PostgreSQL connections in seconds.

Django (``CONN_HEALTH_CHECKS``) gives psycopg's pool ``check=ConnectionPool.check_connection``,
and the pool runs it on each connection before handing it out. But after every
connection that fails the check, the pool waits a growing back-off (1, 2, 4, 8, 16 s)
before it tries the next one. When PostgreSQL ends all sessions at once (a restart,
a failover, ``pg_terminate_backend``), a pool holding six dead connections
therefore blocked every database call of the process for its whole ``timeout``
and failed with ``PoolTimeout``, and a daphne process runs all its database calls
on one thread, so every socket stalled with it.

Django's ``OPTIONS["pool"]`` cannot carry a ``check`` of our own (Django passes
``check=`` itself, so the pool would get it twice). ``install()`` therefore
replaces the check of each pool once it exists: the first dead connection makes it
test every idle connection of the pool at once (``ConnectionPool.check()``
discards the dead ones and opens new ones), so the caller waits one back-off
step (about 1 s) instead of one per dead connection.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db.backends.signals import connection_created

logger = logging.getLogger(__name__)


def _check_or_sweep(pool: Any) -> Any:
    from psycopg_pool import ConnectionPool

    def check(conn: Any) -> None:
        try:
            ConnectionPool.check_connection(conn)
        except Exception:
            logger.warning("A pooled database connection was dead; checking the others of %s.", pool.name)
            # pool.check() uses the pool's own static check, not this one: no recursion.
            pool.check()
            raise

    check.kontor_sweeps = True  # type: ignore[attr-defined]
    return check


def sweeping_check_installed(pool: Any) -> bool:
    return bool(getattr(getattr(pool, "_check", None), "kontor_sweeps", False))


def install_sweeping_check(pool: Any) -> None:
    """Give ``pool`` the check that sweeps out every dead connection at the first
    one it meets (only where Django enabled checks, i.e. ``CONN_HEALTH_CHECKS``)."""
    if pool is None or sweeping_check_installed(pool) or getattr(pool, "_check", None) is None:
        return
    pool._check = _check_or_sweep(pool)


def _on_connection_created(sender: Any, connection: Any, **_: Any) -> None:
    if connection.vendor != "postgresql":
        return
    install_sweeping_check(connection.pool)


def install() -> None:
    """Hook into every process that uses the database (web, worker, commands):
    the first connection of a pool installs its check."""
    connection_created.connect(_on_connection_created, dispatch_uid="kontor-pool-sweeping-check")
