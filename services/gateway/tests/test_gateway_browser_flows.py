"""Each page's flow in real Chromium at phone (390×844) and desktop (1366×900) sizes, against stateful fakes of
the services: the appraiser's screen, safe decisions with undo, forms that say what to do, import feedback,
navigation by role, confirmations, the operator console and the dashboard. Every page is also checked with
axe-core (no serious or critical violation) and for untranslated keys, in both languages.

One Chromium and one gateway serve the whole module; each test gets a fresh browser context and a reset
world. ``SANGKIEN_SCREENSHOTS=1`` writes the screenshots of docs/screenshots/ (README) on the way.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from gateway.app import create
from gateway.settings import GatewaySettings

sys.path.insert(0, str(Path(__file__).resolve().parent))  # importlib mode: the fakes beside this file
from pages_fakes import World, transports  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
SHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots" if os.environ.get("SANGKIEN_SCREENSHOTS") else None
# (path, account or None, screenshot name)
PAGES = [
    ("/", None, "signin"),
    ("/submit", "member", "submit"),
    ("/mine", "member", "mine"),
    ("/initiatives/00000000-0000-0000-0000-000000001000", "member", "initiative"),
    ("/support", "support", "support"),
    ("/review", "reviewer", "review"),
    ("/appraise", "appraiser", "appraise"),
    ("/dashboard?unit=HN", "unit_admin", "dashboard-province"),
    ("/public", None, "public"),
    ("/operator", "operator", "operator"),
    ("/no-such-page", None, "notfound"),
]


@dataclass
class Site:
    url: str
    world: World
    browser: Any
    tokens: dict[str, Any]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site() -> AsyncIterator[Site]:
    import httpx
    import uvicorn
    from playwright.async_api import async_playwright

    if not await asyncio.to_thread(Path(CHROMIUM).exists):
        pytest.fail("chromium is not installed (make test installs it: scripts/ensure-browser.sh)")
    world = World()
    app = create(GatewaySettings(redis_url=None, log_json=False), transports=transports(world))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done()
            await asyncio.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        tokens = {}
        async with httpx.AsyncClient(base_url=url) as client:
            for key in ("member", "support", "reviewer", "appraiser", "unit_admin", "operator"):
                tokens[key] = (await client.post("/api/v1/dev/token", json={"account": key})).json()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                yield Site(url, world, browser, tokens)
            finally:
                await browser.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture(params=[PHONE, DESKTOP], ids=["phone", "desktop"])
def viewport(request: pytest.FixtureRequest) -> dict[str, int]:
    return dict(request.param)


async def open_page(site: Site, viewport: dict[str, int], path: str, account: str | None = None, lang: str = "vi"):
    """A fresh context signed in as ``account`` (its token put in localStorage first), at ``path``, ready."""
    site.world.reset()
    context = await site.browser.new_context(viewport=viewport, locale="vi-VN")
    if lang == "en":
        await context.add_cookies([{"name": "lang", "value": "en", "url": site.url}])
    if account:
        got = site.tokens[account]
        token, account = json.dumps(got["token"]), json.dumps(json.dumps(got["account"]))
        await context.add_init_script(
            f"localStorage.setItem('sk_token', {token}); localStorage.setItem('sk_account', {account});"
        )
    page = await context.new_page()
    page.set_default_timeout(8_000)
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    await page.goto(site.url + path)
    await page.wait_for_selector("body[data-ready='1']")
    return page


def _sheet_rows(path: Any, sheet: str | None = None) -> list[tuple[Any, ...]]:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(Path(path).read_bytes()))  # a download's path has no .xlsx to go by
    return list((book[sheet] if sheet else book.active).iter_rows(values_only=True))


async def assert_accessible(page: Any) -> None:
    """axe-core (from axe-playwright-python, run in the page): no serious or critical violation."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == [], [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in bad]


async def shoot(page: Any, name: str, viewport: dict[str, int]) -> None:
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        label = "phone" if viewport["width"] < 600 else "desktop"
        await page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)


async def done(page: Any) -> None:
    assert page.errors == [], page.errors
    assert await page.evaluate("window.__missingKeys") == []
    await page.context.close()


# ---- every page: translated, accessible ----------------------------------------------------------------


@pytest.mark.parametrize(("path", "account", "name"), PAGES, ids=[p[2] for p in PAGES])
async def test_every_page_is_translated_and_passes_axe(site: Site, viewport, path, account, name) -> None:
    for lang in ("vi", "en"):
        page = await open_page(site, viewport, path, account, lang)
        await page.wait_for_load_state("networkidle")
        text = await page.inner_text("body")
        assert "⟦" not in text and "undefined" not in text and "[object" not in text, text[:500]
        assert await page.get_attribute("html", "lang") == lang
        if lang == "vi":
            # the English words that used to leak into Vietnamese pages
            for word in ("province", "district", "reviewer", "operator", " done", "Error"):
                assert word not in text, word
            await shoot(page, name, viewport)
            await assert_accessible(page)
        await done(page)


