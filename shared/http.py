"""HTTP plumbing: the SPEC §8 error shape, correlation ids, and per-route metrics."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
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
    "int_parsing": "Phải là số nguyên",
    "int_type": "Phải là số nguyên",
    "int_from_float": "Phải là số nguyên",
    "date_from_datetime_parsing": "Ngày không hợp lệ (YYYY-MM-DD)",
    "date_parsing": "Ngày không hợp lệ (YYYY-MM-DD)",
    "date_type": "Ngày không hợp lệ (YYYY-MM-DD)",
    "extra_forbidden": "Trường không được phép",
    "literal_error": "Giá trị không được chấp nhận",
    "enum": "Giá trị không được chấp nhận",
    "json_invalid": "JSON không hợp lệ",
    "bool_parsing": "Phải là true hoặc false",
    "bool_type": "Phải là true hoặc false",
    "string_type": "Phải là chuỗi ký tự",
    "list_type": "Phải là danh sách",
    "model_type": "Phải là một đối tượng",
    "dict_type": "Phải là một đối tượng",
    "uuid_parsing": "Mã định danh không hợp lệ",
    "string_pattern_mismatch": "Chứa ký tự không được phép",
    # Strict models (awards') name the expected type.
    "int_from_float": "Phải là số nguyên",
    "float_type": "Phải là số",
    "float_parsing": "Phải là số",
    "bool_type": "Phải là true hoặc false",
    "date_type": "Ngày không hợp lệ (YYYY-MM-DD)",
    "string_type": "Phải là chuỗi ký tự",
    "list_type": "Phải là danh sách",
    "dict_type": "Phải là một đối tượng",
    "model_type": "Phải là một đối tượng",
    "model_attributes_type": "Phải là một đối tượng",
}
# What a message that says what to do calls a field ("Vui lòng nhập tiêu đề"); others get a general wording.
_FIELD_NAMES = {
    "title": "tiêu đề",
    "problem": "thực trạng",
    "solution": "giải pháp",
    "effect": "hiệu quả",
    "expected_benefit_vnd": "giá trị làm lợi",
    "verified_benefit_vnd": "giá trị làm lợi",
    "applied_on": "ngày áp dụng",
    "unit_code": "mã đơn vị",
    "field": "lĩnh vực",
    "campaign": "đợt phát động",
    "member_id": "mã đoàn viên",
    "full_name": "họ tên",
    "authors": "tác giả",
    "name": "tên",
    "code": "mã",
    "reason": "lý do",
    "note": "ghi chú",
}


def _number(bound: Any) -> str:
    return f"{bound:,}".replace(",", ".") if isinstance(bound, int) else str(bound)


def validation_message(err: Mapping[str, Any]) -> str:
    """One pydantic error as a Vietnamese message that says what to do: "Vui lòng nhập giải pháp",
    "Tiêu đề cần ít nhất 5 ký tự", "Giá trị làm lợi không được âm"."""
    etype = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    if etype == "value_error":
        return str(ctx.get("error") or err.get("msg"))
    field = next((str(p) for p in reversed(tuple(err.get("loc", ()))) if isinstance(p, str)), "")
    name = _FIELD_NAMES.get(field)
    subject = name[0].upper() + name[1:] if name else "Giá trị"
    bound = next((ctx[k] for k in ("min_length", "max_length", "ge", "le", "gt", "lt") if ctx.get(k) is not None), None)
    given = err.get("input")
    empty = given is None or given == [] or (isinstance(given, str) and not given.strip())
    if etype == "missing" or (etype in ("string_too_short", "too_short") and (empty or bound == 1)):
        return f"Vui lòng nhập {name}" if name else "Vui lòng nhập giá trị này"
    worded = {
        "string_too_short": f"{subject} cần ít nhất {_number(bound)} ký tự",
        "string_too_long": f"{subject} tối đa {_number(bound)} ký tự",
        "too_short": f"{subject} cần ít nhất {_number(bound)} mục",
        "too_long": f"{subject} tối đa {_number(bound)} mục",
        "greater_than_equal": f"{subject} cần từ {_number(bound)} trở lên" if bound else f"{subject} không được âm",
        "greater_than": f"{subject} phải lớn hơn {_number(bound)}",
        "less_than_equal": f"{subject} tối đa {_number(bound)}",
        "less_than": f"{subject} phải nhỏ hơn {_number(bound)}",
    }
    if etype in worded and bound is not None:
        return worded[etype]
    return _VI_VALIDATION.get(etype) or str(err.get("msg"))


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def api_error_response(exc: ApiError) -> JsonResponse:
    return JsonResponse(error_body(exc.code, exc.message, exc.details), exc.status, headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JsonResponse:
        return api_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JsonResponse:
        details = []
        for err in exc.errors():
            details.append({"field": _field_name(tuple(err.get("loc", ()))), "message": validation_message(err)})
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
