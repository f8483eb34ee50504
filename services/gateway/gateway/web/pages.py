"""Server-rendered pages (plain Python string templates; no CDN). The pages call the public API from vanilla JS.

Every visible string comes from :mod:`gateway.web.i18n`. A page names the roles it is for
(``data-roles`` on <body>); the script shows a sign-in link to a signed-out visitor and a plain
refusal to a role the page is not for, and the navigation lists only what the account may use.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.web.i18n import pick

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
log = logging.getLogger("gateway.web")

router = APIRouter(include_in_schema=False)

# (path, label key, roles that see the link; "*" everyone). Signed out, the header's sign-in link (which
# comes back to the page) stands for the sign-in page.
NAV = (
    ("/submit", "nav_submit", "member support"),
    ("/mine", "nav_mine", "member support"),
    ("/support", "nav_support", "support operator"),
    ("/review", "nav_review", "reviewer operator"),
    ("/appraise", "nav_appraise", "appraiser operator"),
    ("/dashboard", "nav_dashboard", "support reviewer appraiser unit_admin operator"),
    ("/public", "nav_public", "*"),
    ("/operator", "nav_operator", "operator"),
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
KINDS = ("province", "sector", "district", "grassroots", "department")
CRITERIA = ("novelty", "applicability", "effectiveness", "scope")
PAGE_ROLES = {
    "submit": "member support operator",
    "mine": "member support operator",
    "support": "support operator",
    "review": "reviewer operator",
    "appraise": "appraiser operator",
    "dashboard": "support reviewer appraiser unit_admin operator",
    "operator": "operator",
    "initiative": "*signed",
}


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


def layout(request: Request, page: str, title_key: str, body: str, *, status: int = 200) -> HTMLResponse:
    lang = lang_of(request)
    t = pick(lang)
    settings = request.app.state.settings
    e = html.escape
    nav = "".join(
        f'<li data-roles="{roles}"{"" if roles in ("*", "anon") else " hidden"}>'
        f'<a href="{href}"{" aria-current=page" if href == request.url.path else ""}>{e(t[key])}</a></li>'
        for href, key, roles in NAV
    )
    other = "en" if lang == "vi" else "vi"
    config = {
        "campaign": settings.demo_campaign,
        "development": settings.environment == "development",
        "lang": lang,
        "reasons": list(REASONS),
        "criteria": list(CRITERIA),
        "undo_ms": 5000,
    }
    i18n_json = orjson.dumps(t).decode().replace("</", "<\\/")
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
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
<body data-page="{page}" data-roles="{PAGE_ROLES.get(page, "")}">
<a class="skip" href="#main">{e(t["skip"])}</a>
<header class="top">
  <div class="brand"><strong>{e(t["app"])}</strong> <span>{e(t["tagline"])}</span></div>
  <nav aria-label="{e(t["app"])}"><ul>{nav}</ul></nav>
  <div class="who"><span id="who"></span>
    <a id="signin-link" href="/?next={e(here)}">{e(t["sign_in"])}</a>
    <button type="button" id="signout" hidden>{e(t["sign_out"])}</button>
    <a href="/lang/{other}?next={e(here)}" lang="{other}">{e(t["switch_lang"])}</a></div>
</header>
<main id="main" tabindex="-1">
<h1>{e(t[title_key])}</h1>
<div id="flash" role="status" aria-live="polite"></div>
<div id="gate" hidden></div>
<div id="content">
{body}
</div>
</main>
<dialog id="confirm" aria-labelledby="confirm-h">
 <form method="dialog"><h2 id="confirm-h">{e(t["confirm_title"])}</h2><p id="confirm-text"></p>
 <p class="buttons"><button value="cancel" id="confirm-no">{e(t["cancel"])}</button>
 <button value="ok" id="confirm-yes" class="primary">{e(t["confirm"])}</button></p></form>
</dialog>
</body>
</html>"""
    return HTMLResponse(doc, status, headers={"Cache-Control": "no-store", "Content-Language": lang})


def _t(request: Request) -> dict[str, str]:
    return {k: html.escape(v) for k, v in pick(lang_of(request)).items()}