async def test_unknown_page_is_an_html_404_in_the_visitors_language(site: Site, viewport) -> None:
    page = await open_page(site, viewport, "/khong-co")
    assert await page.locator("h1").inner_text() == "Không tìm thấy trang"
    await page.click("main a.button:text-is('Về trang chính')")
    await page.wait_for_selector("#accounts button")
    resp = await page.request.get(site.url + "/api/v1/khong-co")
    assert resp.status == 404 and (await resp.json())["error"]["code"]  # the API keeps its JSON errors
    await done(page)


# ---- navigation by role, sign-in and sign-out -------------------------------------------------------------


async def test_navigation_follows_the_role_and_sign_out(site: Site, viewport) -> None:
    page = await open_page(site, viewport, "/mine")
    # signed out: only the public page, a sign-in link in the header, and one on the page that comes back to it
    visible = [t.strip() for t in await page.locator("nav li:visible").all_inner_texts()]
    assert visible == ["Bảng xếp hạng"]
    assert await page.get_attribute("#signin-link", "href") == "/?next=/mine"
    await page.click("#gate a")
    await page.click("[data-account=member]")
    await page.wait_for_url(site.url + "/mine")
    await page.wait_for_selector("body[data-ready='1']")
    visible = [t.strip() for t in await page.locator("nav li:visible").all_inner_texts()]
    assert visible == ["Gửi sáng kiến", "Sáng kiến của tôi", "Bảng xếp hạng"]
    assert "Đoàn viên" in await page.locator("#who").inner_text()
    # a page of another role refuses plainly
    await page.goto(site.url + "/operator")
    await page.wait_for_selector("body[data-ready='1']")
    assert "không có quyền" in (await page.locator("#gate").inner_text()).lower()
    await page.click("#signout")
    await page.wait_for_selector("#accounts button")
    assert await page.evaluate("localStorage.getItem('sk_token')") is None
    await done(page)


# ---- member: the form -------------------------------------------------------------------------------


async def test_member_form_checks_summarises_focuses_then_resets_with_a_link(site: Site, viewport) -> None:
    from playwright.async_api import expect

    page = await open_page(site, viewport, "/submit", "member")
    assert await page.locator("label[for=solution] .req").count() == 1
    await page.fill("#title", "Ngắn")
    await page.fill("#expected_benefit_vnd", "-5")
    await page.click("#initiative-form button[type=submit]")
    summary = page.locator("#form-errors")
    await expect(summary).to_be_visible()
    text = await summary.inner_text()
    for msg in ("Tên sáng kiến cần ít nhất 5 ký tự", "Vui lòng nhập giải pháp", "Giá trị làm lợi không được âm"):
        assert msg in text
    # the summary sits above the fields, and focus is on the first bad field
    box_y = (await summary.bounding_box())["y"]
    assert box_y < (await page.locator("#title").bounding_box())["y"]
    await expect(page.locator("#title")).to_be_focused()
    assert await page.locator("#title").get_attribute("aria-invalid") == "true"
    await assert_accessible(page)  # with the summary and the messages beside the fields
    assert site.world.bodies("/api/v1/initiatives") == []  # nothing sent
    # a summary link takes the focus to its field
    await page.click("#form-errors a:has-text('giải pháp')")
    await expect(page.locator("#solution")).to_be_focused()

    await page.fill("#title", "Cải tiến khuôn định vị cáp")
    await page.fill("#problem", "Lắp mất nhiều thời gian")
    await page.fill("#solution", "Đồ gá định vị in 3D")
    await page.fill("#effect", "Giảm 40% thời gian")
    await page.fill("#expected_benefit_vnd", "25000000")
    await page.click("#initiative-form button[type=submit]")
    await expect(page.locator("#form-result .ok")).to_contain_text("#42")
    await expect(page.locator("#form-errors")).to_be_hidden()
    sent = site.world.bodies("/api/v1/initiatives")
    assert len(sent) == 1 and sent[0]["solution"] == "Đồ gá định vị in 3D"
    assert sent[0]["authors"] == [{"member_id": "M-0001", "full_name": "Nguyễn Văn An"}]
    # the whole form is reset (the author and unit come back as the account's), with a link to the new one
    for sel in ("#title", "#problem", "#solution", "#effect"):
        assert await page.input_value(sel) == ""
    assert await page.input_value("#expected_benefit_vnd") == "0"
    assert await page.input_value("#unit_code") == "HN-BD-001"
    await shoot(page, "submit-done", viewport)
    await page.click("#form-result a")
    await page.wait_for_url("**/initiatives/00000000-0000-0000-0000-000000001092")
    await page.wait_for_selector("body[data-ready='1']")
    await expect(page.locator("#initiative h2").first).to_have_text("Vừa gửi")
    await done(page)


