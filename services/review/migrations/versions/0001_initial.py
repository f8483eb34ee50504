"""review tables

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


def upgrade() -> None:
    create_messaging_tables()
    create_unit_replica_table()
    op.create_table(
        "review_item",
        sa.Column("initiative_id", sa.String(36), primary_key=True),
        sa.Column("campaign", sa.String(64), nullable=False),
        sa.Column("phase", sa.String(64), nullable=True),
        sa.Column("unit_code", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("field", sa.String(64), nullable=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("problem", sa.Text, nullable=True),
        sa.Column("solution", sa.Text, nullable=True),
        sa.Column("effect", sa.Text, nullable=True),
        sa.Column("expected_benefit_vnd", sa.BigInteger, nullable=False),
        sa.Column("applied_on", sa.String(10), nullable=True),
        sa.Column("confidential", sa.Boolean, nullable=False),
        sa.Column("authors", sa.JSON, nullable=False),
        sa.Column("author_ids", sa.String(2000), nullable=False),
        sa.Column("entered_by", sa.String(200), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("lease_holder", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_seq", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("verified_benefit_vnd", sa.BigInteger, nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("similar", sa.JSON, nullable=False),
        sa.Column("appraisal_count", sa.Integer, nullable=False),
        sa.Column("appraisal_mean", sa.Float, nullable=True),
        sa.Column("appraisal_grade", sa.String(20), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_review_item_queue", "review_item", ["status", "seq"])
    op.create_index("ix_review_item_unit", "review_item", ["unit_code"])
    op.create_table(
        "review_decision",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("initiative_id", sa.String(36), nullable=False),
        sa.Column("decision_seq", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("verified_benefit_vnd", sa.BigInteger, nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("redecision", sa.Boolean, nullable=False),
        sa.UniqueConstraint("initiative_id", "decision_seq", name="uq_review_decision_seq"),
    )
    op.create_index("ix_review_decision_initiative_id", "review_decision", ["initiative_id"])
    op.create_index("ix_review_decision_by", "review_decision", ["decided_by", "decided_at"])
    op.create_table(
        "review_appraisal",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("initiative_id", sa.String(36), nullable=False),
        sa.Column("appraiser", sa.String(200), nullable=False),
        sa.Column("novelty", sa.Integer, nullable=False),
        sa.Column("applicability", sa.Integer, nullable=False),
        sa.Column("effectiveness", sa.Integer, nullable=False),
        sa.Column("scope", sa.Integer, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("appraised_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("initiative_id", "appraiser", name="uq_review_appraisal_once"),
    )
    op.create_table(
        "review_signature",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("initiative_id", sa.String(36), nullable=False),
        sa.Column("campaign", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("shingles", sa.LargeBinary, nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sqlite_autoincrement=True,  # ids are never reused: the in-memory index follows the table by id
    )
    op.create_index("ix_review_signature_initiative_id", "review_signature", ["initiative_id"])


def downgrade() -> None:
    op.drop_table("review_signature")
    op.drop_table("review_appraisal")
    op.drop_table("review_decision")
    op.drop_table("review_item")
    op.drop_table("unit_replica")
    drop_messaging_tables()
