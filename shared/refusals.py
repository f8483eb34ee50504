"""The kinds of refusal a service's rules and use cases raise when a request cannot be done.

Each carries a stable ``code``, the user's message in Vietnamese and optional ``details`` (SPEC §9),
and no HTTP status: ``shared.http`` is the one place that answers each kind with one (404, 403, 409,
413, 422, 503), for every service. A service's ``domain/errors.py`` says which it raises.
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
    """Nothing the caller may see by that id or code (what exists outside their scope is not revealed)."""


class NotAllowed(Refusal):
    """The caller's roles or unit do not allow it."""


class Conflict(Refusal):
    """The state of the thing forbids it now: a duplicate, a decision already made, a concurrent change."""


class TooLarge(Refusal):
    """More than the service accepts in one request."""


class Invalid(Refusal):
    """The input breaks a rule (``details`` name the fields)."""


class Busy(Refusal):
    """The service cannot take it now; the same request may be sent again shortly."""
