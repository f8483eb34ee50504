"use strict";
// Vanilla JS for the gateway's pages: every call goes to the public API with the token in localStorage.
const T = JSON.parse(document.getElementById("i18n").textContent);
const CFG = JSON.parse(document.getElementById("config").textContent);
// Every visible string goes through tr(): a key with no text shows as ⟦key⟧ and is recorded, so the
// browser tests fail on any untranslated key.
window.__missingKeys = [];
const tr = (key) => {
  if (Object.prototype.hasOwnProperty.call(T, key)) return T[key];
  window.__missingKeys.push(key);
  return `⟦${key}⟧`;
};
const $ = (s, r = document) => r.querySelector(s);
const $$ = (s, r = document) => [...r.querySelectorAll(s)];
const el = (tag, attrs = {}, ...kids) => {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") n.textContent = v; else if (k.startsWith("on")) n.addEventListener(k.slice(2), v); else n.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids) if (k !== null && k !== undefined) n.append(k);
  return n;
};
const LOCALE = CFG.lang === "en" ? "en-US" : "vi-VN";
const fmt = (n) => (n === null || n === undefined ? "–" : typeof n === "number" ? n.toLocaleString(LOCALE) : String(n));
const fmtDec = (n, digits = 2) => (n === null || n === undefined ? "–" : Number(n).toLocaleString(LOCALE, { maximumFractionDigits: digits }));
const fmtPct = (n) => (n === null || n === undefined ? "–" : `${fmtDec(n, 2)} %`);
// Money the Vietnamese way: "584 tỷ đồng", "1,5 triệu đồng", "250.000 đồng".
function fmtMoney(n) {
  if (n === null || n === undefined) return "–";
  const a = Math.abs(n);
  if (a >= 1e9) return `${fmtDec(n / 1e9, a >= 1e11 ? 0 : 1)} ${tr("money_billion")}`;
  if (a >= 1e6) return `${fmtDec(n / 1e6, a >= 1e8 ? 0 : 1)} ${tr("money_million")}`;
  return `${fmt(n)} ${tr("money_unit")}`;
}
const fmtDate = (s) => {
  if (!s) return "–";
  const d = new Date(s.length === 10 ? s + "T00:00:00" : s);
  return Number.isNaN(d.getTime()) ? s : d.toLocaleDateString(LOCALE);
};
const kindName = (k) => (k ? tr("kind_" + k) : "");
const roleName = (r) => tr("role_" + r);
const statusName = (s) => tr("st_" + s);

function flash(msg, kind = "info") {
  const f = $("#flash");
  f.textContent = msg || "";
  f.dataset.kind = kind;
}

const session = {
  get token() { return localStorage.getItem("sk_token"); },
  get account() { try { return JSON.parse(localStorage.getItem("sk_account") || "null"); } catch { return null; } },
  set(token, account) { localStorage.setItem("sk_token", token); localStorage.setItem("sk_account", JSON.stringify(account)); },
  clear() { localStorage.removeItem("sk_token"); localStorage.removeItem("sk_account"); },
};
const hasRole = (...roles) => { const a = session.account; return !!a && a.roles.some((r) => roles.includes(r)); };

class ApiFailure extends Error {
  constructor(status, body) {
    const msg = status === 0 ? tr("err_network") : status >= 500 ? tr("err_server") : (body && body.error && body.error.message) || String(status);
    super(msg); this.status = status; this.body = body; this.code = body && body.error && body.error.code;
  }
}

async function api(method, path, body, extra = {}) {
  const headers = { Accept: "application/json", ...extra };
  if (session.token) headers.Authorization = "Bearer " + session.token;
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  let r;
  try { r = await fetch(path, { method, headers, body: payload }); } catch { throw new ApiFailure(0, null); }
  const ct = r.headers.get("content-type") || "";
  const data = ct.includes("json") ? await r.json() : await r.text();
  if (r.status === 401 && session.token) { session.clear(); showWho(); }
  if (!r.ok) throw new ApiFailure(r.status, data);
  return data;
}

function errorText(e) { return `${tr("error")}: ${e.message}`; }

// ---- header: who, navigation by role, sign-in / sign-out ------------------------------------------
function showWho() {
  const a = session.account;
  $("#who").textContent = a ? `${a.name} (${a.roles.map(roleName).join(", ")} · ${a.unit})` : "";
  $("#signout").hidden = !a;
  $("#signin-link").hidden = !!a || document.body.dataset.page === "signin";
  for (const li of $$("nav [data-roles]")) {
    const roles = li.dataset.roles;
    li.hidden = roles === "*" ? false : roles === "anon" ? !!a : !(a && a.roles.some((r) => roles.split(" ").includes(r)));
  }
}

// A page for some roles: a signed-out visitor gets a sign-in link, another role a plain refusal.
function gate() {
  const need = document.body.dataset.roles;
  if (!need) return true;
  const a = session.account, box = $("#gate");
  let ok = !!a;
  if (a && need !== "*signed") ok = a.roles.some((r) => need.split(" ").includes(r));
  if (ok) return true;
  $("#content").hidden = true;
  box.hidden = false;
  const next = location.pathname + location.search;
  box.replaceChildren(a
    ? el("p", { class: "warn", text: tr("no_permission") })
    : el("p", {}, el("span", { text: tr("signed_out") + " " }), el("a", { class: "button primary", href: `/?next=${encodeURIComponent(next)}`, text: tr("need_signin_link") })));
  return false;
}

// ---- confirmation of irreversible acts --------------------------------------------------------------
function confirmAct(text) {
  const d = $("#confirm");
  $("#confirm-text").textContent = text;
  return new Promise((resolve) => {
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
    d.returnValue = "cancel";
    d.showModal();
    $("#confirm-no").focus();
  });
}

// ---- forms: checks in the browser, a summary at the top, focus on the first bad field -----------------
function clearErrors(form) {
  form.querySelectorAll(".err").forEach((n) => n.remove());
  form.querySelectorAll("[aria-invalid]").forEach((n) => { n.removeAttribute("aria-invalid"); n.removeAttribute("aria-errormessage"); });
  const sum = $(".error-summary", form); if (sum) { sum.hidden = true; $("ul", sum).replaceChildren(); }
}

// errors: [{input, message}] — each shown beside its field and listed (with a link) in the summary.
function showErrors(form, errors, label) {
  const sum = $(".error-summary", form);
  errors.forEach(({ input, message }, i) => {
    const id = `${form.id}-err-${i}`;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-errormessage", id);
    const described = (input.getAttribute("aria-describedby") || "").split(" ").filter((x) => x && !x.includes("-err-"));
    input.setAttribute("aria-describedby", [...described, id].join(" "));
    input.insertAdjacentElement("afterend", el("span", { class: "err", id, text: message }));
    if (sum) {
      if (!input.id) input.id = `${form.id}-f-${i}`;
      $("ul", sum).append(el("li", {}, el("a", { href: "#" + input.id, onclick: (ev) => { ev.preventDefault(); input.focus(); }, text: label ? `${label(input)}: ${message}` : message })));
    }
  });
  if (sum && errors.length) sum.hidden = false;
  if (errors.length) errors[0].input.focus();
}

const labelOf = (input) => {
  const l = input.id && document.querySelector(`label[for="${input.id}"]`) || input.closest("label");
  return l ? [...l.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join("").trim() : input.name;
};

// ---- sign-in -----------------------------------------------------------------------------------------
const HOME = { member: "/submit", support: "/support", reviewer: "/review", appraiser: "/appraise", unit_admin: "/dashboard", operator: "/operator" };
function homeOf(account) { return HOME[account.roles.find((r) => HOME[r])] || "/dashboard"; }

async function pageSignin() {
  const params = new URLSearchParams(location.search);
  const next = params.get("next");
  const target = (acc) => (next && next.startsWith("/") && !next.startsWith("//") ? next : homeOf(acc));
  const result = $("#signin-result");  // back from the identity provider (/auth/callback)
  if (result) {
    const r = JSON.parse(result.textContent);
    session.set(r.token, r.account);
    location.replace(r.next && r.next !== "/" ? r.next : homeOf(r.account));
    return;
  }
  const a = session.account;
  if (a) {
    const cur = $("#current-account");
    cur.hidden = false;
    $("strong", cur).textContent = `${a.name} (${a.roles.map(roleName).join(", ")})`;
    $("a", cur).href = target(a);
  }
  const list = $("#accounts");
  if (!list) return;
  const { items } = await api("GET", "/api/v1/dev/accounts");
  for (const acc of items) {
    list.append(el("li", {}, el("button", {
      type: "button", "data-account": acc.key,
      onclick: async () => {
        try {
          const r = await api("POST", "/api/v1/dev/token", { account: acc.key });
          session.set(r.token, r.account);
          location.href = target(r.account);
        } catch (e) { flash(errorText(e), "error"); }
      },
    }, el("strong", { text: acc.name }), el("br"), el("span", { text: `${acc.roles.map(roleName).join(", ")} · ${acc.unit}` }))));
  }
}

// ---- long lists of units: a filter by code or name and "Xem thêm" (a province has thousands of unions) ----
const PAGE_ROWS = 50;
function unitFilter(box, rerender) {
  // box holds an input[type=search] and a "more" button; returns (units) => the ones to show now
  let limit = PAGE_ROWS;
  const q = $("input", box), more = $("button", box);
  q.addEventListener("input", () => { limit = PAGE_ROWS; rerender(); });
  more.addEventListener("click", () => { limit += PAGE_ROWS; rerender(); });
  const visible = (list, unitOf = (x) => x) => {
    const needle = norm(q.value.trim());
    const hits = needle ? list.filter((x) => { const u = unitOf(x); return norm(u.code).includes(needle) || norm(u.name || "").includes(needle); }) : list;
    more.hidden = hits.length <= limit;
    more.textContent = `${tr("load_more")} (${fmt(hits.length - limit)})`;
    return hits.slice(0, limit);
  };
  visible.reset = () => { q.value = ""; limit = PAGE_ROWS; };  // another unit: start again
  return visible;
}

// ---- unit picker: a search over the account's whole subtree (tally's GET /units?q=), code or name, accents
// optional. A listbox of our own, not a <datalist>: the browser would filter a datalist again by the typed
// text, and hide "Ba Đình" from "ba dinh".
const unitCache = new Map();
async function unitInfo(code) {
  if (!unitCache.has(code)) unitCache.set(code, api("GET", `/api/v1/units/${encodeURIComponent(code)}`).catch((e) => { unitCache.delete(code); throw e; }));
  return unitCache.get(code);
}
function unitPicker(input) {
  const list = $(`#${input.id}-list`), status = $(`#${input.id}-status`);
  if (!list || input.dataset.picker) return;
  input.dataset.picker = "1";
  let asked = 0, timer = 0, active = -1;
  const options = () => $$("[role=option]", list);
  const close = () => { list.hidden = true; input.setAttribute("aria-expanded", "false"); input.removeAttribute("aria-activedescendant"); active = -1; };
  const mark = (i) => {
    const all = options();
    active = all.length ? (i + all.length) % all.length : -1;
    all.forEach((o, k) => o.setAttribute("aria-selected", String(k === active)));
    if (active >= 0) { input.setAttribute("aria-activedescendant", all[active].id); all[active].scrollIntoView({ block: "nearest" }); }
  };
  const pick = (code) => { input.value = code; close(); status.textContent = ""; input.dispatchEvent(new CustomEvent("unitpicked", { detail: code })); };
  const search = async () => {
    const q = input.value.trim(), mine = ++asked;
    let found;
    try { found = await api("GET", `/api/v1/units?q=${encodeURIComponent(q)}&limit=20`); } catch { return; /* the picker still takes a typed code */ }
    if (mine !== asked) return;  // the newest query wins
    list.replaceChildren(...found.items.map((u, i) => el("li", { role: "option", id: `${input.id}-opt-${i}`, "aria-selected": "false", "data-code": u.code,
      onmousedown: (ev) => { ev.preventDefault(); pick(u.code); } }, el("b", { text: u.code }), ` ${u.name} · ${kindName(u.kind)}`)));
    status.textContent = found.items.length ? (found.more ? tr("unit_more") : "") : q ? tr(found.outside_scope ? "unit_out_of_scope" : "unit_not_found") : "";
    active = -1;
    if (document.activeElement === input && found.items.length) { list.hidden = false; input.setAttribute("aria-expanded", "true"); } else close();
  };
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", list.id);
  input.setAttribute("aria-expanded", "false");
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 150); });
  input.addEventListener("focus", () => { if (!list.children.length) search(); else if (options().length) { list.hidden = false; input.setAttribute("aria-expanded", "true"); } });
  input.addEventListener("blur", close);
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      if (list.hidden && options().length) { list.hidden = false; input.setAttribute("aria-expanded", "true"); }
      mark(active + (ev.key === "ArrowDown" ? 1 : -1)); ev.preventDefault();
    } else if (ev.key === "Enter" && !list.hidden && active >= 0) { ev.preventDefault(); pick(options()[active].dataset.code); }
    else if (ev.key === "Escape" && !list.hidden) { ev.preventDefault(); close(); }
  });
}
function unitError(e) {
  if (e.status === 404) return tr("unit_not_found");
  if (e.status === 403) return tr("unit_out_of_scope");
  return errorText(e);
}

