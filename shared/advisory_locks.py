"""Every PostgreSQL advisory-lock key the project takes, in one place, with what it guards.

Keys are per database, and each service has a database of its own, so a key only ever meets the
replicas of one service; keeping them all here still keeps two uses from sharing a number by accident.
"""

from __future__ import annotations

from enum import IntEnum


class AdvisoryLock(IntEnum):
    # Transaction-scoped, exclusive: one replica of a service applies its Alembic migrations at start-up
    # while the others wait (shared.db.run_migrations).
    MIGRATIONS = 72616
    # Tally's plan against its counting: every consumer batch holds it shared (they run side by side); a
    # change of the plan (which may move subtrees) and a rebuild of the counters hold it exclusively
    # (tally.adapters.counters).
    TALLY_PLAN = 7210
