"""OpenID Connect sign-in (authorization code flow with PKCE) against the configured issuer.

The gateway is the OIDC client of the sign-in page: it sends the browser to the issuer's
authorization endpoint with a PKCE challenge (S256), a ``state`` and a ``nonce``; at the callback
it exchanges the code (with the PKCE verifier, and the client secret when one is configured) at the
token endpoint, verifies the ID token (signature from the issuer's JWKS, ``iss``, ``aud``, ``exp``,
``nonce``) and hands the API token (the access token by default) to the page.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

_SIGNING_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class OidcError(Exception):
    """The sign-in could not be completed (the reason is safe to show to the user)."""


@dataclass(frozen=True, slots=True)
class LoginRequest:
    """What the browser keeps between the redirect to the issuer and the callback."""

    state: str
    nonce: str
    verifier: str
    next: str


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_login(next_path: str) -> LoginRequest:
    return LoginRequest(
        state=secrets.token_urlsafe(24),
        nonce=secrets.token_urlsafe(24),
        verifier=secrets.token_urlsafe(48),  # 64 characters: within RFC 7636's 43..128
        next=next_path,
    )


class OidcClient:
    def __init__(
        self,
        issuer: str,
        client_id: str,
        *,
        client_secret: str | None = None,
        scopes: str = "openid profile",
        api_token: str = "access_token",
        timeout_s: float = 10.0,
        metadata_ttl_s: float = 3600.0,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = scopes
        self.api_token = api_token
        self.timeout_s = timeout_s
        self.metadata_ttl_s = metadata_ttl_s
        self._metadata: dict[str, Any] | None = None
        self._jwks: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _get_json(self, url: str) -> Any:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                resp = await client.get(url)
                resp.raise_for_status()
                return resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError(f"the identity provider did not answer ({url})") from exc

    async def metadata(self, *, refresh: bool = False) -> dict[str, Any]:
        async with self._lock:
            stale = time.monotonic() - self._fetched_at > self.metadata_ttl_s
            if self._metadata is None or stale or refresh:
                doc = await self._get_json(self.issuer + "/.well-known/openid-configuration")
                if str(doc.get("issuer", "")).rstrip("/") != self.issuer:
                    raise OidcError("the identity provider's metadata names another issuer")
                for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not doc.get(key):
                        raise OidcError(f"the identity provider's metadata has no {key}")
                jwks = jwt.PyJWKSet.from_dict(await self._get_json(doc["jwks_uri"]))
                self._jwks = {k.key_id: k.key for k in jwks.keys}
                self._metadata = doc
                self._fetched_at = time.monotonic()
            return self._metadata

    async def authorization_url(self, login: LoginRequest, redirect_uri: str) -> str:
        meta = await self.metadata()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": self.scopes,
                "state": login.state,
                "nonce": login.nonce,
                "code_challenge": pkce_challenge(login.verifier),
                "code_challenge_method": "S256",
            }
        )
        endpoint = str(meta["authorization_endpoint"])
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    async def complete(self, login: LoginRequest, code: str, redirect_uri: str) -> tuple[str, dict[str, Any]]:
        """Exchange the code; returns (the token for the API, the verified ID token's claims)."""
        meta = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
            "code_verifier": login.verifier,
        }
        auth = httpx.BasicAuth(self.client_id, self.client_secret) if self.client_secret else None
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                resp = await client.post(str(meta["token_endpoint"]), data=form, auth=auth)
        except httpx.HTTPError as exc:
            raise OidcError("the identity provider did not answer the token request") from exc
        if resp.status_code != 200:
            raise OidcError(f"the identity provider refused the code ({resp.status_code})")
        try:
            tokens = resp.json()
        except ValueError as exc:
            raise OidcError("the identity provider's token answer is not JSON") from exc
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("the identity provider sent no ID token")
        claims = await self.verify_id_token(id_token, login.nonce)
        api_token = tokens.get(self.api_token)
        if not isinstance(api_token, str) or not api_token:
            raise OidcError(f"the identity provider sent no {self.api_token}")
        return api_token, claims

    async def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError as exc:
            raise OidcError("the ID token cannot be read") from exc
        if header.get("alg") not in _SIGNING_ALGORITHMS:
            raise OidcError("the ID token's signature algorithm is not accepted")
        kid = str(header.get("kid", ""))
        meta = await self.metadata()
        if kid not in self._jwks:
            meta = await self.metadata(refresh=True)  # keys rotate
        key = self._jwks.get(kid)
        if key is None:
            raise OidcError("the ID token is signed with an unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=[str(header["alg"])],
                audience=self.client_id,
                issuer=str(meta["issuer"]),
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
                leeway=30,
            )
        except jwt.PyJWTError as exc:
            raise OidcError("the ID token is not valid") from exc
        if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise OidcError("the ID token does not belong to this sign-in (nonce)")
        return claims