// ---- submission form (member and support) ------------------------------------------------------
const FALLBACK_FIELDS = [{ code: "production", name: "Sản xuất kinh doanh" }, { code: "safety", name: "An toàn vệ sinh lao động, môi trường" }, { code: "admin", name: "Cải cách hành chính, quản lý" }, { code: "community", name: "Cộng đồng (y tế, giáo dục)" }, { code: "digital", name: "Chuyển đổi số" }];
async function fillFields(select) {
  let fields = [];
  try { fields = (await api("GET", `/api/v1/campaigns/${encodeURIComponent(CFG.campaign)}`)).fields || []; } catch { /* tally down: the usual fields */ }
  if (!fields.length) fields = FALLBACK_FIELDS;
  for (const f of fields) select.append(el("option", { value: f.code, text: f.name }));
}

function addAuthor(box, memberId = "", name = "") {
  const row = $("#author-row").content.firstElementChild.cloneNode(true);
  $("[name=member_id]", row).value = memberId;
  $("[name=full_name]", row).value = name;
  $(".remove-author", row).addEventListener("click", () => { if (box.querySelectorAll(".author").length > 1) row.remove(); });
  box.append(row);
  return row;
}

const today = () => { const d = new Date(); return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`; };

function checkInitiative(form) {
  const errs = [];
  const bad = (input, key) => errs.push({ input, message: tr(key) });
  const f = form.elements;
  const secret = f.confidential.checked;
  if (!f.unit_code.value.trim()) bad(f.unit_code, "v_unit");
  if (!f.field.value) bad(f.field, "v_field");
  const title = f.title.value.trim();
  if (!title) bad(f.title, "v_title_empty"); else if (title.length < 5) bad(f.title, "v_title_short"); else if (title.length > 300) bad(f.title, "v_title_long");
  for (const k of ["problem", "solution", "effect"]) {
    if (secret && k !== "effect") continue;
    const v = f[k].value.trim();
    if (!v) bad(f[k], "v_" + k); else if (v.length > 20000) bad(f[k], "v_text_long");
  }
  const benefit = f.expected_benefit_vnd;
  if (benefit.validity.badInput) bad(benefit, "v_benefit_integer");
  else if (benefit.value !== "") {
    const n = Number(benefit.value);
    if (n < 0) bad(benefit, "v_benefit_negative"); else if (!Number.isInteger(n)) bad(benefit, "v_benefit_integer");
  }
  if (!f.applied_on.value) bad(f.applied_on, "v_applied_empty"); else if (f.applied_on.value > today()) bad(f.applied_on, "v_applied_future");
  for (const row of form.querySelectorAll(".author")) {
    const m = $("[name=member_id]", row), n = $("[name=full_name]", row);
    if (!m.value.trim()) bad(m, "v_member_id");
    if (!n.value.trim()) bad(n, "v_full_name");
  }
  return errs;
}

// The unit typed in: tally tells an unknown code apart from one outside the account's subtree (the tree is
// not secret), so the form can say which; intake itself answers both as "out of scope".
async function unitProblem(code) {
  try {
    const u = await unitInfo(code);
    const scope = session.account?.unit;
    if (!hasRole("operator") && scope && Array.isArray(u.path) && !u.path.includes(scope)) return "unit_out_of_scope";
    if (!["grassroots", "department"].includes(u.kind)) return "v_unit_kind";
    return null;
  } catch (e) { return e.status === 404 ? "unit_not_found" : null; }
}

// The API's field errors, beside their fields (authors.0.full_name → the first author's name).
function apiErrors(form, details) {
  const out = [];
  for (const d of details || []) {
    const parts = String(d.field).split(".");
    let input = form.querySelector(`[name="${parts[0]}"]`);
    if (parts[0] === "authors" && parts.length >= 3) input = form.querySelectorAll(".author")[+parts[1]]?.querySelector(`[name="${parts[2]}"]`);
    if (!input || input.type === "hidden") input = form.querySelector("[name=title]") || form.querySelector("input,textarea,select");
    out.push({ input, message: d.message });
  }
  return out;
}

async function initiativeForm() {
  const form = $("#initiative-form");
  if (!form) return;
  const mode = $("#form-mode").value;
  const box = $("#authors");
  const defaults = () => {
    const a = session.account;
    box.querySelectorAll(".author").forEach((r) => r.remove());
    if (a && a.member_id && mode === "member") addAuthor(box, a.member_id, a.name); else addAuthor(box);
    $("#unit_code").value = a && mode === "member" ? a.unit : "";
    $("#applied_on").value = today();
    $("#applied_on").max = today();
    $("#expected_benefit_vnd").value = "0";
    secretChanged();
  };
  const secretChanged = () => {
    const secret = $("#confidential").checked;
    for (const p of $$("[data-secret-hides]", form)) { p.hidden = secret; $("textarea", p).required = !secret; }
  };
  $("#confidential").addEventListener("change", secretChanged);
  await fillFields($("#field"));
  if (mode === "support") unitPicker($("#unit_code"));
  defaults();
  $("#add-author").addEventListener("click", () => { if (box.querySelectorAll(".author").length < 20) $("input", addAuthor(box)).focus(); });
  const send = $("button[type=submit]", form);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (send.disabled) return;
    clearErrors(form);
    $("#form-result").replaceChildren();
    const errs = checkInitiative(form);
    const unitCode = form.elements.unit_code.value.trim();
    const unitBad = unitCode && !errs.some((x) => x.input === form.elements.unit_code) ? await unitProblem(unitCode) : null;
    if (unitBad) errs.unshift({ input: form.elements.unit_code, message: `${tr(unitBad)}: ${unitCode}` });
    if (errs.length) { showErrors(form, errs, labelOf); return; }
    const v = (n) => form.elements[n].value;
    const secret = form.elements.confidential.checked;
    const body = {
      campaign: CFG.campaign, unit_code: v("unit_code").trim(), field: v("field"), title: v("title").trim(),
      problem: secret ? "" : v("problem"), solution: secret ? "" : v("solution"), effect: v("effect"),
      expected_benefit_vnd: Number(v("expected_benefit_vnd") || 0), applied_on: v("applied_on"),
      confidential: secret,
      authors: [...form.querySelectorAll(".author")].map((r) => ({ member_id: $("[name=member_id]", r).value.trim(), full_name: $("[name=full_name]", r).value.trim() })),
    };
    const key = form.dataset.key || (form.dataset.key = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()));
    send.disabled = true; send.textContent = tr("sending");
    try {
      const r = await api("POST", "/api/v1/initiatives", body, { "Idempotency-Key": key });
      delete form.dataset.key;
      form.reset();
      defaults();
      const out = $("#form-result");
      out.replaceChildren(el("p", { class: "ok", text: `${tr("sent_ok")} #${r.seq}.` }),
        el("p", {}, el("a", { href: `/initiatives/${encodeURIComponent(r.id)}`, text: `${tr("see_initiative")} (#${r.seq})` })),
        el("p", { class: "hint", text: tr("form_reset_note") }));
      out.focus();
    } catch (e) {
      const details = e.body && e.body.error && Array.isArray(e.body.error.details) ? e.body.error.details : [];
      if (details.length) showErrors(form, apiErrors(form, details), labelOf);
      else {
        const sum = $(".error-summary", form);
        $("ul", sum).replaceChildren(el("li", { text: errorText(e) }));
        sum.hidden = false; sum.focus();
      }
    } finally { send.disabled = false; send.textContent = tr("send"); }
  });
}

// ---- one initiative (composed view) ---------------------------------------------------------------
async function pageInitiative() {
  const box = $("#initiative");
  try {
    const v = await api("GET", `/api/v1/initiatives/${encodeURIComponent(box.dataset.id)}`);
    const dl = el("dl", { class: "facts" });
    const row = (k, val) => dl.append(el("dt", { text: k }), el("dd", { text: val }));
    row(tr("col_seq"), `#${v.seq}`); row(tr("col_status"), statusName(v.status)); row(tr("col_unit"), v.unit_code);
    row(tr("f_authors"), (v.authors || []).map((a) => a.full_name).join(", "));
    row(tr("f_benefit"), fmtMoney(v.expected_benefit_vnd)); row(tr("col_date"), fmtDate(v.submitted_at));
    if (v.review && v.review.outcome) row(tr("review_result"), tr(v.review.outcome === "revision" ? "revision" : v.review.outcome) + (v.review.reason ? ` · ${tr("r_" + v.review.reason)}` : ""));
    if (v.appraisal && v.appraisal.grade) row(tr("appraisal_result"), `${fmtDec(v.appraisal.mean)} · ${tr("grade_" + v.appraisal.grade)}`);
    const parts = ["problem", "solution", "effect"].flatMap((k) => (v[k] ? [el("h2", { text: tr("f_" + k) }), el("p", { text: v[k] })] : []));
    box.replaceChildren(el("h2", { text: v.title }), dl, ...parts, el("p", {}, el("a", { href: "/mine", text: tr("nav_mine") })));
  } catch (e) { box.replaceChildren(el("p", { class: "error", text: errorText(e) })); }
}

