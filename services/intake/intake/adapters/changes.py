"""Changing an initiative after its submission (revision, withdrawal), in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncConnection

from intake.adapters.orm import fingerprints, initiative_authors, initiatives, outbox
from intake.adapters.store import fingerprints_of
from intake.domain.rules import OPEN_STATUSES
from shared.db import insert_ignore
from shared.envelope import Envelope
from shared.messaging import outbox_row


async def revise(conn: AsyncConnection, row: Any, values: dict[str, Any]) -> bool:
    """Write ``values`` over the initiative ``row`` if it is still as read (revision_requested, same revision)."""
    done = await conn.execute(
        update(initiatives)
        .where(
            initiatives.c.id == row.id,
            initiatives.c.status == "revision_requested",
            initiatives.c.revision == row.revision,
        )
        .values(**values)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


async def withdraw(conn: AsyncConnection, row: Any, now: datetime) -> bool:
    """Mark the initiative withdrawn if it is still open; False when it changed meanwhile."""
    done = await conn.execute(
        update(initiatives)
        .where(initiatives.c.id == row.id, initiatives.c.status.in_(OPEN_STATUSES))
        .values(status="withdrawn", updated_at=now)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


async def release_fingerprints(conn: AsyncConnection, row: Any) -> None:
    await conn.execute(delete(fingerprints).where(fingerprints_of(row)))


async def claim_fingerprints_of(conn: AsyncConnection, row: Any, fingerprint: str, member_ids: Sequence[str]) -> bool:
    """Claim ``fingerprint`` for each author of ``row``; False when another initiative holds one of them."""
    claimed = (
        await conn.execute(
            insert_ignore(fingerprints, conn.dialect.name, ["campaign", "member_id", "fingerprint"]).returning(
                fingerprints.c.member_id
            ),
            [
                {"campaign": row.campaign, "member_id": mid, "fingerprint": fingerprint, "initiative_id": row.id}
                for mid in member_ids
            ],
        )
    ).all()
    return len(claimed) == len(member_ids)


async def replace_authors(conn: AsyncConnection, initiative_id: str, member_ids: Sequence[str]) -> None:
    await conn.execute(delete(initiative_authors).where(initiative_authors.c.initiative_id == initiative_id))
    await conn.execute(
        initiative_authors.insert(), [{"initiative_id": initiative_id, "member_id": mid} for mid in member_ids]
    )


async def add_events(conn: AsyncConnection, *events: Envelope) -> None:
    """Stage events in the outbox, in the caller's transaction (the relay publishes them after commit)."""
    await conn.execute(outbox.insert(), [outbox_row(e) for e in events])
