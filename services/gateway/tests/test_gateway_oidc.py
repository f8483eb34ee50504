"""Production sign-in against a small OIDC provider served over real HTTP (RS256 keys from its JWKS)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse
from gateway.app import create
from gateway.settings import GatewaySettings
from gateway.web.pages import safe_next
from gateway.web.signin import COOKIE

from shared.auth import mint_token

CLIENT_ID = "sangkien-portal"
CLIENT_SECRET = "portal-secret-" + "x" * 24
API_AUDIENCE = "sangkien-api"


@dataclass
class Provider:
    """An OIDC provider that signs in ``user`` at once (no login form), PKCE S256 required."""

    issuer: str = ""
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    kid: str = "k1"
    user: dict[str, Any] = field(
        default_factory=lambda: {
            "sub": "M-0001",
            "name": "Nguyễn Văn An",
            "roles": ["member"],
            "unit": "HN-BD-001",
            "member_id": "M-0001",
        }
    )
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_calls: int = 0

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        async def metadata() -> dict[str, Any]:
            return {
                "issuer": self.issuer,
                "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token",
                "jwks_uri": self.issuer + "/jwks",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }

        @app.get("/jwks")
        async def jwks() -> dict[str, Any]:
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
            return {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

        @app.get("/authorize", response_model=None)
        async def authorize(request: Request) -> RedirectResponse | JSONResponse:
            q = request.query_params
            if (
                q.get("response_type") != "code"
                or q.get("client_id") != CLIENT_ID
                or q.get("code_challenge_method") != "S256"
                or not q.get("code_challenge")
                or "openid" not in (q.get("scope") or "").split()
            ):
                return JSONResponse({"error": "invalid_request"}, 400)
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "redirect_uri": q["redirect_uri"],
                "challenge": q["code_challenge"],
                "nonce": q.get("nonce"),
                "used": False,
            }
            return RedirectResponse(f"{q['redirect_uri']}?code={code}&state={q['state']}", 302)

        @app.post("/token")
        async def token(
            request: Request,
            grant_type: str = Form(),
            code: str = Form(),
            redirect_uri: str = Form(),
            client_id: str = Form(),
            code_verifier: str = Form(),
        ) -> JSONResponse:
            self.token_calls += 1
            basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if request.headers.get("authorization") != f"Basic {basic}" or client_id != CLIENT_ID:
                return JSONResponse({"error": "invalid_client"}, 401)
            grant = self.codes.get(code)
            digest = hashlib.sha256(code_verifier.encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if (
                grant_type != "authorization_code"
                or grant is None
                or grant["used"]
                or grant["redirect_uri"] != redirect_uri
                or grant["challenge"] != challenge
            ):
                return JSONResponse({"error": "invalid_grant"}, 400)
            grant["used"] = True
            now = int(time.time())
            common = {"iss": self.issuer, "sub": self.user["sub"], "iat": now, "exp": now + 600}
            id_token = self.sign({**common, "aud": CLIENT_ID, "nonce": grant["nonce"], "name": self.user["name"]})
            access = self.sign({**common, "aud": API_AUDIENCE, **self.user})
            return JSONResponse({"access_token": access, "id_token": id_token, "token_type": "Bearer"})

        return app


def oidc_settings(issuer: str) -> dict[str, Any]:
    return {
        "environment": "production",
        "jwt_secret": None,
        "jwks_url": issuer + "/jwks",
        "jwt_algorithms": ["RS256"],
        "jwt_audience": API_AUDIENCE,
        "jwt_issuer": issuer,
        "oidc_issuer": issuer,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
    }


def signin_result(page: str) -> dict[str, Any]:
    match = re.search(r'<script id="signin-result" type="application/json">(.*?)</script>', page)
    assert match, page
    result: dict[str, Any] = json.loads(match.group(1))
    return result


def cookie_doc(client: httpx.AsyncClient) -> dict[str, str]:
    doc: dict[str, str] = json.loads(base64.urlsafe_b64decode(client.cookies[COOKIE]))
    return doc


def set_cookie_doc(client: httpx.AsyncClient, doc: dict[str, str]) -> None:
    value = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()
    client.cookies.clear()
    client.cookies.set(COOKIE, value, domain="test.local", path="/auth")


async def start_login(client: httpx.AsyncClient, next_path: str = "/mine") -> tuple[dict[str, list[str]], str]:
    """/auth/login, then the provider's /authorize over real HTTP: (the authorize query, the callback URL)."""
    r = await client.get(f"/auth/login?next={next_path}")
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    async with httpx.AsyncClient() as browser:
        at_provider = await browser.get(location)
    assert at_provider.status_code == 302, at_provider.text
    return parse_qs(urlsplit(location).query), at_provider.headers["location"]


