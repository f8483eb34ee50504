"use strict";
// Vanilla JS for the gateway's pages: every call goes to the public API with the token in localStorage.
const T = JSON.parse(document.getElementById("i18n").textContent);
const CFG = JSON.parse(document.getElementById("config").textContent);
const $ = (s, r = document) => r.querySelector(s);
const el = (tag, attrs = {}, ...kids) => {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") n.textContent = v; else if (k.startsWith("on")) n.addEventListener(k.slice(2), v); else n.setAttribute(k, v);
  }
  for (const k of kids) n.append(k);
  return n;
};
const fmt = (n) => (n === null || n === undefined ? "–" : typeof n === "number" ? n.toLocaleString(CFG.lang === "en" ? "en-US" : "vi-VN") : String(n));
const flash = (msg) => { $("#flash").textContent = msg || ""; };

const session = {
  get token() { return localStorage.getItem("sk_token"); },
  get account() { try { return JSON.parse(localStorage.getItem("sk_account") || "null"); } catch { return null; } },
  set(token, account) { localStorage.setItem("sk_token", token); localStorage.setItem("sk_account", JSON.stringify(account)); },
  clear() { localStorage.removeItem("sk_token"); localStorage.removeItem("sk_account"); },
};

class ApiFailure extends Error {
  constructor(status, body) { super((body && body.error && body.error.message) || String(status)); this.status = status; this.body = body; }
}

async function api(method, path, body, extra = {}) {
  const headers = { Accept: "application/json", ...extra };
  if (session.token) headers.Authorization = "Bearer " + session.token;
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  const r = await fetch(path, { method, headers, body: payload });
  const ct = r.headers.get("content-type") || "";
  const data = ct.includes("json") ? await r.json() : await r.text();
  if (r.status === 401 && session.token) { session.clear(); showWho(); }
  if (!r.ok) throw new ApiFailure(r.status, data);
  return data;
}

function showWho() {
  const a = session.account;
  $("#who").textContent = a ? `${T.signed_in_as} ${a.name} (${a.roles.join(", ")} · ${a.unit})` : "";
  $("#signout").hidden = !a;
}

function requireSignIn() {
  if (!session.token) { flash(T.need_signin); return false; }
  return true;
}

function errorText(e) { return `${T.error}: ${e.message}`; }

// ---- sign-in ---------------------------------------------------------------------------------
async function pageSignin() {
  const result = $("#signin-result");  // back from the identity provider (/auth/callback)
  if (result) {
    const r = JSON.parse(result.textContent);
    session.set(r.token, r.account);
    location.replace(r.next && r.next !== "/" ? r.next : "/dashboard");
    return;
  }
  const list = $("#accounts");
  if (!list) return;
  const { items } = await api("GET", "/api/v1/dev/accounts");
  for (const a of items) {
    list.append(el("li", {}, el("button", {
      type: "button", "data-account": a.key,
      onclick: async () => {
        const r = await api("POST", "/api/v1/dev/token", { account: a.key });
        session.set(r.token, r.account);
        showWho();
        const home = { member: "/submit", support: "/support", reviewer: "/review", appraiser: "/review", unit_admin: "/dashboard", operator: "/operator" };
        location.href = home[a.key] || "/dashboard";
      },
    }, el("strong", { text: a.name }), el("br"), el("span", { text: `${a.roles.join(", ")} · ${a.unit}` }))));
  }
}

