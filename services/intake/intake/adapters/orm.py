"""Intake's tables (created by migrations/versions/0001_initial.py, changed by the later ones)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from shared.messaging import messaging_tables
from shared.units import unit_replica_table

metadata = MetaData()
outbox, inbox = messaging_tables(metadata)
units = unit_replica_table(metadata)

campaigns = Table(
    "campaign_replica",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(500), nullable=False),
    Column("fields", JSON, nullable=False),
    Column("window_from", Date, nullable=True),
    Column("window_to", Date, nullable=True),
    Column("phases", JSON, nullable=False),
    Column("revision", BigInteger, nullable=False),
)

# The campaign-wide seq: one counter row per campaign, advanced with UPDATE ... RETURNING.
seq_counters = Table(
    "seq_counter",
    metadata,
    Column("campaign", String(64), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
)

initiatives = Table(
    "initiative",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("campaign", String(64), nullable=False),
    Column("phase", String(64), nullable=False),
    Column("unit_code", String(64), nullable=False),
    Column("field", String(64), nullable=False),
    Column("title", String(300), nullable=False),
    Column("problem", Text, nullable=True),
    Column("solution", Text, nullable=True),
    Column("effect", Text, nullable=True),
    Column("expected_benefit_vnd", BigInteger, nullable=False),
    Column("applied_on", Date, nullable=False),
    Column("confidential", Boolean, nullable=False),
    Column("authors", JSON, nullable=False),
    Column("entered_by", String(200), nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("decision_seq", Integer, nullable=False),
    Column("review_outcome", String(20), nullable=True),
    Column("review_reason", String(40), nullable=True),
    Column("review_note", Text, nullable=True),
    Column("verified_benefit_vnd", BigInteger, nullable=True),
    Column("decided_at", String(40), nullable=True),
    Column("appraisal_seq", Integer, nullable=False),
    Column("appraisal_mean", Float, nullable=True),
    Column("appraisal_grade", String(20), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ux_initiative_campaign_seq", "campaign", "seq", unique=True),
    Index("ix_initiative_submitted", "submitted_at", "id"),
    Index("ix_initiative_unit", "unit_code"),
)

initiative_authors = Table(
    "initiative_author",
    metadata,
    Column("initiative_id", String(36), primary_key=True),
    Column("member_id", String(64), primary_key=True),
    Index("ix_initiative_author_member", "member_id"),
)

# One row per (campaign, author, normalised title + solution): exact duplicates (SPEC §3, issue item 4).
fingerprints = Table(
    "initiative_fingerprint",
    metadata,
    Column("campaign", String(64), primary_key=True),
    Column("member_id", String(64), primary_key=True),
    Column("fingerprint", String(64), primary_key=True),
    # No index on initiative_id (migration 0002): an initiative's rows are found by the primary key's prefix,
    # its campaign and authors (``fingerprints_of``).
    Column("initiative_id", String(36), nullable=False),
)

idempotency_keys = Table(
    "idempotency_key",
    metadata,
    Column("principal", String(200), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("endpoint", String(20), nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("initiative_id", String(36), nullable=True),
    Column("response", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)

import_jobs = Table(
    "import_job",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("claims", JSON, nullable=False),
    Column("campaign", String(64), nullable=False),
    Column("filename", String(300), nullable=False),
    Column("status", String(20), nullable=False),
    Column("total", Integer, nullable=False),
    Column("done", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Index("ix_import_job_status", "status", "created_at"),
)

import_rows = Table(
    "import_row",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("row_number", Integer, primary_key=True),
    Column("payload", JSON, nullable=False),
    Column("status", String(10), nullable=False),
    Column("initiative_id", String(36), nullable=True),
    Column("errors", JSON, nullable=True),
    Index("ix_import_row_pending", "job_id", "status", "row_number"),
)
