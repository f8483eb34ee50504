"""the items' long texts in a table of their own, so that a lease or a decision rewrites a narrow row

``review_item_text (initiative_id, problem, solution, effect, similar)`` takes the four long columns of
``review_item``, which a claim (the lease) and a decision rewrite as a whole new row version each: ~1.6 KB each
time with the texts, ~300 bytes without. In the full replay (bench/replay.py, 600,175 initiatives) review's
table had grown to 4 GB, thirty times PostgreSQL's default buffer cache. The texts are written with the item's
content and read by the claim that shows them.

Every row's texts are copied; the downgrade copies them back.

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
    op.create_table(
        "review_item_text",
        sa.Column("initiative_id", sa.String(36), primary_key=True),
        sa.Column("problem", sa.Text, nullable=True),
        sa.Column("solution", sa.Text, nullable=True),
        sa.Column("effect", sa.Text, nullable=True),
        sa.Column("similar", sa.JSON, nullable=False),
    )
    op.execute(
        'INSERT INTO review_item_text (initiative_id, problem, solution, effect, "similar")'
        ' SELECT initiative_id, problem, solution, effect, "similar" FROM review_item'
    )
    with op.batch_alter_table("review_item") as batch:
        for column in ("problem", "solution", "effect", "similar"):
            batch.drop_column(column)


def downgrade() -> None:
    with op.batch_alter_table("review_item") as batch:
        batch.add_column(sa.Column("problem", sa.Text, nullable=True))
        batch.add_column(sa.Column("solution", sa.Text, nullable=True))
        batch.add_column(sa.Column("effect", sa.Text, nullable=True))
        batch.add_column(sa.Column("similar", sa.JSON, nullable=False, server_default="[]"))
    op.execute(
        'UPDATE review_item SET problem = t.problem, solution = t.solution, effect = t.effect, "similar" = t."similar"'
        " FROM review_item_text t WHERE t.initiative_id = review_item.initiative_id"
    )
    op.drop_table("review_item_text")
