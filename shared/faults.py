"""Telling an infrastructure fault from a fault of the work itself.

A database or broker that cannot be reached, a connection cut in the middle of a statement, a pool
that has no connection to give, a serialization failure or a deadlock: none of these says anything
about the request or the event being handled, and the same work succeeds once the fault has passed.
Consumers hold such work and retry it (``shared.messaging.Dispatcher``) instead of spending the
message's delivery limit on it, and HTTP answers 503 instead of 500.
"""

from __future__ import annotations

import sqlite3

import asyncpg
from sqlalchemy import exc as sa_exc

# asyncpg's own classes for a connection that failed, was closed under it, or was refused by a server that is
# starting, stopping or full; and the transaction conflicts PostgreSQL asks clients to retry (40001, 40P01).
_ASYNCPG_TRANSIENT: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
)

# OSError covers refused and reset connections and socket timeouts (TimeoutError is one); a pool with no
# connection to give raises SQLAlchemy's TimeoutError.
_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    ConnectionError,
    TimeoutError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    *_ASYNCPG_TRANSIENT,
)

_SQLITE_TRANSIENT = ("database is locked", "database is busy", "unable to open database")


def is_infrastructure_error(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is a fault of the database or the network, not of the work."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 20:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, _TRANSIENT):
            return True
        if isinstance(current, sqlite3.OperationalError) and any(m in str(current) for m in _SQLITE_TRANSIENT):
            return True
        if isinstance(current, sa_exc.StatementError) and current.orig is not None and current.orig is not current:
            current = current.orig
            continue
        current = current.__cause__ or current.__context__
    return False
