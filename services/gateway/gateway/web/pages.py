"""Server-rendered pages (plain Python string templates; no CDN). The pages call the public API from vanilla JS."""

from __future__ import annotations

import html
from pathlib import Path

import orjson
from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse

from gateway.web.i18n import pick

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

router = APIRouter(include_in_schema=False)

NAV = (
    ("/", "nav_home"),
    ("/submit", "nav_submit"),
    ("/mine", "nav_mine"),
    ("/support", "nav_support"),
    ("/review", "nav_review"),
    ("/dashboard", "nav_dashboard"),
    ("/public", "nav_public"),
    ("/operator", "nav_operator"),
)
REASONS = (
    "duplicate",
    "incomplete",
    "out_of_scope",
    "not_applied_in_window",
    "not_recognised",
    "not_member",
    "spam",
)


def safe_next(value: str | None) -> str:
    """A local path to go to afterwards; anything that could leave the site ("//x", "/\\x", "x:") is "/"."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    return value


def lang_of(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get("lang") or "vi"
    return "en" if lang == "en" else "vi"


def layout(request: Request, page: str, title_key: str, body: str) -> HTMLResponse:
    lang = lang_of(request)
    t = pick(lang)
    settings = request.app.state.settings
    e = html.escape
    nav = "".join(
        f'<li><a href="{href}"{" aria-current=page" if href == request.url.path else ""}>{e(t[key])}</a></li>'
        for href, key in NAV
    )
    other = "en" if lang == "vi" else "vi"
    config = {
        "campaign": settings.demo_campaign,
        "development": settings.environment == "development",
        "lang": lang,
        "reasons": list(REASONS),
    }
    i18n_json = orjson.dumps(t).decode().replace("</", "<\\/")
    doc = f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(t[title_key])} · {e(t["app"])}</title>
<link rel="stylesheet" href="/static/app.css">
<script id="i18n" type="application/json">{i18n_json}</script>
<script id="config" type="application/json">{orjson.dumps(config).decode()}</script>
<script src="/static/app.js" defer></script>
</head>
<body data-page="{page}">
<a class="skip" href="#main">{e(t["skip"])}</a>
<header class="top">
  <div class="brand"><strong>{e(t["app"])}</strong> <span>{e(t["tagline"])}</span></div>
  <nav aria-label="{e(t["app"])}"><ul>{nav}</ul></nav>
  <div class="who"><span id="who" aria-live="polite"></span>
    <button type="button" id="signout" hidden>{e(t["sign_out"])}</button>
    <a href="/lang/{other}?next={e(request.url.path)}" lang="{other}">{e(t["switch_lang"])}</a></div>
</header>
<main id="main" tabindex="-1">
<h1>{e(t[title_key])}</h1>
<div id="flash" role="status" aria-live="polite"></div>
{body}
</main>
</body>
</html>"""
    return HTMLResponse(doc, headers={"Cache-Control": "no-store", "Content-Language": lang})


def _t(request: Request) -> dict[str, str]:
    return {k: html.escape(v) for k, v in pick(lang_of(request)).items()}


@router.get("/lang/{code}")
async def switch_lang(code: str, next: str = "/") -> RedirectResponse:  # noqa: A002 - the query name
    target = safe_next(next)
    resp = RedirectResponse(target, 303)
    resp.set_cookie("lang", "en" if code == "en" else "vi", max_age=365 * 86400, samesite="lax")
    return resp


@router.get("/")
async def signin(request: Request) -> HTMLResponse:
    t = _t(request)
    settings = request.app.state.settings
    if settings.environment == "development":
        body = f'<p>{t["signin_dev"]}</p><ul id="accounts" class="accounts"></ul>'
    elif settings.oidc_enabled:
        body = f'<p>{t["signin_prod"]}</p><p><a class="button primary" href="/auth/login">{t["signin_oidc"]}</a></p>'
    else:
        body = f"<p>{t['signin_prod']}</p>"
    return layout(request, "signin", "signin_title", body)


def _initiative_form(t: dict[str, str], *, support: bool) -> str:
    unit_field = (
        f'<p><label for="unit_code">{t["f_unit"]}</label>'
        f'<input id="unit_code" name="unit_code" required maxlength="64" autocomplete="off"></p>'
    )
    return f"""
<form id="initiative-form" novalidate>
  {unit_field}
  <p><label for="field">{t["f_field"]}</label><select id="field" name="field" required></select></p>
  <p><label for="title">{t["f_title"]}</label>
     <input id="title" name="title" required minlength="5" maxlength="300"></p>
  <p><label for="problem">{t["f_problem"]}</label><textarea id="problem" name="problem" rows="3" maxlength="20000">
</textarea></p>
  <p><label for="solution">{t["f_solution"]}</label>
<textarea id="solution" name="solution" rows="3" maxlength="20000"></textarea></p>
  <p><label for="effect">{t["f_effect"]}</label><textarea id="effect" name="effect" rows="3" maxlength="20000">
</textarea></p>
  <div class="row">
    <p><label for="expected_benefit_vnd">{t["f_benefit"]}</label>
       <input id="expected_benefit_vnd" name="expected_benefit_vnd" type="number" min="0" step="1" value="0"
        inputmode="numeric"></p>
    <p><label for="applied_on">{t["f_applied"]}</label><input id="applied_on" name="applied_on" type="date" required>
</p>
  </div>
  <p class="check"><input id="confidential" name="confidential" type="checkbox">
     <label for="confidential">{t["f_confidential"]}</label></p>
  <fieldset id="authors"><legend>{t["f_authors"]}</legend></fieldset>
  <p><button type="button" id="add-author">{t["add_author"]}</button></p>
  <p><button type="submit" class="primary">{t["send"]}</button></p>
  <p id="form-result" role="status" aria-live="polite"></p>
</form>
<template id="author-row"><div class="row author">
  <p><label>{t["f_member_id"]} <input name="member_id" required maxlength="64"></label></p>
  <p><label>{t["f_full_name"]} <input name="full_name" required maxlength="200"></label></p>
  <p><button type="button" class="remove-author">{t["remove"]}</button></p></div></template>
<input type="hidden" id="form-mode" value="{"support" if support else "member"}">"""