async def test_support_form_tells_unknown_from_out_of_scope_and_shows_the_apis_error(site: Site, viewport) -> None:
    from playwright.async_api import expect

    page = await open_page(site, viewport, "/support", "support")
    for sel, value in (("#title", "Tiêu đề đủ dài"), ("#problem", "a"), ("#solution", "b"), ("#effect", "c")):
        await page.fill(sel, value)
    await page.fill(".author [name=member_id]", "M-0099")
    await page.fill(".author [name=full_name]", "Đỗ Văn Em")
    for code, message in (
        ("XX-404", "Không tìm thấy đơn vị: XX-404"),
        ("TH", "Đơn vị nằm ngoài phạm vi của tài khoản: TH"),
        ("HN-BD", "Chọn một công đoàn cơ sở hoặc công đoàn bộ phận: HN-BD"),
    ):
        await page.fill("#unit_code", code)
        await page.click("#initiative-form button[type=submit]")
        await expect(page.locator("#form-errors")).to_contain_text(message)
        await expect(page.locator("#unit_code")).to_be_focused()
    assert site.world.bodies("/api/v1/initiatives") == []
    # the picker searches the support team's whole subtree by name, accents optional, and is kept by keyboard;
    # a unit elsewhere is "outside the scope", a name that exists nowhere "not found"
    await page.fill("#unit_code", "khong ton tai")
    await expect(page.locator("#unit_code-status")).to_have_text("Không tìm thấy đơn vị")
    await page.fill("#unit_code", "thanh hoa")
    await expect(page.locator("#unit_code-status")).to_have_text("Đơn vị nằm ngoài phạm vi của tài khoản")
    await page.fill("#unit_code", "dien luc ba dinh")
    await expect(page.locator("#unit_code-list [role=option]")).to_have_count(1)
    await expect(page.locator("#unit_code-list")).to_contain_text("CĐCS Công ty Điện lực Ba Đình · Công đoàn cơ sở")
    await shoot(page, "support-picker", viewport)
    await assert_accessible(page)  # with the listbox open
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Enter")
    assert await page.input_value("#unit_code") == "HN-BD-001"
    await expect(page.locator("#unit_code-list")).to_be_hidden()
    assert site.world.bodies("/api/v1/initiatives") == []  # Enter picked the unit, it did not send the form
    # an error the API finds is listed at the top too, beside its field
    await page.fill("#title", "Sáng kiến đã gửi hôm qua")
    await page.click("#initiative-form button[type=submit]")
    await expect(page.locator("#form-errors")).to_contain_text("Sáng kiến này đã được gửi (#1017)")
    await expect(page.locator("#title")).to_be_focused()
    await done(page)


# ---- member: my initiatives, paging, search, withdrawal with confirmation ------------------------------------


async def test_mine_pages_searches_and_withdraws_only_after_confirmation(site: Site, viewport) -> None:
    from playwright.async_api import expect

    page = await open_page(site, viewport, "/mine", "member")
    await expect(page.locator("#mine tbody tr")).to_have_count(50)
    await page.click("#mine-more")
    await expect(page.locator("#mine tbody tr")).to_have_count(60)
    await page.fill("#mine-q", "số 17 ")
    await expect(page.locator("#mine tbody tr")).to_have_count(1)
    await page.fill("#mine-q", "khuôn")
    row = page.locator("#mine tbody tr").first
    await expect(row).to_contain_text("Cải tiến khuôn định vị")
    # the two buttons of a row are apart (touch): at least 8 px between them
    await page.select_option("#mine-status", "revision_requested")
    await page.fill("#mine-q", "")
    await page.click("#mine-filter button[type=submit]")
    first = page.locator("#mine tbody tr").first
    await expect(page.locator("#mine tbody tr")).to_have_count(15)
    await expect(first).to_contain_text("Cần bổ sung")
    a, b = [await x.bounding_box() for x in await first.locator("button").all()]
    gap = max(b["x"] - (a["x"] + a["width"]), b["y"] - (a["y"] + a["height"]))
    assert gap >= 8, (a, b)
    # withdrawal asks first; "Huỷ" sends nothing
    # "Bổ sung" opens the reviewer's note and the text to revise; it is sent back with PATCH
    await first.locator("button:text-is('Bổ sung')").click()
    await expect(page.locator("#revise-problem")).to_be_focused()
    await page.fill("#revise-solution", "")
    await page.click("#revise button[type=submit]")
    await expect(page.locator("#revise-errors")).to_contain_text("Vui lòng nhập giải pháp")
    await page.fill("#revise-solution", "Giải pháp đã bổ sung số liệu")
    await page.click("#revise button[type=submit]")
    await expect(page.locator("#revise")).to_be_hidden()
    await expect(page.locator("#flash")).to_have_text("Đã gửi lại sáng kiến")
    assert site.world.bodies("/api/v1/initiatives/00000000-0000-0000-0000-0000000003e9")[-1]["solution"] == (
        "Giải pháp đã bổ sung số liệu"
    )
    await first.locator("button.danger").click()
    await expect(page.locator("#confirm")).to_be_visible()
    await expect(page.locator("#confirm-text")).to_contain_text("không thể khôi phục")
    await assert_accessible(page)  # with the confirmation open
    await page.click("#confirm-no")
    assert not any(p.endswith("/withdraw") for _s, p, _b in site.world.posted)
    await first.locator("button.danger").click()
    await page.click("#confirm-yes")
    await expect(page.locator("#flash")).to_contain_text("Đã rút sáng kiến #1001")
    assert [p for _s, p, _b in site.world.posted if p.endswith("/withdraw")] == [
        "/api/v1/initiatives/00000000-0000-0000-0000-0000000003e9/withdraw"
    ]
    await done(page)


