"""Typed settings of the gateway, read from the environment, with defaults that run on one machine."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, model_validator

from shared.settings import ServiceSettings


class DemoAccount(BaseModel):
    key: str
    roles: list[str]
    unit: str
    name: str
    member_id: str | None = None


class GatewaySettings(ServiceSettings):
    intake_url: str = "http://127.0.0.1:8001"
    review_url: str = "http://127.0.0.1:8002"
    tally_url: str = "http://127.0.0.1:8003"
    awards_url: str = "http://127.0.0.1:8004"
    # Token bucket per account and per client IP (requests per second, bucket size).
    rate_account_per_s: float = 20.0
    rate_account_burst: int = 60
    rate_ip_per_s: float = 50.0
    rate_ip_burst: int = 150
    rate_limit_key_prefix: str = "sk:rl:"
    # After Redis fails, the gateway uses its in-process buckets and retries Redis after this pause.
    redis_retry_after_s: float = 5.0
    max_body_bytes: int = 8 * 1024 * 1024
    downstream_timeout_s: float = 15.0
    downstream_timeouts: dict[str, float] = {}
    # A composed view answers within this budget with whatever has arrived (SPEC §7: never 500).
    compose_budget_s: float = 1.5
    breaker_failures: int = 5
    breaker_cooldown_s: float = 10.0
    openapi_cache_s: float = 60.0
    openapi_fetch_timeout_s: float = 1.5
    # Demo plan (matches `sangkien run`'s seed); used by the development sign-in picker and the pages.
    demo_campaign: str = "1M"
    demo_national: str = "VN"
    demo_province: str = "HN"
    demo_province_name: str = "LĐLĐ Thành phố Hà Nội"
    demo_district: str = "HN-BD"
    demo_grassroots: str = "HN-BD-001"
    dev_token_ttl_s: int = 8 * 3600
    # Production sign-in: OpenID Connect, authorization code flow with PKCE (gateway.adapters.oidc).
    # The API token handed to the pages must pass the services' own check (JWKS_URL, JWT_AUDIENCE).
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None  # a confidential client (HTTP Basic at the token endpoint)
    oidc_scopes: str = "openid profile"
    oidc_redirect_url: str | None = None  # default: this gateway's /auth/callback as the browser sees it
    oidc_api_token: Literal["access_token", "id_token"] = "access_token"

    @model_validator(mode="after")
    def _oidc_complete(self) -> GatewaySettings:
        if self.oidc_issuer and not self.oidc_client_id:
            raise ValueError("OIDC_CLIENT_ID must be set with OIDC_ISSUER")
        return self

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    def timeout_for(self, service: str) -> float:
        return self.downstream_timeouts.get(service, self.downstream_timeout_s)

    def service_urls(self) -> dict[str, str]:
        return {
            "intake": self.intake_url,
            "review": self.review_url,
            "tally": self.tally_url,
            "awards": self.awards_url,
        }

    def demo_accounts(self) -> list[DemoAccount]:
        return [
            DemoAccount(
                key="member", roles=["member"], unit=self.demo_grassroots, name="Nguyễn Văn An", member_id="M-0001"
            ),
            DemoAccount(key="support", roles=["support"], unit=self.demo_district, name="Tổ hỗ trợ sáng kiến"),
            DemoAccount(key="reviewer", roles=["reviewer"], unit=self.demo_province, name="Người xét duyệt"),
            DemoAccount(key="appraiser", roles=["appraiser"], unit=self.demo_province, name="Người thẩm định"),
            DemoAccount(key="unit_admin", roles=["unit_admin"], unit=self.demo_province, name="Quản trị đơn vị"),
            DemoAccount(key="operator", roles=["operator"], unit=self.demo_national, name="Quản trị viên"),
        ]
