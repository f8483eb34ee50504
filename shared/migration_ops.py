"""Alembic operations for the plumbing tables every service has (outbox, inbox, unit replica)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.db import BigIntId


def create_messaging_tables() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("routing_key", sa.String(200), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "inbox",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("handler", sa.String(200), primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )


def drop_messaging_tables() -> None:
    op.drop_table("inbox")
    op.drop_table("outbox")


def create_unit_replica_table(name: str = "unit_replica") -> None:
    op.create_table(
        name,
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("parent_code", sa.String(64), nullable=True),
        sa.Column("cluster", sa.String(64), nullable=True),
        sa.Column("member_count", sa.Integer, nullable=True),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.create_index(f"ix_{name}_path", name, ["path"])