// ---- submission form (member and support) ------------------------------------------------------
async function fillFields(select) {
  let fields = [];
  try { fields = (await api("GET", `/api/v1/campaigns/${encodeURIComponent(CFG.campaign)}`)).fields || []; } catch { /* tally down or no read route */ }
  if (!fields.length) fields = [{ code: "production", name: "Sản xuất kinh doanh" }, { code: "safety", name: "An toàn vệ sinh lao động, môi trường" }, { code: "admin", name: "Cải cách hành chính, quản lý" }, { code: "community", name: "Cộng đồng (y tế, giáo dục)" }, { code: "digital", name: "Chuyển đổi số" }];
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

function clearErrors(form) {
  form.querySelectorAll(".err").forEach((n) => n.remove());
  form.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
}

function showFieldErrors(form, details) {
  let first = null;
  for (const d of details || []) {
    const parts = String(d.field).split(".");
    let input = form.querySelector(`[name="${parts[0]}"]`);
    if (parts[0] === "authors" && parts.length >= 3) input = form.querySelectorAll(".author")[+parts[1]]?.querySelector(`[name="${parts[2]}"]`);
    if (!input) input = form.querySelector("button[type=submit]");
    const id = `err-${parts.join("-")}`;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", id);
    input.insertAdjacentElement("afterend", el("span", { class: "err", id, text: d.message }));
    first = first || input;
  }
  if (first) first.focus();
}

async function initiativeForm() {
  const form = $("#initiative-form");
  if (!form) return;
  const mode = $("#form-mode").value;
  const a = session.account;
  await fillFields($("#field"));
  $("#applied_on").value = new Date().toISOString().slice(0, 10);
  const authors = $("#authors");
  if (a && a.member_id && mode === "member") addAuthor(authors, a.member_id, a.name); else addAuthor(authors);
  $("#unit_code").value = a && mode === "member" ? a.unit : "";
  $("#add-author").addEventListener("click", () => { if (authors.querySelectorAll(".author").length < 20) $("input", addAuthor(authors)).focus(); });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    if (!requireSignIn()) return;
    const v = (n) => form.elements[n].value;
    const body = {
      campaign: CFG.campaign, unit_code: v("unit_code").trim(), field: v("field"), title: v("title").trim(),
      problem: v("problem"), solution: v("solution"), effect: v("effect"),
      expected_benefit_vnd: Number(v("expected_benefit_vnd") || 0), applied_on: v("applied_on"),
      confidential: form.elements.confidential.checked,
      authors: [...form.querySelectorAll(".author")].map((r) => ({ member_id: $("[name=member_id]", r).value.trim(), full_name: $("[name=full_name]", r).value.trim() })),
    };
    const key = form.dataset.key || (form.dataset.key = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()));
    try {
      const r = await api("POST", "/api/v1/initiatives", body, { "Idempotency-Key": key });
      delete form.dataset.key;
      $("#form-result").replaceChildren(el("span", { class: "ok", text: `${T.sent_ok} #${r.seq}` }));
      $("#form-result").focus?.();
      form.elements.title.value = "";
    } catch (e) {
      if (e.body && e.body.error && Array.isArray(e.body.error.details)) showFieldErrors(form, e.body.error.details);
      $("#form-result").textContent = errorText(e);
    }
  });
}

// ---- my initiatives ----------------------------------------------------------------------------
async function pageMine() {
  if (!requireSignIn()) return;
  const tbody = $("#mine tbody");
  try {
    const r = await api("GET", `/api/v1/initiatives?campaign=${encodeURIComponent(CFG.campaign)}&limit=100`);
    tbody.replaceChildren();
    for (const it of r.items) {
      const actions = el("td");
      if (it.status === "revision_requested") {
        actions.append(el("button", { type: "button", text: T.revise, onclick: () => reviseForm(it) }));
      }
      if (it.status === "submitted" || it.status === "revision_requested") {
        actions.append(el("button", { type: "button", text: T.withdraw, onclick: async () => {
          try { await api("POST", `/api/v1/initiatives/${it.id}/withdraw`); pageMine(); } catch (e) { flash(errorText(e)); }
        } }));
      }
      tbody.append(el("tr", {}, el("td", { class: "num", text: it.seq }), el("td", { text: it.title }),
        el("td", { text: T["st_" + it.status] || it.status }), el("td", { text: (it.submitted_at || "").slice(0, 10) }), actions));
    }
  } catch (e) { flash(errorText(e)); }
}

async function reviseForm(it) {
  // PATCH is allowed only while revision_requested; the reviewer's note comes from the composed view.
  const box = $("#revise");
  const v = await api("GET", `/api/v1/initiatives/${it.id}`);
  const last = (v.decisions || []).filter((d) => d.outcome === "revision").pop();
  box.hidden = false;
  $("#revise-title").textContent = `#${v.seq} ${v.title}`;
  $("#revise-note").textContent = last && last.note ? `${T.note}: ${last.note}` : "";
  for (const k of ["problem", "solution", "effect"]) $(`#revise-${k}`).value = v[k] || "";
  box.dataset.id = it.id;
  $("#revise-problem").focus();
}

