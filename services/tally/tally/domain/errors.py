"""What tally's rules and use cases refuse, in four kinds (``tally.api.errors`` gives each its HTTP status)."""

from __future__ import annotations

from typing import Any

from shared.errors import CodedRefusal


class TallyError(CodedRefusal):
    pass


class NotFound(TallyError):
    """No unit, campaign or snapshot by that code or id (for the callers allowed to know)."""


class NotAllowed(TallyError):
    """Outside the caller's subtree, or a quota only the level above may set."""


class TooLarge(TallyError):
    """More units or quotas than one request may carry."""


class Invalid(TallyError):
    """The input breaks a rule of the plan (``details`` name the rows and fields)."""


def invalid(message: str, details: Any) -> Invalid:
    return Invalid("validation_error", message, details)