def _file_input(input_id: str, t: dict[str, str]) -> str:
    """A file input whose visible parts are in the page's language: the browser's own button says "Choose
    File" in its UI language whatever the page's, so the input is hidden from sight (still focusable, and
    named by its labels) behind a label styled as a button and the chosen file's name (app.js keeps it)."""
    return (
        f'<input id="{input_id}" name="file" type="file" accept=".xlsx,.csv" required class="file-input">'
        f'<label for="{input_id}" class="file-button">{t["choose_file"]}</label> '
        f'<span class="file-name" data-file-for="{input_id}" aria-live="polite">{t["no_file"]}</span>'
    )


def _req(t: dict[str, str]) -> str:
    """The visible required mark; screen readers hear ``required`` from the field itself."""
    return f' <span class="req" aria-hidden="true" title="{t["required_mark"]}">*</span>'


def _summary(t: dict[str, str], id_: str) -> str:
    """The error summary at the top of a form: filled by the script, focused links to each bad field."""
    return (
        f'<div id="{id_}" class="error-summary" role="alert" tabindex="-1" hidden>'
        f"<h2>{t['errors_title']}</h2><ul></ul></div>"
    )


# ---- HTML error pages -------------------------------------------------------------------------------

_API_PREFIXES = ("/api/", "/health", "/metrics", "/openapi.json", "/static/")


def _wants_page(request: Request) -> bool:
    return not request.url.path.startswith(_API_PREFIXES)


def error_page(request: Request, status: int) -> HTMLResponse:
    t = _t(request)
    kind = "notfound" if status == 404 else "servererror"
    body = f'<p>{t[kind + "_text"]}</p><p><a class="button primary" href="/">{t["home"]}</a></p>'
    return layout(request, "error", f"{kind}_title", body, status=status)


def install_html_errors(app: FastAPI) -> None:
    """Pages answer 404 and 500 as HTML pages in the visitor's language; /api/v1 keeps the JSON error shape."""
    json_http = app.exception_handlers[StarletteHTTPException]
    json_unexpected = app.exception_handlers[Exception]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        if _wants_page(request) and status in (404, 405):
            return error_page(request, 404)
        return await json_http(request, exc)  # type: ignore[no-any-return]

    async def unexpected(request: Request, exc: Exception) -> Response:
        if _wants_page(request):
            log.exception("unhandled error in a page", exc_info=exc)
            return error_page(request, 500)
        return await json_unexpected(request, exc)  # type: ignore[no-any-return]

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


# ---- pages ------------------------------------------------------------------------------------------


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
    current = (
        f'<p id="current-account" hidden>{t["already_in"]} <strong></strong>. <a href="/public">{t["go_on"]}</a></p>'
    )
    if settings.environment == "development":
        body = f'{current}<p>{t["signin_dev"]}</p><ul id="accounts" class="accounts"></ul>'
    elif settings.oidc_enabled:
        body = (
            f"{current}<p>{t['signin_prod']}</p>"
            f'<p><a class="button primary" href="/auth/login">{t["signin_oidc"]}</a></p>'
        )
    else:
        body = f"{current}<p>{t['signin_prod']}</p>"
    return layout(request, "signin", "signin_title", body)


def _unit_list(input_id: str) -> str:
    """The listbox and the status line of a unit picker (app.js ``unitPicker``) under the input ``input_id``."""
    return (
        f'<ul id="{input_id}-list" role="listbox" class="unit-list" hidden></ul>'
        f'<p id="{input_id}-status" class="hint" role="status" aria-live="polite"></p>'
    )


