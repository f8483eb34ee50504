"""Issue 14, findings 1 and 6: safe defaults, the development token endpoints, and JWKS checks in production."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from pydantic import ValidationError

from shared.auth import AuthError, AuthUnavailable, TokenVerifier
from shared.settings import ServiceSettings

ISSUER = "https://id.example.vn"
AUDIENCE = "sangkien-api"
CLOSED_PORT_URL = "http://127.0.0.1:9/jwks"


class Jwks:
    """A provider's JWKS endpoint that counts how often it is fetched."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(65537, 2048)
        self.fetches = 0

    def sign(self, kid: str = "k1", **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "M-0001", "roles": ["member"], "unit": "HN", "exp": now + 600}
        body.update(claims)
        return jwt.encode({k: v for k, v in body.items() if v is not None}, self.key, "RS256", headers={"kid": kid})

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/jwks")
        async def jwks() -> dict[str, Any]:
            self.fetches += 1
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
            return {"keys": [{**public, "kid": "k1", "alg": "RS256", "use": "sig"}]}

        return app


def production(jwks_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "environment": "production",
        "jwt_secret": None,
        "jwks_url": jwks_url,
        "jwt_algorithms": ["RS256"],
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        **extra,
    }


# ---- safe defaults ------------------------------------------------------------------------------


def test_environment_defaults_to_production_and_refuses_to_start_without_a_secret(monkeypatch) -> None:
    for name in ("ENVIRONMENT", "JWT_SECRET", "JWKS_URL"):
        monkeypatch.delenv(name, raising=False)
    assert ServiceSettings.model_fields["environment"].default == "production"
    with pytest.raises(ValidationError, match="JWT_SECRET or JWKS_URL"):
        ServiceSettings()
    with pytest.raises(ValidationError, match="development JWT secret"):
        ServiceSettings(jwt_secret="dev-only-secret-sang-kien-not-for-production")
    assert ServiceSettings(jwt_secret="s" * 40).environment == "production"
    monkeypatch.setenv("ENVIRONMENT", "development")
    assert ServiceSettings().jwt_secret  # only an explicit development run gets the development secret


def test_jwks_requires_issuer_and_audience() -> None:
    with pytest.raises(ValidationError, match="JWT_ISSUER and JWT_AUDIENCE"):
        ServiceSettings(**production(CLOSED_PORT_URL, jwt_issuer=None))
    with pytest.raises(ValidationError, match="JWT_ISSUER and JWT_AUDIENCE"):
        ServiceSettings(**production(CLOSED_PORT_URL, jwt_audience=None))


async def test_dev_token_endpoints_do_not_exist_outside_development(gateway) -> None:
    async with gateway(environment="production", jwt_secret="p" * 40) as h:
        for method, path in (("POST", "/api/v1/dev/token"), ("GET", "/api/v1/dev/accounts")):
            r = await h.client.request(method, path, json={"account": "operator"} if method == "POST" else None)
            assert r.status_code == 404, r.text
            assert "token" not in r.json()
        assert not [p for p in h.app.openapi()["paths"] if p.startswith("/api/v1/dev/")]


async def test_dev_token_answers_only_loopback_clients(gateway) -> None:
    async with gateway() as h:
        for host in ("203.0.113.7", "10.0.0.5"):
            remote = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=h.app, client=(host, 40000)), base_url="http://gw"
            )
            async with remote:
                r = await remote.post("/api/v1/dev/token", json={"account": "operator"})
                assert r.status_code == 403 and "token" not in r.json(), r.text
                assert (await remote.get("/api/v1/dev/accounts")).status_code == 403
        for host in ("127.0.0.1", "::1"):
            local = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=h.app, client=(host, 40000)), base_url="http://gw"
            )
            async with local:
                r = await local.post("/api/v1/dev/token", json={"account": "operator"})
                assert r.status_code == 200 and r.json()["token"], r.text


# ---- JWKS in production ---------------------------------------------------------------------------


async def test_jwks_tokens_need_the_right_issuer_and_audience(served) -> None:
    provider = Jwks()
    async with served(provider.app()) as base:
        verifier = TokenVerifier(ServiceSettings(**production(base + "/jwks")))
        assert (await verifier.verify(provider.sign())).sub == "M-0001"
        for bad in (
            provider.sign(iss="https://evil.example"),
            provider.sign(iss=None),
            provider.sign(aud="another-api"),
            provider.sign(aud=None),
        ):
            with pytest.raises(AuthError) as refused:
                await verifier.verify(bad)
            assert refused.value.status == 401


async def test_unknown_kids_fetch_the_jwks_at_most_once_a_minute(served) -> None:
    provider = Jwks()
    async with served(provider.app()) as base:
        verifier = TokenVerifier(ServiceSettings(**production(base + "/jwks")))
        await verifier.verify(provider.sign())
        assert provider.fetches == 1
        for i in range(40):
            with pytest.raises(AuthError) as refused:
                await verifier.verify(provider.sign(kid=f"forged-{i}", sub=f"x{i}"))
            assert refused.value.status == 401
        assert provider.fetches == 1
        verifier._jwks_tried_at = time.monotonic() - 61  # a minute later, one more fetch is allowed
        with pytest.raises(AuthError):
            await verifier.verify(provider.sign(kid="forged-late", sub="late"))
        assert provider.fetches == 2


async def test_identity_provider_down_answers_503_not_500(gateway) -> None:
    verifier = TokenVerifier(ServiceSettings(**production(CLOSED_PORT_URL)))
    token = Jwks().sign()
    with pytest.raises(AuthUnavailable) as down:
        await verifier.verify(token)
    assert down.value.status == 503
    async with gateway(**production(CLOSED_PORT_URL)) as h:
        r = await h.client.get("/api/v1/initiatives", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "idp_unavailable"
        r = await h.client.get("/api/v1/units/HN/overview", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 503, r.text


async def test_a_service_answers_503_when_the_identity_provider_is_down(tmp_path) -> None:
    from review.app import create
    from review.settings import ReviewSettings

    from shared.testing import running_app

    app = create(ReviewSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/r.db", **production(CLOSED_PORT_URL)))
    async with running_app(app) as client:
        r = await client.get("/api/v1/review/stats", headers={"Authorization": f"Bearer {Jwks().sign()}"})
        assert r.status_code == 503, r.text
        assert r.headers.get("retry-after")
