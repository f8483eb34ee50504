"""What intake's rules and use cases refuse, in six kinds (``intake.api.errors`` gives each its HTTP status).

A refusal names its own code (several codes share a kind: ``forbidden``, ``out_of_scope`` and
``not_an_author`` are all NotAllowed), its message for the user in Vietnamese and the fields at fault.
"""

from __future__ import annotations

from typing import Any

from shared.errors import CodedRefusal


class IntakeError(CodedRefusal):
    pass


class NotFound(IntakeError):
    """Nothing the caller may see by that id (what exists outside their scope is not revealed)."""


class NotAllowed(IntakeError):
    """The caller's roles or unit do not allow it."""


class Conflict(IntakeError):
    """The initiative's state forbids it now: a duplicate, a decision already made, a concurrent change."""


class TooLarge(IntakeError):
    """More than intake accepts in one request."""


class Invalid(IntakeError):
    """The input breaks a rule (``details`` name the fields)."""


class Busy(IntakeError):
    """Intake cannot take it now; the same request may be sent again shortly."""

    headers = {"Retry-After": "2"}


# What the use cases catch: any of the kinds above.
Refusal = IntakeError


def invalid(details: Any, message: str = "Dữ liệu không hợp lệ") -> Invalid:
    return Invalid("validation_error", message, details)


def reason_of(exc: IntakeError) -> str:
    """The label of a refusal in the ``refused`` metric: the first invalid field, or the refusal's code."""
    if exc.code == "validation_error" and isinstance(exc.details, list) and exc.details:
        return f"invalid_{str(exc.details[0].get('field', 'body')).split('.')[0]}"
    return exc.code