function reviseSetup() {
  const form = $("#revise");
  if (!form) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const body = {};
    for (const k of ["problem", "solution", "effect"]) body[k] = $(`#revise-${k}`).value;
    try {
      await api("PATCH", `/api/v1/initiatives/${form.dataset.id}`, body);
      form.hidden = true; flash(T.revised_ok); pageMine();
    } catch (e) {
      if (e.body && e.body.error && Array.isArray(e.body.error.details)) showFieldErrors(form, e.body.error.details);
      flash(errorText(e));
    }
  });
}

// ---- support: import with a progress bar ---------------------------------------------------------
async function download(path, filename) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + session.token } });
  if (!r.ok) { flash(`${T.error}: ${r.status}`); return; }
  const a = el("a", { href: URL.createObjectURL(await r.blob()), download: filename });
  document.body.append(a); a.click(); a.remove();
}

function pageSupport() {
  $("#import-template").addEventListener("click", () => { if (requireSignIn()) download("/api/v1/imports/template.xlsx", "mau-nhap-sang-kien.xlsx"); });
  const form = $("#import-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!requireSignIn()) return;
    const fd = new FormData();
    fd.append("file", $("#import-file").files[0]);
    fd.append("campaign", CFG.campaign);
    const bar = $("#import-progress"), status = $("#import-status"), errs = $("#import-errors");
    errs.replaceChildren();
    try {
      const job = await api("POST", "/api/v1/imports", fd);
      for (;;) {
        const p = await api("GET", `/api/v1/imports/${job.id}`);
        const total = p.total || 0, done = (p.done || 0) + (p.failed || 0);
        bar.value = total ? Math.round((100 * done) / total) : 0;
        bar.textContent = bar.value + "%";
        status.textContent = `${done}/${total} · ${p.status}${p.failed ? " · " + p.failed + " ✗" : ""}`;
        if (["done", "completed", "failed", "finished"].includes(p.status)) {
          for (const er of (p.errors || []).slice(0, 200)) errs.append(el("li", { text: `#${er.row}: ${er.field || ""} ${er.message}` }));
          break;
        }
        await new Promise((res) => setTimeout(res, 700));
      }
    } catch (e) { status.textContent = errorText(e); }
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
  let items = [], idx = 0, mode = null, leaseEnd = null;
  const todayKey = "sk_done_" + new Date().toISOString().slice(0, 10);
  const doneToday = () => Number(localStorage.getItem(todayKey) || 0);
  $("#done-today").textContent = doneToday();
  const cur = () => items[idx];
  setInterval(() => {
    if (!leaseEnd) return;
    const s = Math.max(0, Math.round((leaseEnd - Date.now()) / 1000));
    $("#lease").textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }, 1000);
  async function show() {
    mode = null; $("#decide").hidden = true;
    const it = cur(), art = $("#current"), side = $("#similar");
    side.replaceChildren(el("h2", { text: T.similar }));
    if (!it) { art.replaceChildren(el("p", { text: T.queue_empty })); return; }
    const body = el("div");
    art.replaceChildren(el("h2", { id: "cur-title" }), el("p", { text: `${it.unit_code} · ${(it.authors || []).map((a) => a.full_name).join(", ")} · ${fmt(it.expected_benefit_vnd)} đ${it.confidential ? " · 🔒 " + T.f_confidential : ""}` }), body);
    $("#cur-title").textContent = it.title;
    for (const k of ["problem", "solution", "effect"]) body.append(el("h3", { text: T["f_" + k] }), el("p", { "data-part": k, text: it[k] || "" }));
    if (!(it.similar || []).length) side.append(el("p", { text: T.no_similar }));
    for (const s of (it.similar || []).slice(0, 3)) {
      const box = el("div", { class: "sim" }, el("h3", {}, el("span", { text: `${Math.round((s.score || 0) * 100)}% · ` }), el("span", { class: "sim-title" })));
      diffInto($(".sim-title", box), s.title, it.title, "del");
      side.append(box);
      try {
        const other = await api("GET", `/api/v1/initiatives/${s.initiative_id}`);
        for (const k of ["problem", "solution", "effect"]) {
          const p = el("p"); diffInto(p, other[k], it[k], "del"); box.append(el("h4", { text: T["f_" + k] }), p);
          const mine = $(`[data-part=${k}]`, art); if (mine) diffInto(mine, it[k], other[k], "ins");
        }
        diffInto($("#cur-title"), it.title, s.title, "ins");
      } catch { /* the similar one may be outside the reviewer's scope: title only */ }
    }
  }
  async function decide(outcome) {
    const it = cur(); if (!it) return;
    const body = { outcome, reason: outcome === "invalid" ? $("#reason").value : null, note: outcome === "valid" ? null : $("#note").value || null, verified_benefit_vnd: null };
    try {
      await api("POST", `/api/v1/review/items/${it.initiative_id}/decision`, body);
      localStorage.setItem(todayKey, doneToday() + 1);
      $("#done-today").textContent = doneToday();
      flash(`${T[outcome === "revision" ? "revision" : outcome]}: ${it.title}`);
      items.splice(idx, 1); if (idx >= items.length) idx = 0; $("#note").value = "";
      await show(); $("#workspace").focus();
    } catch (e) { flash(errorText(e)); }
  }
  function ask(kind) {
    mode = kind; $("#decide").hidden = false;
    $("#reason-row").hidden = kind !== "invalid"; $("#note-row").hidden = kind === "invalid" && false;
    (kind === "invalid" ? $("#reason") : $("#note")).focus();
  }
  $("#decide").addEventListener("submit", (ev) => { ev.preventDefault(); if (mode) decide(mode); });
  $("#decide").addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") { mode = null; $("#decide").hidden = true; $("#workspace").focus(); }
    if (ev.key === "Enter" && ev.target.tagName === "SELECT") { ev.preventDefault(); if (mode) decide(mode); }
  });
  const keys = { v: () => decide("valid"), i: () => ask("invalid"), r: () => ask("revision"), n: () => { if (items.length) { idx = (idx + 1) % items.length; show(); } } };
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || /INPUT|TEXTAREA|SELECT/.test(ev.target.tagName)) return;
    const f = keys[ev.key.toLowerCase()]; if (f) { ev.preventDefault(); f(); }
  });
  document.querySelectorAll("[data-key]").forEach((b) => b.addEventListener("click", () => keys[b.dataset.key]()));
  $("#claim").addEventListener("click", async () => {
    if (!requireSignIn()) return;
    try {
      const r = await api("POST", "/api/v1/review/claims", { count: Number($("#claim-count").value) });
      items = r.items || []; idx = 0; leaseEnd = r.lease_expires_at ? Date.parse(r.lease_expires_at) : null;
      flash(`${T.claimed} ${items.length}`); await show(); $("#workspace").focus();
    } catch (e) { flash(errorText(e)); }
  });
  $("#release").addEventListener("click", async () => {
    try { await api("POST", "/api/v1/review/claims/release", {}); items = []; leaseEnd = null; $("#lease").textContent = "–"; show(); } catch (e) { flash(errorText(e)); }
  });
}

