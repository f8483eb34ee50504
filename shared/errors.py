"""Refusals of a use case, without HTTP, and the one route class that answers them as SPEC §8 errors.

A service's use cases raise subclasses of ``DomainError`` (a code in English, a message for the user in
Vietnamese, the fields at fault). The service's ``api/errors.py`` says, in one table, which HTTP status
each kind of refusal gets, and its routers use the route class made from that table.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any, ClassVar

from fastapi import Request, Response
from fastapi.routing import APIRoute

from shared.http import ApiError, api_error_response


class DomainError(Exception):
    """A use case refused. ``details`` names the fields at fault: ``[{"field", "message"}]``."""

    code: ClassVar[str] = "refused"
    message: str = "Yêu cầu bị từ chối"
    # Headers the answer carries (a refusal to retry later names when: Retry-After).
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, message: str | None = None, details: list[dict[str, str]] | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)
        self.details = details


class CodedRefusal(DomainError):
    """A refusal whose code is given where it is raised: several codes share one kind, and one status."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message, details)
        self.code = code  # type: ignore[misc]


StatusTable = Mapping[type[DomainError], int]


def to_api_error(exc: DomainError, statuses: StatusTable) -> ApiError:
    """The HTTP error of a refusal: the status of its nearest class in ``statuses`` (409 when none is listed)."""
    status = next((statuses[k] for k in type(exc).__mro__ if k in statuses), 409)
    return ApiError(status, exc.code, exc.message, exc.details, exc.headers)


def mapped_route(statuses: StatusTable) -> type[APIRoute]:
    """A route class answering the ``DomainError`` its endpoint raises with the status ``statuses`` gives."""

    class MappedRoute(APIRoute):
        # Read by shared.fast_routes, which calls the endpoint without this class's handler.
        refusal_statuses: ClassVar[StatusTable] = statuses

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def answer(request: Request) -> Response:
                try:
                    return await handler(request)
                except DomainError as exc:
                    return api_error_response(to_api_error(exc, statuses))

            return answer

    return MappedRoute