async def test_code_flow_with_pkce_signs_in_and_the_token_passes_the_front_door(gateway, served) -> None:
    provider = Provider()
    async with served(provider.app()) as issuer:
        provider.issuer = issuer
        async with gateway(**oidc_settings(issuer)) as h:
            page = (await h.client.get("/")).text
            assert 'href="/auth/login"' in page and 'id="accounts"' not in page

            query, callback = await start_login(h.client)
            assert query["code_challenge_method"] == ["S256"]
            assert query["redirect_uri"] == ["http://test/auth/callback"]
            assert query["client_id"] == [CLIENT_ID] and query["scope"] == ["openid profile"]
            cookie = cookie_doc(h.client)
            assert query["state"] == [cookie["s"]] and query["nonce"] == [cookie["n"]]
            digest = hashlib.sha256(cookie["v"].encode()).digest()
            assert query["code_challenge"] == [base64.urlsafe_b64encode(digest).rstrip(b"=").decode()]

            r = await h.client.get(callback)
            assert r.status_code == 200, r.text
            assert r.headers["cache-control"] == "no-store"
            assert COOKIE not in h.client.cookies  # used once
            result = signin_result(r.text)
            assert result["next"] == "/mine"
            assert result["account"] == {
                "key": "M-0001",
                "roles": ["member"],
                "unit": "HN-BD-001",
                "name": "Nguyễn Văn An",
                "member_id": "M-0001",
            }
            bearer = {"Authorization": f"Bearer {result['token']}"}
            r = await h.client.post("/api/v1/initiatives", json={"title": "x"}, headers=bearer)
            assert r.status_code == 201
            assert h.calls("intake")[-1][3]["authorization"] == bearer["Authorization"]
            # an HS256 development token is no longer accepted in production
            dev = mint_token("d" * 40, sub="x", roles=["operator"], unit="VN")
            r = await h.client.post("/api/v1/initiatives", json={}, headers={"Authorization": f"Bearer {dev}"})
            assert r.status_code == 401

            # the code was redeemed: replaying the callback with a fresh cookie of the same state fails
            set_cookie_doc(h.client, cookie)
            r = await h.client.get(callback)
            assert r.status_code == 400 and "refused the code (400)" in r.text
            assert provider.token_calls == 2


async def test_state_nonce_and_verifier_are_enforced(gateway, served) -> None:
    provider = Provider()
    async with served(provider.app()) as issuer:
        provider.issuer = issuer
        async with gateway(**oidc_settings(issuer)) as h:
            # a callback whose state is not this browser's login: refused before the provider is asked
            _, callback = await start_login(h.client)
            forged = re.sub(r"state=[^&]+", "state=forged", callback)
            r = await h.client.get(forged)
            assert r.status_code == 400 and provider.token_calls == 0
            # no login cookie at all (another browser): refused
            _, callback = await start_login(h.client)
            h.client.cookies.clear()
            assert (await h.client.get(callback)).status_code == 400 and provider.token_calls == 0

            # a verifier that is not the one of the challenge: the provider refuses the code
            _, callback = await start_login(h.client)
            set_cookie_doc(h.client, {**cookie_doc(h.client), "v": "w" * 64})
            r = await h.client.get(callback)
            assert r.status_code == 400 and "refused the code (400)" in r.text

            # an ID token minted for another sign-in (nonce): refused
            _, callback = await start_login(h.client)
            set_cookie_doc(h.client, {**cookie_doc(h.client), "n": "another-nonce"})
            r = await h.client.get(callback)
            assert r.status_code == 400 and "nonce" in r.text

            # the provider's own error
            r = await h.client.get("/auth/callback?error=access_denied&state=x")
            assert r.status_code == 400 and "access_denied" in r.text


async def test_an_access_token_the_api_would_refuse_is_not_handed_to_the_page(gateway, served) -> None:
    provider = Provider()
    async with served(provider.app()) as issuer:
        provider.issuer = issuer
        async with gateway(**{**oidc_settings(issuer), "jwt_audience": "another-api"}) as h:
            _, callback = await start_login(h.client)
            r = await h.client.get(callback)
            assert r.status_code == 400 and "invalid_token" in r.text
            assert "signin-result" not in r.text


def test_where_to_go_after_sign_in_stays_on_the_site() -> None:
    for bad in (None, "", "https://evil.example", "//evil.example", "/\\evil.example", "/a\\b", "/x\ny", "x"):
        assert safe_next(bad) == "/", bad
    assert safe_next("/mine?x=1#top") == "/mine?x=1#top"


async def test_without_an_issuer_there_is_no_oidc_sign_in(gateway) -> None:
    async with gateway() as h:  # development
        assert (await h.client.get("/auth/login")).status_code == 404
        assert (await h.client.get("/auth/callback?code=x&state=y")).status_code == 404


@pytest.mark.browser
async def test_sign_in_through_the_provider_in_chromium(served, fake_transports) -> None:
    """The whole round trip in a browser: the page's link, the provider, the callback page storing the session."""
    chromium = "/usr/bin/chromium"
    if not await asyncio.to_thread(Path(chromium).exists):
        pytest.fail("chromium is not installed (make test installs it: scripts/ensure-browser.sh)")
    from playwright.async_api import async_playwright, expect

    provider = Provider()
    async with served(provider.app()) as issuer:
        provider.issuer = issuer
        transports, _behaviour = fake_transports()
        app = create(
            GatewaySettings(**{"redis_url": None, "log_json": False, **oidc_settings(issuer)}), transports=transports
        )
        async with app.router.lifespan_context(app), served(app) as url, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox"])
            try:
                page = await browser.new_page()
                page.set_default_timeout(10_000)
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                await page.goto(url + "/")
                await page.click("a[href='/auth/login']")
                await expect(page).to_have_url(url + "/submit")  # the home page of the account's role (member)
                await expect(page.locator("#who")).to_contain_text("Nguyễn Văn An")
                stored = await page.evaluate("localStorage.getItem('sk_token')")
                assert jwt.get_unverified_header(stored)["alg"] == "RS256"
                assert provider.token_calls == 1
                assert errors == []
            finally:
                await browser.close()
