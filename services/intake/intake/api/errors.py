"""The one place where intake's refusals (``intake.domain.errors``) become HTTP answers (SPEC §9 shape)."""

from __future__ import annotations

from fastapi import FastAPI, Request

from intake.domain.errors import Busy, Conflict, Invalid, NotAllowed, NotFound, Refusal, TooLarge
from shared.http import ApiError, JsonResponse, api_error_response

STATUS: dict[type[Refusal], int] = {
    NotFound: 404,
    NotAllowed: 403,
    Conflict: 409,
    TooLarge: 413,
    Invalid: 422,
    Busy: 503,
}


def api_error(exc: Refusal) -> ApiError:
    headers = {"Retry-After": "2"} if isinstance(exc, Busy) else None
    status = next(STATUS[kind] for kind in type(exc).__mro__ if kind in STATUS)
    return ApiError(status, exc.code, exc.message, exc.details, headers)


def install(app: FastAPI) -> None:
    async def answer(_request: Request, exc: Exception) -> JsonResponse:
        assert isinstance(exc, Refusal)
        return api_error_response(api_error(exc))

    app.add_exception_handler(Refusal, answer)