def _initiative_form(t: dict[str, str], *, support: bool) -> str:
    r = _req(t)
    return f"""
<form id="initiative-form" novalidate>
  <p class="hint">{t["required_hint"]}</p>
  {_summary(t, "form-errors")}
  <p><label for="unit_code">{t["f_unit"]}{r}</label>
     <input id="unit_code" name="unit_code" required maxlength="64" autocomplete="off"></p>
  {_unit_list("unit_code") if support else ""}
  <p><label for="field">{t["f_field"]}{r}</label><select id="field" name="field" required></select></p>
  <p><label for="title">{t["f_title"]}{r}</label>
     <input id="title" name="title" required minlength="5" maxlength="300"></p>
  <p class="check"><input id="confidential" name="confidential" type="checkbox" aria-describedby="conf-hint">
     <label for="confidential">{t["f_confidential"]}</label>
     <span id="conf-hint" class="hint">{t["confidential_hint"]}</span></p>
  <p data-secret-hides><label for="problem">{t["f_problem"]}{r}</label>
     <textarea id="problem" name="problem" rows="3" maxlength="20000" required></textarea></p>
  <p data-secret-hides><label for="solution">{t["f_solution"]}{r}</label>
     <textarea id="solution" name="solution" rows="3" maxlength="20000" required></textarea></p>
  <p><label for="effect">{t["f_effect"]}{r}</label>
     <textarea id="effect" name="effect" rows="3" maxlength="20000" required></textarea></p>
  <div class="row">
    <p><label for="expected_benefit_vnd">{t["f_benefit"]}</label>
       <input id="expected_benefit_vnd" name="expected_benefit_vnd" type="number" min="0" step="1" value="0"
        inputmode="numeric"></p>
    <p><label for="applied_on">{t["f_applied"]}{r}</label>
       <input id="applied_on" name="applied_on" type="date" required></p>
  </div>
  <fieldset id="authors"><legend>{t["f_authors"]}{r}</legend></fieldset>
  <p><button type="button" id="add-author">{t["add_author"]}</button></p>
  <p><button type="submit" class="primary">{t["send"]}</button></p>
  <div id="form-result" role="status" aria-live="polite" tabindex="-1"></div>
</form>
<template id="author-row"><div class="row author">
  <p><label>{t["f_member_id"]}{r} <input name="member_id" required maxlength="64"></label></p>
  <p><label>{t["f_full_name"]}{r} <input name="full_name" required maxlength="200"></label></p>
  <p><button type="button" class="remove-author">{t["remove"]}</button></p></div></template>
<input type="hidden" id="form-mode" value="{"support" if support else "member"}">"""


@router.get("/submit")
async def submit_page(request: Request) -> HTMLResponse:
    return layout(request, "submit", "submit_title", _initiative_form(_t(request), support=False))


@router.get("/mine")
async def mine_page(request: Request) -> HTMLResponse:
    t = _t(request)
    statuses = "".join(
        f'<option value="{s}">{t["st_" + s]}</option>'
        for s in ("submitted", "revision_requested", "valid", "invalid", "withdrawn")
    )
    body = f"""<form id="mine-filter" class="toolbar" role="search">
<label for="mine-q">{t["search_title"]}</label><input id="mine-q" type="search" maxlength="200">
<label for="mine-status">{t["col_status"]}</label>
<select id="mine-status"><option value="">{t["all_statuses"]}</option>{statuses}</select>
<button type="submit">{t["search"]}</button></form>
<div class="scroll"><table class="data" id="mine"><caption class="sr">{t["mine_title"]}</caption>
<thead><tr><th scope="col">{t["col_seq"]}</th><th scope="col">{t["col_title"]}</th>
<th scope="col">{t["col_status"]}</th><th scope="col">{t["col_date"]}</th><th scope="col">{t["col_actions"]}</th>
</tr></thead><tbody></tbody></table></div>
<p class="pager"><span id="mine-count" aria-live="polite"></span>
<button type="button" id="mine-more" hidden>{t["load_more"]}</button></p>
<form id="revise" hidden aria-labelledby="revise-h" novalidate><h2 id="revise-h">{t["revise_title"]}</h2>
<p id="revise-title"></p><p id="revise-note" class="warn"></p>
{_summary(t, "revise-errors")}
<p><label for="revise-problem">{t["f_problem"]}</label>
<textarea id="revise-problem" name="problem" rows="3" maxlength="20000"></textarea></p>
<p><label for="revise-solution">{t["f_solution"]}</label>
<textarea id="revise-solution" name="solution" rows="3" maxlength="20000"></textarea></p>
<p><label for="revise-effect">{t["f_effect"]}</label>
<textarea id="revise-effect" name="effect" rows="3" maxlength="20000"></textarea></p>
<p><button type="submit" class="primary">{t["send"]}</button></p></form>"""
    return layout(request, "mine", "mine_title", body)