# ---- support: import feedback ---------------------------------------------------------------------------


async def test_import_shows_progress_a_vietnamese_summary_and_named_columns(site: Site, viewport, tmp_path) -> None:
    from playwright.async_api import expect

    page = await open_page(site, viewport, "/support", "support")
    # The file picker speaks the page's language (the browser's own button would say "Choose File").
    await expect(page.locator("label.file-button[for=import-file]")).to_have_text("Chọn tệp…")
    await expect(page.locator("[data-file-for=import-file]")).to_have_text("Chưa chọn tệp")
    await page.click("#import-submit")
    await expect(page.locator("#import-form .err")).to_have_text("Vui lòng chọn tệp XLSX hoặc CSV")
    wrong = tmp_path / "sai-cot.csv"
    wrong.write_text("a,b\n1,2\n", encoding="utf-8")
    await page.set_input_files("#import-file", str(wrong))
    await expect(page.locator("[data-file-for=import-file]")).to_have_text("sai-cot.csv")
    await page.click("#import-submit")
    await expect(page.locator("#import-status")).to_contain_text("Thiếu cột: title, solution")
    good = tmp_path / "dot-1.csv"
    good.write_text("title\n" + "x\n" * 20, encoding="utf-8")
    await page.set_input_files("#import-file", str(good))
    await page.click("#import-submit")
    await expect(page.locator("#import-status")).to_contain_text("Đang xử lý: 9 đã nhập, 1 lỗi")
    await expect(page.locator("#import-submit")).to_be_disabled()
    await expect(page.locator("#import-status")).to_have_text("Đã xong: 18 đã nhập, 2 lỗi (trên tổng số 20)")
    await expect(page.locator("#import-submit")).to_be_enabled()
    assert await page.locator("#import-progress").get_attribute("value") == "100"
    await expect(page.locator("#import-errors tbody tr")).to_have_count(2)
    await expect(page.locator("#import-errors tbody tr").nth(1)).to_contain_text("Trùng với sáng kiến đã gửi (#1017)")
    async with page.expect_download() as got:
        await page.click("#import-errors-download")
    rows = _sheet_rows(await (await got.value).path())
    assert rows[0] == ("Dòng", "Cột", "Lỗi") and rows[1] == (4, "unit_code", "Không tìm thấy đơn vị HN-XX")
    async with page.expect_download() as got:
        await page.click("#import-template")
    codes = _sheet_rows(await (await got.value).path(), "Danh mục mã")
    assert ("production", "Sản xuất kinh doanh", None, "HN-BD", "LĐLĐ quận Ba Đình", "Huyện, ngành") in codes
    assert any(r[3] == "HN-BD-001" for r in codes)
    await shoot(page, "support-import", viewport)
    await done(page)


# ---- reviewer: safe decisions --------------------------------------------------------------------------


