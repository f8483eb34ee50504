"""The one place where review's refusals become HTTP errors (SPEC §8 shape)."""

from __future__ import annotations

from review.domain.errors import Invalid, NotAllowed, NotFound, WrongState
from shared.errors import StatusTable, mapped_route

STATUS: StatusTable = {NotFound: 404, NotAllowed: 403, WrongState: 409, Invalid: 422}

# Review's routers use this route class: a refusal its endpoint raises is answered with the status above.
ReviewRoute = mapped_route(STATUS)