@router.get("/initiatives/{initiative_id}")
async def initiative_page(request: Request, initiative_id: str) -> HTMLResponse:
    ident = html.escape(initiative_id[:36])
    body = f'<article id="initiative" data-id="{ident}"><p>{_t(request)["loading"]}</p></article>'
    return layout(request, "initiative", "initiative_title", body)


@router.get("/support")
async def support_page(request: Request) -> HTMLResponse:
    t = _t(request)
    body = f"""<section aria-labelledby="imp"><h2 id="imp">{t["import_title"]}</h2>
<form id="import-form" novalidate>
 <p><button type="button" id="import-template">{t["import_template"]} (XLSX)</button></p>
 <p><label for="import-file">{t["import_file"]}{_req(t)}</label>
    {_file_input("import-file", t)}</p>
 <p><button type="submit" id="import-submit">{t["import_start"]}</button></p>
 <p><label for="import-progress">{t["import_progress"]}</label>
    <progress id="import-progress" max="100" value="0">0%</progress></p>
 <p id="import-status" role="status" aria-live="polite"></p>
 <div id="import-report" hidden>
  <p><button type="button" id="import-errors-download">{t["import_errors_download"]}</button></p>
  <div class="scroll"><table class="data" id="import-errors"><caption class="sr">{t["import_errors_n"]}</caption>
  <thead><tr><th scope="col">{t["col_row"]}</th><th scope="col">{t["col_field"]}</th>
  <th scope="col">{t["col_message"]}</th></tr></thead><tbody></tbody></table></div></div>
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
</div>
<dl class="counters">
 <div><dt>{t["in_batch"]}</dt><dd id="in-batch">0</dd></div>
 <div><dt>{t["waiting"]}</dt><dd id="waiting">–</dd></div>
 <div><dt>{t["done_today"]}</dt><dd id="done-today">0</dd></div>
 <div><dt>{t["lease"]}</dt><dd id="lease">–</dd></div>
</dl>
<p class="hint">{t["keys_help"]}</p>
<div id="undo-bar" class="undo" role="status" aria-live="polite" hidden><span id="undo-text"></span>
 <button type="button" id="undo">{t["undo"]} (U)</button></div>
<div id="workspace" class="split" tabindex="0" aria-label="{t["review_title"]}">
 <article id="current" aria-live="polite"><p>{t["queue_empty"]}</p></article>
 <aside id="similar" aria-label="{t["similar"]}" hidden></aside>
</div>
<form id="decide" class="decide" hidden novalidate>
 <p id="reason-row" hidden><label for="reason">{t["reason"]}</label><select id="reason">{reasons}</select></p>
 <p id="note-row" hidden><label for="note">{t["note"]}</label>
 <textarea id="note" rows="2" maxlength="2000"></textarea></p>
 <p><button type="submit" class="primary">{t["confirm"]}</button></p>
</form>
<p class="buttons"><button type="button" data-key="v">{t["valid"]} (V)</button>
<button type="button" data-key="i">{t["invalid"]} (I)</button>
<button type="button" data-key="r">{t["revision"]} (R)</button>
<button type="button" data-key="n">{t["next"]} (N)</button></p>"""
    return layout(request, "review", "review_title", body)


