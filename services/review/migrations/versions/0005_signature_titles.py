"""each signature row carries its initiative's title, for the ``similar`` lists

A near-duplicate shown in an item's ``similar`` list carries its title. It was read from ``review_item``, one
random row per match: at 556,000 initiatives of bench/replay.py, 42 ms per consumed batch, a tenth of review's
statement time. A signature row is written whenever a content event is accepted, and the title is part of that
content, so the row can carry it; the shingle sets kept in memory keep their title beside them.
Rows written before this have no title: their matches' titles are still read from ``review_item``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("review_signature", sa.Column("title", sa.String(300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_signature") as batch:
        batch.drop_column("title")
