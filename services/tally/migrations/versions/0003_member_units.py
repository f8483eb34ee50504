"""participants from one row per member (member_units) instead of membership rows at every ancestor

``memberships`` held, for every unit *and each of its ancestors*, how many counted initiatives each member had
in that subtree: a submission by two authors wrote 16 rows (2 authors × 2 phase keys × 4 levels). ``member_units``
holds one row per (campaign, phase, member) with the units where the member has counted initiatives; the
member is a participant of every unit on those units' paths. ``counters.participants`` do not change.

The new rows are computed from the facts (the source of truth), in SQL on both dialects. The downgrade rebuilds
``memberships`` from them and the units' paths.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILLFACTOR = 70

# One statement per phase key: the whole campaign ("*") and, for facts with one, their phase. A fact counts when
# it is not withdrawn and its content is known (content_revision >= -1), as in tally.domain.counting.
_FILL_PG = """
INSERT INTO member_units (campaign, phase, member_id, units)
SELECT campaign, phase, member_id, jsonb_object_agg(unit_code, n)
FROM (
  SELECT f.campaign, {phase} AS phase, a.member_id, f.unit_code, count(*) AS n
  FROM facts f CROSS JOIN LATERAL json_array_elements_text(f.authors) AS a(member_id)
  WHERE NOT f.withdrawn AND f.content_revision >= -1 {only}
  GROUP BY 1, 2, 3, 4
) s
GROUP BY 1, 2, 3
"""
_FILL_SQLITE = """
INSERT INTO member_units (campaign, phase, member_id, units)
SELECT campaign, phase, member_id, json_group_object(unit_code, n)
FROM (
  SELECT f.campaign, {phase} AS phase, a.value AS member_id, f.unit_code, count(*) AS n
  FROM facts f, json_each(f.authors) AS a
  WHERE NOT f.withdrawn AND f.content_revision >= -1 {only}
  GROUP BY 1, 2, 3, 4
) s
GROUP BY 1, 2, 3
"""


def upgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    op.create_table(
        "member_units",
        sa.Column("campaign", sa.String(length=64), nullable=False),
        sa.Column("phase", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("units", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
        sa.PrimaryKeyConstraint("campaign", "phase", "member_id"),
    )
    fill = _FILL_PG if pg else _FILL_SQLITE
    op.execute(fill.format(phase="'*'", only=""))
    op.execute(fill.format(phase="f.phase", only="AND f.phase IS NOT NULL"))
    op.drop_table("memberships")
    if pg:
        op.execute(f"ALTER TABLE member_units SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "memberships",
        sa.Column("unit_code", sa.String(length=64), nullable=False),
        sa.Column("campaign", sa.String(length=64), nullable=False),
        sa.Column("phase", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("unit_code", "campaign", "phase", "member_id"),
    )
    if bind.dialect.name == "postgresql":
        op.execute(
            """
INSERT INTO memberships (unit_code, campaign, phase, member_id, n)
SELECT a.code, m.campaign, m.phase, m.member_id, sum(CAST(e.value AS int))
FROM member_units m CROSS JOIN LATERAL jsonb_each_text(m.units) AS e(unit_code, value)
LEFT JOIN units u ON u.code = e.unit_code
CROSS JOIN LATERAL unnest(string_to_array(trim(BOTH '/' FROM coalesce(u.path, '/' || e.unit_code || '/')), '/'))
  AS a(code)
GROUP BY 1, 2, 3, 4
"""
        )
        op.execute(f"ALTER TABLE memberships SET (fillfactor = {FILLFACTOR})")
    else:
        # SQLite (the embedded, small deployment): the paths are split in Python.
        paths = {
            code: [p for p in path.split("/") if p]
            for code, path in bind.execute(sa.text("SELECT code, path FROM units"))
        }
        rows: dict[tuple[str, str, str, str], int] = defaultdict(int)
        for campaign, phase, member, unit, n in bind.execute(
            sa.text("SELECT m.campaign, m.phase, m.member_id, e.key, e.value FROM member_units m, json_each(m.units) e")
        ):
            for code in paths.get(unit) or [unit]:
                rows[(code, campaign, phase, member)] += int(n)
        memberships = sa.table(
            "memberships", *(sa.column(c) for c in ("unit_code", "campaign", "phase", "member_id", "n"))
        )
        values = [
            {"unit_code": u, "campaign": c, "phase": p, "member_id": m, "n": n} for (u, c, p, m), n in rows.items()
        ]
        if values:
            bind.execute(memberships.insert(), values)
    op.drop_table("member_units")
