"""Tally's tables: the plan, per-initiative facts (the source of truth) and the counters derived from them.

Counter tables are keyed by a unit *subtree*: a row for unit U holds the figures of U and all its
descendants. Phase ``"*"`` is the whole campaign.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.messaging import messaging_tables

WHOLE = "*"  # the phase key of whole-campaign figures

metadata = MetaData()
outbox, inbox = messaging_tables(metadata)

units = Table(
    "units",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(500), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("parent_code", String(64), nullable=True, index=True),
    Column("cluster", String(64), nullable=True),
    Column("member_count", Integer, nullable=True),
    Column("path", String(1000), nullable=False, index=True),
    Column("depth", Integer, nullable=False),
    Column("revision", BigInteger, nullable=False),
    # fold(code + " " + name): what the unit search compares (migration 0004; a trigram index on PostgreSQL).
    Column("search_key", String(600), nullable=False, server_default=""),
    Index("ix_units_kind_cluster", "kind", "cluster"),
    Index("ix_units_depth_code", "depth", "code"),  # the unit search's order (migration 0004)
)

plan_sequences = Table(
    "plan_sequences",
    metadata,
    Column("name", String(20), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(500), nullable=False),
    Column("body", JSON, nullable=False),
    Column("revision", BigInteger, nullable=False),
)

quotas = Table(
    "quotas",
    metadata,
    Column("campaign", String(64), primary_key=True),
    Column("unit_code", String(64), primary_key=True),
    Column("phase", String(64), primary_key=True),
    Column("assigned", BigInteger, nullable=False),
    Column("self_set", BigInteger, nullable=True),
    Column("revision", BigInteger, nullable=False),
    # A quota upload reads a level's units across campaigns (migration 0005).
    Index("ix_quotas_unit", "unit_code"),
)

# Own quota where set, else the sum of the children's effective quotas (SPEC §2).
effective_quotas = Table(
    "effective_quotas",
    metadata,
    Column("campaign", String(64), primary_key=True),
    Column("unit_code", String(64), primary_key=True),
    Column("phase", String(64), primary_key=True),
    Column("quota", BigInteger, nullable=False),
    Column("self_set", BigInteger, nullable=False),
    Index("ix_effective_quotas_unit", "unit_code"),
)

facts = Table(
    "facts",
    metadata,
    Column("initiative_id", String(36), primary_key=True),
    Column("campaign", String(64), nullable=False),
    Column("phase", String(64), nullable=True),
    Column("unit_code", String(64), nullable=False),
    Column("authors", JSON, nullable=False),
    Column("expected_benefit_vnd", BigInteger, nullable=False),
    # -1: content known only from a review event; submitted/revised carry 0, 1, …
    Column("content_revision", Integer, nullable=False),
    Column("withdrawn", Boolean, nullable=False),
    Column("decision_seq", Integer, nullable=False),
    Column("outcome", String(20), nullable=True),
    Column("verified_benefit_vnd", BigInteger, nullable=True),
    Column("submitted_at", DateTime(timezone=True), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Index("ix_facts_unit", "unit_code"),
)

counters = Table(
    "counters",
    metadata,
    Column("unit_code", String(64), primary_key=True),
    Column("campaign", String(64), primary_key=True),
    Column("phase", String(64), primary_key=True),
    Column("submitted", BigInteger, nullable=False),
    Column("valid", BigInteger, nullable=False),
    Column("invalid", BigInteger, nullable=False),
    Column("benefit_vnd", BigInteger, nullable=False),
    Column("participants", BigInteger, nullable=False),
)

# Where each member authored counted initiatives: one row per (campaign, phase, member), ``units`` mapping each
# grassroots/department unit to how many of the member's counted initiatives it holds (only n > 0). A member
# counts as a participant of every unit on the paths of those units; the row is also the lock that keeps
# ``participants`` exact when parallel consumers count the same member.
member_units = Table(
    "member_units",
    metadata,
    Column("campaign", String(64), primary_key=True),
    Column("phase", String(64), primary_key=True),
    Column("member_id", String(64), primary_key=True),
    Column("units", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
)

daily = Table(
    "daily",
    metadata,
    Column("unit_code", String(64), primary_key=True),
    Column("campaign", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("submitted", BigInteger, nullable=False),
    Column("valid", BigInteger, nullable=False),
)

campaign_totals = Table(
    "campaign_totals",
    metadata,
    Column("campaign", String(64), primary_key=True),
    Column("valid", BigInteger, nullable=False),
)

milestones = Table(
    "milestones",
    metadata,
    Column("campaign", String(64), primary_key=True),
    Column("n", BigInteger, primary_key=True),
    Column("initiative_id", String(36), nullable=False),
    Column("unit_code", String(64), nullable=False),
    Column("authors", JSON, nullable=False),
    Column("reached_at", DateTime(timezone=True), nullable=False),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("campaign", String(64), nullable=False),
    Column("phase", String(64), nullable=True),
    Column("taken_at", DateTime(timezone=True), nullable=False),
    Column("units_count", Integer, nullable=False),
)

snapshot_figures = Table(
    "snapshot_figures",
    metadata,
    Column("snapshot_id", String(36), primary_key=True),
    Column("unit_code", String(64), primary_key=True),
    Column("name", String(500), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("parent_code", String(64), nullable=True),
    Column("cluster", String(64), nullable=True),
    Column("path", String(1000), nullable=False),
    Column("submitted", BigInteger, nullable=False),
    Column("valid", BigInteger, nullable=False),
    Column("invalid", BigInteger, nullable=False),
    Column("participants", BigInteger, nullable=False),
    Column("benefit_vnd", BigInteger, nullable=False),
    Column("quota", BigInteger, nullable=True),
    Column("self_set", BigInteger, nullable=True),
    Index("ix_snapshot_figures_kind", "snapshot_id", "kind", "unit_code"),
)
