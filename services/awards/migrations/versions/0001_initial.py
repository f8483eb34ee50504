"""awards tables, with triggers that make awards and revocations append-only

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import BigIntId
from shared.migration_ops import create_messaging_tables, create_unit_replica_table, drop_messaging_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
IMMUTABLE = ("awards", "revocations")


def upgrade() -> None:
    create_messaging_tables()
    create_unit_replica_table()
    op.create_table(
        "campaigns",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("phases", sa.Text, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "initiatives",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("campaign", sa.String(64), nullable=False),
        sa.Column("phase", sa.String(64), nullable=True),
        sa.Column("unit_code", sa.String(64), nullable=False),
        sa.Column("authors", sa.Text, nullable=False),
        sa.Column("source_seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_initiatives_campaign", "initiatives", ["campaign"])
    op.create_table(
        "decisions",
        sa.Column("initiative_id", sa.String(36), primary_key=True),
        sa.Column("decision_seq", sa.BigInteger, primary_key=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("benefit_vnd", sa.BigInteger, nullable=False),
        sa.Column("decided_at", TZ, nullable=False),
    )
    op.create_table(
        "appraisals",
        sa.Column("initiative_id", sa.String(36), primary_key=True),
        sa.Column("appraisal_seq", sa.BigInteger, primary_key=True),
        sa.Column("grade", sa.String(20), nullable=False),
        sa.Column("appraised_at", TZ, nullable=False),
    )
    op.create_table(
        "snapshots",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("campaign", sa.String(64), nullable=False),
        sa.Column("phase", sa.String(64), nullable=True),
        sa.Column("taken_at", TZ, nullable=False),
    )
    op.create_table(
        "frozen_inputs",
        sa.Column("snapshot_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "schemes",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "nomination_runs",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("scheme_code", sa.String(64), nullable=False),
        sa.Column("snapshot_id", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_nomination_runs_scheme_code", "nomination_runs", ["scheme_code"])
    op.create_table(
        "awards",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("scheme_code", sa.String(64), nullable=False),
        sa.Column("campaign", sa.String(64), nullable=False),
        sa.Column("recipient_kind", sa.String(20), nullable=False),
        sa.Column("recipient_key", sa.String(64), nullable=False),
        sa.Column("recipient", sa.Text, nullable=False),
        sa.Column("unit_code", sa.String(64), nullable=True),
        sa.Column("figures", sa.Text, nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("snapshot_id", sa.String(64), nullable=False),
        sa.Column("nomination_run_id", sa.BigInteger, nullable=False),
        sa.Column("decision_no", sa.String(100), nullable=False),
        sa.Column("signed_on", sa.String(10), nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=False),
        sa.Column("granted_at", TZ, nullable=False),
    )
    for col in ("scheme_code", "campaign", "recipient_key", "unit_code"):
        op.create_index(f"ix_awards_{col}", "awards", [col])
    op.create_table(
        "revocations",
        sa.Column("award_id", sa.String(36), sa.ForeignKey("awards.id"), primary_key=True),
        sa.Column("decision_no", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(2000), nullable=False),
        sa.Column("revoked_on", sa.String(10), nullable=False),
        sa.Column("revoked_by", sa.String(200), nullable=False),
        sa.Column("revoked_at", TZ, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION awards_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'awards are immutable: % on % refused', TG_OP, TG_TABLE_NAME "
            "USING ERRCODE = 'restrict_violation'; END $$"
        )
        for table in IMMUTABLE:
            op.execute(
                f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION awards_refuse_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION awards_refuse_change()"
            )
    else:
        for table in IMMUTABLE:
            for what in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{what.lower()} BEFORE {what} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'awards are immutable'); END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in IMMUTABLE:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS awards_refuse_change()")
    for table in (
        "revocations",
        "awards",
        "nomination_runs",
        "schemes",
        "frozen_inputs",
        "snapshots",
        "appraisals",
        "decisions",
        "initiatives",
        "campaigns",
        "unit_replica",
    ):
        op.drop_table(table)
    drop_messaging_tables()