@router.get("/appraise")
async def appraise_page(request: Request) -> HTMLResponse:
    t = _t(request)
    r = _req(t)
    scores = "".join(
        f'<p class="score"><label for="sc-{c}">{t["crit_" + c]}{r}</label>'
        f'<input id="sc-{c}" name="{c}" type="number" min="0" max="10" step="1" inputmode="numeric" required></p>'
        for c in CRITERIA
    )
    heads = "".join(f'<th scope="col">{t["crit_" + c]}</th>' for c in CRITERIA)
    body = f"""<div class="split">
<section aria-labelledby="ap-list-h"><h2 id="ap-list-h">{t["appraise_list"]}</h2>
<form id="ap-filter" class="toolbar" role="search">
 <label for="ap-state">{t["show_state"]}</label>
 <select id="ap-state"><option value="todo">{t["state_todo"]}</option>
 <option value="done">{t["state_done"]}</option></select>
 <label for="ap-q">{t["search_title"]}</label><input id="ap-q" type="search" maxlength="200">
 <button type="submit">{t["search"]}</button></form>
<ul id="ap-items" class="picklist"></ul>
<p class="pager"><button type="button" id="ap-more" hidden>{t["load_more"]}</button></p>
</section>
<section aria-labelledby="ap-cur-h" id="ap-detail"><h2 id="ap-cur-h">{t["pick_item"]}</h2>
<div id="ap-body"></div>
<form id="ap-form" novalidate hidden>
 <p class="hint">{t["score_help"]}</p>
 {_summary(t, "ap-errors")}
 <div class="scores">{scores}</div>
 <p><label for="ap-note">{t["note"]}</label><textarea id="ap-note" name="note" rows="2" maxlength="5000"></textarea></p>
 <dl class="counters" aria-live="polite">
  <div><dt>{t["my_mean"]}</dt><dd id="ap-my-mean">–</dd></div>
  <div><dt>{t["overall_mean"]}</dt><dd id="ap-mean">–</dd></div>
  <div><dt>{t["grade"]}</dt><dd id="ap-grade">–</dd></div>
 </dl>
 <p><button type="submit" class="primary">{t["save_appraisal"]}</button></p>
</form>
<h3>{t["earlier_appraisals"]}</h3>
<div class="scroll"><table class="data" id="ap-earlier"><thead><tr>{heads}<th scope="col">{t["note"]}</th>
<th scope="col">{t["col_appraised_at"]}</th></tr></thead><tbody></tbody></table></div>
</section></div>"""
    return layout(request, "appraise", "appraise_title", body)


def _unit_filter(t: dict[str, str], id_: str) -> str:
    """A filter over a long list of units and its "more" button (the script pages the list by 50)."""
    return (
        f'<p class="toolbar" id="{id_}"><label for="{id_}-q">{t["filter_units"]}</label>'
        f'<input id="{id_}-q" type="search" maxlength="100"> <button type="button" hidden>{t["load_more"]}</button></p>'
    )


def _kind_options(t: dict[str, str]) -> str:
    return "".join(f'<option value="{k}">{t["kind_" + k]}</option>' for k in KINDS)


def _rankings_block(t: dict[str, str]) -> str:
    return f"""<section aria-labelledby="rk"><h2 id="rk">{t["rankings"]}</h2>
<form id="rank-form" class="toolbar">
 <label for="rk-kind">{t["kind"]}</label><select id="rk-kind">{_kind_options(t)}</select>
 <label for="rk-cluster">{t["cluster"]}</label><input id="rk-cluster" size="6" maxlength="64">
 <label for="rk-metric">{t["metric"]}</label><select id="rk-metric"><option value="valid">{t["valid_n"]}</option>
 <option value="participants">{t["participants"]}</option><option value="achievement_pct">{t["achievement"]}</option>
 <option value="benefit_vnd">{t["benefit"]}</option></select>
 <button type="submit">{t["show"]}</button></form>
<ol id="rankings" class="rank"></ol></section>
<section aria-labelledby="ms"><h2 id="ms">{t["milestones"]}</h2><p id="next-milestone"></p>
<ul id="milestones"></ul></section>
<section aria-labelledby="aw"><h2 id="aw">{t["awards"]}</h2><ul id="awards"></ul></section>"""


