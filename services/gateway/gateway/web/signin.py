"""Production sign-in: /auth/login sends the browser to the OIDC issuer, /auth/callback completes it.

Between the two, the login's ``state``, ``nonce`` and PKCE verifier live in a short-lived HttpOnly
cookie scoped to /auth. The callback refuses a ``state`` that is not the cookie's (CSRF), the ID
token must carry the cookie's ``nonce`` (replay), and the code is only redeemable with the verifier
(interception). The API token is then checked exactly as the services check it before the page
stores it (the same localStorage session the development sign-in uses).
"""

from __future__ import annotations

import base64
import html
import secrets

import orjson
from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.adapters.oidc import LoginRequest, OidcClient, OidcError, new_login
from gateway.web.i18n import pick
from gateway.web.pages import lang_of, layout, safe_next
from shared.auth import AuthError

router = APIRouter(include_in_schema=False)

COOKIE = "sk_oidc"
COOKIE_PATH = "/auth"
COOKIE_MAX_AGE_S = 600


def _client(request: Request) -> OidcClient | None:
    client: OidcClient | None = getattr(request.app.state, "oidc", None)
    return client


def _redirect_uri(request: Request) -> str:
    configured: str | None = request.app.state.settings.oidc_redirect_url
    return configured or str(request.url_for("oidc_callback"))


def _encode(login: LoginRequest) -> str:
    doc = {"s": login.state, "n": login.nonce, "v": login.verifier, "x": login.next}
    return base64.urlsafe_b64encode(orjson.dumps(doc)).decode("ascii")


def _decode(value: str | None) -> LoginRequest | None:
    if not value:
        return None
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(value.encode("ascii")))
        return LoginRequest(state=str(doc["s"]), nonce=str(doc["n"]), verifier=str(doc["v"]), next=str(doc["x"]))
    except (ValueError, KeyError, TypeError):
        return None


def _failure(request: Request, message_key: str, detail: str, status: int) -> HTMLResponse:
    t = pick(lang_of(request))
    body = (
        f'<p class="error" role="alert">{html.escape(t[message_key])}</p>'
        f"<p><small>{html.escape(detail)}</small></p>"
        f'<p><a href="/auth/login">{html.escape(t["signin_again"])}</a></p>'
    )
    resp = layout(request, "signin-failed", "signin_title", body)
    resp.status_code = status
    resp.delete_cookie(COOKIE, path=COOKIE_PATH)
    return resp


@router.get("/auth/login")
async def oidc_login(request: Request, next: str | None = None) -> Response:  # noqa: A002 - the query name
    client = _client(request)
    if client is None:
        return _failure(request, "signin_unavailable", "OIDC is not configured", 404)
    login = new_login(safe_next(next))
    try:
        url = await client.authorization_url(login, _redirect_uri(request))
    except OidcError as exc:
        return _failure(request, "signin_unavailable", str(exc), 503)
    resp = RedirectResponse(url, 303, headers={"Cache-Control": "no-store"})
    resp.set_cookie(
        COOKIE,
        _encode(login),
        max_age=COOKIE_MAX_AGE_S,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return resp


@router.get("/auth/callback", name="oidc_callback")
async def oidc_callback(
    request: Request, code: str | None = None, state: str | None = None, error: str | None = None
) -> Response:
    client = _client(request)
    if client is None:
        return _failure(request, "signin_unavailable", "OIDC is not configured", 404)
    if error:
        return _failure(request, "signin_refused", error[:200], 400)
    login = _decode(request.cookies.get(COOKIE))
    if login is None or not code or not state or not secrets.compare_digest(state, login.state):
        return _failure(request, "signin_expired", "state", 400)
    try:
        api_token, _claims = await client.complete(login, code, _redirect_uri(request))
        principal = await request.app.state.ctx.verifier.verify(api_token)
    except OidcError as exc:
        return _failure(request, "signin_failed", str(exc), 400)
    except AuthError as exc:
        return _failure(request, "signin_failed", f"the API does not accept the token: {exc.code}", 400)
    account = {
        "key": principal.sub,
        "roles": sorted(principal.roles),
        "unit": principal.unit,
        "name": principal.name,
        "member_id": principal.member_id,
    }
    result = (
        orjson.dumps({"token": api_token, "account": account, "next": safe_next(login.next)})
        .decode()
        .replace("</", "<\\/")
    )
    body = f'<script id="signin-result" type="application/json">{result}</script>'
    resp = layout(request, "signin", "signin_title", body)
    resp.delete_cookie(COOKIE, path=COOKIE_PATH)
    return resp
