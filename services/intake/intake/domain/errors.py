"""Intake's refusals: what its rules and use cases raise when a request cannot be done.

Each carries a stable ``code``, the user's message in Vietnamese and optional ``details`` (SPEC §9),
and no HTTP status: ``intake.api.errors`` is the one place that maps each kind to one.
"""

from __future__ import annotations

from typing import Any


class Refusal(Exception):
    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class NotFound(Refusal):
    """Nothing the caller may see by that id (what exists outside their scope is not revealed)."""


class NotAllowed(Refusal):
    """The caller's roles or unit do not allow it."""


class Invalid(Refusal):
    """The input breaks a rule (``details`` name the fields)."""


class Conflict(Refusal):
    """The initiative's state forbids it now: a duplicate, a decision already made, a concurrent change."""


class TooLarge(Refusal):
    """More than the service accepts in one request."""


class Busy(Refusal):
    """The service cannot take it now; the same request may be sent again shortly."""


def invalid(details: Any, message: str = "Dữ liệu không hợp lệ") -> Invalid:
    return Invalid("validation_error", message, details)


def reason_of(exc: Refusal) -> str:
    """The label of a refusal in the ``refused`` metric: the first invalid field, or the refusal's code."""
    if exc.code == "validation_error" and isinstance(exc.details, list) and exc.details:
        return f"invalid_{str(exc.details[0].get('field', 'body')).split('.')[0]}"
    return exc.code