async def test_reviewer_decisions_are_safe_undoable_and_counted(site: Site, viewport) -> None:
    from playwright.async_api import expect

    page = await open_page(site, viewport, "/review", "reviewer")
    await page.evaluate("CFG.undo_ms = 1500")
    await expect(page.locator("#waiting")).to_have_text("37")
    await page.click("#claim")
    await expect(page.locator("#cur-title")).to_have_text("Khuôn định vị cáp ngầm")
    await expect(page.locator("#in-batch")).to_have_text("4")
    # the similar earlier initiative is compared word by word: what differs is marked on both sides
    await expect(page.locator("#similar .sim-title del").first).to_be_visible()
    await expect(page.locator("#similar h4").first).to_be_visible()
    await expect(page.locator("#current ins").first).to_be_visible()
    await page.locator("#workspace").focus()

    # V, then undo within the window: nothing is sent and the initiative is back
    await page.keyboard.press("v")
    await expect(page.locator("#undo-bar")).to_be_visible()
    await expect(page.locator("#cur-title")).to_have_text("Đặt lịch khám qua Zalo")
    await page.keyboard.press("u")
    await expect(page.locator("#cur-title")).to_have_text("Khuôn định vị cáp ngầm")
    await expect(page.locator("#flash")).to_contain_text("Đã hoàn tác")
    await page.wait_for_timeout(1700)
    assert site.world.bodies("/decision") == []

    # a held key (repeats) and a quick double press decide one item, once, while the first is being saved
    site.world.decision_delay_s = 1.0  # long enough that the next presses land while it is saved
    await page.locator("#workspace").focus()
    await page.keyboard.down("v")
    await page.keyboard.down("v")  # auto-repeat
    await page.keyboard.up("v")
    await expect(page.locator("#cur-title")).to_have_text("Đặt lịch khám qua Zalo")
    await page.keyboard.press("v")  # decides the second: the first is sent now, keys wait for its answer
    await page.keyboard.press("v")  # pressed while the first is being saved: ignored
    await page.keyboard.press("v")
    await expect(page.locator("#cur-title")).to_have_text("Máy cắt tôn tự động")
    saved = "Đã lưu quyết định: Hợp lệ — Khuôn định vị cáp ngầm"
    await expect(page.locator("#flash")).to_contain_text(saved, timeout=5000)
    # the title and the author shown are always of the same initiative
    assert "Lê Văn Cường" in await page.locator("#cur-meta").inner_text()
    await expect(page.locator("#undo-bar")).to_be_hidden(timeout=6000)
    decided = site.world.bodies("/decision")
    assert [(d["id"][-2:], d["outcome"]) for d in decided] == [("64", "valid"), ("65", "valid")]
    await expect(page.locator("#done-today")).to_have_text("2")
    await expect(page.locator("#waiting")).to_have_text("35")
    await expect(page.locator("#in-batch")).to_have_text("2")

    # revision needs a note: the form says so
    site.world.decision_delay_s = 0
    await page.locator("#workspace").focus()
    await page.keyboard.press("r")
    await page.click("#decide button[type=submit]")
    await expect(page.locator("#decide .err")).to_have_text("Vui lòng ghi rõ nội dung cần bổ sung")
    await page.fill("#note", "Bổ sung số liệu")
    await page.click("#decide button[type=submit]")
    await expect(page.locator("#undo-bar")).to_be_visible()
    await shoot(page, "review-undo", viewport)
    # releasing the batch sends the held decision first, then says what happened
    await page.click("#release")
    await expect(page.locator("#flash")).to_contain_text("Đã trả lại lô: 2 sáng kiến trở về hàng chờ")
    assert [d["outcome"] for d in site.world.bodies("/decision")] == ["valid", "valid", "revision"]
    assert site.world.bodies("/decision")[-1]["note"] == "Bổ sung số liệu"
    await done(page)


# ---- appraiser ----------------------------------------------------------------------------------------


async def test_appraiser_scores_by_keyboard_and_sees_mean_grade_and_earlier(site: Site, viewport) -> None:
    from playwright.async_api import expect

    page = await open_page(site, viewport, "/appraise", "appraiser")
    await expect(page.locator("#ap-items .pick")).to_have_count(3)
    await expect(page.locator("#ap-cur-h")).to_contain_text("#500 Khuôn định vị cáp ngầm")
    await expect(page.locator("#ap-earlier tbody tr")).to_have_count(1)
    await expect(page.locator("#ap-earlier")).to_contain_text("Rất tốt")
    await expect(page.locator("#ap-grade")).to_have_text("Cần ít nhất 2 lượt thẩm định")
    # by keyboard: type a score, Tab to the next criterion
    await page.locator("#sc-novelty").focus()
    for score in ("9", "9", "8", "9"):
        await page.keyboard.type(score)
        await page.keyboard.press("Tab")
    await expect(page.locator("#ap-my-mean")).to_have_text("8,75")
    await expect(page.locator("#ap-mean")).to_have_text("8,63")  # with the earlier 9, 8, 9, 8
    await expect(page.locator("#ap-grade")).to_have_text("Xuất sắc")
    await shoot(page, "appraise-scoring", viewport)
    await page.locator("#ap-note").focus()
    await page.keyboard.type("Áp dụng rộng")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")  # the save button
    await expect(page.locator("#flash")).to_contain_text("Đã lưu thẩm định: #500")
    await expect(page.locator("#flash")).to_contain_text("Xuất sắc")
    sent = site.world.bodies("/appraisals")
    assert sent == [{"novelty": 9, "applicability": 9, "effectiveness": 8, "scope": 9, "note": "Áp dụng rộng"}]
    # the appraised one leaves the to-do list and the next opens
    await expect(page.locator("#ap-items .pick")).to_have_count(2)
    await expect(page.locator("#ap-cur-h")).to_contain_text("#501")
    # a score out of range is refused in words, J/K move through the list
    await page.fill("#sc-novelty", "11")
    await page.click("#ap-form button[type=submit]")
    await expect(page.locator("#ap-errors")).to_contain_text("Nhập điểm từ 0 đến 10")
    await page.locator("h1").click()
    await page.keyboard.press("j")
    await expect(page.locator("#ap-cur-h")).to_contain_text("#502")
    await page.keyboard.press("k")
    await expect(page.locator("#ap-cur-h")).to_contain_text("#501")
    # the done list shows one's own scores, read-only
    await page.select_option("#ap-state", "done")
    await expect(page.locator("#ap-items .pick")).to_have_count(1)
    await expect(page.locator("#sc-novelty")).to_be_disabled()
    assert await page.input_value("#sc-effectiveness") == "8"
    await done(page)


