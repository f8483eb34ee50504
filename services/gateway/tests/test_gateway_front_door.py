"""The front door: tokens, role policy, forwarding, body limit, rate limits, circuit breaker."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest

from shared.testing import TEST_SECRET, auth, token

# A sample of each service's routes: (method, path, a role the gateway admits, a role it refuses).
SAMPLE = [
    ("PUT", "/api/v1/units", "operator", "member"),
    ("PUT", "/api/v1/campaigns/1M/quotas", "unit_admin", "reviewer"),
    ("POST", "/api/v1/tally/snapshots", "operator", "unit_admin"),
    ("POST", "/api/v1/initiatives", "member", "reviewer"),
    ("POST", "/api/v1/imports", "support", "member"),
    ("POST", "/api/v1/review/claims", "reviewer", "member"),
    ("POST", "/api/v1/review/items/00000000-0000-0000-0000-000000000011/appraisals", "appraiser", "reviewer"),
    ("PUT", "/api/v1/awards/schemes/COL-1", "operator", "unit_admin"),
    ("POST", "/api/v1/awards/schemes/COL-1/decision", "operator", "appraiser"),
    ("GET", "/api/v1/ops/tally/dead-letters", "operator", "unit_admin"),
]


@pytest.mark.parametrize(("method", "path", "good", "bad"), SAMPLE)
async def test_every_token_failure_is_refused_before_the_service(gateway, method, path, good, bad) -> None:
    async with gateway() as h:
        body = b"[]" if method != "GET" else None
        expired = token(good, "VN", ttl_s=-10)
        forged = token(good, "VN", secret="not-the-secret-" + TEST_SECRET)
        cases = [
            ({}, 401, "unauthorized"),
            ({"Authorization": f"Bearer {expired}"}, 401, "token_expired"),
            ({"Authorization": f"Bearer {forged}"}, 401, "invalid_token"),
            ({"Authorization": "Bearer not.a.jwt"}, 401, "invalid_token"),
            (auth(bad, "VN"), 403, "forbidden"),
        ]
        for headers, status, code in cases:
            r = await h.client.request(method, path, content=body, headers=headers)
            assert r.status_code == status, (headers, r.text)
            assert r.json()["error"]["code"] == code
        assert h.calls() == []  # nothing reached a service
        r = await h.client.request(method, path, content=body, headers=auth(good, "VN"))
        assert r.status_code in (200, 201)
        assert len(h.calls()) == 1


async def test_forwarding_keeps_identity_correlation_and_response_headers(gateway) -> None:
    async with gateway() as h:
        headers = {**auth("operator", "VN"), "X-Correlation-ID": "corr-123", "Idempotency-Key": "k1"}
        r = await h.client.post("/api/v1/initiatives/batch?x=1", json={"a": "ư"}, headers=headers)
        assert r.status_code == 201
        assert r.json() == {"service": "intake", "path": "/api/v1/initiatives/batch", "query": "x=1"}
        assert r.headers["x-correlation-id"] == "corr-123"
        service, method, path, seen, body = h.calls()[0]
        assert (service, method, path) == ("intake", "POST", "/api/v1/initiatives/batch")
        assert seen["authorization"] == headers["Authorization"]
        assert seen["x-correlation-id"] == "corr-123"
        assert seen["idempotency-key"] == "k1"
        assert seen["x-forwarded-for"] == "127.0.0.1"
        assert body == '{"a":"ư"}'.encode()
        r = await h.client.get("/api/v1/awards/schemes/COL-1/export?format=csv", headers=auth("operator", "VN"))
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        assert r.headers["content-disposition"] == 'attachment; filename="awards.csv"'
        r = await h.client.get("/api/v1/tally/rankings?retry=1")
        assert r.headers["retry-after"] == "7"
        r = await h.client.get("/api/v1/nowhere", headers=auth("operator", "VN"))
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_public_routes_need_no_token_and_ignore_a_bad_one(gateway) -> None:
    async with gateway() as h:
        for path in ("/api/v1/tally/rankings?campaign=1M", "/api/v1/tally/milestones?campaign=1M", "/api/v1/awards"):
            assert (await h.client.get(path)).status_code == 200
            r = await h.client.get(path, headers={"Authorization": "Bearer forged"})
            assert r.status_code == 200
            assert "authorization" not in h.calls()[-1][3]
        assert (await h.client.get("/api/v1/units/HN")).status_code == 401


async def test_body_over_the_limit_is_413(gateway) -> None:
    async with gateway(max_body_bytes=1000) as h:
        r = await h.client.post("/api/v1/initiatives", content=b"x" * 1001, headers=auth("member", "HN"))
        assert r.status_code == 413
        assert r.json()["error"] == {
            "code": "payload_too_large",
            "message": "Dữ liệu gửi lên quá lớn",
            "details": {"max_bytes": 1000},
        }

        async def chunks():  # no Content-Length: counted while streaming
            for _ in range(5):
                yield b"y" * 300

        r = await h.client.post("/api/v1/initiatives", content=chunks(), headers=auth("member", "HN"))
        assert r.status_code == 413
        assert h.calls() == []
        r = await h.client.post("/api/v1/initiatives", content=b"x" * 1000, headers=auth("member", "HN"))
        assert r.status_code == 201


async def test_rate_limit_per_account_answers_429_with_retry_after(gateway) -> None:
    async with gateway(rate_account_per_s=0.5, rate_account_burst=3, rate_ip_burst=1000) as h:
        a = auth("operator", "VN", sub="acct-a")
        got = [(await h.client.get("/api/v1/units/HN", headers=a)).status_code for _ in range(4)]
        assert got == [200, 200, 200, 429]
        r = await h.client.get("/api/v1/units/HN", headers=a)
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 2
        # another account from the same IP still has its own bucket
        assert (await h.client.get("/api/v1/units/HN", headers=auth("operator", "VN", sub="acct-b"))).status_code == 200
        assert 'sangkien_gateway_rate_limited_total{service="gateway"} 2.0' in (await h.client.get("/metrics")).text


async def test_rate_limit_per_ip_covers_anonymous_callers(gateway) -> None:
    async with gateway(rate_ip_per_s=1, rate_ip_burst=2) as h:
        got = [(await h.client.get("/api/v1/awards")).status_code for _ in range(3)]
        assert got == [200, 200, 429]


async def test_redis_down_fails_open_to_in_process_buckets(gateway) -> None:
    async with gateway(redis_url="redis://127.0.0.1:9/0", rate_account_per_s=0.1, rate_account_burst=2) as h:
        a = auth("operator", "VN", sub="acct-r")
        got = [(await h.client.get("/api/v1/units/HN", headers=a)).status_code for _ in range(3)]
        assert got == [200, 200, 429]  # still limited, by this instance
        text = (await h.client.get("/metrics")).text
        assert 'sangkien_gateway_ratelimit_fallback_total{service="gateway"} 3.0' in text
        health = (await h.client.get("/health")).json()
        assert health["checks"]["redis"] is False and health["status"] == "degraded"


async def test_circuit_breaker_opens_after_failures_and_fails_fast(gateway) -> None:
    async with gateway(breaker_failures=3, breaker_cooldown_s=30) as h:
        h.behaviour.failing.add("tally")
        for _ in range(3):
            assert (await h.client.get("/api/v1/units/HN", headers=auth("operator", "VN"))).status_code == 503
        before = len(h.calls("tally"))
        start = time.perf_counter()
        r = await h.client.get("/api/v1/units/HN", headers=auth("operator", "VN"))
        assert r.status_code == 503
        assert r.json()["error"]["details"] == {"service": "tally", "reason": "breaker_open"}
        assert r.headers["retry-after"] == "5"
        assert len(h.calls("tally")) == before and time.perf_counter() - start < 0.5
        assert (await h.client.get("/health")).json()["breakers"]["tally"] == "open"
        # other services are unaffected
        assert (await h.client.get("/api/v1/awards")).status_code == 200


async def test_stopped_service_gives_503_in_the_error_shape(gateway) -> None:
    async with gateway(stopped={"review"}) as h:
        r = await h.client.post("/api/v1/review/claims", json={"count": 1}, headers=auth("reviewer", "HN"))
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "service_unavailable"
        health = (await h.client.get("/health")).json()
        assert health["checks"]["downstreams"]["review"]["ok"] is False
        assert health["checks"]["downstreams"]["intake"]["ok"] is True


async def test_a_cached_token_still_expires_on_time(gateway) -> None:
    async with gateway() as h:
        # exp is whole seconds: a 1 s token could lapse between the two first requests on a loaded machine
        raw = token("operator", "VN", ttl_s=4)
        short = {"Authorization": f"Bearer {raw}"}
        assert (await h.client.get("/api/v1/units/HN", headers=short)).status_code == 200
        assert (await h.client.get("/api/v1/units/HN", headers=short)).status_code == 200  # from the cache
        exp = jwt.decode(raw, options={"verify_signature": False})["exp"]
        await asyncio.sleep(max(0.0, exp - time.time()) + 1.05)
        r = await h.client.get("/api/v1/units/HN", headers=short)
        assert r.status_code == 401 and r.json()["error"]["code"] == "token_expired"
