"""What the use cases take from the service context: intake's own parts, held by its runtime (``intake.runtime``)."""

from __future__ import annotations

from datetime import datetime

from intake.adapters.plan import PlanReader
from intake.adapters.writer import GroupCommitWriter
from intake.runtime import runtime_of
from intake.submission import IntakeMetrics
from shared.service import ServiceContext


def plan(ctx: ServiceContext) -> PlanReader:
    reader = runtime_of(ctx).plan
    assert reader is not None, "made when the service starts"
    return reader


def writer(ctx: ServiceContext) -> GroupCommitWriter:
    w = runtime_of(ctx).writer
    assert w is not None, "made when the service starts"
    return w


def metrics(ctx: ServiceContext) -> IntakeMetrics:
    m = runtime_of(ctx).metrics
    assert m is not None, "made when the service starts"
    return m


def clock(ctx: ServiceContext) -> datetime:
    return runtime_of(ctx).clock()