# ---- dashboard and public ------------------------------------------------------------------------------


async def test_dashboard_figures_fit_and_unit_errors_are_told_apart(site: Site, viewport) -> None:
    from playwright.async_api import expect

    page = await open_page(site, viewport, "/dashboard?unit=HN", "unit_admin")
    await expect(page.locator("[data-figure=benefit_vnd] dd")).to_have_text("584 tỷ đồng")
    await expect(page.locator("[data-figure=achievement_pct] dd")).to_have_text("101 %")
    for card in await page.locator("#figures > div").all():
        fits = await card.evaluate("n => n.scrollWidth <= n.clientWidth + 1")
        assert fits, await card.inner_text()
    await expect(page.locator("#children tbody tr")).to_have_count(2)
    await expect(page.locator("#children tbody")).to_contain_text("120 %")
    await expect(page.locator("#chart svg circle")).to_have_count(2)  # one day: dots, not a vertical line
    assert "1.010" in await page.locator("#chart-table").text_content()
    await expect(page.locator("#next-milestone")).to_contain_text("Cột mốc tiếp theo: 2.000")
    await expect(page.locator("#awards")).to_have_text("Chưa có quyết định khen thưởng.")
    # the picker searches the whole scope, two levels down too, and a pick shows the unit
    await page.fill("#unit", "truong hoc 42")
    await expect(page.locator("#unit-list [role=option]")).to_have_count(1)
    await page.click("#unit-list [role=option]")
    await expect(page.locator("#unit-name")).to_have_text("CĐCS Trường học số 42 · Công đoàn cơ sở")
    await page.fill("#unit", "cau giay")
    await expect(page.locator("#unit-list [role=option]").first).to_contain_text("HN-CG LĐLĐ quận Cầu Giấy")
    await assert_accessible(page)
    await page.fill("#unit", "tinh thanh hoa")
    await expect(page.locator("#unit-status")).to_have_text("Đơn vị nằm ngoài phạm vi của tài khoản")
    await page.fill("#unit", "HN")
    await page.click("#unit-form button[type=submit]")
    # an unknown code and a code outside the scope are told apart, and the old figures go away
    await page.fill("#unit", "XX")
    await page.click("#unit-form button[type=submit]")
    await expect(page.locator("#unit-error")).to_have_text("Không tìm thấy đơn vị: XX")
    await expect(page.locator("#figures > div")).to_have_count(0)
    await page.fill("#unit", "TH")
    await page.click("#unit-form button[type=submit]")
    await expect(page.locator("#unit-error")).to_have_text("Đơn vị nằm ngoài phạm vi của tài khoản: TH")
    await page.fill("#unit", "HN-CG")
    await page.click("#unit-form button[type=submit]")
    await expect(page.locator("#unit-error")).to_be_hidden()
    await expect(page.locator("#unit-name")).to_have_text("LĐLĐ quận Cầu Giấy · Huyện, ngành")
    # its 60 unions come 50 at a time, and a filter finds one by code or name (diacritics ignored)
    await expect(page.locator("#children tbody tr")).to_have_count(50)
    await page.click("#kids-filter button")
    await expect(page.locator("#children tbody tr")).to_have_count(60)
    await page.fill("#kids-filter-q", "truong hoc so 59")
    await expect(page.locator("#children tbody tr")).to_have_count(1)
    await expect(page.locator("#children tbody tr")).to_contain_text("HN-CG-059")
    # the children's table sorts, and the page switches language where it is
    await page.fill("#unit", "HN")
    await page.click("#unit-form button[type=submit]")
    await expect(page.locator("#children tbody tr").first).to_contain_text("HN-BD")
    await page.click("[data-sort=achievement_pct]")
    await expect(page.locator("#children tbody tr").first).to_contain_text("HN-BD")  # 120 % before 82 %
    await page.click("[data-sort=achievement_pct]")
    await expect(page.locator("#children tbody tr").first).to_contain_text("HN-CG")
    assert await page.get_attribute("th:has([data-sort=achievement_pct])", "aria-sort") == "ascending"
    await page.click("a[lang=en]")
    await page.wait_for_selector("body[data-ready='1']")
    await expect(page.locator("h1")).to_have_text("Unit dashboard")
    await expect(page.locator("[data-figure=benefit_vnd] dd")).to_have_text("584 billion VND")
    assert page.url.endswith("/dashboard?unit=HN")
    await done(page)


