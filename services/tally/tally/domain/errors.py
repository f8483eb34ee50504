"""Tally's refusals: what its rules and use cases raise when a request cannot be done.

Each carries a stable ``code``, the user's message in Vietnamese and optional ``details`` (SPEC §9),
and no HTTP status: ``tally.api.errors`` is the one place that maps each kind to one.
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
    """No unit, campaign or snapshot by that code or id (for the callers allowed to know)."""


class NotAllowed(Refusal):
    """Outside the caller's subtree, or a quota only the level above may set."""


class Invalid(Refusal):
    """The input breaks a rule of the plan (``details`` name the rows and fields)."""


class TooLarge(Refusal):
    """More units or quotas than one request may carry."""


def invalid(message: str, details: Any) -> Invalid:
    return Invalid("validation_error", message, details)