// ---- dashboards ------------------------------------------------------------------------------------
function chart(node, series, quota) {
  const W = 640, H = 240, P = 36;
  const maxY = Math.max(1, quota || 0, ...series.map((p) => Math.max(p.submitted, p.valid)));
  const x = (i) => P + (series.length < 2 ? 0 : (i * (W - 2 * P)) / (series.length - 1));
  const y = (v) => H - P - (v * (H - 2 * P)) / maxY;
  const line = (k) => series.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p[k]).toFixed(1)}`).join("");
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`); svg.setAttribute("width", "100%");
  const add = (tag, attrs, text) => { const n = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); if (text !== undefined) n.textContent = text; svg.append(n); };
  add("line", { x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: "#555" });
  add("line", { x1: P, y1: P, x2: P, y2: H - P, stroke: "#555" });
  add("text", { x: 2, y: P }, fmt(maxY)); add("text", { x: 2, y: H - P }, "0");
  if (quota) { add("line", { x1: P, y1: y(quota), x2: W - P, y2: y(quota), stroke: "#a3161b", "stroke-dasharray": "6 4" }); add("text", { x: W - P - 90, y: y(quota) - 4 }, `${T.quota} ${fmt(quota)}`); }
  if (series.length) {
    add("path", { d: line("submitted"), fill: "none", stroke: "#0b4fa3", "stroke-width": 2 });
    add("path", { d: line("valid"), fill: "none", stroke: "#1d6b2f", "stroke-width": 3 });
    series.forEach((p, i) => {
      add("circle", { cx: x(i), cy: y(p.submitted), r: 4, fill: "#0b4fa3" }, `${p.date}: ${fmt(p.submitted)}`);
      add("circle", { cx: x(i), cy: y(p.valid), r: 4, fill: "#1d6b2f" }, `${p.date}: ${fmt(p.valid)}`);
    });
    add("text", { x: P, y: H - 8 }, series[0].date); add("text", { x: W - P - 70, y: H - 8 }, series[series.length - 1].date);
  }
  add("text", { x: P + 8, y: 14, fill: "#0b4fa3" }, `— ${T.submitted}`); add("text", { x: P + 120, y: 14, fill: "#1d6b2f" }, `— ${T.valid_n}`);
  node.replaceChildren(svg);
}