async def test_public_rankings_use_names_and_vietnamese_levels(site: Site, viewport) -> None:
    from playwright.async_api import expect

    page = await open_page(site, viewport, "/public")
    await expect(page.locator("#rankings li").first).to_contain_text("LĐLĐ TP Hà Nội")
    assert await page.locator("#rk-kind option").all_inner_texts() == [
        "Tỉnh, thành phố",
        "Công đoàn ngành",
        "Huyện, ngành",
        "Công đoàn cơ sở",
        "Công đoàn bộ phận",
    ]
    await page.select_option("#rk-kind", "district")
    await page.click("#rank-form button[type=submit]")
    await expect(page.locator("#rankings li")).to_have_count(1)  # (a text check on 2 items is a strict error)
    await expect(page.locator("#rankings li")).to_have_text("Chưa có số liệu xếp hạng.")
    await expect(page.locator("#milestones li")).to_contain_text("Sáng kiến thứ 1.000")
    # The scheme by its name (scheme reads are public), not its code.
    await expect(page.locator("#awards li")).to_have_text("Tập thể xuất sắc: LĐLĐ quận Ba Đình (Số quyết định 12/QĐ)")
    await done(page)


# ---- operator console ---------------------------------------------------------------------------------


async def test_operator_console_tables_forms_and_confirmed_irreversible_acts(site: Site, viewport, tmp_path) -> None:
    from playwright.async_api import expect

    page = await open_page(site, viewport, "/operator", "operator")
    # health of each service, dead letters counted
    await expect(page.locator("#health tr[data-service=awards] td").first).to_have_text("Có sự cố")
    await expect(page.locator("#health tr[data-service=tally] td").first).to_have_text("Hoạt động")
    await expect(page.locator("#deadletters tr[data-service=tally] [data-count]")).to_have_text("1")
    await page.click("[data-inspect=tally]")
    await expect(page.locator("#dl-detail")).to_contain_text("initiative.reviewed.v1")
    await page.click("[data-replay=tally]")
    await page.click("#confirm-no")
    assert site.world.bodies("/replay") == []
    await page.click("[data-replay=tally]")
    await page.click("#confirm-yes")
    await expect(page.locator("#flash")).to_contain_text("Đã gửi lại: 1 (tally)")
    # the unit tree, browsed by click, and a unit edited in a form (not JSON)
    await expect(page.locator("#tree tbody")).to_contain_text("LĐLĐ TP Hà Nội")
    await page.click("#tree a:text-is('HN')")
    await expect(page.locator("#tree-caption")).to_contain_text("LĐLĐ TP Hà Nội · Tỉnh, thành phố")
    await page.fill("#tree-filter-q", "cầu giấy")
    await expect(page.locator("#tree tbody tr")).to_have_count(2)  # the way up, and HN-CG
    await page.fill("#tree-filter-q", "")
    await page.click("#unit-edit button[type=submit]")
    await expect(page.locator("#unit-edit-errors")).to_contain_text("Vui lòng nhập mã đơn vị")
    await page.fill("#ue-code", "HN-TX")
    await page.fill("#ue-name", "LĐLĐ thị xã Sơn Tây")
    await page.select_option("#ue-kind", "district")
    await page.click("#unit-edit button[type=submit]")
    await expect(page.locator("#flash")).to_contain_text("Đã lưu: HN-TX LĐLĐ thị xã Sơn Tây")
    assert site.world.bodies("/api/v1/units")[-1][0]["parent_code"] == "HN"
    # a units file with bad rows: each named by its row in the file (the header is row 1)
    units_file = tmp_path / "don-vi.csv"
    await asyncio.to_thread(units_file.write_text, "code,name,kind\nX,Y,tinh\n", encoding="utf-8")
    await page.set_input_files("#units-file", str(units_file))
    await page.click("#units-file-form button[type=submit]")
    await expect(page.locator("#units-file-result li").first).to_have_text(
        "Dòng 2 · kind: Input should be 'national', 'province'"
    )
    await expect(page.locator("#units-file-result li").nth(1)).to_contain_text("Dòng 5 · code")
    # quotas in a grid by unit and phase, for the unit browsed and its children
    await expect(page.locator("#quota-grid tbody tr")).to_have_count(3)  # HN, HN-BD, HN-CG
    assert await page.input_value("input[name=assigned][data-unit=HN][data-phase=P2]") == "1000"
    cell = page.locator("input[name=assigned][data-unit=HN-BD][data-phase=P2]")
    await cell.fill("600")
    await page.click("#quota-form button[type=submit]")
    await expect(page.locator("#quota-result")).to_contain_text("Đã lưu")
    assert site.world.bodies("/quotas")[-1] == [
        {"unit_code": "HN", "phase": "P2", "assigned": 1000, "self_set": 1300},  # the unit's own target kept
        {"unit_code": "HN-BD", "phase": "P2", "assigned": 600, "self_set": None},
    ]
    # the unit's own (self-set) target beside the assigned quota is edited too; none without an assigned one
    assert await page.input_value("input[name=self_set][data-unit=HN][data-phase=P2]") == "1300"
    await page.fill("input[name=self_set][data-unit=HN-BD][data-phase=P2]", "750")
    await page.fill("input[name=self_set][data-unit=HN-CG][data-phase=P1]", "80")
    await page.click("#quota-form button[type=submit]")
    await expect(page.locator("input[name=assigned][data-unit=HN-CG][data-phase=P1]")).to_be_focused()
    await expect(page.locator("#quota-form .err")).to_have_text("Vui lòng nhập chỉ tiêu giao trước chỉ tiêu tự đặt")
    await page.fill("input[name=self_set][data-unit=HN-CG][data-phase=P1]", "")
    await page.click("#quota-form button[type=submit]")
    await expect(page.locator("#quota-result")).to_contain_text("Đã lưu: 2")
    saved = site.world.bodies("/quotas")[-1]
    assert saved[1] == {"unit_code": "HN-BD", "phase": "P2", "assigned": 600, "self_set": 750}
    # the campaign and its phases in a form; a phase ending before it opens is refused in words
    await expect(page.locator("#cp-phases tbody tr")).to_have_count(2)
    await page.click("#cp-add-phase")
    row = page.locator("#cp-phases tbody tr").nth(2)
    await row.locator("[name=phase_code]").fill("P3")
    await row.locator("[name=phase_opens_on]").fill("2031-01-10")
    await row.locator("[name=phase_closes_on]").fill("2031-01-01")
    await page.click("#campaign-form button[type=submit]")
    await expect(page.locator("#campaign-errors")).to_contain_text("Ngày kết thúc phải sau ngày bắt đầu")
    await row.locator("[name=phase_closes_on]").fill("2031-12-31")
    await page.click("#campaign-form button[type=submit]")
    await expect(page.locator("#flash")).to_contain_text("Đã lưu: 01 triệu sáng kiến")
    put = site.world.bodies("/api/v1/campaigns/1M")[-1]
    assert [p["code"] for p in put["phases"]] == ["P1", "P2", "P3"] and put["milestones"] == [1000, 2000, 5000]
    # a new award scheme from a form, its rule read back in words
    await page.fill("#sc-code", "CN-XS")
    await page.fill("#sc-name", "Cá nhân xuất sắc")
    await page.select_option("#sc-recipient", "individual")
    await page.check("#sc-g-ex")
    await page.fill("#sc-min-valid", "2")
    await page.fill("#sc-max", "50")
    await expect(page.locator("#scheme-words")).to_have_text(
        "Cá nhân — Hợp lệ ≥ 2; xếp loại Xuất sắc — lấy 50, xếp theo Hợp lệ"
    )
    await page.click("#scheme-form button[type=submit]")
    await expect(page.locator("#schemes tbody tr")).to_have_count(2)
    assert site.world.bodies("/api/v1/awards/schemes/CN-XS")[-1] == {
        "campaign": "1M",
        "phase": None,
        "name": "Cá nhân xuất sắc",
        "recipient": "individual",
        "unit_kind": None,
        "rule": {"min_valid": 2, "grade_in": ["excellent"]},
        "order_by": ["valid", "benefit_vnd", "grade"],
        "max_recipients": 50,
    }
    await page.select_option("#scheme", "TT-XS")
    # schemes in words; snapshot and decision only after confirmation; chosen nominations only
    await expect(page.locator("#schemes tbody")).to_contain_text(
        "Tập thể cấp Huyện, ngành — Hợp lệ ≥ 50; Đạt so với chỉ tiêu ≥ 100 % — lấy 2, xếp theo Hợp lệ"
    )
    await page.click("#snapshot")
    await page.click("#confirm-yes")
    await expect(page.locator("#snapshot-out")).to_contain_text("snap-1")
    await page.click("#nominate-form button[type=submit]")
    await expect(page.locator("#nominations tbody tr")).to_have_count(2)
    await page.locator("#nominations tbody input").nth(1).uncheck()
    await page.fill("#decision-no", "123/QĐ-LĐLĐ")
    await page.fill("#signed-on", "2026-03-05")
    await page.click("#decision-form button[type=submit]")
    await expect(page.locator("#confirm-text")).to_contain_text("không thể sửa")
    await page.click("#confirm-no")
    assert site.world.bodies("/decision") == []
    await page.click("#decision-form button[type=submit]")
    await page.click("#confirm-yes")
    await expect(page.locator("#decision-result")).to_contain_text("Đã phê duyệt khen thưởng: 1")
    assert site.world.bodies("/decision") == [
        {"decision_no": "123/QĐ-LĐLĐ", "signed_on": "2026-03-05", "approve": [{"unit_code": "HN-BD"}]}
    ]
    await shoot(page, "operator-awards", viewport)
    await done(page)