@router.get("/dashboard")
async def dashboard_page(request: Request) -> HTMLResponse:
    t = _t(request)
    cols = (
        ("code", "col_unit"),
        ("submitted", "submitted"),
        ("valid", "valid_n"),
        ("participants", "participants"),
        ("quota", "quota"),
        ("achievement_pct", "achievement"),
    )
    heads = "".join(f'<th scope="col"><button type="button" data-sort="{c}">{t[key]}</button></th>' for c, key in cols)
    body = f"""<form id="unit-form" class="toolbar" role="search"><label for="unit">{t["unit_pick"]}</label>
<input id="unit" maxlength="64" required aria-describedby="unit-hint" autocomplete="off">
<button type="submit">{t["show"]}</button> <a id="unit-up" href="#" hidden>{t["up_one"]}</a></form>
{_unit_list("unit")}
<p id="unit-hint" class="hint">{t["unit_pick_hint"]}</p>
<p id="unit-error" class="error" role="alert" hidden></p>
<h2 id="unit-name"></h2>
<p id="missing" class="warn" hidden></p>
<dl id="figures" class="cards"></dl>
<p id="sibling-rank"></p>
<section aria-labelledby="ch"><h2 id="ch">{t["chart"]}</h2><figure id="chart-box"><div id="chart"></div>
<details><summary>{t["chart_table"]}</summary><div class="scroll"><table class="data" id="chart-table"><thead><tr>
<th scope="col">{t["col_day"]}</th><th scope="col">{t["submitted"]}</th><th scope="col">{t["valid_n"]}</th></tr></thead>
<tbody></tbody></table></div></details></figure></section>
<section aria-labelledby="kids"><h2 id="kids">{t["children"]}</h2>
{_unit_filter(t, "kids-filter")}
<div class="scroll"><table class="data" id="children"><thead><tr>{heads}</tr></thead><tbody></tbody></table></div>
</section>
{_rankings_block(t)}"""
    return layout(request, "dashboard", "dash_title", body)


@router.get("/public")
async def public_page(request: Request) -> HTMLResponse:
    return layout(request, "public", "public_title", _rankings_block(_t(request)))


