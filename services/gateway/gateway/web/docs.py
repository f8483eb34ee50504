"""/docs: a small, self-contained reader of the merged OpenAPI (the usual Swagger UI comes from a CDN)."""

DOCS_HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Sáng kiến API</title>
<link rel="stylesheet" href="/static/app.css"></head><body><main id="main">
<h1>Sáng kiến — public API</h1><p><a href="/api/v1/openapi.json">/api/v1/openapi.json</a></p>
<p id="missing" class="warn" hidden></p><div id="paths">Loading…</div></main>
<script src="/static/docs.js" defer></script></body></html>"""
