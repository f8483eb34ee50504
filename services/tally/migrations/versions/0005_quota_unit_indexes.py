"""quotas and effective_quotas by unit: a quota upload recomputes every ancestor by unit code, across campaigns

Both primary keys lead with ``campaign``; ``recompute_effective_quotas`` reads and replaces the rows of a level's
units (``unit_code = ANY(...)``) and sums their children's, for every campaign. Without an index on ``unit_code``
each of those statements read the whole table: at 40,072 units (``bench/replay.py --national --scale 0.25``) a
``PUT /campaigns/{code}/quotas`` of 10,000 rows took longer than the gateway's 15 s, and the time grew with the
tree, not with the request.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_quotas_unit", "quotas", ["unit_code"])
    op.create_index("ix_effective_quotas_unit", "effective_quotas", ["unit_code"])


def downgrade() -> None:
    op.drop_index("ix_effective_quotas_unit", table_name="effective_quotas")
    op.drop_index("ix_quotas_unit", table_name="quotas")