@router.get("/operator")
async def operator_page(request: Request) -> HTMLResponse:
    t = _t(request)
    r = _req(t)
    services = ("intake", "review", "tally", "awards")
    dl_rows = "".join(
        f'<tr data-service="{s}"><th scope="row">{s}</th><td class="num" data-count>–</td>'
        f'<td><button type="button" data-inspect="{s}">{t["op_inspect"]}</button> '
        f'<button type="button" data-replay="{s}">{t["op_replay"]}</button></td></tr>'
        for s in services
    )
    body = f"""<nav class="tabs" aria-label="{t["op_title"]}"><ul>
<li><a href="#op-health">{t["op_health"]}</a></li><li><a href="#op-units">{t["op_units"]}</a></li>
<li><a href="#op-campaign">{t["op_campaign"]}</a></li><li><a href="#op-quotas">{t["op_quotas"]}</a></li>
<li><a href="#op-awards">{t["awards"]}</a></li>
<li><a href="#op-dl">{t["op_deadletters"]}</a></li></ul></nav>

<section id="op-health" aria-labelledby="hh"><h2 id="hh">{t["op_health"]}</h2>
<p><button type="button" id="health-refresh">{t["op_refresh"]}</button></p>
<div class="scroll"><table class="data" id="health"><thead><tr><th scope="col">{t["op_service"]}</th>
<th scope="col">{t["op_state"]}</th><th scope="col">{t["op_figures"]}</th></tr></thead><tbody></tbody></table></div>
</section>

<section id="op-units" aria-labelledby="u"><h2 id="u">{t["op_units"]}</h2>
<form id="tree-form" class="toolbar" role="search"><label for="tree-unit">{t["unit_pick"]}</label>
<input id="tree-unit" maxlength="64" autocomplete="off">
<button type="submit">{t["show"]}</button></form>
{_unit_list("tree-unit")}
<p id="tree-error" class="error" role="alert" hidden></p>
{_unit_filter(t, "tree-filter")}
<div class="scroll"><table class="data" id="tree"><caption id="tree-caption"></caption><thead><tr>
<th scope="col">{t["unit_code"]}</th><th scope="col">{t["op_unit_name"]}</th><th scope="col">{t["kind"]}</th>
<th scope="col">{t["cluster"]}</th><th scope="col">{t["op_member_count"]}</th></tr></thead><tbody></tbody></table></div>
<h3>{t["op_unit_edit"]}</h3>
<form id="unit-edit" novalidate>
{_summary(t, "unit-edit-errors")}
<div class="row">
<p><label for="ue-code">{t["unit_code"]}{r}</label><input id="ue-code" name="code" required maxlength="64"></p>
<p><label for="ue-name">{t["op_unit_name"]}{r}</label><input id="ue-name" name="name" required maxlength="300"></p>
<p><label for="ue-kind">{t["kind"]}{r}</label><select id="ue-kind" name="kind">{_kind_options(t)}
<option value="national">{t["kind_national"]}</option></select></p>
<p><label for="ue-parent">{t["op_parent"]}</label><input id="ue-parent" name="parent_code" maxlength="64"></p>
<p><label for="ue-cluster">{t["cluster"]}</label><input id="ue-cluster" name="cluster" maxlength="64"></p>
<p><label for="ue-members">{t["op_member_count"]}</label>
<input id="ue-members" name="member_count" type="number" min="0" step="1"></p></div>
<p><button type="submit" class="primary">{t["save"]}</button></p></form>
<h3>{t["op_units_import"]}</h3>
<form id="units-file-form" class="toolbar" novalidate><label for="units-file">{t["import_file"]}</label>
{_file_input("units-file", t)} <button type="submit">{t["upload"]}</button></form>
<div id="units-file-result" role="status" aria-live="polite"></div>
</section>

<section id="op-campaign" aria-labelledby="c"><h2 id="c">{t["op_campaign"]}</h2>
<form id="campaign-form" novalidate>{_summary(t, "campaign-errors")}
<div class="row">
<p><label for="cp-name">{t["op_campaign_name"]}{r}</label><input id="cp-name" name="name" required maxlength="300"></p>
<p><label for="cp-from">{t["op_window_from"]}</label><input id="cp-from" name="from" type="date"></p>
<p><label for="cp-to">{t["op_window_to"]}</label><input id="cp-to" name="to" type="date"></p></div>
<p><label for="cp-milestones">{t["milestones"]}</label>
<input id="cp-milestones" name="milestones" inputmode="numeric" aria-describedby="cp-ms-hint">
<span id="cp-ms-hint" class="hint">{t["op_milestones_hint"]}</span></p>
<h3>{t["f_field"]}</h3>
<div class="scroll"><table class="data" id="cp-fields"><thead><tr><th scope="col">{t["op_code"]}</th>
<th scope="col">{t["op_name"]}</th><th scope="col">{t["col_actions"]}</th></tr></thead><tbody></tbody></table></div>
<p><button type="button" id="cp-add-field">{t["op_add_field"]}</button></p>
<h3>{t["op_phases"]}</h3>
<div class="scroll"><table class="data" id="cp-phases"><thead><tr><th scope="col">{t["op_code"]}</th>
<th scope="col">{t["op_name"]}</th><th scope="col">{t["op_opens"]}</th><th scope="col">{t["op_closes"]}</th>
<th scope="col">{t["col_actions"]}</th></tr></thead><tbody></tbody></table></div>
<p><button type="button" id="cp-add-phase">{t["op_add_phase"]}</button></p>
<p><button type="submit" class="primary">{t["save"]}</button></p></form>
</section>

<section id="op-quotas" aria-labelledby="q"><h2 id="q">{t["op_quotas"]}</h2>
<p id="campaign-summary"></p>
<form id="quota-form" novalidate><div class="scroll">
<table class="data" id="quota-grid"><thead></thead><tbody></tbody></table>
</div><p><button type="submit" class="primary">{t["save"]}</button></p></form>
<div id="quota-result" role="status" aria-live="polite"></div>
</section>

<section id="op-awards" aria-labelledby="aw"><h2 id="aw">{t["awards"]}</h2>
<div class="scroll"><table class="data" id="schemes"><caption>{t["op_schemes"]}</caption><thead><tr>
<th scope="col">{t["op_scheme"]}</th><th scope="col">{t["op_recipient"]}</th><th scope="col">{t["op_rule"]}</th>
<th scope="col">{t["op_max"]}</th></tr></thead><tbody></tbody></table></div>
<h3>{t["op_scheme_edit"]}</h3>
<form id="scheme-form" novalidate>{_summary(t, "scheme-errors")}
<div class="row">
<p><label for="sc-code">{t["op_scheme"]}{r}</label><input id="sc-code" name="code" required maxlength="64"></p>
<p><label for="sc-name">{t["op_name"]}{r}</label><input id="sc-name" name="name" required maxlength="300"></p>
<p><label for="sc-recipient">{t["op_recipient"]}{r}</label><select id="sc-recipient" name="recipient">
<option value="collective">{t["recipient_collective"]}</option>
<option value="individual">{t["recipient_individual"]}</option></select></p>
<p data-collective><label for="sc-kind">{t["kind"]}{r}</label><select id="sc-kind" name="unit_kind">
{_kind_options(t)}</select></p>
<p><label for="sc-phase">{t["op_phase"]}</label><select id="sc-phase" name="phase">
<option value="">{t["op_whole_campaign"]}</option></select></p>
<p><label for="sc-max">{t["op_max"]}{r}</label><input id="sc-max" name="max_recipients" type="number" min="1" step="1"
 required></p></div>
<fieldset><legend>{t["op_rule"]}</legend><div class="row">
<p><label for="sc-min-valid">{t["op_min_valid"]}</label>
<input id="sc-min-valid" name="min_valid" type="number" min="0"></p>
<p data-collective><label for="sc-min-pct">{t["op_min_pct"]}</label>
<input id="sc-min-pct" name="min_achievement_pct" type="number" min="0" step="0.01"></p>
<p><label for="sc-min-benefit">{t["op_min_benefit"]}</label>
<input id="sc-min-benefit" name="min_benefit_vnd" type="number" min="0"></p>
<p data-collective><label for="sc-min-part">{t["op_min_participants"]}</label>
<input id="sc-min-part" name="min_participants" type="number" min="0"></p>
<p data-collective><label for="sc-top">{t["op_top_per_cluster"]}</label>
<input id="sc-top" name="top_per_cluster" type="number" min="1"></p>
<p data-individual class="check"><input id="sc-g-ex" name="grade_excellent" type="checkbox">
<label for="sc-g-ex">{t["grade_excellent"]}</label>
<input id="sc-g-ty" name="grade_typical" type="checkbox"><label for="sc-g-ty">{t["grade_typical"]}</label></p>
<p><label for="sc-order">{t["op_order_by"]}</label><select id="sc-order" name="order_by"></select></p>
</div></fieldset>
<p class="rule-words" id="scheme-words" aria-live="polite"></p>
<p><button type="submit" class="primary">{t["save"]}</button></p></form>
<h3>{t["op_nominations"]}</h3>
<p><button type="button" id="snapshot">{t["op_snapshot"]}</button> <output id="snapshot-out"></output></p>
<form id="nominate-form" class="toolbar" novalidate><label for="scheme">{t["op_scheme"]}</label>
<select id="scheme" required></select>
<label for="snapshot-id">{t["op_snapshot_id"]}</label><input id="snapshot-id" required maxlength="64">
<button type="submit">{t["op_nominate"]}</button></form>
<div class="scroll"><table class="data" id="nominations" hidden><caption>{t["op_nominations"]}</caption><thead><tr>
<th scope="col">{t["op_choose"]}</th><th scope="col">#</th><th scope="col">{t["op_recipient"]}</th>
<th scope="col">{t["op_figures"]}</th></tr></thead><tbody></tbody></table></div>
<form id="decision-form" class="toolbar" novalidate><label for="decision-no">{t["op_decision_no"]}</label>
<input id="decision-no" required maxlength="100"><label for="signed-on">{t["op_signed_on"]}</label>
<input id="signed-on" type="date" required><button type="submit" class="primary">{t["op_decide"]}</button></form>
<div id="decision-result" role="status" aria-live="polite"></div>
<p><button type="button" id="export-xlsx">{t["op_export"]} XLSX</button>
<button type="button" id="export-csv">{t["op_export"]} CSV</button></p></section>

<section id="op-dl" aria-labelledby="dl"><h2 id="dl">{t["op_deadletters"]}</h2>
<div class="scroll"><table class="data" id="deadletters"><thead><tr><th scope="col">{t["op_service"]}</th>
<th scope="col">{t["op_deadletters"]}</th><th scope="col">{t["col_actions"]}</th></tr></thead><tbody>{dl_rows}</tbody>
</table></div>
<div id="dl-detail" role="region" aria-live="polite" aria-label="{t["op_deadletters"]}"></div>
</section>"""
    return layout(request, "operator", "op_title", body)
