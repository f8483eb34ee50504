"""The pages' own behaviour in real Chromium, in front of fake services: the keyboard review flow, field
errors from the API beside their field, the language switch, the dashboard's sortable table and chart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from gateway.app import create
from gateway.settings import GatewaySettings

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


@contextlib.asynccontextmanager
async def served_gateway(fake_transports: Any) -> AsyncIterator[tuple[str, Any]]:
    import uvicorn

    transports, behaviour = fake_transports()
    app = create(GatewaySettings(redis_url=None, log_json=False), transports=transports)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done()
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}", behaviour
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_pages_in_chromium_against_fake_services(fake_transports) -> None:
    if not await asyncio.to_thread(Path(CHROMIUM).exists):
        pytest.fail("chromium is not installed (make test installs it: scripts/ensure-browser.sh)")
    from playwright.async_api import async_playwright, expect

    async with served_gateway(fake_transports) as (url, behaviour), async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 800})
            page.set_default_timeout(10_000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(url + "/")
            await page.click("[data-account=reviewer]")
            await expect(page).to_have_url(url + "/review")
            await page.wait_for_selector("body[data-ready='1']")
            await page.click("#claim")
            await expect(page.locator("#cur-title")).to_contain_text("Khuôn định vị cáp ngầm")
            # the similar initiative's differing words are highlighted
            await expect(page.locator("#similar del").first).to_be_visible()
            await page.locator("#workspace").focus()
            await page.keyboard.press("n")
            await expect(page.locator("#cur-title")).to_contain_text("Đặt lịch khám qua Zalo")
            await page.keyboard.press("i")
            await expect(page.locator("#reason")).to_be_focused()
            await page.select_option("#reason", "duplicate")
            await page.keyboard.press("Enter")
            await expect(page.locator("#done-today")).to_have_text("1")
            await expect(page.locator("#lease")).not_to_have_text("–")
            await page.keyboard.press("r")
            await expect(page.locator("#note")).to_be_focused()
            await page.keyboard.type("Bổ sung số liệu")
            await page.click("#decide button[type=submit]")
            await expect(page.locator("#done-today")).to_have_text("2")
            decisions = [json.loads(c[4]) for c in behaviour.seen if c[0] == "review" and c[2].endswith("/decision")]
            assert [(d["outcome"], d["reason"], d["note"]) for d in decisions] == [
                ("invalid", "duplicate", None),
                ("revision", None, "Bổ sung số liệu"),
            ]

            await page.goto(url + "/")
            await page.click("[data-account=member]")
            await expect(page).to_have_url(url + "/submit")
            await page.wait_for_selector("body[data-ready='1']")
            await expect(page.locator("#unit_code")).to_have_value("HN-BD-001")
            await page.fill("#title", "Tiêu đề đủ dài")
            await page.click("button[type=submit].primary")
            await expect(page.locator("#form-result .ok")).to_contain_text("#42")
            posted = [json.loads(c[4]) for c in behaviour.seen if c[1] == "POST" and c[2] == "/api/v1/initiatives"]
            assert posted[-1]["authors"] == [{"member_id": "M-0001", "full_name": "Nguyễn Văn An"}]
            assert posted[-1]["unit_code"] == "HN-BD-001" and posted[-1]["campaign"] == "1M"

            await page.goto(url + "/mine")
            await page.wait_for_selector("body[data-ready='1']")
            await page.click("#mine tbody button:text('Bổ sung')")
            await expect(page.locator("#revise-note")).to_contain_text("x")
            await expect(page.locator("#revise-problem")).to_be_focused()
            await page.fill("#revise-solution", "Giải pháp đã bổ sung số liệu")
            await page.click("#revise button[type=submit]")
            await expect(page.locator("#revise")).to_be_hidden()
            patched = [json.loads(c[4]) for c in behaviour.seen if c[1] == "PATCH"]
            assert patched[-1]["solution"] == "Giải pháp đã bổ sung số liệu"

            await page.goto(url + "/")
            await page.click("[data-account=unit_admin]")
            await expect(page).to_have_url(url + "/dashboard")
            await page.goto(url + "/dashboard?unit=HN")
            await page.wait_for_selector("body[data-ready='1']")
            await expect(page.locator("#children tbody tr")).to_have_count(3)
            await page.click("[data-sort=valid]")
            await expect(page.locator("#children tbody tr").first).to_contain_text("HN-CG")
            await expect(page.locator("#chart svg")).to_have_count(1)

            await page.click("text=English")
            await expect(page.locator("html")).to_have_attribute("lang", "en")
            await expect(page.locator("h1")).to_have_text("Unit dashboard")
            assert errors == []
        finally:
            await browser.close()