// ---- my initiatives ----------------------------------------------------------------------------
async function pageMine() {
  const tbody = $("#mine tbody");
  let rows = [], cursor = null;
  const render = () => {
    const q = $("#mine-q").value.trim().toLowerCase();
    const shown = rows.filter((it) => !q || it.title.toLowerCase().includes(q) || String(it.seq) === q.replace("#", ""));
    tbody.replaceChildren(...shown.map((it) => {
      const cell = el("td"), actions = el("div", { class: "actions" });  // a flex <td> would break the table
      cell.append(actions);
      if (it.status === "revision_requested") actions.append(el("button", { type: "button", text: tr("revise"), onclick: () => reviseForm(it) }));
      if (it.status === "submitted" || it.status === "revision_requested") {
        actions.append(el("button", { type: "button", class: "danger", text: tr("withdraw"), onclick: async () => {
          if (!(await confirmAct(`${tr("withdraw_confirm")} (#${it.seq} ${it.title})`))) return;
          try {
            await api("POST", `/api/v1/initiatives/${it.id}/withdraw`);
            it.status = "withdrawn"; render();
            flash(`${tr("withdrawn_ok")} #${it.seq} ${it.title}`, "ok");
          } catch (e) { flash(errorText(e), "error"); }
        } }));
      }
      return el("tr", {}, el("td", { class: "num", text: it.seq }), el("td", {}, el("a", { href: `/initiatives/${encodeURIComponent(it.id)}`, text: it.title })),
        el("td", { text: statusName(it.status) }), el("td", { text: fmtDate(it.submitted_at) }), cell);
    }));
    if (!shown.length) tbody.append(el("tr", {}, el("td", { colspan: 5, text: tr("no_rows") })));
    $("#mine-count").textContent = `${tr("shown_of")} ${shown.length} ${tr("rows")}`;
    $("#mine-more").hidden = !cursor;
  };
  const load = async (more) => {
    const q = new URLSearchParams({ campaign: CFG.campaign, limit: "50" });
    if ($("#mine-status").value) q.set("status", $("#mine-status").value);
    if (more && cursor) q.set("cursor", cursor);
    try {
      const r = await api("GET", `/api/v1/initiatives?${q}`);
      rows = more ? rows.concat(r.items) : r.items; cursor = r.next_cursor || null; render();
    } catch (e) { flash(errorText(e), "error"); }
  };
  $("#mine-filter").addEventListener("submit", (ev) => { ev.preventDefault(); load(false); });
  $("#mine-q").addEventListener("input", render);
  $("#mine-more").addEventListener("click", () => load(true));
  reviseSetup(() => load(false));
  await load(false);
}

async function reviseForm(it) {
  // PATCH is allowed only while revision_requested; the reviewer's note comes from the composed view.
  const box = $("#revise");
  try {
    const v = await api("GET", `/api/v1/initiatives/${it.id}`);
    const last = (v.decisions || []).filter((d) => d.outcome === "revision").pop();
    box.hidden = false;
    $("#revise-title").textContent = `#${v.seq} ${v.title}`;
    $("#revise-note").textContent = last && last.note ? `${tr("note")}: ${last.note}` : "";
    for (const k of ["problem", "solution", "effect"]) $(`#revise-${k}`).value = v[k] || "";
    box.dataset.id = it.id;
    $("#revise-problem").focus();
  } catch (e) { flash(errorText(e), "error"); }
}

function reviseSetup(reload) {
  const form = $("#revise");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const errs = [];
    if (!$("#revise-solution").value.trim()) errs.push({ input: $("#revise-solution"), message: tr("v_solution") });
    if (!$("#revise-effect").value.trim()) errs.push({ input: $("#revise-effect"), message: tr("v_effect") });
    if (errs.length) { showErrors(form, errs, labelOf); return; }
    const body = {};
    for (const k of ["problem", "solution", "effect"]) body[k] = $(`#revise-${k}`).value;
    try {
      await api("PATCH", `/api/v1/initiatives/${form.dataset.id}`, body);
      form.hidden = true; flash(tr("revised_ok"), "ok"); reload();
    } catch (e) {
      const details = e.body && e.body.error && Array.isArray(e.body.error.details) ? e.body.error.details : [];
      if (details.length) showErrors(form, apiErrors(form, details), labelOf); else flash(errorText(e), "error");
    }
  });
}

// ---- support: import with upload and processing progress ---------------------------------------------
async function download(path, filename) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + session.token } });
  if (!r.ok) { flash(`${tr("error")}: ${r.status}`, "error"); return; }
  saveBlob(await r.blob(), filename);
}
function saveBlob(blob, filename) {
  const a = el("a", { href: URL.createObjectURL(blob), download: filename });
  document.body.append(a); a.click(); a.remove();
}

function upload(path, formData, onProgress) {
  // XMLHttpRequest, not fetch: only it reports how much of the file has gone up.
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open("POST", path);
    x.setRequestHeader("Accept", "application/json");
    if (session.token) x.setRequestHeader("Authorization", "Bearer " + session.token);
    x.upload.onprogress = (ev) => { if (ev.lengthComputable) onProgress(ev.loaded / ev.total); };
    x.onerror = () => reject(new ApiFailure(0, null));
    x.onload = () => {
      let data = null; try { data = JSON.parse(x.responseText); } catch { /* not JSON */ }
      if (x.status >= 200 && x.status < 300) resolve(data); else reject(new ApiFailure(x.status, data));
    };
    x.send(formData);
  });
}

// The columns of the import file, by the form's own labels.
const FIELD_LABEL = { unit_code: "f_unit", field: "f_field", title: "f_title", problem: "f_problem", solution: "f_solution", effect: "f_effect", expected_benefit_vnd: "f_benefit", applied_on: "f_applied", confidential: "f_confidential", member_id: "f_member_id", full_name: "f_full_name", authors: "f_authors" };
const fieldName = (f) => (f && FIELD_LABEL[f] ? tr(FIELD_LABEL[f]) : f || "");

// Intake names the earlier initiative of a duplicate row by its id: show its number instead.
const UUID_RE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;
async function withNumbers(errors) {
  const ids = [...new Set(errors.map((e) => UUID_RE.exec(e.message || "")?.[0]).filter(Boolean))].slice(0, 50);
  const seqs = new Map(await Promise.all(ids.map((id) => api("GET", `/api/v1/initiatives/${id}`).then((v) => [id, v.seq], () => [id, null]))));
  return errors.map((e) => {
    const id = UUID_RE.exec(e.message || "")?.[0];
    return id && seqs.get(id) != null ? { ...e, message: e.message.replace(id, `#${seqs.get(id)}`) } : e;
  });
}

function pageSupport() {
  $("#import-template").addEventListener("click", () => download("/api/v1/imports/template.xlsx", "mau-nhap-sang-kien.xlsx"));
  const form = $("#import-form");
  const bar = $("#import-progress"), status = $("#import-status"), report = $("#import-report"), submit = $("#import-submit");
  let lastErrors = [], lastJob = null;
  // the failed rows as XLSX (composed by the gateway from the job), to correct and upload again
  $("#import-errors-download").addEventListener("click", () => download(`/api/v1/imports/${encodeURIComponent(lastJob)}/errors.xlsx`, `loi-nhap-${lastJob}.xlsx`));
  const setBar = (fraction, text) => { bar.value = Math.round(100 * fraction); bar.textContent = bar.value + "%"; status.textContent = text; };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const file = $("#import-file").files[0];
    if (!file) { showErrors(form, [{ input: $("#import-file"), message: tr("v_file") }]); return; }
    const fd = new FormData();
    fd.append("file", file);
    fd.append("campaign", CFG.campaign);
    report.hidden = true; lastErrors = [];
    submit.disabled = true; form.setAttribute("aria-busy", "true");
    try {
      setBar(0, `${tr("import_uploading")}… 0%`);
      const job = await upload("/api/v1/imports", fd, (f) => setBar(f, `${tr("import_uploading")}… ${Math.round(100 * f)}%`));
      lastJob = job.id;
      for (;;) {
        const p = await api("GET", `/api/v1/imports/${job.id}`);
        const total = p.total || 0, ok = p.done || 0, failed = p.failed || 0;
        const finished = ["done", "completed", "failed", "finished"].includes(p.status);
        const summary = `${fmt(ok)} ${tr("imported")}, ${fmt(failed)} ${tr("import_errors_n")} (${tr("import_of")} ${fmt(total)})`;
        setBar(total ? (ok + failed) / total : finished ? 1 : 0, `${tr("imp_" + p.status)}: ${summary}`);
        if (finished) {
          lastErrors = await withNumbers(p.errors || []);
          $("#import-errors tbody").replaceChildren(...lastErrors.slice(0, 500).map((er) => el("tr", {}, el("td", { class: "num", text: er.row }), el("td", { text: fieldName(er.field) }), el("td", { text: er.message }))));
          report.hidden = !lastErrors.length;
          break;
        }
        await new Promise((res) => setTimeout(res, 700));
      }
    } catch (e) {
      const details = (e.body && e.body.error && e.body.error.details) || [];
      const fileProblem = details.find((d) => d.field === "file");
      setBar(0, fileProblem ? `${tr("import_bad_file")} ${fileProblem.message}` : errorText(e));
    } finally { submit.disabled = false; form.removeAttribute("aria-busy"); }
  });
}

// ---- reviewer workspace ----------------------------------------------------------------------------
const words = (s) => (s || "").split(/\s+/).filter(Boolean);
const norm = (w) => w.normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/đ/g, "d").replace(/Đ/g, "D").toLowerCase().replace(/[^\p{L}\p{N}]/gu, "");
function diffInto(node, text, other, tag) {
  // Words of `text` not found in `other` are wrapped in <tag>: the differences stand out.
  const have = new Set(words(other).map(norm));
  node.replaceChildren();
  for (const w of words(text)) {
    node.append(have.has(norm(w)) ? document.createTextNode(w) : el(tag, { text: w }), " ");
  }
}

