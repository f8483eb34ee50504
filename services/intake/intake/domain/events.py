"""The payloads intake emits (docs/events.md): initiative.submitted/revised/withdrawn.v1."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

SUBMITTED = "initiative.submitted"
REVISED = "initiative.revised"
WITHDRAWN = "initiative.withdrawn"

PAYLOAD_FIELDS = (
    "id",
    "seq",
    "campaign",
    "phase",
    "unit_code",
    "field",
    "title",
    "problem",
    "solution",
    "effect",
    "expected_benefit_vnd",
    "applied_on",
    "confidential",
    "authors",
    "entered_by",
    "submitted_at",
    "revision",
)


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        # SQLite hands back naive UTC instants.
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    return value.isoformat() if isinstance(value, date) else value


# The only fields of PAYLOAD_FIELDS that hold a date or an instant.
_TEMPORAL_FIELDS = ("applied_on", "submitted_at")


def initiative_payload(record: dict[str, Any]) -> dict[str, Any]:
    """The whole initiative, as submitted and revised events carry it."""
    payload = {k: record[k] for k in PAYLOAD_FIELDS}
    for k in _TEMPORAL_FIELDS:
        payload[k] = _iso(payload[k])
    return payload


def withdrawn_payload(record: dict[str, Any], withdrawn_at: datetime) -> dict[str, Any]:
    return {
        "id": record["id"],
        "campaign": record["campaign"],
        "phase": record["phase"],
        "unit_code": record["unit_code"],
        "authors": record["authors"],
        "withdrawn_at": withdrawn_at.isoformat(),
    }
