"""Intake's refusals (``shared.refusals``, answered over HTTP by ``shared.http``): the kinds its rules and
use cases raise, and the label of each in the ``refused`` metric."""

from __future__ import annotations

from typing import Any

from shared.refusals import Busy, Conflict, Invalid, NotAllowed, NotFound, Refusal, TooLarge

__all__ = ["Busy", "Conflict", "Invalid", "NotAllowed", "NotFound", "Refusal", "TooLarge", "invalid", "reason_of"]


def invalid(details: Any, message: str = "Dữ liệu không hợp lệ") -> Invalid:
    return Invalid("validation_error", message, details)


def reason_of(exc: Refusal) -> str:
    """The label of a refusal in the ``refused`` metric: the first invalid field, or the refusal's code."""
    if exc.code == "validation_error" and isinstance(exc.details, list) and exc.details:
        return f"invalid_{str(exc.details[0].get('field', 'body')).split('.')[0]}"
    return exc.code
