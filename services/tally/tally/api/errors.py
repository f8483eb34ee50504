"""The one place where tally's refusals become HTTP errors (SPEC §8 shape)."""

from __future__ import annotations

from shared.errors import StatusTable, mapped_route
from tally.domain.errors import Invalid, NotAllowed, NotFound, TooLarge

STATUS: StatusTable = {NotFound: 404, NotAllowed: 403, TooLarge: 413, Invalid: 422}

# Tally's routers use this route class: a refusal its endpoint raises is answered with the status above.
TallyRoute = mapped_route(STATUS)
