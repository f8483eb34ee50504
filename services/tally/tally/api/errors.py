"""The one place where tally's refusals (``tally.domain.errors``) become HTTP answers (SPEC §9 shape)."""

from __future__ import annotations

from fastapi import FastAPI, Request

from shared.http import ApiError, JsonResponse, api_error_response
from tally.domain.errors import Invalid, NotAllowed, NotFound, Refusal, TooLarge

STATUS: dict[type[Refusal], int] = {NotFound: 404, NotAllowed: 403, TooLarge: 413, Invalid: 422}


def api_error(exc: Refusal) -> ApiError:
    status = next(STATUS[kind] for kind in type(exc).__mro__ if kind in STATUS)
    return ApiError(status, exc.code, exc.message, exc.details)


def install(app: FastAPI) -> None:
    async def answer(_request: Request, exc: Exception) -> JsonResponse:
        assert isinstance(exc, Refusal)
        return api_error_response(api_error(exc))

    app.add_exception_handler(Refusal, answer)