@router.get("/submit")
async def submit_page(request: Request) -> HTMLResponse:
    return layout(request, "submit", "submit_title", _initiative_form(_t(request), support=False))


@router.get("/mine")
async def mine_page(request: Request) -> HTMLResponse:
    t = _t(request)
    body = f"""<table class="data" id="mine"><caption class="sr">{t["mine_title"]}</caption>
<thead><tr><th scope="col">{t["col_seq"]}</th><th scope="col">{t["col_title"]}</th>
<th scope="col">{t["col_status"]}</th><th scope="col">{t["col_date"]}</th><th scope="col"></th></tr></thead>
<tbody></tbody></table>
<form id="revise" hidden aria-labelledby="revise-h"><h2 id="revise-h">{t["revise_title"]}</h2>
<p id="revise-title"></p><p id="revise-note" class="warn"></p>
<p><label for="revise-problem">{t["f_problem"]}</label>
<textarea id="revise-problem" name="problem" rows="3" maxlength="20000"></textarea></p>
<p><label for="revise-solution">{t["f_solution"]}</label>
<textarea id="revise-solution" name="solution" rows="3" maxlength="20000"></textarea></p>
<p><label for="revise-effect">{t["f_effect"]}</label>
<textarea id="revise-effect" name="effect" rows="3" maxlength="20000"></textarea></p>
<p><button type="submit" class="primary">{t["send"]}</button></p></form>"""
    return layout(request, "mine", "mine_title", body)


@router.get("/support")
async def support_page(request: Request) -> HTMLResponse:
    t = _t(request)
    body = f"""<section aria-labelledby="imp"><h2 id="imp">{t["import_title"]}</h2>
<form id="import-form">
 <p><button type="button" id="import-template">{t["import_template"]} (XLSX)</button></p>
 <p><label for="import-file">{t["import_file"]}</label>
    <input id="import-file" name="file" type="file" accept=".xlsx,.csv" required></p>
 <p><button type="submit">{t["import_start"]}</button></p>
 <p><label for="import-progress">{t["import_progress"]}</label>
    <progress id="import-progress" max="100" value="0">0%</progress> <span id="import-status" aria-live="polite">
</span></p>
 <ul id="import-errors"></ul>
</form></section>
<section aria-labelledby="ent"><h2 id="ent">{t["support_enter"]}</h2>{_initiative_form(t, support=True)}</section>"""
    return layout(request, "support", "support_title", body)


@router.get("/review")
async def review_page(request: Request) -> HTMLResponse:
    t = _t(request)
    reasons = "".join(f'<option value="{r}">{t["r_" + r]}</option>' for r in REASONS)
    body = f"""<div class="toolbar">
 <label for="claim-count">{t["claim_count"]}</label>
 <select id="claim-count"><option>5</option><option selected>10</option><option>20</option></select>
 <button type="button" id="claim" class="primary">{t["claim"]}</button>
 <button type="button" id="release">{t["release"]}</button>
 <span>{t["lease"]}: <strong id="lease" aria-live="off">–</strong></span>
 <span>{t["done_today"]}: <strong id="done-today">0</strong></span>
</div>
<p class="hint">{t["keys_help"]}</p>
<div id="workspace" class="split" tabindex="0" aria-label="{t["review_title"]}">
 <article id="current" aria-live="polite"><p>{t["queue_empty"]}</p></article>
 <aside id="similar" aria-label="{t["similar"]}"></aside>
</div>
<form id="decide" class="decide" hidden>
 <p id="reason-row" hidden><label for="reason">{t["reason"]}</label><select id="reason">{reasons}</select></p>
 <p id="note-row" hidden><label for="note">{t["note"]}</label><textarea id="note" rows="2" maxlength="2000">
</textarea></p>
 <p><button type="submit" class="primary">{t["confirm"]}</button></p>
</form>
<p class="buttons"><button type="button" data-key="v">{t["valid"]} (V)</button>
<button type="button" data-key="i">{t["invalid"]} (I)</button>
<button type="button" data-key="r">{t["revision"]} (R)</button>
<button type="button" data-key="n">{t["next"]} (N)</button></p>"""
    return layout(request, "review", "review_title", body)