function pageReview() {
  // A decision is held for CFG.undo_ms before it is sent ("Hoàn tác" takes it back); while one is being
  // sent every decision key is ignored, so a held or doubled key never decides twice.
  let items = [], idx = 0, mode = null, leaseEnd = null, shown = 0;
  let pending = null, busy = false;
  const todayKey = "sk_done_" + today();
  const doneToday = () => Number(localStorage.getItem(todayKey) || 0);
  const counters = () => { $("#done-today").textContent = fmt(doneToday()); $("#in-batch").textContent = fmt(items.length); };
  counters();
  const cur = () => items[idx];
  setInterval(() => {
    if (!leaseEnd) return;
    const s = Math.max(0, Math.round((leaseEnd - Date.now()) / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), pad = (x) => String(x).padStart(2, "0");
    $("#lease").textContent = h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
  }, 1000);
  async function refreshWaiting() {
    try { const s = await api("GET", "/api/v1/review/stats"); $("#waiting").textContent = fmt(s.pending); } catch { $("#waiting").textContent = "–"; }
  }
  const setBusy = (b) => { busy = b; $("#workspace").setAttribute("aria-busy", b ? "true" : "false"); $$("[data-key]").forEach((x) => { x.disabled = b; }); };

  async function show() {
    const token = ++shown;  // a later show() wins: an older one stops at its next await
    mode = null; $("#decide").hidden = true;
    counters();
    const it = cur(), art = $("#current"), side = $("#similar");
    side.replaceChildren(el("h2", { text: tr("similar") }));
    side.hidden = !it;
    if (!it) { art.replaceChildren(el("p", { text: tr("queue_empty") })); return; }
    const body = el("div");
    const meta = `#${it.seq ?? ""} · ${it.unit_code} · ${(it.authors || []).map((a) => a.full_name).join(", ")} · ${fmtMoney(it.expected_benefit_vnd)}`;
    art.replaceChildren(el("h2", { id: "cur-title", text: it.title }), el("p", { id: "cur-meta", text: meta + (it.confidential ? ` · 🔒 ${tr("confidential_mark")}` : "") }), body);
    art.dataset.id = it.initiative_id;
    for (const k of ["problem", "solution", "effect"]) body.append(el("h3", { text: tr("f_" + k) }), el("p", { "data-part": k, text: it[k] || "" }));
    if (!(it.similar || []).length) side.append(el("p", { text: tr("no_similar") }));
    for (const s of (it.similar || []).slice(0, 3)) {
      const box = el("div", { class: "sim" }, el("h3", {}, el("span", { text: `${Math.round((s.score || 0) * 100)}% · ` }), el("span", { class: "sim-title" })));
      diffInto($(".sim-title", box), s.title, it.title, "del");
      side.append(box);
      let other;
      try { other = await api("GET", `/api/v1/initiatives/${s.initiative_id}`); } catch { continue; /* outside the reviewer's scope: title only */ }
      if (token !== shown) return;
      for (const k of ["problem", "solution", "effect"]) {
        const p = el("p"); diffInto(p, other[k], it[k], "del"); box.append(el("h4", { text: tr("f_" + k) }), p);
        const mine = $(`[data-part=${k}]`, art); if (mine) diffInto(mine, it[k], other[k], "ins");
      }
      diffInto($("#cur-title"), it.title, s.title, "ins");
    }
  }

  const outcomeLabel = (o) => tr(o === "revision" ? "revision" : o);
  function undoBar() {
    const bar = $("#undo-bar");
    if (!pending) { bar.hidden = true; return; }
    const left = Math.max(0, Math.ceil((pending.at - Date.now()) / 1000));
    bar.hidden = false;
    $("#undo-text").textContent = `${tr("decided_pending")} «${outcomeLabel(pending.body.outcome)}»: ${pending.item.title} — ${tr("undo_in")} ${left} ${tr("seconds")}`;
  }
  setInterval(undoBar, 500);

  async function commit() {
    // Send the held decision now. On refusal the initiative comes back to the front with the reason.
    if (!pending) return true;
    const p = pending; pending = null; clearTimeout(p.timer); undoBar();
    setBusy(true);
    try {
      await api("POST", `/api/v1/review/items/${p.item.initiative_id}/decision`, p.body);
      localStorage.setItem(todayKey, doneToday() + 1);
      flash(`${tr("decided_saved")}: ${outcomeLabel(p.body.outcome)} — ${p.item.title}`, "ok");
      refreshWaiting();
      return true;
    } catch (e) {
      items.splice(Math.min(p.index, items.length), 0, p.item); idx = Math.min(p.index, items.length - 1);
      flash(`${errorText(e)} — ${p.item.title}`, "error");
      await show();
      return false;
    } finally { setBusy(false); counters(); }
  }

  async function decide(outcome) {
    if (busy) return;
    const it = cur(); if (!it) return;
    if (outcome === "revision" && !$("#note").value.trim()) {
      clearErrors($("#decide")); showErrors($("#decide"), [{ input: $("#note"), message: tr("v_note") }]); return;
    }
    const body = { outcome, reason: outcome === "invalid" ? $("#reason").value : null, note: outcome === "valid" ? null : $("#note").value || null, verified_benefit_vnd: null };
    if (pending && !(await commit())) return;
    const index = items.indexOf(it);
    if (index < 0) return;
    items.splice(index, 1); if (idx >= items.length) idx = 0;
    $("#note").value = ""; clearErrors($("#decide"));
    pending = { item: it, index, body, at: Date.now() + CFG.undo_ms, timer: setTimeout(() => commit(), CFG.undo_ms) };
    undoBar();
    await show(); $("#workspace").focus();
  }
  function undo() {
    if (!pending || busy) return;
    const p = pending; pending = null; clearTimeout(p.timer); undoBar();
    items.splice(Math.min(p.index, items.length), 0, p.item); idx = items.indexOf(p.item);
    flash(`${tr("undone")}: ${p.item.title}`, "ok");
    show(); $("#workspace").focus();
  }
  // Leaving the page sends a held decision (keepalive outlives the page).
  addEventListener("pagehide", () => {
    if (!pending) return;
    fetch(`/api/v1/review/items/${pending.item.initiative_id}/decision`, { method: "POST", keepalive: true, headers: { "Content-Type": "application/json", Authorization: "Bearer " + session.token }, body: JSON.stringify(pending.body) });
    pending = null;
  });
  function ask(kind) {
    if (busy || !cur()) return;
    mode = kind; $("#decide").hidden = false; clearErrors($("#decide"));
    $("#reason-row").hidden = kind !== "invalid"; $("#note-row").hidden = false;
    (kind === "invalid" ? $("#reason") : $("#note")).focus();
  }
  $("#decide").addEventListener("submit", (ev) => { ev.preventDefault(); if (mode) decide(mode); });
  $("#decide").addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") { mode = null; $("#decide").hidden = true; $("#workspace").focus(); }
    if (ev.key === "Enter" && ev.target.tagName === "SELECT") { ev.preventDefault(); if (mode) decide(mode); }
  });
  const keys = { v: () => decide("valid"), i: () => ask("invalid"), r: () => ask("revision"), u: undo, n: () => { if (!busy && items.length) { idx = (idx + 1) % items.length; show(); } } };
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || /INPUT|TEXTAREA|SELECT/.test(ev.target.tagName) || $("#confirm").open) return;
    const f = keys[ev.key.toLowerCase()]; if (!f) return;
    ev.preventDefault();
    if (ev.repeat) return;  // a held key decides once
    f();
  });
  $$("[data-key]").forEach((b) => b.addEventListener("click", () => keys[b.dataset.key]()));
  $("#undo").addEventListener("click", undo);
  $("#claim").addEventListener("click", async () => {
    if (busy) return;
    if (pending && !(await commit())) return;
    try {
      const r = await api("POST", "/api/v1/review/claims", { count: Number($("#claim-count").value) });
      items = r.items || []; idx = 0; leaseEnd = r.lease_expires_at ? Date.parse(r.lease_expires_at) : null;
      flash(items.length ? `${tr("claimed")} ${items.length}` : tr("claimed_none"), items.length ? "ok" : "info");
      await show(); $("#workspace").focus(); refreshWaiting();
    } catch (e) { flash(errorText(e), "error"); }
  });
  $("#release").addEventListener("click", async () => {
    if (busy) return;
    if (pending && !(await commit())) return;
    try {
      const r = await api("POST", "/api/v1/review/claims/release", {});
      items = []; leaseEnd = null; $("#lease").textContent = "–";
      flash(`${tr("released_ok")} ${fmt(r.released ?? 0)} ${tr("released_n")}`, "ok");
      show(); refreshWaiting();
    } catch (e) { flash(errorText(e), "error"); }
  });
  refreshWaiting();
}

// ---- appraiser -------------------------------------------------------------------------------------
const gradeOf = (mean) => (mean >= 8.5 ? "excellent" : mean >= 7 ? "typical" : "none");
function pageAppraise() {
  let items = [], after = null, current = null, earlier = [];
  const list = $("#ap-items"), form = $("#ap-form");
  const inputs = CFG.criteria.map((c) => $(`#sc-${c}`));
  const scoreOf = (i) => (i.value === "" ? null : Number(i.value));
  function live() {
    const mine = inputs.map(scoreOf);
    const complete = mine.every((x) => x !== null && Number.isInteger(x) && x >= 0 && x <= 10);
    const myMean = complete ? mine.reduce((a, b) => a + b, 0) / mine.length : null;
    $("#ap-my-mean").textContent = myMean === null ? "–" : fmtDec(myMean);
    const others = earlier.filter((a) => !a.mine);
    const all = [...others.map((a) => CFG.criteria.map((c) => a[c])), ...(complete && !current?.mine ? [mine] : [])];
    if (current?.mine) all.push(CFG.criteria.map((c) => current.mine[c]));
    const n = all.length;
    const mean = n ? all.flat().reduce((a, b) => a + b, 0) / (n * CFG.criteria.length) : null;
    $("#ap-mean").textContent = mean === null ? "–" : fmtDec(mean);
    $("#ap-grade").textContent = n >= 2 ? tr("grade_" + gradeOf(Math.round(mean * 100) / 100)) : tr("grade_pending");
  }
  inputs.forEach((i) => i.addEventListener("input", live));
  const renderList = () => {
    list.replaceChildren(...items.map((it, n) => el("li", {}, el("button", {
      type: "button", class: "pick", "aria-current": current && current.initiative_id === it.initiative_id ? "true" : null,
      "data-id": it.initiative_id, onclick: () => open(n),
    }, el("strong", { text: `#${it.seq} ${it.title}` }), el("br"), el("span", { text: `${it.unit_code} · ${tr("appraisal_count")}: ${it.appraisal.count}${it.mine ? " · " + tr("yours") : ""}` })))));
    if (!items.length) list.append(el("li", { text: tr("no_rows") }));
    $("#ap-more").hidden = after === null;
  };
  async function load(more) {
    const q = new URLSearchParams({ state: $("#ap-state").value, limit: "20" });
    if ($("#ap-q").value.trim()) q.set("q", $("#ap-q").value.trim());
    if (more && after !== null) q.set("after", after);
    try {
      const r = await api("GET", `/api/v1/review/appraisals?${q}`);
      items = more ? items.concat(r.items) : r.items; after = r.next_after ?? null;
      renderList();
      if (!more && items.length) await open(0, false);
      if (!items.length) { current = null; $("#ap-cur-h").textContent = tr("pick_item"); $("#ap-body").replaceChildren(); form.hidden = true; $("#ap-earlier tbody").replaceChildren(); }
    } catch (e) { flash(errorText(e), "error"); }
  }
  async function open(n, focus = true) {
    current = items[n]; if (!current) return;
    renderList();
    const it = current;
    $("#ap-cur-h").textContent = `#${it.seq} ${it.title}`;
    $("#ap-body").replaceChildren(
      el("p", { class: "meta", text: `${it.unit_code} · ${(it.authors || []).map((a) => a.full_name).join(", ")} · ${fmtMoney(it.verified_benefit_vnd ?? it.expected_benefit_vnd)}${it.confidential ? " · 🔒 " + tr("confidential_mark") : ""}` }),
      ...["problem", "solution", "effect"].flatMap((k) => (it[k] ? [el("h3", { text: tr("f_" + k) }), el("p", { text: it[k] })] : [])));
    clearErrors(form);
    form.hidden = false;
    inputs.forEach((i, k) => { i.value = it.mine ? it.mine[CFG.criteria[k]] : ""; i.disabled = !!it.mine; });
    $("#ap-note").value = it.mine ? it.mine.note || "" : ""; $("#ap-note").disabled = !!it.mine;
    $("button[type=submit]", form).hidden = !!it.mine;
    earlier = [];
    $("#ap-earlier tbody").replaceChildren(el("tr", {}, el("td", { colspan: 6, text: tr("loading") })));
    try {
      const r = await api("GET", `/api/v1/review/items/${it.initiative_id}/appraisals`);
      if (current !== it) return;
      earlier = r.items || [];
      $("#ap-earlier tbody").replaceChildren(...earlier.map((a) => el("tr", { class: a.mine ? "mine" : null },
        ...CFG.criteria.map((c) => el("td", { class: "num", text: a[c] })), el("td", { text: (a.note || "") + (a.mine ? ` (${tr("yours")})` : "") }), el("td", { text: fmtDate(a.appraised_at) }))));
      if (!earlier.length) $("#ap-earlier tbody").replaceChildren(el("tr", {}, el("td", { colspan: 6, text: tr("no_appraisals") })));
    } catch (e) { $("#ap-earlier tbody").replaceChildren(el("tr", {}, el("td", { colspan: 6, text: errorText(e) }))); }
    live();
    if (focus && !it.mine) inputs[0].focus();
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!current || form.getAttribute("aria-busy") === "true") return;
    clearErrors(form);
    const errs = inputs.filter((i) => { const v = scoreOf(i); return v === null || !Number.isInteger(v) || v < 0 || v > 10; }).map((input) => ({ input, message: tr("v_score") }));
    if (errs.length) { showErrors(form, errs, labelOf); return; }
    const body = Object.fromEntries(CFG.criteria.map((c, k) => [c, scoreOf(inputs[k])]));
    body.note = $("#ap-note").value.trim() || null;
    form.setAttribute("aria-busy", "true");
    try {
      const r = await api("POST", `/api/v1/review/items/${current.initiative_id}/appraisals`, body);
      const s = r.appraisal || {};
      flash(`${tr("appraised_ok")}: #${current.seq} ${current.title} — ${tr("my_mean")} ${fmtDec(Object.values(body).filter((x) => typeof x === "number").reduce((a, b) => a + b, 0) / 4)}${s.grade ? ` · ${tr("grade")}: ${tr("grade_" + s.grade)}` : ""}`, "ok");
      const n = items.indexOf(current);
      if ($("#ap-state").value === "todo") { items.splice(n, 1); renderList(); if (items[n] || items[n - 1]) await open(items[n] ? n : n - 1); else await load(false); }
      else { current.mine = { ...body }; current.appraisal = s; await open(n); }
    } catch (e) {
      const details = e.body && e.body.error && Array.isArray(e.body.error.details) ? e.body.error.details : [];
      if (details.length) showErrors(form, details.map((d) => ({ input: $(`#sc-${d.field}`) || $("#ap-note"), message: d.message })), labelOf);
      else flash(errorText(e), "error");
    } finally { form.removeAttribute("aria-busy"); }
  });
  $("#ap-filter").addEventListener("submit", (ev) => { ev.preventDefault(); load(false); });
  $("#ap-state").addEventListener("change", () => load(false));
  $("#ap-more").addEventListener("click", () => load(true));
  document.addEventListener("keydown", (ev) => {
    // J/K work from the score fields too (a number field takes no letters)
    const typing = /TEXTAREA|SELECT/.test(ev.target.tagName) || (ev.target.tagName === "INPUT" && ev.target.type !== "number");
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing || !items.length) return;
    const n = current ? items.indexOf(current) : -1;
    if (ev.key === "j" || ev.key === "J") { ev.preventDefault(); open(Math.min(items.length - 1, n + 1)); }
    if (ev.key === "k" || ev.key === "K") { ev.preventDefault(); open(Math.max(0, n - 1)); }
  });
  return load(false);
}

