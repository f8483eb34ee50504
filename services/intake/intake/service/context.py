"""What the use cases take from the service context: intake's own parts, made in ``intake.app.start``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from intake.adapters.plan import PlanReader
from intake.adapters.writer import GroupCommitWriter
from intake.submission import IntakeMetrics
from shared.service import ServiceContext


def plan(ctx: ServiceContext) -> PlanReader:
    reader: PlanReader = ctx.extras["plan"]
    return reader


def writer(ctx: ServiceContext) -> GroupCommitWriter:
    w: GroupCommitWriter = ctx.extras["writer"]
    return w


def metrics(ctx: ServiceContext) -> IntakeMetrics:
    m: IntakeMetrics = ctx.extras["metrics"]
    return m


def clock(ctx: ServiceContext) -> datetime:
    now: Callable[[], datetime] = ctx.extras["clock"]
    return now()