function cumulative(items) {
  let s = 0, v = 0;
  return items.map((p) => {
    const date = (p.date || p.bucket || p.day || "").slice(0, 10);
    if (p.cumulative_submitted !== undefined) return { date, submitted: p.cumulative_submitted, valid: p.cumulative_valid };
    s += p.submitted || 0; v += p.valid || 0; return { date, submitted: s, valid: v };
  });
}

async function loadRankings() {
  const q = new URLSearchParams({ campaign: CFG.campaign, kind: $("#rk-kind").value, metric: $("#rk-metric").value, limit: "20" });
  if ($("#rk-cluster").value.trim()) q.set("cluster", $("#rk-cluster").value.trim());
  const list = $("#rankings");
  try {
    const r = await api("GET", `/api/v1/tally/rankings?${q}`);
    list.replaceChildren(...(r.items || []).map((it) => el("li", { value: it.rank, text: `${it.unit.name || it.unit.code} — ${fmt(it.value)}` })));
  } catch (e) { list.replaceChildren(el("li", { text: errorText(e) })); }
}

async function loadPublicLists() {
  try {
    const m = await api("GET", `/api/v1/tally/milestones?campaign=${encodeURIComponent(CFG.campaign)}`);
    renderMilestones(m.items);
  } catch (e) { $("#milestones").replaceChildren(el("li", { text: errorText(e) })); }
  try {
    const a = await api("GET", `/api/v1/awards?campaign=${encodeURIComponent(CFG.campaign)}`);
    renderAwards(a.items);
  } catch (e) { $("#awards").replaceChildren(el("li", { text: errorText(e) })); }
}

function renderAwards(items) {
  $("#awards").replaceChildren(...(items || []).filter((a) => !a.revoked).map((a) => el("li", { text: `${a.scheme}: ${a.recipient.unit_code || a.recipient.full_name || a.recipient.member_id} (${a.decision_no})` })));
}