// ---- dashboards ------------------------------------------------------------------------------------
function chart(node, series, quota) {
  // Narrow screens get a narrower drawing, so its text stays readable at the page's own size.
  const narrow = node.clientWidth && node.clientWidth < 600;
  const W = narrow ? 360 : 720, H = narrow ? 260 : 280, PL = narrow ? 54 : 64, PR = 16, PT = 30, PB = 34;
  const maxY = Math.max(1, quota || 0, ...series.map((p) => Math.max(p.submitted, p.valid)));
  const one = series.length === 1;
  const x = (i) => (one ? (PL + W - PR) / 2 : PL + (i * (W - PL - PR)) / Math.max(1, series.length - 1));
  const y = (v) => H - PB - (v * (H - PT - PB)) / maxY;
  const line = (k) => series.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p[k]).toFixed(1)}`).join("");
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`); svg.setAttribute("width", "100%"); svg.setAttribute("role", "img");
  const last = series[series.length - 1];
  svg.setAttribute("aria-label", `${tr("chart")}: ${last ? `${fmtDate(last.date)} — ${tr("submitted")} ${fmt(last.submitted)}, ${tr("valid_n")} ${fmt(last.valid)}` : tr("chart_empty")}${quota ? `; ${tr("quota")} ${fmt(quota)}` : ""}`);
  const add = (tag, attrs, text) => { const n = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); if (text !== undefined) n.textContent = text; svg.append(n); return n; };
  add("line", { x1: PL, y1: H - PB, x2: W - PR, y2: H - PB, stroke: "#555" });
  add("line", { x1: PL, y1: PT, x2: PL, y2: H - PB, stroke: "#555" });
  add("text", { x: PL - 6, y: PT + 4, "text-anchor": "end" }, fmt(maxY)); add("text", { x: PL - 6, y: H - PB + 4, "text-anchor": "end" }, "0");
  if (quota) { add("line", { x1: PL, y1: y(quota), x2: W - PR, y2: y(quota), stroke: "#a3161b", "stroke-dasharray": "6 4" }); add("text", { x: W - PR, y: y(quota) - 6, "text-anchor": "end", style: "fill:#a3161b" }, `${tr("quota")} ${fmt(quota)}`); }
  if (series.length) {
    if (!one) {
      add("path", { d: line("submitted"), fill: "none", stroke: "#0b4fa3", "stroke-width": 2 });
      add("path", { d: line("valid"), fill: "none", stroke: "#1d6b2f", "stroke-width": 3 });
    }
    series.forEach((p, i) => {
      add("circle", { cx: x(i), cy: y(p.submitted), r: one ? 6 : 3, fill: "#0b4fa3" }).append(Object.assign(document.createElementNS(ns, "title"), { textContent: `${fmtDate(p.date)}: ${fmt(p.submitted)}` }));
      add("circle", { cx: x(i), cy: y(p.valid), r: one ? 6 : 3, fill: "#1d6b2f" }).append(Object.assign(document.createElementNS(ns, "title"), { textContent: `${fmtDate(p.date)}: ${fmt(p.valid)}` }));
    });
    add("text", { x: one ? x(0) : PL, y: H - 10, "text-anchor": one ? "middle" : "start" }, fmtDate(series[0].date));
    if (!one) add("text", { x: W - PR, y: H - 10, "text-anchor": "end" }, fmtDate(last.date));
  } else add("text", { x: (PL + W) / 2, y: H / 2, "text-anchor": "middle" }, tr("chart_empty"));
  add("text", { x: PL, y: 16, style: "fill:#0b4fa3" }, `● ${tr("submitted")}`); add("text", { x: PL + (narrow ? 110 : 140), y: 16, style: "fill:#1d6b2f" }, `● ${tr("valid_n")}`);
  node.replaceChildren(svg);
  const tb = $("#chart-table tbody");
  if (tb) tb.replaceChildren(...series.map((p) => el("tr", {}, el("td", { text: fmtDate(p.date) }), el("td", { class: "num", text: fmt(p.submitted) }), el("td", { class: "num", text: fmt(p.valid) }))));
}

function cumulative(items) {
  let s = 0, v = 0;
  return items.map((p) => {
    const date = (p.date || p.bucket || p.day || "").slice(0, 10);
    if (p.cumulative_submitted !== undefined) return { date, submitted: p.cumulative_submitted, valid: p.cumulative_valid };
    s += p.submitted || 0; v += p.valid || 0; return { date, submitted: s, valid: v };
  });
}

const METRIC_FMT = { valid: fmt, participants: fmt, achievement_pct: fmtPct, benefit_vnd: fmtMoney };
let rankingsAsked = 0;
async function loadRankings() {
  const asked = ++rankingsAsked;  // a slower, older answer never replaces a newer one
  const metric = $("#rk-metric").value;
  const q = new URLSearchParams({ campaign: CFG.campaign, kind: $("#rk-kind").value, metric, limit: "20" });
  if ($("#rk-cluster").value.trim()) q.set("cluster", $("#rk-cluster").value.trim());
  const list = $("#rankings");
  try {
    const r = await api("GET", `/api/v1/tally/rankings?${q}`);
    if (asked !== rankingsAsked) return;
    list.replaceChildren(...(r.items || []).map((it) => el("li", { value: it.rank }, el("span", {}, el("span", { class: "rank-no", text: `${it.rank}. ` }), el("span", { text: it.unit.name || it.unit.code })), el("strong", { text: (METRIC_FMT[metric] || fmt)(it.value) }))));
    if (!list.children.length) list.replaceChildren(el("li", { class: "empty", text: tr("rankings_empty") }));
  } catch (e) { list.replaceChildren(el("li", { class: "empty", text: errorText(e) })); }
}

async function loadPublicLists() {
  try {
    const m = await api("GET", `/api/v1/tally/milestones?campaign=${encodeURIComponent(CFG.campaign)}`);
    renderMilestones(m.items);
  } catch (e) { $("#milestones").replaceChildren(el("li", { text: errorText(e) })); }
  try {
    const campaign = encodeURIComponent(CFG.campaign);
    const [a, s] = await Promise.all([
      api("GET", `/api/v1/awards?campaign=${campaign}`),
      // Scheme reads are public (SPEC §6): names instead of codes; without them the codes still show.
      api("GET", `/api/v1/awards/schemes?campaign=${campaign}`).catch(() => ({ items: [] })),
    ]);
    const names = Object.fromEntries((s.items || []).map((x) => [x.code, x.name]));
    renderAwards((a.items || []).map((x) => ({ ...x, scheme_name: x.scheme_name || names[x.scheme] })));
  } catch (e) { $("#awards").replaceChildren(el("li", { text: errorText(e) })); }
}

function renderAwards(items) {
  const live = (items || []).filter((a) => !a.revoked);
  $("#awards").replaceChildren(...live.map((a) => el("li", { text: `${a.scheme_name || a.scheme}: ${a.recipient.name || a.recipient.full_name || a.recipient.unit_code || a.recipient.member_id} (${tr("op_decision_no")} ${a.decision_no})` })));
  if (!live.length) $("#awards").replaceChildren(el("li", { class: "empty", text: tr("awards_empty") }));
}

