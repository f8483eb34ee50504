"""Tally's refusals (``shared.refusals``, answered over HTTP by ``shared.http``): the kinds its rules and
use cases raise."""

from __future__ import annotations

from typing import Any

from shared.refusals import Invalid, NotAllowed, NotFound, Refusal, TooLarge

__all__ = ["Invalid", "NotAllowed", "NotFound", "Refusal", "TooLarge", "invalid"]


def invalid(message: str, details: Any) -> Invalid:
    return Invalid("validation_error", message, details)
