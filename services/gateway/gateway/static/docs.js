"use strict";
(async () => {
  const doc = await (await fetch("/api/v1/openapi.json")).json();
  const box = document.getElementById("paths");
  box.textContent = "";
  if ((doc["x-missing-services"] || []).length) {
    const m = document.getElementById("missing");
    m.hidden = false;
    m.textContent = "Not reachable now: " + doc["x-missing-services"].join(", ");
  }
  for (const path of Object.keys(doc.paths).sort()) {
    for (const [method, op] of Object.entries(doc.paths[path])) {
      const d = document.createElement("details");
      const s = document.createElement("summary");
      s.textContent = method.toUpperCase() + " " + path + (op.summary ? " — " + op.summary : "");
      d.append(s);
      const pre = document.createElement("pre");
      pre.textContent = JSON.stringify(op, null, 2);
      d.append(pre);
      box.append(d);
    }
  }
})();
