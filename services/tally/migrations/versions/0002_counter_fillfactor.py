"""counters, daily, memberships and facts leave room on their pages for updates in place

Every event adds to existing counter, day and membership rows (its unit's and each ancestor's), and a
review updates its fact. With full pages each such update writes a new row version on another page and a
new entry in every index of the table; with room left on the page it stays a heap-only (HOT) update: no
index entry, less WAL, less vacuum. PostgreSQL only; pages written before keep their layout until rewritten
(VACUUM FULL / CLUSTER).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("counters", "daily", "memberships", "facts")
FILLFACTOR = 70


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
