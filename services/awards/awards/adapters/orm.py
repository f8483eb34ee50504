"""The awards store. Every table is created by migrations/versions/0001_initial.py.

Awards and revocations are append-only: no code path updates or deletes them, and the migration
installs triggers that refuse UPDATE/DELETE on both tables (PostgreSQL and SQLite).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table, Text

from shared.db import BigIntId
from shared.messaging import messaging_tables
from shared.units import unit_replica_table

metadata = MetaData()
outbox, inbox = messaging_tables(metadata)
units = unit_replica_table(metadata)

campaigns = Table(
    "campaigns",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(500), nullable=False),
    Column("phases", Text, nullable=False),  # JSON list of phase codes
    Column("revision", BigInteger, nullable=False),
)

# Facts per initiative, kept so that member figures are derived (never incremented) and exact.
initiatives = Table(
    "initiatives",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("campaign", String(64), nullable=False, index=True),
    Column("phase", String(64), nullable=True),
    Column("unit_code", String(64), nullable=False),
    Column("authors", Text, nullable=False),  # JSON [{"member_id", "full_name"}]
    # The decision_seq of the initiative.reviewed.v1 it came from: the newest wins. (0: from an
    # initiative.submitted.v1, which awards took until 2026-11-29; such a row has no decision and counts for nothing.)
    Column("source_seq", BigInteger, nullable=False),
)

decisions = Table(
    "decisions",
    metadata,
    Column("initiative_id", String(36), primary_key=True),
    Column("decision_seq", BigInteger, primary_key=True),
    Column("outcome", String(20), nullable=False),
    Column("benefit_vnd", BigInteger, nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
)

appraisals = Table(
    "appraisals",
    metadata,
    Column("initiative_id", String(36), primary_key=True),
    Column("appraisal_seq", BigInteger, primary_key=True),
    Column("grade", String(20), nullable=False),
    Column("appraised_at", DateTime(timezone=True), nullable=False),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("campaign", String(64), nullable=False),
    Column("phase", String(64), nullable=True),
    Column("taken_at", DateTime(timezone=True), nullable=False),
)

# Inputs frozen the first time a snapshot is used: "units:<kind>" (fetched from tally) and
# "members:<phase|*>" (derived here). Later computations read these rows, never live data.
frozen_inputs = Table(
    "frozen_inputs",
    metadata,
    Column("snapshot_id", String(64), primary_key=True),
    Column("key", String(100), primary_key=True),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

schemes = Table(
    "schemes",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("body", Text, nullable=False),  # the validated scheme, canonical JSON
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

nomination_runs = Table(
    "nomination_runs",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("scheme_code", String(64), nullable=False, index=True),
    Column("snapshot_id", String(64), nullable=False),
    Column("body", Text, nullable=False),  # the exact response body
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

awards = Table(
    "awards",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("scheme_code", String(64), nullable=False, index=True),
    Column("campaign", String(64), nullable=False, index=True),
    Column("recipient_kind", String(20), nullable=False),
    Column("recipient_key", String(64), nullable=False, index=True),  # unit code or member id
    Column("recipient", Text, nullable=False),
    Column("unit_code", String(64), nullable=True, index=True),
    Column("figures", Text, nullable=False),
    Column("rank", Integer, nullable=False),
    Column("snapshot_id", String(64), nullable=False),
    Column("nomination_run_id", BigInteger, nullable=False),
    Column("decision_no", String(100), nullable=False),
    Column("signed_on", String(10), nullable=False),
    Column("decided_by", String(200), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
)

revocations = Table(
    "revocations",
    metadata,
    Column("award_id", String(36), primary_key=True),
    Column("decision_no", String(100), nullable=False),
    Column("reason", String(2000), nullable=False),
    Column("revoked_on", String(10), nullable=False),
    Column("revoked_by", String(200), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=False),
)
