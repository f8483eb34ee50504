"""units.search_key: the folded code and name that the unit pickers search (issue 16)

``search_key`` is ``shared.text.fold(code + " " + name)``: lower case, no diacritics, punctuation as spaces.
A search matches every word of the folded query as a substring of it, inside the caller's subtree, by level
and code. On PostgreSQL a trigram GIN index (``pg_trgm``, a trusted extension) serves the ``LIKE '%…%'``
conditions, a ``varchar_pattern_ops`` index on ``path`` the subtree's prefix whatever the collation, and one
on ``(depth, code)`` the order; SQLite, the one-machine mode, has the last. Existing units are filled in
here, in pages of 5,000.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.text import fold

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAGE = 5000


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("units") as batch:
        batch.add_column(sa.Column("search_key", sa.String(600), nullable=False, server_default=""))
    units = sa.table("units", sa.column("code", sa.String), sa.column("name", sa.String), sa.column("search_key"))
    update = sa.update(units).where(units.c.code == sa.bindparam("b_code")).values(search_key=sa.bindparam("b_key"))
    after = ""
    while True:
        rows = bind.execute(
            sa.select(units.c.code, units.c.name).where(units.c.code > after).order_by(units.c.code).limit(PAGE)
        ).all()
        if not rows:
            break
        bind.execute(update, [{"b_code": r.code, "b_key": fold(f"{r.code} {r.name}")} for r in rows])
        after = rows[-1].code
    op.create_index("ix_units_depth_code", "units", ["depth", "code"])
    if bind.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            "ix_units_search_key_trgm",
            "units",
            ["search_key"],
            postgresql_using="gin",
            postgresql_ops={"search_key": "gin_trgm_ops"},
        )
        # A subtree as a path prefix (LIKE '/VN/TH/%') by an index whatever the database's collation.
        op.create_index("ix_units_path_prefix", "units", ["path"], postgresql_ops={"path": "varchar_pattern_ops"})


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_units_path_prefix", table_name="units")
        op.drop_index("ix_units_search_key_trgm", table_name="units")
    op.drop_index("ix_units_depth_code", table_name="units")
    with op.batch_alter_table("units") as batch:
        batch.drop_column("search_key")
