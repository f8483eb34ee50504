"""The review service's tables (each created by an Alembic revision in ../../migrations)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from shared.db import BigIntId
from shared.messaging import messaging_tables
from shared.units import unit_replica_table

metadata = MetaData()
outbox, inbox = messaging_tables(metadata)
units = unit_replica_table(metadata)

# One row per initiative known to review: its newest content, its queue state and its lease.
items = Table(
    "review_item",
    metadata,
    Column("initiative_id", String(36), primary_key=True),
    Column("campaign", String(64), nullable=False),
    Column("phase", String(64), nullable=True),
    Column("unit_code", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("field", String(64), nullable=True),
    Column("title", String(300), nullable=False),
    Column("problem", Text, nullable=True),
    Column("solution", Text, nullable=True),
    Column("effect", Text, nullable=True),
    Column("expected_benefit_vnd", BigInteger, nullable=False),
    Column("applied_on", String(10), nullable=True),
    Column("confidential", Boolean, nullable=False),
    Column("authors", JSON, nullable=False),
    # "|M-1|M-2|": lets the claim query leave out a reviewer's own initiatives.
    Column("author_ids", String(2000), nullable=False),
    Column("entered_by", String(200), nullable=True),
    Column("submitted_at", DateTime(timezone=True), nullable=True),
    Column("revision", Integer, nullable=False),
    # pending | revision_requested | valid | invalid | withdrawn
    Column("status", String(20), nullable=False),
    Column("lease_holder", String(200), nullable=True),
    Column("lease_expires_at", DateTime(timezone=True), nullable=True),
    Column("decision_seq", Integer, nullable=False),
    Column("reason", String(32), nullable=True),
    Column("verified_benefit_vnd", BigInteger, nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("similar", JSON, nullable=False),
    Column("appraisal_count", Integer, nullable=False),
    Column("appraisal_mean", Float, nullable=True),
    Column("appraisal_grade", String(20), nullable=True),
    Column("queued_at", DateTime(timezone=True), nullable=True),
    Index("ix_review_item_queue", "status", "seq"),
    Index("ix_review_item_unit", "unit_code"),
    # A small subtree's claim reads each unit's oldest pending items (migration 0002).
    Index(
        "ix_review_item_claimable",
        "unit_code",
        "seq",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
)

# The audit history: every decision, who made it, when, and whether it overrode an earlier one.
decisions = Table(
    "review_decision",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    # Looked up through uq_review_decision_seq, which leads with it (migration 0004 dropped its own index).
    Column("initiative_id", String(36), nullable=False),
    Column("decision_seq", Integer, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("reason", String(32), nullable=True),
    Column("note", Text, nullable=True),
    Column("verified_benefit_vnd", BigInteger, nullable=True),
    Column("decided_by", String(200), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("redecision", Boolean, nullable=False),
    UniqueConstraint("initiative_id", "decision_seq", name="uq_review_decision_seq"),
    Index("ix_review_decision_by", "decided_by", "decided_at"),
)

appraisals = Table(
    "review_appraisal",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("initiative_id", String(36), nullable=False),
    Column("appraiser", String(200), nullable=False),
    Column("novelty", Integer, nullable=False),
    Column("applicability", Integer, nullable=False),
    Column("effectiveness", Integer, nullable=False),
    Column("scope", Integer, nullable=False),
    Column("note", Text, nullable=True),
    Column("appraised_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("initiative_id", "appraiser", name="uq_review_appraisal_once"),
)

# The persisted near-duplicate index: each initiative's shingle hashes (uint32) and MinHash
# signature (uint64). The in-memory LSH is rebuilt from it and follows it by ``id``.
signatures = Table(
    "review_signature",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("initiative_id", String(36), nullable=False, index=True),
    Column("campaign", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("shingles", LargeBinary, nullable=False),
    Column("signature", LargeBinary, nullable=False),
    sqlite_autoincrement=True,
)