function rankForm(publicLists = true) {
  $("#rank-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadRankings(); });
  const done = loadRankings();
  return publicLists ? Promise.all([done, loadPublicLists()]) : done;
}

function renderMilestones(items, valid) {
  const list = items || [];
  $("#milestones").replaceChildren(...list.map((it) => el("li", { text: `${tr("nth_initiative")} ${fmt(it.n)} · ${it.unit_code}${(it.authors || []).length ? " · " + it.authors.map((a) => a.full_name).join(", ") : ""}` })));
  if (!list.length) $("#milestones").replaceChildren(el("li", { class: "empty", text: tr("milestones_empty") }));
  if (valid !== undefined) nextMilestone(list, valid);
}

async function nextMilestone(reached, valid) {
  const box = $("#next-milestone");
  try {
    const c = await api("GET", `/api/v1/campaigns/${encodeURIComponent(CFG.campaign)}`);
    const all = (c.milestones || []).slice().sort((a, b) => a - b);
    const next = all.find((n) => n > Math.max(valid || 0, ...reached.map((r) => r.n)));
    if (!all.length) { box.textContent = ""; return; }
    if (next === undefined) { box.textContent = tr("all_reached"); return; }
    box.replaceChildren(el("span", { text: `${tr("next_milestone")}: ${fmt(next)} — ${fmt(valid || 0)}/${fmt(next)} ` }),
      el("progress", { max: next, value: valid || 0, "aria-label": tr("next_milestone") }));
  } catch { box.textContent = ""; }
}

async function pageDashboard() {
  const rankings = rankForm(false);
  const unitInput = $("#unit");
  const scope = session.account?.unit || "VN";
  unitInput.value = new URLSearchParams(location.search).get("unit") || scope;
  unitPicker(unitInput);
  let rows = [], sortKey = "code", asc = true;
  const visible = unitFilter($("#kids-filter"), () => renderChildren());
  const renderChildren = () => {
    const val = (r) => (sortKey === "code" ? r.unit.code : r.figures[sortKey] ?? -1);
    rows.sort((a, b) => (val(a) < val(b) ? -1 : val(a) > val(b) ? 1 : 0) * (asc ? 1 : -1));
    const cell = { submitted: fmt, valid: fmt, participants: fmt, quota: fmt, achievement_pct: fmtPct };
    $("#children tbody").replaceChildren(...visible(rows, (r) => r.unit).map((r) => el("tr", {}, el("td", {}, el("a", { href: `/dashboard?unit=${encodeURIComponent(r.unit.code)}`, text: `${r.unit.code} ${r.unit.name || ""}` })),
      ...Object.entries(cell).map(([k, f]) => el("td", { class: "num", text: f(r.figures[k]) })))));
    if (!rows.length) $("#children tbody").replaceChildren(el("tr", {}, el("td", { colspan: 6, text: tr("no_rows") })));
    $$("[data-sort]").forEach((b) => b.parentElement.setAttribute("aria-sort", b.dataset.sort === sortKey ? (asc ? "ascending" : "descending") : "none"));
  };
  $$("[data-sort]").forEach((b) => b.addEventListener("click", () => { asc = sortKey === b.dataset.sort ? !asc : false; sortKey = b.dataset.sort; renderChildren(); }));
  const clear = () => {
    $("#figures").replaceChildren(); $("#children tbody").replaceChildren(); $("#chart").replaceChildren(); $("#chart-table tbody").replaceChildren();
    $("#sibling-rank").textContent = ""; $("#unit-name").textContent = ""; $("#missing").hidden = true; $("#unit-up").hidden = true;
  };
  let asked = 0;
  async function load() {
    const code = unitInput.value.trim(), mine = ++asked;  // the newest unit asked for wins
    $("#unit-error").hidden = true; flash("");
    if (!code) { $("#unit-error").hidden = false; $("#unit-error").textContent = tr("v_unit"); unitInput.focus(); return; }
    try {
      const v = await api("GET", `/api/v1/units/${encodeURIComponent(code)}/overview?campaign=${encodeURIComponent(CFG.campaign)}`);
      if (mine !== asked) return;
      history.replaceState(null, "", `/dashboard?unit=${encodeURIComponent(code)}`);
      const unit = v.unit || {};
      $("#unit-name").textContent = `${unit.name || code}${unit.kind ? " · " + kindName(unit.kind) : ""}`;
      const parent = unit.parent_code || v.rank_among_siblings?.parent_code;
      $("#unit-up").hidden = !parent || code === scope; if (parent) $("#unit-up").href = `/dashboard?unit=${encodeURIComponent(parent)}`;
      $("#missing").hidden = !v.missing.length; $("#missing").textContent = `${tr("missing")} ${v.missing.join(", ")}`;
      const f = v.figures || {};
      const cards = [["submitted", "submitted", fmt], ["valid", "valid_n", fmt], ["invalid", "invalid_n", fmt], ["pending", "pending", fmt], ["participants", "participants", fmt], ["benefit_vnd", "benefit", fmtMoney], ["quota", "quota", fmt], ["achievement_pct", "achievement", fmtPct]];
      $("#figures").replaceChildren(...cards.map(([k, label, f2]) => el("div", { "data-figure": k }, el("dt", { text: tr(label) }), el("dd", { text: f2(f[k]), title: k === "benefit_vnd" && f[k] != null ? `${fmt(f[k])} ${tr("money_unit")}` : null }))));
      if ($("#children").dataset.unit !== code) visible.reset();
      $("#children").dataset.unit = code;
      rows = v.children || []; renderChildren();
      renderAwards(v.awards || []);
      renderMilestones(v.milestones, f.valid);
      $("#sibling-rank").textContent = v.rank_among_siblings && v.rank_among_siblings.rank ? `${tr("rank_siblings")} ${v.rank_among_siblings.rank}/${v.rank_among_siblings.of} (${v.rank_among_siblings.parent_code})` : "";
      try {
        const ts = await api("GET", `/api/v1/tally/timeseries?campaign=${encodeURIComponent(CFG.campaign)}&unit=${encodeURIComponent(code)}&bucket=day`);
        if (mine !== asked) return;
        chart($("#chart"), cumulative(ts.items || ts.points || []), f.quota);
      } catch { chart($("#chart"), [], f.quota); }
    } catch (e) {
      if (mine !== asked) return;
      clear();
      $("#unit-error").hidden = false; $("#unit-error").textContent = `${unitError(e)}: ${code}`;
    }
  }
  $("#unit-form").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  unitInput.addEventListener("unitpicked", () => load());
  await Promise.all([load(), rankings]);
}

// ---- operator --------------------------------------------------------------------------------------
const ORDER_KEY = { valid: "valid_n", achievement_pct: "achievement", benefit_vnd: "benefit", participants: "participants", grade: "grade_word" };
function ruleWords(rule, recipient, scheme = {}) {
  // A scheme's rule as a sentence: "Tập thể cấp Huyện — Hợp lệ ≥ 50; ... — lấy 84, xếp theo Hợp lệ".
  const parts = [];
  const r = rule || {};
  if (r.min_valid != null) parts.push(`${tr("valid_n")} ≥ ${fmt(r.min_valid)}`);
  if (r.min_achievement_pct != null) parts.push(`${tr("achievement")} ≥ ${fmtPct(r.min_achievement_pct)}`);
  if (r.min_benefit_vnd != null) parts.push(`${tr("benefit")} ≥ ${fmtMoney(r.min_benefit_vnd)}`);
  if (r.min_participants != null) parts.push(`${tr("participants")} ≥ ${fmt(r.min_participants)}`);
  if (r.grade_in) parts.push(`${tr("op_grade_in")} ${r.grade_in.map((g) => tr("grade_" + g)).join(" / ")}`);
  if (r.top_per_cluster) parts.push(`${fmt(r.top_per_cluster)} ${tr("op_best_of_cluster")}`);
  const who = `${tr("recipient_" + recipient)}${scheme.unit_kind ? ` ${tr("op_of_kind")} ${kindName(scheme.unit_kind)}` : ""}`;
  const take = scheme.max_recipients ? ` — ${tr("op_first")} ${fmt(scheme.max_recipients)}${(scheme.order_by || []).length ? `, ${tr("op_ranked_by")} ${scheme.order_by.map((k) => tr(ORDER_KEY[k] || "metric")).join(", ")}` : ""}` : "";
  return `${who} — ${parts.length ? parts.join("; ") : tr("op_rule_none")}${take}`;
}

function pageOperator() {
  const formErrors = (form, e) => {
    const details = e.body && e.body.error && Array.isArray(e.body.error.details) ? e.body.error.details : [];
    const sum = $(".error-summary", form);
    if (details.length) showErrors(form, details.map((d) => ({ input: form.querySelector(`[name="${String(d.field).split(".").pop()}"]`) || form.querySelector("input"), message: d.message })), labelOf);
    else if (sum) { $("ul", sum).replaceChildren(el("li", { text: errorText(e) })); sum.hidden = false; sum.focus(); } else flash(errorText(e), "error");
  };

  // health: the gateway's /health names each service and what it reported
  async function health() {
    const tb = $("#health tbody");
    try {
      const r = await fetch("/health").then((x) => x.json());
      const rows = Object.entries(r.checks.downstreams || {}).map(([name, h]) => {
        const b = h.body || {};
        const figures = Object.entries(b.checks || {}).map(([k, v]) => `${k}: ${typeof v === "boolean" ? (v ? "✓" : "✗") : fmt(v)}`);
        for (const [k, v] of Object.entries(b)) if (typeof v === "number" || (v && typeof v === "object" && k !== "checks")) figures.push(`${k}: ${typeof v === "number" ? fmt(v) : JSON.stringify(v)}`);
        return el("tr", { "data-service": name }, el("th", { scope: "row", text: name }), el("td", { class: h.ok ? "ok" : "bad", text: h.ok ? tr("op_ok") : tr("op_down") }), el("td", { text: figures.join(" · ") || h.error || "" }));
      });
      if (r.checks.redis !== undefined) rows.push(el("tr", {}, el("th", { scope: "row", text: "redis" }), el("td", { class: r.checks.redis ? "ok" : "bad", text: r.checks.redis ? tr("op_ok") : tr("op_down") }), el("td")));
      tb.replaceChildren(...rows);
    } catch (e) { tb.replaceChildren(el("tr", {}, el("td", { colspan: 3, text: errorText(e) }))); }
  }
  $("#health-refresh").addEventListener("click", health);

  // dead letters: count per service, inspect, replay (after a confirmation)
  async function deadLetters() {
    await Promise.all($$("#deadletters tr[data-service]").map(async (tr_) => {
      const s = tr_.dataset.service;
      try { const r = await api("GET", `/api/v1/ops/${s}/dead-letters`); $("[data-count]", tr_).textContent = fmt(r.items.length); tr_.dataset.items = JSON.stringify(r.items); } catch (e) { $("[data-count]", tr_).textContent = errorText(e); }
    }));
  }
  $$("[data-inspect]").forEach((b) => b.addEventListener("click", () => {
    const s = b.dataset.inspect, items = JSON.parse($(`#deadletters tr[data-service=${s}]`).dataset.items || "[]");
    $("#dl-detail").replaceChildren(el("h3", { text: `${tr("op_deadletters")}: ${s}` }), items.length
      ? el("div", { class: "scroll" }, el("table", { class: "data" }, el("thead", {}, el("tr", {}, el("th", { scope: "col", text: tr("op_routing_key") }), el("th", { scope: "col", text: tr("op_reason") }), el("th", { scope: "col", text: tr("op_inspect") }))),
        el("tbody", {}, ...items.map((d) => el("tr", {}, el("td", { text: d.routing_key }), el("td", { text: d.reason || "" }), el("td", {}, el("details", {}, el("summary", { text: tr("op_inspect") }), el("pre", { text: d.body }))))))))
      : el("p", { text: tr("op_deadletters_empty") }));
  }));
  $$("[data-replay]").forEach((b) => b.addEventListener("click", async () => {
    const s = b.dataset.replay;
    if (!(await confirmAct(`${tr("op_replay_confirm")} (${s})`))) return;
    try { const r = await api("POST", `/api/v1/ops/${s}/dead-letters/replay`, {}); flash(`${tr("op_replayed")} ${fmt(r.replayed)} (${s})`, "ok"); deadLetters(); } catch (e) { flash(errorText(e), "error"); }
  }));

  // units: browse the tree, edit one, import a file
  const treeInput = $("#tree-unit");
  unitPicker(treeInput);
  treeInput.addEventListener("unitpicked", (ev) => tree(ev.detail));
  let treeRows = () => {};
  const treeVisible = unitFilter($("#tree-filter"), () => treeRows());
  async function tree(code) {
    $("#tree-error").hidden = true;
    try {
      const u = await unitInfo(code);
      treeInput.value = code;
      $("#tree-caption").textContent = `${u.code} · ${u.name} · ${kindName(u.kind)}`;
      const rowOf = (c, up) => el("tr", {}, el("td", {}, el("a", { href: "#op-units", onclick: (ev) => { ev.preventDefault(); tree(c.code); }, text: up ? `↑ ${c.code}` : c.code })),
        el("td", { text: c.name || "" }), el("td", { text: kindName(c.kind) }), el("td", { text: c.cluster || "" }), el("td", { class: "num", text: fmt(c.member_count) }));
      const parent = u.parent_code ? [rowOf({ code: u.parent_code, name: "", kind: "" }, true)] : [];
      if ($("#tree").dataset.unit !== code) treeVisible.reset();
      $("#tree").dataset.unit = code;
      treeRows = () => {
        $("#tree tbody").replaceChildren(...parent, ...treeVisible(u.children || []).map((c) => rowOf(c)));
        if (!(u.children || []).length) $("#tree tbody").append(el("tr", {}, el("td", { colspan: 5, text: tr("no_rows") })));
      };
      treeRows();
      const f = $("#unit-edit").elements;
      f.parent_code.value = u.code;
      quotas(u.code);
    } catch (e) { $("#tree-error").hidden = false; $("#tree-error").textContent = `${unitError(e)}: ${code}`; }
  }
  $("#tree-form").addEventListener("submit", (ev) => { ev.preventDefault(); if (treeInput.value.trim()) tree(treeInput.value.trim()); });
  $("#unit-edit").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = ev.target, f = form.elements;
    clearErrors(form);
    const errs = [];
    if (!f.code.value.trim()) errs.push({ input: f.code, message: tr("v_unit") });
    if (!f.name.value.trim()) errs.push({ input: f.name, message: tr("v_required") });
    if (f.member_count.value !== "" && !(Number.isInteger(Number(f.member_count.value)) && Number(f.member_count.value) >= 0)) errs.push({ input: f.member_count, message: tr("v_number") });
    if (errs.length) { showErrors(form, errs, labelOf); return; }
    const unit = { code: f.code.value.trim(), name: f.name.value.trim(), kind: f.kind.value, parent_code: f.parent_code.value.trim() || null, cluster: f.cluster.value.trim() || null, member_count: f.member_count.value === "" ? null : Number(f.member_count.value) };
    try {
      await api("PUT", "/api/v1/units", [unit]);
      flash(`${tr("op_saved")}: ${unit.code} ${unit.name}`, "ok");
      unitCache.clear(); if (unit.parent_code) tree(unit.parent_code);
      f.code.value = ""; f.name.value = "";
    } catch (e) { formErrors(form, e); }
  });
  $("#units-file-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = ev.target; clearErrors(form);
    const file = $("#units-file").files[0];
    if (!file) { showErrors(form, [{ input: $("#units-file"), message: tr("v_file") }]); return; }
    const fd = new FormData(); fd.append("file", file);
    const out = $("#units-file-result");
    try {
      const r = await api("POST", "/api/v1/units/import", fd);
      out.replaceChildren(el("p", { class: "ok", text: `${tr("op_saved")}: ${fmt(r.upserted ?? 0)} ${tr("op_units").toLowerCase()}` }));
      unitCache.clear();
    } catch (e) {
      const details = (e.body && e.body.error && e.body.error.details) || [];
      // tally counts data rows from 0; the file's row (after its header row) is that + 2
      const where = (d) => (Number.isInteger(d.row) ? `${tr("col_row")} ${d.row + 2} · ` : "");
      out.replaceChildren(el("p", { class: "error", text: errorText(e) }), el("ul", {}, ...details.map((d) => el("li", { text: `${where(d)}${d.field || ""}: ${d.message}` }))));
    }
  });

  // quotas: a grid of the scope's child units by phase
  let campaign = null;
  let quotaToken = 0;
  async function quotas(code) {
    // the grid of the unit browsed; the same unit again keeps what is typed in it
    if ($("#quota-grid").dataset.unit === code) return;
    const token = ++quotaToken;
    try {
      campaign = campaign || await api("GET", `/api/v1/campaigns/${encodeURIComponent(CFG.campaign)}`);
      const phases = campaign.phases || [];
      $("#campaign-summary").textContent = `${campaign.name} (${campaign.code}) · ${tr("op_phases")}: ${phases.map((p) => `${p.code} ${fmtDate(p.opens_on)}–${fmtDate(p.closes_on)}`).join("; ")}`;
      const root = await unitInfo(code);
      const units = [root, ...(root.children || [])].slice(0, 200);
      // tally answers the quotas of one unit per call
      const existing = (await Promise.all(units.map((u) => api("GET", `/api/v1/campaigns/${encodeURIComponent(CFG.campaign)}/quotas?unit=${encodeURIComponent(u.code)}`).then((r) => r.items || [], () => [])))).flat();
      if (token !== quotaToken) return;
      $("#quota-grid").dataset.unit = code;
      const have = new Map(existing.map((q) => [`${q.unit_code}|${q.phase}`, q]));
      // each phase: the quota assigned from above, and the unit's own (self-set) target beside it
      const kinds = [["assigned", "op_quota_assigned"], ["self_set", "op_quota_self"]];
      $("#quota-grid thead").replaceChildren(el("tr", {}, el("th", { scope: "col", text: tr("col_unit") }), ...phases.flatMap((p) => kinds.map(([, key]) => el("th", { scope: "col", text: `${p.code} · ${tr(key)}` })))));
      $("#quota-grid tbody").replaceChildren(...units.map((u) => el("tr", {}, el("th", { scope: "row", text: `${u.code} ${u.name}` }),
        ...phases.flatMap((p) => kinds.map(([name, key]) => el("td", {}, el("input", { type: "number", min: 0, step: 1, name, "data-unit": u.code, "data-phase": p.code, value: have.get(`${u.code}|${p.code}`)?.[name] ?? "", "aria-label": `${tr(key)} ${u.code} ${p.code}` })))))));
    } catch (e) { $("#campaign-summary").textContent = errorText(e); }
  }
  $("#quota-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = ev.target; clearErrors(form);
    const inputs = $$("input[data-unit]", form);
    const errs = inputs.filter((i) => i.value !== "" && !(Number.isInteger(Number(i.value)) && Number(i.value) >= 0)).map((input) => ({ input, message: tr("v_number") }));
    // a self-set target stands beside an assigned quota: tally keeps none without the other
    const cell = (i, name) => $(`input[name=${name}][data-unit="${CSS.escape(i.dataset.unit)}"][data-phase="${CSS.escape(i.dataset.phase)}"]`, form);
    for (const i of inputs) if (i.name === "self_set" && i.value !== "" && cell(i, "assigned").value === "") errs.push({ input: cell(i, "assigned"), message: tr("v_quota_assigned") });
    if (errs.length) { showErrors(form, errs); return; }
    const rows = inputs.filter((i) => i.name === "assigned" && i.value !== "").map((i) => {
      const own = cell(i, "self_set").value;
      return { unit_code: i.dataset.unit, phase: i.dataset.phase, assigned: Number(i.value), self_set: own === "" ? null : Number(own) };
    });
    try {
      const r = await api("PUT", `/api/v1/campaigns/${encodeURIComponent(CFG.campaign)}/quotas`, rows);
      $("#quota-result").replaceChildren(el("p", { class: "ok", text: `${tr("op_saved")}: ${fmt(r.upserted ?? rows.length)}` }));
    } catch (e) { $("#quota-result").replaceChildren(el("p", { class: "error", text: errorText(e) })); }
  });

  // campaign: name, window, fields and phases as rows, milestones
  const cpForm = $("#campaign-form");
  const fieldRow = (f = {}) => el("tr", {}, el("td", {}, el("input", { name: "field_code", value: f.code || "", maxlength: 64, "aria-label": `${tr("f_field")} · ${tr("op_code")}` })),
    el("td", {}, el("input", { name: "field_name", value: f.name || "", maxlength: 300, "aria-label": `${tr("f_field")} · ${tr("op_name")}` })),
    el("td", {}, el("button", { type: "button", text: tr("remove"), onclick: (ev) => ev.target.closest("tr").remove() })));
  const phaseRow = (p = {}) => el("tr", {}, ...[["code", "op_code", "text"], ["name", "op_name", "text"], ["opens_on", "op_opens", "date"], ["closes_on", "op_closes", "date"]].map(([k, label, type]) =>
    el("td", {}, el("input", { name: "phase_" + k, type, value: p[k] || "", "aria-label": `${tr("op_phase")} · ${tr(label)}` }))),
    el("td", {}, el("button", { type: "button", text: tr("remove"), onclick: (ev) => ev.target.closest("tr").remove() })));
  $("#cp-add-field").addEventListener("click", () => { const r = fieldRow(); $("#cp-fields tbody").append(r); $("input", r).focus(); });
  $("#cp-add-phase").addEventListener("click", () => { const r = phaseRow(); $("#cp-phases tbody").append(r); $("input", r).focus(); });
  function showCampaign(c) {
    const f = cpForm.elements;
    f.name.value = c.name || ""; f.from.value = c.application_window?.from || ""; f.to.value = c.application_window?.to || "";
    f.milestones.value = (c.milestones || []).join(", ");
    $("#cp-fields tbody").replaceChildren(...(c.fields || []).map(fieldRow));
    $("#cp-phases tbody").replaceChildren(...(c.phases || []).map(phaseRow));
    $("#sc-phase").replaceChildren(el("option", { value: "", text: tr("op_whole_campaign") }), ...(c.phases || []).map((p) => el("option", { value: p.code, text: `${p.code} ${p.name || ""}` })));
  }
  cpForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(cpForm);
    const f = cpForm.elements, errs = [];
    if (!f.name.value.trim()) errs.push({ input: f.name, message: tr("v_required") });
    const ms = f.milestones.value.split(/[,;\s]+/).filter(Boolean).map((x) => x.replace(/\./g, ""));
    if (ms.some((x) => !/^\d+$/.test(x) || Number(x) <= 0)) errs.push({ input: f.milestones, message: tr("v_number") });
    if (f.from.value && f.to.value && f.to.value < f.from.value) errs.push({ input: f.to, message: tr("v_dates") });
    const fields = $$("#cp-fields tbody tr").map((r) => ({ code: $("[name=field_code]", r), name: $("[name=field_name]", r) }));
    for (const x of fields) { if (!x.code.value.trim()) errs.push({ input: x.code, message: tr("v_required") }); if (!x.name.value.trim()) errs.push({ input: x.name, message: tr("v_required") }); }
    const phases = $$("#cp-phases tbody tr").map((r) => Object.fromEntries(["code", "name", "opens_on", "closes_on"].map((k) => [k, $(`[name=phase_${k}]`, r)])));
    if (!phases.length) errs.push({ input: $("#cp-add-phase"), message: tr("v_phase_needed") });
    for (const p of phases) {
      if (!p.code.value.trim()) errs.push({ input: p.code, message: tr("v_required") });
      if (!p.opens_on.value) errs.push({ input: p.opens_on, message: tr("v_required") });
      if (!p.closes_on.value) errs.push({ input: p.closes_on, message: tr("v_required") });
      else if (p.opens_on.value && p.closes_on.value < p.opens_on.value) errs.push({ input: p.closes_on, message: tr("v_dates") });
    }
    if (errs.length) { showErrors(cpForm, errs, labelOf); return; }
    const body = {
      name: f.name.value.trim(), fields: fields.map((x) => ({ code: x.code.value.trim(), name: x.name.value.trim() })),
      application_window: f.from.value && f.to.value ? { from: f.from.value, to: f.to.value } : null,
      phases: phases.map((p) => ({ code: p.code.value.trim(), name: p.name.value.trim() || null, opens_on: p.opens_on.value, closes_on: p.closes_on.value })),
      milestones: ms.length ? ms.map(Number) : null,
    };
    try {
      campaign = await api("PUT", `/api/v1/campaigns/${encodeURIComponent(CFG.campaign)}`, body);
      showCampaign(campaign);
      flash(`${tr("op_saved")}: ${campaign.name}`, "ok");
    } catch (e) { formErrors(cpForm, e); }
  });

  // award scheme: a form, with its rule read back in words as it is typed
  const scForm = $("#scheme-form");
  const ORDERS = { collective: ["valid", "achievement_pct", "benefit_vnd", "participants"], individual: ["valid", "benefit_vnd", "grade"] };
  const num = (x) => (x.value === "" ? null : Number(x.value));
  function schemeBody() {
    const f = scForm.elements, collective = f.recipient.value === "collective";
    const rule = { min_valid: num(f.min_valid), min_benefit_vnd: num(f.min_benefit_vnd) };
    if (collective) Object.assign(rule, { min_achievement_pct: num(f.min_achievement_pct), min_participants: num(f.min_participants), top_per_cluster: num(f.top_per_cluster) });
    else { const g = [f.grade_excellent.checked && "excellent", f.grade_typical.checked && "typical"].filter(Boolean); if (g.length) rule.grade_in = g; }
    for (const k of Object.keys(rule)) if (rule[k] === null) delete rule[k];
    const order = f.order_by.value;
    return {
      campaign: CFG.campaign, phase: f.phase.value || null, name: f.name.value.trim(), recipient: f.recipient.value,
      unit_kind: collective ? f.unit_kind.value : null, rule,
      order_by: [order, ...ORDERS[f.recipient.value].filter((k) => k !== order)], max_recipients: num(f.max_recipients),
    };
  }
  function schemeChanged() {
    const who = scForm.elements.recipient.value, prev = scForm.elements.order_by.value;
    $$("[data-collective]", scForm).forEach((n) => { n.hidden = who !== "collective"; });
    $$("[data-individual]", scForm).forEach((n) => { n.hidden = who !== "individual"; });
    $("#sc-order").replaceChildren(...ORDERS[who].map((k) => el("option", { value: k, text: tr(ORDER_KEY[k]) })));
    if (ORDERS[who].includes(prev)) $("#sc-order").value = prev;
    const b = schemeBody();
    $("#scheme-words").textContent = ruleWords(b.rule, b.recipient, { ...b, order_by: [b.order_by[0]] });
  }
  scForm.addEventListener("input", schemeChanged);
  scForm.addEventListener("change", schemeChanged);
  schemeChanged();
  scForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(scForm);
    const f = scForm.elements, errs = [];
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(f.code.value.trim())) errs.push({ input: f.code, message: tr("v_code") });
    if (!f.name.value.trim()) errs.push({ input: f.name, message: tr("v_required") });
    if (!(Number.isInteger(num(f.max_recipients)) && num(f.max_recipients) >= 1)) errs.push({ input: f.max_recipients, message: tr("v_max_recipients") });
    for (const name of ["min_valid", "min_benefit_vnd", "min_participants", "top_per_cluster", "min_achievement_pct"]) {
      const x = f[name]; if (x.closest("[hidden]") || x.value === "") continue;
      if (!(num(x) >= 0) || (name !== "min_achievement_pct" && !Number.isInteger(num(x)))) errs.push({ input: x, message: tr("v_number") });
    }
    if (errs.length) { showErrors(scForm, errs, labelOf); return; }
    try {
      await api("PUT", `/api/v1/awards/schemes/${encodeURIComponent(f.code.value.trim())}`, schemeBody());
      flash(`${tr("op_saved")}: ${f.code.value.trim()} ${f.name.value.trim()}`, "ok");
      await schemes();
      $("#scheme").value = f.code.value.trim();
    } catch (e) { formErrors(scForm, e); }
  });
  const campaignLoaded = api("GET", `/api/v1/campaigns/${encodeURIComponent(CFG.campaign)}`).then((c) => { campaign = c; showCampaign(c); }).catch((e) => flash(errorText(e), "error"));

  // awards: schemes in words, snapshot, nominations in a table, decision after a confirmation
  async function schemes() {
    try {
      const r = await api("GET", `/api/v1/awards/schemes?campaign=${encodeURIComponent(CFG.campaign)}`);
      $("#schemes tbody").replaceChildren(...r.items.map((s) => el("tr", {}, el("td", { text: `${s.code} · ${s.name}` }), el("td", { text: `${tr("recipient_" + s.recipient)}${s.unit_kind ? " · " + kindName(s.unit_kind) : ""}` }), el("td", { text: ruleWords(s.rule, s.recipient, s) }), el("td", { class: "num", text: fmt(s.max_recipients) }))));
      $("#scheme").replaceChildren(...r.items.map((s) => el("option", { value: s.code, text: `${s.code} · ${s.name}` })));
      if (!r.items.length) $("#schemes tbody").replaceChildren(el("tr", {}, el("td", { colspan: 4, text: tr("no_rows") })));
    } catch (e) { $("#schemes tbody").replaceChildren(el("tr", {}, el("td", { colspan: 4, text: errorText(e) }))); }
  }
  $("#snapshot").addEventListener("click", async () => {
    if (!(await confirmAct(tr("op_snapshot_confirm")))) return;
    try { const s = await api("POST", "/api/v1/tally/snapshots", { campaign: CFG.campaign, phase: null }); $("#snapshot-out").textContent = `${tr("op_snapshot_ok")} ${s.id}`; $("#snapshot-id").value = s.id; } catch (e) { flash(errorText(e), "error"); }
  });
  let nominations = [];
  $("#nominate-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = ev.target; clearErrors(form);
    if (!$("#snapshot-id").value.trim()) { showErrors(form, [{ input: $("#snapshot-id"), message: tr("v_required") }]); return; }
    try {
      const r = await api("POST", `/api/v1/awards/schemes/${encodeURIComponent($("#scheme").value)}/nominations`, { snapshot_id: $("#snapshot-id").value.trim() });
      nominations = r.items || [];
      const figs = (f) => Object.entries(f || {}).filter(([, v]) => typeof v === "number").map(([k, v]) => `${T[k === "valid" ? "valid_n" : k === "benefit_vnd" ? "benefit" : k === "achievement_pct" ? "achievement" : k] || k}: ${(METRIC_FMT[k] || fmt)(v)}`).join(" · ");
      $("#nominations").hidden = false;
      $("#nominations tbody").replaceChildren(...nominations.map((n, i) => el("tr", {}, el("td", {}, el("input", { type: "checkbox", checked: true, "data-i": i, "aria-label": `${tr("op_choose")} ${n.recipient.unit_code || n.recipient.member_id}` })),
        el("td", { class: "num", text: n.rank }), el("td", { text: n.recipient.name || n.recipient.full_name ? `${n.recipient.unit_code || n.recipient.member_id} · ${n.recipient.name || n.recipient.full_name}` : n.recipient.unit_code || n.recipient.member_id }), el("td", { text: figs(n.figures) }))));
      if (!nominations.length) $("#nominations tbody").replaceChildren(el("tr", {}, el("td", { colspan: 4, text: tr("no_rows") })));
    } catch (e) { flash(errorText(e), "error"); }
  });
  $("#decision-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = ev.target; clearErrors(form);
    const errs = [];
    if (!$("#decision-no").value.trim()) errs.push({ input: $("#decision-no"), message: tr("v_required") });
    if (!$("#signed-on").value) errs.push({ input: $("#signed-on"), message: tr("v_required") });
    if (errs.length) { showErrors(form, errs, labelOf); return; }
    const chosen = $$("#nominations tbody input:checked").map((i) => nominations[+i.dataset.i].recipient);
    if (!chosen.length) { flash(tr("no_rows"), "error"); return; }
    const approve = chosen.length === nominations.length ? "all" : chosen;
    if (!(await confirmAct(`${tr("op_decide_confirm")} (${chosen.length} · ${tr("op_decision_no")} ${$("#decision-no").value.trim()})`))) return;
    try {
      const r = await api("POST", `/api/v1/awards/schemes/${encodeURIComponent($("#scheme").value)}/decision`, { decision_no: $("#decision-no").value.trim(), signed_on: $("#signed-on").value, approve });
      $("#decision-result").replaceChildren(el("p", { class: "ok", text: `${tr("op_decided_ok")} ${fmt((r.items || r.awards || chosen).length)}` }));
    } catch (e) { $("#decision-result").replaceChildren(el("p", { class: "error", text: errorText(e) })); }
  });
  for (const format of ["xlsx", "csv"]) {
    $(`#export-${format}`).addEventListener("click", () => download(`/api/v1/awards/schemes/${encodeURIComponent($("#scheme").value)}/export?format=${format}`, `khen-thuong-${$("#scheme").value}.${format}`));
  }
  return Promise.all([health(), deadLetters(), tree(session.account?.unit || "VN"), schemes(), campaignLoaded]);
}

// ---- boot ---------------------------------------------------------------------------------------------
// A file input shows its chosen file's name in the page's language (pages.py ``_file_input``).
function fileNames() {
  for (const input of $$(".file-input")) {
    const out = $(`[data-file-for="${input.id}"]`);
    const show = () => { out.textContent = input.files && input.files[0] ? input.files[0].name : tr("no_file"); };
    input.addEventListener("change", show);
    input.form?.addEventListener("reset", () => setTimeout(show));
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  showWho();
  fileNames();
  $("#signout").addEventListener("click", () => { session.clear(); location.href = "/"; });
  const pages = { signin: pageSignin, submit: initiativeForm, mine: pageMine, support: async () => { pageSupport(); await initiativeForm(); }, review: pageReview, appraise: pageAppraise, dashboard: pageDashboard, public: () => rankForm(true), operator: pageOperator, initiative: pageInitiative };
  try { if (gate()) await (pages[document.body.dataset.page] || (() => {}))(); } catch (e) { flash(errorText(e), "error"); }
  document.body.dataset.ready = "1";
});
