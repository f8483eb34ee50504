"""HTTP plumbing: the SPEC §8 error shape, correlation ids, and per-route metrics."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.faults import is_infrastructure_error
from shared.logs import correlation_id_var
from shared.metrics import ServiceMetrics
from shared.refusals import Busy, Conflict, Invalid, NotAllowed, NotFound, Refusal, TooLarge

log = logging.getLogger("shared.http")

_DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}
_DEFAULT_MESSAGES = {
    400: "Yêu cầu không hợp lệ",
    401: "Cần đăng nhập",
    403: "Không có quyền thực hiện thao tác này",
    404: "Không tìm thấy",
    405: "Phương thức không được hỗ trợ",
    409: "Xung đột dữ liệu",
    413: "Dữ liệu gửi lên quá lớn",
    422: "Dữ liệu không hợp lệ",
    429: "Quá nhiều yêu cầu, vui lòng thử lại sau",
    503: "Dịch vụ tạm thời không sẵn sàng",
}


class JsonResponse(Response):
    """JSON via orjson (UTF-8, Vietnamese text unescaped)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    """Raise anywhere in a route to answer ``{"error": {"code", "message", "details"}}``."""

    def __init__(
        self,
        status: int,
        code: str | None = None,
        message: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or code)
        self.status = status
        self.code = code or _DEFAULT_CODES.get(status, "error")
        self.message = message or _DEFAULT_MESSAGES.get(status, "Lỗi")
        self.details = details
        self.headers = headers


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def field_error(field: str, message: str, code: str = "validation_error", status: int = 422) -> ApiError:
    return ApiError(status, code, message, [{"field": field, "message": message}])


_VI_VALIDATION = {
    "missing": "Thiếu trường bắt buộc",
    "string_too_short": "Quá ngắn",
    "string_too_long": "Quá dài",
    "greater_than_equal": "Giá trị quá nhỏ",
    "greater_than": "Giá trị quá nhỏ",
    "less_than": "Giá trị quá lớn",
    "less_than_equal": "Giá trị quá lớn",
    "int_parsing": "Phải là số nguyên",
    "int_type": "Phải là số nguyên",
    "date_from_datetime_parsing": "Ngày không hợp lệ (YYYY-MM-DD)",
    "date_parsing": "Ngày không hợp lệ (YYYY-MM-DD)",
    "extra_forbidden": "Trường không được phép",
    "too_short": "Quá ít phần tử",
    "too_long": "Quá nhiều phần tử",
    "literal_error": "Giá trị không được chấp nhận",
    "enum": "Giá trị không được chấp nhận",
    "json_invalid": "JSON không hợp lệ",
    "bool_parsing": "Phải là true hoặc false",
    "uuid_parsing": "Mã định danh không hợp lệ",
    "string_pattern_mismatch": "Chứa ký tự không được phép",
}


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def api_error_response(exc: ApiError) -> JsonResponse:
    return JsonResponse(error_body(exc.code, exc.message, exc.details), exc.status, headers=exc.headers)


# The one place where a refusal of a service's rules (shared.refusals) gets its HTTP status.
REFUSAL_STATUS: dict[type[Refusal], int] = {
    NotFound: 404,
    NotAllowed: 403,
    Conflict: 409,
    TooLarge: 413,
    Invalid: 422,
    Busy: 503,
}


def refusal_error(exc: Refusal) -> ApiError:
    status = next(REFUSAL_STATUS[kind] for kind in type(exc).__mro__ if kind in REFUSAL_STATUS)
    headers = {"Retry-After": "2"} if isinstance(exc, Busy) else None
    return ApiError(status, exc.code, exc.message, exc.details, headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JsonResponse:
        return api_error_response(exc)

    @app.exception_handler(Refusal)
    async def _refusal(_request: Request, exc: Refusal) -> JsonResponse:
        return api_error_response(refusal_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JsonResponse:
        details = []
        for err in exc.errors():
            etype = str(err.get("type", ""))
            msg = _VI_VALIDATION.get(etype)
            ctx = err.get("ctx") or {}
            if msg and ctx:
                bound = next(
                    (ctx[k] for k in ("min_length", "max_length", "ge", "le", "gt", "lt") if ctx.get(k) is not None),
                    None,
                )
                if bound is not None:
                    msg = f"{msg} ({bound})"
            if etype == "value_error":
                msg = str(ctx.get("error") or err.get("msg"))
            details.append({"field": _field_name(tuple(err.get("loc", ()))), "message": msg or str(err.get("msg"))})
        return JsonResponse(error_body("validation_error", "Dữ liệu không hợp lệ", details), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JsonResponse:
        code = _DEFAULT_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) and exc.status_code not in _DEFAULT_MESSAGES else None
        message = detail or _DEFAULT_MESSAGES.get(exc.status_code, "Lỗi")
        return JsonResponse(error_body(code, message), exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JsonResponse:
        return unexpected_error_response(exc)

    # The errors a database or network fault raises are answered here, before Starlette's last-resort
    # handler (which answers and then raises again): a 503 of an outage is an answer, not a crash.
    for fault in (SQLAlchemyError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        app.add_exception_handler(fault, _unexpected)  # type: ignore[arg-type]


def unexpected_error_response(exc: Exception) -> JsonResponse:
    """500 for a bug; 503 with Retry-After when the database or the network is at fault (it will pass)."""
    if is_infrastructure_error(exc):
        log.warning("infrastructure unavailable", extra={"error": repr(exc)})
        return JsonResponse(error_body("unavailable", _DEFAULT_MESSAGES[503]), 503, headers={"Retry-After": "2"})
    log.exception("unhandled error", exc_info=exc)
    return JsonResponse(error_body("internal_error", "Lỗi hệ thống, vui lòng thử lại"), 500)


class ObservabilityMiddleware:
    """Pure ASGI: take or make X-Correlation-ID, echo it, and time each request per route template."""

    # Set by an outer ObservabilityMiddleware (shared.service.ServiceApp's fast routes) that already
    # counts and times the request.
    OBSERVED = "sangkien.observed"

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get(self.OBSERVED):
            await self.app(scope, receive, send)
            return
        corr = None
        for name, value in scope.get("headers", []):
            if name == b"x-correlation-id":
                corr = value.decode("latin-1")[:100]
                break
        corr = corr or uuid.uuid4().hex
        token = correlation_id_var.set(corr)
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-correlation-id", corr.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            elapsed = time.perf_counter() - start
            self.metrics.http_requests.labels(self.metrics.service, method, template, str(status)).inc()
            self.metrics.http_latency.labels(self.metrics.service, method, template).observe(elapsed)
            correlation_id_var.reset(token)
