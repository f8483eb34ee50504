"""initiative_fingerprint loses its index on initiative_id

Every accepted initiative inserts a fingerprint row per author; the secondary index on ``initiative_id``
cost each of them another index entry (~2 µs of PostgreSQL and ~140 bytes of WAL per row, measured on a
batch of 1,000). The rows of one initiative are now found through the primary key's prefix instead
(its campaign and authors, then ``initiative_id`` as a filter): revision, withdrawal and the release of a
duplicate's partial claims all know both.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_fingerprint_initiative", table_name="initiative_fingerprint")


def downgrade() -> None:
    op.create_index("ix_fingerprint_initiative", "initiative_fingerprint", ["initiative_id"])
