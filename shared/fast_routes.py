"""Pre-routing bypass: a service's hottest routes served by their own FastAPI endpoint, called without
FastAPI's routing, dependency resolution and request objects.

Measured with ``bench/intake.py`` (POST /api/v1/initiatives, 64 clients, intake's CPU per answered
request; docs/benchmarks.md "Intake: tricks re-measured", 29 Nov 2026): on a quiet machine 188 µs with the
bypass and 338 µs without it (ratio to a bare FastAPI endpoint 0.68 against 0.41); 160-243 µs against
379-552 µs in the runs under load. It stays while that difference does. Review's claim and batch decision
(``bench/review.py --only-api --batch-only --items 30000``, alternated with the code before, 30 Nov 2026): review's
CPU per decision 176-217 µs with the bypass against 221-252 µs without it.

A route is written once, as a FastAPI route. Listing its endpoint in ``ServiceDefinition.fast_routes`` has
it answered here when the request is the plain case: a verified bearer token, a JSON body valid for the
endpoint's body model, headers valid for their declarations. Anything else goes on, its body replayed, to
the regular stack, which answers as it always does (401, 422...). What the endpoint raises is answered as
in the regular stack: a refusal by its route class's table (``shared.errors.mapped_route``), anything else
by the app's exception handlers.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from fastapi import APIRouter, FastAPI, params
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import AuthError
from shared.errors import DomainError, StatusTable, to_api_error
from shared.http import ObservabilityMiddleware, api_error_response, unexpected_error_response
from shared.metrics import ServiceMetrics

Endpoint = Callable[..., Awaitable[Response]]
# The largest body read here; a larger one goes on to the regular stack. The gateway's own limit (its
# ``max_body_bytes``, 8 MiB by default): a batch of 1,000 initiatives is ~1.3 MB, and at the 1 MiB this was before,
# every batch of the pipeline bench went through FastAPI's stack (a third of intake's samples).
MAX_BODY = 8 << 20


@dataclass
class _Call:
    """How to call one endpoint from the raw request: which parameter gets what."""

    endpoint: Endpoint
    # The statuses of the refusals the endpoint raises (its route class's, ``shared.errors.mapped_route``).
    statuses: StatusTable | None = None
    context: str | None = None
    principal: str | None = None
    body: tuple[str, type[BaseModel]] | None = None
    headers: list[tuple[str, bytes, TypeAdapter[Any], Any]] = field(default_factory=list)

    @classmethod
    def of(cls, route: APIRoute) -> _Call:
        """Read the endpoint's signature; only the kinds of parameter handled here are allowed."""
        from shared.service import get_context, get_principal  # the service module imports this one

        endpoint = route.endpoint
        call = cls(endpoint, getattr(type(route), "refusal_statuses", None))
        hints = get_type_hints(endpoint, include_extras=True)
        for name, param in inspect.signature(endpoint).parameters.items():
            hint = hints[name]
            meta = get_args(hint)[1:] if get_origin(hint) is Annotated else ()
            depends = next((m.dependency for m in meta if isinstance(m, params.Depends)), None)
            header = next((m for m in meta if isinstance(m, params.Header)), None)
            if depends is get_context:
                call.context = name
            elif depends is get_principal:
                call.principal = name
            elif header is not None:
                alias = (header.alias or name.replace("_", "-")).lower().encode("latin-1")
                call.headers.append((name, alias, TypeAdapter(hint), param.default))
            elif inspect.isclass(hint) and issubclass(hint, BaseModel) and call.body is None:
                call.body = (name, hint)
            else:
                raise TypeError(f"{endpoint.__name__}: parameter {name!r} cannot be served by FastRoutes")
        return call

    async def __call__(self, app: FastAPI, headers: dict[bytes, bytes], body: bytes) -> Response | None:
        """The endpoint's response, or None when the regular stack should answer."""
        kwargs: dict[str, Any] = {}
        content_type = headers.get(b"content-type")
        if content_type is not None and b"json" not in content_type:
            return None
        for name, alias, adapter, default in self.headers:
            raw = headers.get(alias)
            try:
                kwargs[name] = default if raw is None else adapter.validate_python(raw.decode("latin-1"))
            except ValidationError:
                return None
        ctx = app.state.ctx
        if self.context is not None:
            kwargs[self.context] = ctx
        if self.principal is not None:
            scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None
            try:
                kwargs[self.principal] = await ctx.verifier.verify(token.strip())
            except AuthError:
                return None
        if self.body is not None:
            name, model = self.body
            try:
                kwargs[name] = model.model_validate_json(body)
            except ValidationError:
                return None
        try:
            return await self.endpoint(**kwargs)
        except DomainError as exc:
            if self.statuses is None:
                raise
            return api_error_response(to_api_error(exc, self.statuses))


