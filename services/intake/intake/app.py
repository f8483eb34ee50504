"""The intake service: POST/GET/PATCH initiatives, batch, imports; replicas of the plan; review status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI

from intake.adapters.imports import import_worker
from intake.adapters.orm import metadata
from intake.adapters.plan import PlanReader
from intake.adapters.writer import GroupCommitWriter
from intake.api.routes import imports, initiatives
from intake.domain.events import submitted_event
from intake.handlers import AFTER_BATCH, make_subscriptions
from intake.settings import IntakeSettings
from intake.submission import IntakeMetrics
from shared.bus.base import EventBus
from shared.bus.memory import InMemoryBroker
from shared.service import ServiceContext, ServiceDefinition, create_app

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def _metrics(ctx: ServiceContext) -> IntakeMetrics:
    # One registry per app; a second lifespan of the same app reuses what the first registered.
    existing: IntakeMetrics | None = getattr(ctx.metrics, "intake", None)
    if existing is not None:
        return existing
    m = ctx.metrics
    made = IntakeMetrics(
        accepted=m.counter("intake_initiatives_accepted_total", "Initiatives accepted", ["via"]),
        refused=m.counter("intake_initiatives_refused_total", "Submissions refused", ["reason"]),
        batch_sizes=m.histogram("intake_batch_size", "Items per write", ["kind"], buckets=BATCH_BUCKETS),
        import_rows=m.counter("intake_import_rows_total", "Imported rows processed", ["outcome"]),
        idempotent_replays=m.counter("intake_idempotent_replays_total", "Idempotent replays", ["endpoint"]),
    )
    ctx.metrics.intake = made  # type: ignore[attr-defined]
    return made


def _throttled(wake: Callable[[], None], interval_s: float) -> Callable[[], None]:
    """Wake the outbox relay at most once per interval: under a rush it then publishes hundreds of
    events per cycle instead of one cycle (a transaction, a select, a delete) per group commit. Its
    own poll (OUTBOX_POLL_INTERVAL_S) picks up whatever a skipped wake left behind."""
    last = [0.0]

    def maybe_wake() -> None:
        now = time.monotonic()
        if now - last[0] >= interval_s:
            last[0] = now
            wake()

    return maybe_wake


async def start(ctx: ServiceContext) -> None:
    settings = ctx.settings
    assert isinstance(settings, IntakeSettings)
    m = _metrics(ctx)
    fixed = settings.fixed_now
    ctx.extras.setdefault("clock", (lambda: fixed) if fixed is not None else (lambda: datetime.now(UTC)))
    ctx.extras["metrics"] = m
    ctx.extras["plan"] = PlanReader(ctx.engine, settings.plan_cache_ttl_s)
    ctx.extras["import_wake"] = asyncio.Event()
    ctx.extras["batch_slots"] = asyncio.Semaphore(settings.batch_writers)
    ctx.extras["writer"] = GroupCommitWriter(
        ctx.engine,
        submitted_event(ctx.name),
        window_s=settings.group_commit_window_ms / 1000,
        max_items=settings.group_commit_max,
        writers=settings.group_commit_writers,
        on_commit=_throttled(ctx.relay.wake, settings.relay_wake_interval_ms / 1000),
        batch_sizes=m.batch_sizes.labels("group_commit"),
    )


async def group_commit(ctx: ServiceContext) -> None:
    writer: GroupCommitWriter = ctx.extras["writer"]
    await writer.run()


def definition(settings: IntakeSettings) -> ServiceDefinition:
    holder: dict[str, ServiceContext] = {}

    async def remember(ctx: ServiceContext) -> None:
        holder["ctx"] = ctx

    def plan() -> PlanReader | None:
        ctx = holder.get("ctx")
        return ctx.extras.get("plan") if ctx else None

    return ServiceDefinition(
        name="intake",
        metadata=metadata,
        migrations=MIGRATIONS,
        routers=[initiatives.router, imports.router],
        subscriptions=make_subscriptions(plan),
        after_batch=AFTER_BATCH,
        on_start=[remember, start],
        workers=[group_commit, import_worker],
        fast_routes=[initiatives.submit_initiative, initiatives.submit_batch],
        title="Sáng kiến — intake",
        description="Every way an initiative gets in: single, batch, import; idempotent and group-committed.",
    )


def create(
    settings: IntakeSettings | None = None,
    *,
    bus: EventBus | None = None,
    broker: InMemoryBroker | None = None,
    topology: Mapping[str, Sequence[str]] | None = None,
) -> FastAPI:
    settings = settings or IntakeSettings()
    return create_app(definition(settings), settings, bus=bus, broker=broker, topology=topology)
