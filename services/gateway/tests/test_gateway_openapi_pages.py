"""The merged OpenAPI, the development sign-in, and the pages (served, bilingual, labelled)."""

from __future__ import annotations

import re

import jwt
import pytest

from shared.testing import TEST_SECRET


async def test_openapi_lists_every_public_path_of_the_spec(gateway, spec_paths) -> None:
    async with gateway() as h:
        doc = (await h.client.get("/api/v1/openapi.json")).json()
        assert doc["x-missing-services"] == []
        for paths in spec_paths.values():
            for method, path in paths:
                assert method.lower() in doc["paths"].get(path, {}), (method, path)
        for path in ("/api/v1/units/{code}/overview", "/api/v1/me"):
            assert "get" in doc["paths"][path]
        # the composed initiative view is the gateway's own, not intake's
        assert doc["paths"]["/api/v1/initiatives/{initiative_id}"]["get"]["tags"] == ["composed"]
        assert not any(p in doc["paths"] for p in ("/health", "/metrics"))
        docs_page = await h.client.get("/docs")
        assert docs_page.status_code == 200 and "/static/docs.js" in docs_page.text
        assert "cdn" not in docs_page.text.lower()


async def test_openapi_names_a_stopped_service_and_keeps_the_rest(gateway) -> None:
    async with gateway(stopped={"awards"}) as h:
        doc = (await h.client.get("/api/v1/openapi.json")).json()
        assert doc["x-missing-services"] == ["awards"]
        assert "/api/v1/review/claims" in doc["paths"] and "/api/v1/awards" not in doc["paths"]


async def test_dev_token_only_in_development(gateway) -> None:
    async with gateway() as h:
        accounts = (await h.client.get("/api/v1/dev/accounts")).json()["items"]
        assert {a["key"] for a in accounts} == {"member", "support", "reviewer", "appraiser", "unit_admin", "operator"}
        r = await h.client.post("/api/v1/dev/token", json={"account": "member"})
        claims = jwt.decode(r.json()["token"], TEST_SECRET, algorithms=["HS256"])
        assert claims["member_id"] == "M-0001" and claims["unit"] == "HN-BD-001" and claims["roles"] == ["member"]
        assert (await h.client.post("/api/v1/dev/token", json={"account": "root"})).status_code == 422
    async with gateway(environment="production", jwt_secret="x" * 40) as h:
        assert (await h.client.post("/api/v1/dev/token", json={"account": "operator"})).status_code == 404
        assert (await h.client.get("/api/v1/dev/accounts")).status_code == 404


PAGES = ["/", "/submit", "/mine", "/support", "/review", "/appraise", "/dashboard", "/public", "/operator", "/nowhere"]


@pytest.mark.parametrize("path", PAGES)
async def test_pages_are_vietnamese_by_default_english_on_request_and_labelled(gateway, path) -> None:
    async with gateway() as h:
        vi = await h.client.get(path)
        assert vi.status_code == (404 if path == "/nowhere" else 200) and '<html lang="vi">' in vi.text
        assert vi.headers["content-type"].startswith("text/html")
        en = await h.client.get(path + "?lang=en")
        assert '<html lang="en">' in en.text and "Sign in" in en.text
        for html in (vi.text, en.text):
            assert "http://" not in html and "https://" not in html  # no CDN, nothing external
            ids = set(re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', html))
            ids -= {"form-mode"}  # a hidden input
            labelled = set(re.findall(r'<label for="([^"]+)"', html))
            assert ids <= labelled, ids - labelled
        assert (await h.client.get("/static/app.js")).status_code == 200


async def test_language_switch_sets_a_cookie_and_stays_on_site(gateway) -> None:
    async with gateway() as h:
        r = await h.client.get("/lang/en?next=/review")
        assert r.status_code == 303 and r.headers["location"] == "/review" and "lang=en" in r.headers["set-cookie"]
        r = await h.client.get("/lang/en?next=//evil.example")
        assert r.headers["location"] == "/"


async def test_a_failing_page_answers_an_html_500_and_the_api_keeps_json(gateway) -> None:
    import httpx
    from fastapi.routing import APIRoute

    async with gateway() as h:

        async def boom() -> None:
            raise RuntimeError("a bug in a page")

        h.app.router.routes.insert(0, APIRoute("/boom", boom))
        h.app.router.routes.insert(0, APIRoute("/api/v1/compose-boom", boom))  # before the proxy's catch-all
        transport = httpx.ASGITransport(app=h.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            page = await client.get("/boom?lang=en")
            assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
            assert "Something went wrong" in page.text and "a bug in a page" not in page.text
            api = await client.get("/api/v1/compose-boom")
            assert api.status_code == 500 and api.json()["error"]["code"] == "internal_error"


def test_every_key_the_script_and_pages_use_has_both_languages() -> None:
    """Keys written out in app.js and pages.py, and the families the script builds ("kind_" + kind …)."""
    from pathlib import Path

    from gateway.web import pages
    from gateway.web.i18n import STRINGS

    web = Path(pages.__file__).resolve().parents[1]
    script = (web / "static" / "app.js").read_text(encoding="utf-8")
    used = set(re.findall(r'\btr\("([a-z0-9_]+)"\)', script))
    used |= set(re.findall(r'\bt\["([a-z0-9_]+)"\]', (web / "web" / "pages.py").read_text(encoding="utf-8")))
    families = {
        "kind_": ("national", "province", "sector", "district", "grassroots", "department"),
        "role_": ("member", "support", "reviewer", "appraiser", "unit_admin", "operator"),
        "st_": ("submitted", "revision_requested", "valid", "invalid", "withdrawn"),
        "r_": pages.REASONS,
        "grade_": ("excellent", "typical", "none", "pending"),
        "imp_": ("queued", "running", "processing", "done", "completed", "finished", "failed"),
        "crit_": pages.CRITERIA,
        "recipient_": ("collective", "individual"),
    }
    used |= {prefix + name for prefix, names in families.items() for name in names}
    assert len(used) > 150
    missing = sorted(k for k in used if k not in STRINGS)
    assert missing == []
    empty = sorted(k for k, (vi, en) in STRINGS.items() if not vi.strip() or not en.strip())
    assert empty == []
