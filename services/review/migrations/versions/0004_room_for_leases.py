"""room on review_item's pages for every lease, and one index fewer on each decision

- PostgreSQL: ``review_item`` fill factor 50 (was 80). A claim writes only the lease columns, which are in no
  index, so it can be a heap-only update, with no new index entries, when its page has room for the new row
  version. Items are ~1.6 KB: at 80 a page held three and had room for one more version, and 13% of the updates
  were heap-only in ``bench/pipeline.py``; at 50 it holds two and has room for both leases. Pages written before
  this keep their old packing until rewritten.
- ``ix_review_decision_initiative_id`` is dropped: ``uq_review_decision_seq (initiative_id, decision_seq)``
  answers every lookup by initiative, and each decision paid for both.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_review_decision_initiative_id", table_name="review_decision")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE review_item SET (fillfactor = 50)")


def downgrade() -> None:
    op.create_index("ix_review_decision_initiative_id", "review_decision", ["initiative_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE review_item SET (fillfactor = 80)")
