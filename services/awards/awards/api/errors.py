"""The one place where awards' refusals become HTTP errors (SPEC §8 shape)."""

from __future__ import annotations

from awards.domain.errors import Invalid, NotFound, SnapshotForbidden, TallyUnavailable, WrongState
from shared.errors import StatusTable, mapped_route

STATUS: StatusTable = {NotFound: 404, SnapshotForbidden: 403, WrongState: 409, Invalid: 422, TallyUnavailable: 502}

# Awards' routers use this route class: a refusal its endpoint raises is answered with the status above.
AwardsRoute = mapped_route(STATUS)