def _rankings_block(t: dict[str, str]) -> str:
    return f"""<section aria-labelledby="rk"><h2 id="rk">{t["rankings"]}</h2>
<form id="rank-form" class="toolbar">
 <label for="rk-kind">{t["kind"]}</label><select id="rk-kind"><option>province</option><option>sector</option>
 <option>district</option><option>grassroots</option></select>
 <label for="rk-cluster">{t["cluster"]}</label><input id="rk-cluster" size="6" maxlength="64">
 <label for="rk-metric">{t["metric"]}</label><select id="rk-metric"><option value="valid">{t["valid_n"]}</option>
 <option value="participants">{t["participants"]}</option><option value="achievement_pct">{t["achievement"]}</option>
 <option value="benefit_vnd">{t["benefit"]}</option></select>
 <button type="submit">{t["show"]}</button></form>
<ol id="rankings" class="rank"></ol></section>
<section aria-labelledby="ms"><h2 id="ms">{t["milestones"]}</h2><ul id="milestones"></ul></section>
<section aria-labelledby="aw"><h2 id="aw">{t["awards"]}</h2><ul id="awards"></ul></section>"""


@router.get("/dashboard")
async def dashboard_page(request: Request) -> HTMLResponse:
    t = _t(request)
    cols = ("code", "submitted", "valid", "participants", "quota", "achievement_pct")
    heads = "".join(
        f'<th scope="col"><button type="button" data-sort="{c}">'
        f"{t.get(c if c != 'code' else 'col_unit', t['col_unit']) if c != 'achievement_pct' else t['achievement']}"
        f"</button></th>"
        for c in cols
    )
    body = f"""<form id="unit-form" class="toolbar"><label for="unit">{t["unit_code"]}</label>
<input id="unit" maxlength="64" required><button type="submit">{t["show"]}</button></form>
<p id="missing" class="warn" hidden></p>
<dl id="figures" class="cards"></dl>
<p id="sibling-rank"></p>
<section aria-labelledby="ch"><h2 id="ch">{t["chart"]}</h2><div id="chart" role="img" aria-label="{t["chart"]}">
</div></section>
<section aria-labelledby="kids"><h2 id="kids">{t["children"]}</h2>
<table class="data" id="children"><thead><tr>{heads}</tr></thead><tbody></tbody></table></section>
{_rankings_block(t)}"""
    return layout(request, "dashboard", "dash_title", body)


@router.get("/public")
async def public_page(request: Request) -> HTMLResponse:
    return layout(request, "public", "public_title", _rankings_block(_t(request)))


@router.get("/operator")
async def operator_page(request: Request) -> HTMLResponse:
    t = _t(request)
    body = f"""<section aria-labelledby="u"><h2 id="u">{t["op_units"]}</h2>
<form id="units-form"><label for="units-json" class="sr">{t["op_units"]}</label>
<textarea id="units-json" rows="4">[]</textarea><p><button type="submit">{t["save"]}</button></p></form>
<form id="units-file-form"><label for="units-file">{t["import_file"]}</label>
<input id="units-file" type="file" accept=".csv,.xlsx" required> <button type="submit">{t["upload"]}</button></form>
</section>
<section aria-labelledby="c"><h2 id="c">{t["op_campaign"]}</h2>
<form id="campaign-form"><label for="campaign-json" class="sr">{t["op_campaign"]}</label>
<textarea id="campaign-json" rows="4">{{}}</textarea><p><button type="submit">{t["save"]}</button></p></form></section>
<section aria-labelledby="q"><h2 id="q">{t["op_quotas"]}</h2>
<form id="quotas-form"><label for="quotas-json" class="sr">{t["op_quotas"]}</label>
<textarea id="quotas-json" rows="3">[]</textarea><p><button type="submit">{t["save"]}</button></p></form></section>
<section aria-labelledby="s"><h2 id="s">{t["op_snapshot"]}</h2>
<p><button type="button" id="snapshot">{t["op_snapshot"]}</button> <output id="snapshot-out"></output></p></section>
<section aria-labelledby="aw"><h2 id="aw">{t["awards"]}</h2>
<form id="nominate-form" class="toolbar"><label for="scheme">{t["op_scheme"]}</label>
<input id="scheme" required maxlength="64">
<label for="snapshot-id">{t["op_snapshot_id"]}</label><input id="snapshot-id" required maxlength="64">
<button type="submit">{t["op_nominate"]}</button></form>
<ol id="nominations"></ol>
<form id="decision-form" class="toolbar"><label for="decision-no">{t["op_decision_no"]}</label>
<input id="decision-no" required maxlength="100"><label for="signed-on">{t["op_signed_on"]}</label>
<input id="signed-on" type="date" required><button type="submit">{t["op_decide"]}</button></form>
<p><button type="button" id="export-xlsx">{t["op_export"]} XLSX</button>
<button type="button" id="export-csv">{t["op_export"]} CSV</button></p></section>
<pre id="op-out" aria-live="polite"></pre>"""
    return layout(request, "operator", "op_title", body)
