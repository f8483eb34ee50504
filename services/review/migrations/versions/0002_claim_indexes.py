"""claims find a small subtree's items through an index, and leases are updated in place

- ``ix_review_item_claimable (unit_code, seq) WHERE status = 'pending'``: a claim for a small subtree reads
  the oldest pending items of each of its units (review.adapters.claims), not the national queue.
- PostgreSQL: ``unit_replica (path COLLATE "C")``: a subtree is a range of paths in code-point order.
- PostgreSQL: ``review_item`` leaves room on its pages (fillfactor 80), so that taking a lease (columns in
  no index) stays a heap-only update: no new index entries.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pending = sa.text("status = 'pending'")
    op.create_index(
        "ix_review_item_claimable",
        "review_item",
        ["unit_code", "seq"],
        postgresql_where=pending,
        sqlite_where=pending,
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index("ix_unit_replica_path_c", "unit_replica", [sa.text('path COLLATE "C"')])
    op.execute("ALTER TABLE review_item SET (fillfactor = 80)")


def downgrade() -> None:
    op.drop_index("ix_review_item_claimable", table_name="review_item")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_unit_replica_path_c", table_name="unit_replica")
    op.execute("ALTER TABLE review_item RESET (fillfactor)")
