"""The whole system in one process, driven in real Chromium: a member submits through the form, a reviewer
decides it with the keyboard, an appraiser scores it, and the dashboard shows it counted. (The pages' own flows
at phone and desktop sizes, and the screenshots of docs/screenshots/, are in test_gateway_browser_flows.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _missing_parts() -> list[str]:
    missing = [n for n in ("intake", "review", "tally", "awards") if not _importable(f"{n}.app")]
    if not Path(CHROMIUM).exists():
        missing.append("chromium")
    if not _importable("playwright"):
        missing.append("playwright")
    return missing


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def embedded_system(var: Path) -> AsyncIterator[str]:
    """The four services on one InMemoryBroker with SQLite under ``var``, the gateway calling them in-process,
    served by uvicorn on a free loopback port in this event loop."""
    import uvicorn

    from sangkien_cli import build_embedded, seed_demo

    gateway, services = build_embedded(var, outbox_poll_interval_s=0.05, log_json=False)
    async with contextlib.AsyncExitStack() as stack:
        for app in services.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(gateway, host="127.0.0.1", port=port, log_level="warning"))
        serving = asyncio.create_task(server.serve())
        try:
            for _ in range(200):
                if server.started or serving.done():
                    break
                await asyncio.sleep(0.05)
            assert server.started, "the gateway did not start"
            url = f"http://127.0.0.1:{port}"
            await seed_demo(url)
            yield url
        finally:
            server.should_exit = True
            await asyncio.wait_for(serving, 10)


async def _sign_in(page, url: str, account: str) -> None:
    await page.goto(url + "/")
    await page.evaluate("localStorage.clear()")
    await page.goto(url + "/")
    await page.click(f"[data-account={account}]")
    # the picker navigates to the account's home page: wait for it, so no later goto races it
    await page.wait_for_url(lambda u: not u.rstrip("/").endswith(url.split("//", 1)[1]))
    await page.wait_for_selector("body[data-ready='1']")


async def test_member_submits_reviewer_decides_by_keyboard_dashboard_counts_it(tmp_path: Path) -> None:
    missing = _missing_parts()
    if missing:
        pytest.fail(f"needs the whole system; not available: {', '.join(missing)}")
    from playwright.async_api import async_playwright, expect

    title = f"Sáng kiến thử nghiệm {uuid.uuid4().hex[:6]}"
    async with embedded_system(tmp_path / "var") as url, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="vi-VN")
            page.set_default_timeout(15_000)

            # 1. the member submits through the form (the API's validation shows beside the field first)
            await _sign_in(page, url, "member")
            await expect(page).to_have_url(url + "/submit")
            await page.wait_for_selector("body[data-ready='1']")
            await page.fill("#title", "Ngắn")
            await page.click("button[type=submit].primary")
            await expect(page.locator(".err").first).to_be_visible()
            await page.fill("#title", title)
            await page.fill("#problem", "Lắp đặt mất nhiều thời gian căn chỉnh thủ công.")
            await page.fill("#solution", "Dùng đồ gá định vị in 3D cho từng loại cáp.")
            await page.fill("#effect", "Giảm 40% thời gian lắp đặt.")
            await page.fill("#expected_benefit_vnd", "25000000")
            await page.click("button[type=submit].primary")
            await expect(page.locator("#form-result .ok")).to_contain_text("#")
            assert await page.input_value("#title") == ""  # the whole form is reset after success
            await page.goto(url + "/mine")
            await expect(page.locator("#mine tbody")).to_contain_text(title)

            # 2. the reviewer of the province claims a batch and decides it with the keyboard
            await _sign_in(page, url, "reviewer")
            await expect(page).to_have_url(url + "/review")
            await page.wait_for_selector("body[data-ready='1']")
            claimed = False
            for _ in range(40):  # the submission reaches review through the bus
                await page.click("#claim")
                await page.wait_for_timeout(300)
                if await page.locator("#current h2").count():
                    claimed = True
                    break
                await page.wait_for_timeout(200)
            assert claimed, "nothing to claim"
            for _ in range(20):
                if title in (await page.locator("#cur-title").inner_text()):
                    break
                await page.locator("#workspace").focus()
                await page.keyboard.press("n")
                await page.wait_for_timeout(150)
            await expect(page.locator("#cur-title")).to_contain_text(title)
            await page.evaluate("CFG.undo_ms = 300")  # the undo window, shortened
            await page.locator("#workspace").focus()
            await page.keyboard.press("v")
            await expect(page.locator("#flash")).to_contain_text(title)
            await expect(page.locator("#flash")).to_contain_text("Đã lưu quyết định")
            await expect(page.locator("#done-today")).to_have_text("1")

            # 3. the appraiser finds it among the valid initiatives of the province and scores it
            await _sign_in(page, url, "appraiser")
            await expect(page).to_have_url(url + "/appraise")
            listed = False
            for _ in range(40):  # the review service's own record, valid once decided
                if await page.locator(f"#ap-items .pick:has-text('{title}')").count():
                    listed = True
                    break
                await page.wait_for_timeout(250)
                await page.click("#ap-filter button[type=submit]")
            assert listed, "the valid initiative is not offered for appraisal"
            await page.click(f"#ap-items .pick:has-text('{title}')")
            for criterion, score in (("novelty", "8"), ("applicability", "9"), ("effectiveness", "9"), ("scope", "7")):
                await page.fill(f"#sc-{criterion}", score)
            await expect(page.locator("#ap-my-mean")).to_have_text("8,25")
            await page.click("#ap-form button[type=submit]")
            await expect(page.locator("#flash")).to_contain_text("Đã lưu thẩm định")
            await page.select_option("#ap-state", "done")
            await expect(page.locator(f"#ap-items .pick:has-text('{title}')")).to_contain_text("Số lượt thẩm định: 1")

            # 4. the dashboard of the member's unit shows it counted (tally hears it through the bus)
            await _sign_in(page, url, "unit_admin")
            counted = False
            for _ in range(40):
                await page.goto(url + "/dashboard?unit=HN-BD-001")
                await page.wait_for_selector("body[data-ready='1']")
                text = await page.locator("[data-figure=valid] dd").inner_text()
                if text.strip() not in ("", "0", "–"):
                    counted = True
                    break
                await page.wait_for_timeout(250)
            assert counted, "the decision was not counted on the dashboard"
            assert (await page.locator("[data-figure=valid] dd").inner_text()).strip() == "1"
            # the operator console reads the real services: health and dead letters of each
            await _sign_in(page, url, "operator")
            await expect(page.locator("#health tr[data-service=review] td").first).to_have_text("Hoạt động")
            await expect(page.locator("#deadletters tr[data-service=review] [data-count]")).to_have_text("0")
            await expect(page.locator("#tree tbody")).to_contain_text("HN")
        finally:
            await browser.close()
