"""room on the initiative table's pages for each decision's new row version

PostgreSQL: ``initiative`` fill factor 60 (was the default, 100). A decision (``initiative.reviewed.v1``) writes
the status and review columns, none of them in an index, so it can be a heap-only update, with no new index
entries, when its page has room for the new version. With full pages 1% of those updates were heap-only in
``bench/pipeline.py``; updating 50,000 rows of this shape cost 20–22 µs of PostgreSQL CPU a row at fill factor
100 and 14–17 µs at 60, all heap-only, for a table 31% larger (docs/benchmarks.md). Pages written before this
keep their packing until rewritten.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE initiative SET (fillfactor = 60)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE initiative RESET (fillfactor)")
