"""demo tables

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import create_messaging_tables, create_unit_replica_table

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_messaging_tables()
    create_unit_replica_table()
    op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True), sa.Column("text", sa.String(200)))
    op.create_table("counts", sa.Column("key", sa.String(50), primary_key=True), sa.Column("n", sa.Integer))


def downgrade() -> None:
    op.drop_table("counts")
    op.drop_table("notes")
    op.drop_table("unit_replica")
    from shared.migration_ops import drop_messaging_tables

    drop_messaging_tables()
