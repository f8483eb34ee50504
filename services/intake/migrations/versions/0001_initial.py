"""intake tables: plan replicas, initiatives, authors, fingerprints, seq counters, idempotency keys, imports

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import (
    create_messaging_tables,
    create_unit_replica_table,
    drop_messaging_tables,
)

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_messaging_tables()
    create_unit_replica_table()
    op.create_table(
        "campaign_replica",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("window_from", sa.Date, nullable=True),
        sa.Column("window_to", sa.Date, nullable=True),
        sa.Column("phases", sa.JSON, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "seq_counter",
        sa.Column("campaign", sa.String(64), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "initiative",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("campaign", sa.String(64), nullable=False),
        sa.Column("phase", sa.String(64), nullable=False),
        sa.Column("unit_code", sa.String(64), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("problem", sa.Text, nullable=True),
        sa.Column("solution", sa.Text, nullable=True),
        sa.Column("effect", sa.Text, nullable=True),
        sa.Column("expected_benefit_vnd", sa.BigInteger, nullable=False),
        sa.Column("applied_on", sa.Date, nullable=False),
        sa.Column("confidential", sa.Boolean, nullable=False),
        sa.Column("authors", sa.JSON, nullable=False),
        sa.Column("entered_by", sa.String(200), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("decision_seq", sa.Integer, nullable=False),
        sa.Column("review_outcome", sa.String(20), nullable=True),
        sa.Column("review_reason", sa.String(40), nullable=True),
        sa.Column("review_note", sa.Text, nullable=True),
        sa.Column("verified_benefit_vnd", sa.BigInteger, nullable=True),
        sa.Column("decided_at", sa.String(40), nullable=True),
        sa.Column("appraisal_seq", sa.Integer, nullable=False),
        sa.Column("appraisal_mean", sa.Float, nullable=True),
        sa.Column("appraisal_grade", sa.String(20), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ux_initiative_campaign_seq", "initiative", ["campaign", "seq"], unique=True)
    op.create_index("ix_initiative_submitted", "initiative", ["submitted_at", "id"])
    op.create_index("ix_initiative_unit", "initiative", ["unit_code"])
    op.create_table(
        "initiative_author",
        sa.Column("initiative_id", sa.String(36), primary_key=True),
        sa.Column("member_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_initiative_author_member", "initiative_author", ["member_id"])
    op.create_table(
        "initiative_fingerprint",
        sa.Column("campaign", sa.String(64), primary_key=True),
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("initiative_id", sa.String(36), nullable=False),
    )
    op.create_index("ix_fingerprint_initiative", "initiative_fingerprint", ["initiative_id"])
    op.create_table(
        "idempotency_key",
        sa.Column("principal", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("endpoint", sa.String(20), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("initiative_id", sa.String(36), nullable=True),
        sa.Column("response", sa.JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_idempotency_key_created_at", "idempotency_key", ["created_at"])
    op.create_table(
        "import_job",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("claims", sa.JSON, nullable=False),
        sa.Column("campaign", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(300), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("done", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_import_job_status", "import_job", ["status", "created_at"])
    op.create_table(
        "import_row",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("row_number", sa.Integer, primary_key=True),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("initiative_id", sa.String(36), nullable=True),
        sa.Column("errors", sa.JSON, nullable=True),
    )
    op.create_index("ix_import_row_pending", "import_row", ["job_id", "status", "row_number"])


def downgrade() -> None:
    for table in (
        "import_row",
        "import_job",
        "idempotency_key",
        "initiative_fingerprint",
        "initiative_author",
        "initiative",
        "seq_counter",
        "campaign_replica",
        "unit_replica",
    ):
        op.drop_table(table)
    drop_messaging_tables()