function rankForm(publicLists = true) {
  $("#rank-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadRankings(); });
  loadRankings();
  if (publicLists) loadPublicLists();
}

function renderMilestones(items) {
  $("#milestones").replaceChildren(...(items || []).map((it) => el("li", { text: `${fmt(it.n)}: ${it.unit_code} · ${(it.authors || []).map((a) => a.full_name).join(", ")}` })));
}

async function pageDashboard() {
  rankForm(false);
  const unitInput = $("#unit");
  unitInput.value = new URLSearchParams(location.search).get("unit") || session.account?.unit || "VN";
  let rows = [], sortKey = "code", asc = true;
  const renderChildren = () => {
    const val = (r) => (sortKey === "code" ? r.unit.code : r.figures[sortKey] ?? -1);
    rows.sort((a, b) => (val(a) < val(b) ? -1 : val(a) > val(b) ? 1 : 0) * (asc ? 1 : -1));
    $("#children tbody").replaceChildren(...rows.map((r) => el("tr", {}, el("td", {}, el("a", { href: `/dashboard?unit=${encodeURIComponent(r.unit.code)}`, text: `${r.unit.code} ${r.unit.name || ""}` })),
      ...["submitted", "valid", "participants", "quota", "achievement_pct"].map((k) => el("td", { class: "num", text: fmt(r.figures[k]) })))));
    document.querySelectorAll("[data-sort]").forEach((b) => b.parentElement.setAttribute("aria-sort", b.dataset.sort === sortKey ? (asc ? "ascending" : "descending") : "none"));
  };
  document.querySelectorAll("[data-sort]").forEach((b) => b.addEventListener("click", () => { asc = sortKey === b.dataset.sort ? !asc : false; sortKey = b.dataset.sort; renderChildren(); }));
  async function load() {
    if (!requireSignIn()) return;
    const code = unitInput.value.trim();
    try {
      const v = await api("GET", `/api/v1/units/${encodeURIComponent(code)}/overview?campaign=${encodeURIComponent(CFG.campaign)}`);
      $("#missing").hidden = !v.missing.length; $("#missing").textContent = `${T.missing} ${v.missing.join(", ")}`;
      const f = v.figures || {};
      const cards = [["submitted", T.submitted], ["valid", T.valid_n], ["invalid", T.invalid_n], ["pending", T.pending], ["participants", T.participants], ["benefit_vnd", T.benefit], ["quota", T.quota], ["achievement_pct", T.achievement]];
      $("#figures").replaceChildren(...cards.map(([k, label]) => el("div", { "data-figure": k }, el("dt", { text: label }), el("dd", { text: fmt(f[k]) }))));
      rows = v.children || []; renderChildren();
      renderAwards(v.awards || []);
      renderMilestones(v.milestones);
      if (v.rank_among_siblings && v.rank_among_siblings.rank) $("#sibling-rank").textContent = `${T.rank_siblings} ${v.rank_among_siblings.rank}/${v.rank_among_siblings.of} (${v.rank_among_siblings.parent_code})`;
      try {
        const ts = await api("GET", `/api/v1/tally/timeseries?campaign=${encodeURIComponent(CFG.campaign)}&unit=${encodeURIComponent(code)}&bucket=day`);
        chart($("#chart"), cumulative(ts.items || ts.points || []), f.quota);
      } catch { chart($("#chart"), [], f.quota); }
    } catch (e) { flash(errorText(e)); }
  }
  $("#unit-form").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  await load();
}

// ---- operator --------------------------------------------------------------------------------------
function pageOperator() {
  const out = $("#op-out");
  const show = (x) => { out.textContent = typeof x === "string" ? x : JSON.stringify(x, null, 2); };
  const run = (form, fn) => $(form).addEventListener("submit", async (ev) => { ev.preventDefault(); try { show(await fn()); } catch (e) { show(e.body || errorText(e)); } });
  const json = (id) => JSON.parse($(id).value);
  run("#units-form", () => api("PUT", "/api/v1/units", json("#units-json")));
  run("#units-file-form", () => { const fd = new FormData(); fd.append("file", $("#units-file").files[0]); return api("POST", "/api/v1/units/import", fd); });
  run("#campaign-form", () => api("PUT", `/api/v1/campaigns/${encodeURIComponent(CFG.campaign)}`, json("#campaign-json")));
  run("#quotas-form", () => api("PUT", `/api/v1/campaigns/${encodeURIComponent(CFG.campaign)}/quotas`, json("#quotas-json")));
  $("#snapshot").addEventListener("click", async () => {
    try { const s = await api("POST", "/api/v1/tally/snapshots", { campaign: CFG.campaign, phase: null }); $("#snapshot-out").textContent = s.id; $("#snapshot-id").value = s.id; show(s); } catch (e) { show(e.body || errorText(e)); }
  });
  run("#nominate-form", async () => {
    const r = await api("POST", `/api/v1/awards/schemes/${encodeURIComponent($("#scheme").value)}/nominations`, { snapshot_id: $("#snapshot-id").value });
    $("#nominations").replaceChildren(...r.items.map((n) => el("li", { text: `${n.recipient.unit_code || n.recipient.member_id} ${JSON.stringify(n.figures)}` })));
    return r;
  });
  run("#decision-form", () => api("POST", `/api/v1/awards/schemes/${encodeURIComponent($("#scheme").value)}/decision`, { decision_no: $("#decision-no").value, signed_on: $("#signed-on").value, approve: "all" }));
  for (const format of ["xlsx", "csv"]) {
    $(`#export-${format}`).addEventListener("click", async () => {
      await download(`/api/v1/awards/schemes/${encodeURIComponent($("#scheme").value)}/export?format=${format}`, `awards-${$("#scheme").value}.${format}`);
    });
  }
}

// ---- boot ---------------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", async () => {
  showWho();
  $("#signout").addEventListener("click", () => { session.clear(); location.href = "/"; });
  const pages = { signin: pageSignin, submit: initiativeForm, mine: async () => { reviseSetup(); await pageMine(); }, support: async () => { pageSupport(); await initiativeForm(); }, review: pageReview, dashboard: pageDashboard, public: rankForm, operator: pageOperator };
  try { await (pages[document.body.dataset.page] || (() => {}))(); } catch (e) { flash(errorText(e)); }
  document.body.dataset.ready = "1";
});