class FastRoutes:
    """Pure ASGI in front of FastAPI's stack: answer the listed (method, path) pairs from their endpoints."""

    def __init__(self, app: FastAPI, regular: ASGIApp, calls: dict[tuple[str, str], _Call]) -> None:
        self.app = app
        self.regular = regular
        self.calls = calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = self.calls[(scope["method"], scope["path"])]
        headers: dict[bytes, bytes] = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            await self.regular(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
            if size > MAX_BODY:
                break
        body = b"".join(chunks)
        if not more:
            scope["route"] = _RouteLabel(scope["path"])
            try:
                response = await call(self.app, headers, body)
            except Exception as exc:
                response = await self._answer(scope, exc)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.regular(scope, _replay(body, more, receive), send)

    async def _answer(self, scope: Scope, exc: Exception) -> Response:
        """What the app's exception handler for ``exc`` answers (outside Starlette's error middleware)."""
        handler = next(
            (self.app.exception_handlers[k] for k in type(exc).__mro__ if k in self.app.exception_handlers), None
        )
        if handler is None:
            return unexpected_error_response(exc)
        answer = handler(Request(scope), exc)
        return await answer if inspect.isawaitable(answer) else answer  # type: ignore[no-any-return]


class ServiceApp(FastAPI):
    """FastAPI, with the service's fast routes answered before Starlette's middleware stack.

    A fast route goes through ObservabilityMiddleware and FastRoutes only; what FastRoutes declines continues
    into the whole regular stack, which then does not count the request a second time."""

    _fast: ASGIApp | None = None
    _fast_keys: frozenset[tuple[str, str]] = frozenset()

    def serve_fast(self, routers: Sequence[APIRouter], endpoints: Sequence[Endpoint], metrics: ServiceMetrics) -> None:
        """Serve these endpoints' routes (of ``routers``, included as they are; each of one method on a fixed
        path) fast."""
        calls: dict[tuple[str, str], _Call] = {}
        routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
        for endpoint in endpoints:
            route = next((r for r in routes if r.endpoint is endpoint), None)
            if route is None:
                raise TypeError(f"{endpoint.__name__}: not a route of the service's routers")
            if "{" in route.path or len(route.methods) != 1:
                raise TypeError(f"{endpoint.__name__}: FastRoutes serves one method on a fixed path")
            calls[(next(iter(route.methods)), route.path)] = _Call.of(route)
        self._fast = ObservabilityMiddleware(FastRoutes(self, self._regular, calls), metrics)
        self._fast_keys = frozenset(calls)

    async def _regular(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[ObservabilityMiddleware.OBSERVED] = True
        await super().__call__(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._fast is not None and scope["type"] == "http" and (scope["method"], scope["path"]) in self._fast_keys:
            scope["app"] = self
            await self._fast(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


@dataclass(frozen=True, slots=True)
class _RouteLabel:
    """What ObservabilityMiddleware reads of ``scope["route"]``: the template (a fast route's path is one)."""

    path: str


def _replay(body: bytes, more: bool, receive: Receive) -> Receive:
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": more}]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay
