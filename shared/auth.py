"""Bearer JWT verification (SPEC §6): HS256 with JWT_SECRET in development, RS256 from a JWKS in production."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from shared.http import ApiError
from shared.settings import ServiceSettings

IDP_DOWN = "Không kiểm tra được mã xác thực (nhà cung cấp định danh không phản hồi), vui lòng thử lại sau"
ROLES = frozenset({"member", "support", "reviewer", "appraiser", "unit_admin", "operator"})


class AuthError(Exception):
    """A token refused (401)."""

    status = 401

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def api_error(self) -> ApiError:
        """The answer: 401 for a refused token, 503 when it could not be checked."""
        if self.status == 401:
            return ApiError(401, self.code, self.message, headers={"WWW-Authenticate": "Bearer"})
        return ApiError(self.status, self.code, self.message, headers={"Retry-After": "30"})


class AuthUnavailable(AuthError):
    """The token could not be checked because the identity provider's JWKS is unreachable (503, not the
    caller's fault)."""

    status = 503


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str
    name: str
    roles: frozenset[str]
    unit: str | None
    member_id: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_operator(self) -> bool:
        return "operator" in self.roles


class TokenVerifier:
    """Verifies bearer tokens and remembers the verified ones until their ``exp`` (at most five minutes).

    A client sends the same token with every request of a rush, and checking its signature each time
    was a third of the CPU of ``POST /initiatives``. A remembered entry was verified exactly as a fresh
    one is, and it is forgotten when the token expires; the cache is bounded."""

    CACHE_ENTRIES = 20_000
    CACHE_MAX_AGE_S = 300.0
    JWKS_MAX_AGE_S = 600.0

    def __init__(self, settings: ServiceSettings) -> None:
        self._verified: dict[str, tuple[float, Principal]] = {}
        self.secret = settings.jwt_secret
        self.algorithms = list(settings.jwt_algorithms)
        self.jwks_url = settings.jwks_url
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer
        self.refetch_s = settings.jwks_refetch_s
        self._jwks: dict[str, Any] = {}
        self._jwks_at = 0.0  # when the keys held were fetched
        self._jwks_tried_at: float | None = None  # the last fetch, answered or not
        self._jwks_down = False  # the last fetch failed
        self._lock = asyncio.Lock()

    async def verify(self, token: str) -> Principal:
        now = time.time()
        hit = self._verified.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = await self._verify(token)
        expires = float(principal.claims.get("exp", now))
        if len(self._verified) >= self.CACHE_ENTRIES:
            self._verified.clear()
        self._verified[token] = (min(expires, now + self.CACHE_MAX_AGE_S), principal)
        return principal

    async def _verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError("invalid_token", "Mã xác thực không đọc được") from exc
        alg = header.get("alg")
        options = {"require": ["exp", "sub"], "verify_aud": self.audience is not None}
        try:
            if alg == "HS256" and self.secret and "HS256" in self.algorithms:
                claims = jwt.decode(token, self.secret, algorithms=["HS256"], audience=self.audience, options=options)
            elif alg in ("RS256", "ES256") and self.jwks_url:
                key = await self._key(str(header.get("kid", "")))
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[alg],
                    audience=self.audience,
                    issuer=self.issuer,
                    options={"require": ["exp", "sub", "iss", "aud"]},
                )
            else:
                raise AuthError("invalid_token", "Thuật toán ký không được chấp nhận")
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token_expired", "Phiên đăng nhập đã hết hạn") from exc
        except jwt.PyJWTError as exc:
            raise AuthError("invalid_token", "Mã xác thực không hợp lệ") from exc
        return principal_from_claims(claims)

    async def _key(self, kid: str) -> Any:
        """The provider's key ``kid``. The JWKS is fetched when the keys held are older than JWKS_MAX_AGE_S or
        do not know ``kid``, but never twice within ``refetch_s``: an unknown kid (a forged token, say) costs
        the provider one request a minute at most. A provider that does not answer is a 503 unless the
        keys held already know ``kid``."""
        async with self._lock:
            now = time.monotonic()
            fresh = now - self._jwks_at <= self.JWKS_MAX_AGE_S
            if not (kid in self._jwks and fresh):
                recently = self._jwks_tried_at is not None and now - self._jwks_tried_at < self.refetch_s
                if not recently:
                    self._jwks_tried_at = now
                    try:
                        self._jwks = await self._fetch_jwks()
                        self._jwks_at = now
                        self._jwks_down = False
                    except AuthUnavailable:
                        self._jwks_down = True
                if self._jwks_down and kid not in self._jwks:
                    raise AuthUnavailable("idp_unavailable", IDP_DOWN)
        if kid not in self._jwks:
            raise AuthError("invalid_token", "Khoá ký không xác định")
        return self._jwks[kid]

    async def _fetch_jwks(self) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                resp = await client.get(str(self.jwks_url))
                resp.raise_for_status()
            jwks = jwt.PyJWKSet.from_dict(resp.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            raise AuthUnavailable("idp_unavailable", IDP_DOWN) from exc
        return {k.key_id: k.key for k in jwks.keys}


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    roles = claims.get("roles") or []
    if isinstance(roles, str):
        roles = [roles]
    known = frozenset(r for r in roles if r in ROLES)
    return Principal(
        sub=str(claims["sub"]),
        name=str(claims.get("name") or claims["sub"]),
        roles=known,
        unit=claims.get("unit"),
        member_id=claims.get("member_id"),
        claims=claims,
    )


def mint_token(
    secret: str,
    *,
    sub: str,
    roles: Iterable[str],
    unit: str | None,
    name: str | None = None,
    member_id: str | None = None,
    ttl_s: int = 3600,
    **extra: Any,
) -> str:
    """An HS256 development token (any client holding JWT_SECRET may mint one, SPEC §6)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "name": name or sub,
        "roles": list(roles),
        "unit": unit,
        "iat": now,
        "exp": now + ttl_s,
        **extra,
    }
    if member_id is not None:
        claims["member_id"] = member_id
    return jwt.encode(claims, secret, algorithm="HS256")
