"""The one place where intake's refusals become HTTP errors (SPEC §8 shape)."""

from __future__ import annotations

from intake.domain.errors import Busy, Conflict, Invalid, NotAllowed, NotFound, TooLarge
from shared.errors import StatusTable, mapped_route

STATUS: StatusTable = {NotFound: 404, NotAllowed: 403, Conflict: 409, TooLarge: 413, Invalid: 422, Busy: 503}

# Intake's routers use this route class: a refusal its endpoint raises is answered with the status above.
IntakeRoute = mapped_route(STATUS)
