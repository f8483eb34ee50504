"""What one running intake service holds besides its connections: the plan replica's reader, the
group-commit writer, the batch slots, the import worker's wake-up, its clock and its metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from intake.adapters.plan import PlanReader
from intake.adapters.writer import GroupCommitWriter
from intake.domain.events import submitted_event
from intake.settings import IntakeSettings
from intake.submission import IntakeMetrics
from shared.metrics import ServiceMetrics
from shared.service import ServiceContext

BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def intake_metrics(m: ServiceMetrics) -> IntakeMetrics:
    return IntakeMetrics(
        accepted=m.counter("sangkien_intake_initiatives_accepted_total", "Initiatives accepted", ["via"]),
        refused=m.counter("sangkien_intake_initiatives_refused_total", "Submissions refused", ["reason"]),
        batch_sizes=m.histogram("sangkien_intake_batch_size_items", "Items per write", ["kind"], buckets=BATCH_BUCKETS),
        import_rows=m.counter("sangkien_intake_import_rows_total", "Imported rows processed", ["outcome"]),
        idempotent_replays=m.counter("sangkien_intake_idempotent_replays_total", "Idempotent replays", ["endpoint"]),
    )


@dataclass
class IntakeRuntime:
    settings: IntakeSettings
    # What "now" is (IntakeSettings.fixed_now pins it; tests move it).
    clock: Callable[[], datetime] = field(init=False)
    # The rest is made in ``start``, for each lifespan (its event loop, engine and registry).
    # The batch endpoint's writers (IntakeSettings.batch_writers), taken before any connection.
    batch_slots: asyncio.Semaphore = field(init=False)
    # Set when an import job is queued: the import worker starts on it at once.
    import_wake: asyncio.Event = field(init=False)
    plan: PlanReader | None = None
    writer: GroupCommitWriter | None = None
    metrics: IntakeMetrics | None = None

    def __post_init__(self) -> None:
        fixed = self.settings.fixed_now
        self.clock = (lambda: fixed) if fixed is not None else (lambda: datetime.now(UTC))

    async def start(self, ctx: ServiceContext) -> None:
        s = self.settings
        self.batch_slots = asyncio.Semaphore(s.batch_writers)
        self.import_wake = asyncio.Event()
        self.metrics = intake_metrics(ctx.metrics)
        self.plan = PlanReader(ctx.engine, s.plan_cache_ttl_s)
        self.writer = GroupCommitWriter(
            ctx.engine,
            submitted_event(ctx.name),
            window_s=s.group_commit_window_ms / 1000,
            max_items=s.group_commit_max,
            writers=s.group_commit_writers,
            on_commit=throttled(ctx.relay.wake, s.relay_wake_interval_ms / 1000),
            batch_sizes=self.metrics.batch_sizes.labels("group_commit"),
        )

    async def group_commit(self, ctx: ServiceContext) -> None:
        """The worker writing what the hot routes queued, a group per transaction."""
        assert self.writer is not None, "started first"
        await self.writer.run()

    def plan_reader(self) -> PlanReader | None:
        """The plan reader while the service runs (the plan handlers drop what their events change)."""
        return self.plan


def runtime_of(ctx: ServiceContext) -> IntakeRuntime:
    return ctx.runtime_as(IntakeRuntime)


def throttled(wake: Callable[[], None], interval_s: float) -> Callable[[], None]:
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
