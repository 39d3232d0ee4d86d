"""A small self-contained page listing the operations of /api/v1/openapi.json (generated from
the schemas by flask-smorest); no CDN script, so the CSP nonce is all it needs."""

from __future__ import annotations

from flask import Blueprint, render_template_string

from ..security import csp_nonce

bp = Blueprint("docs", __name__)

DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>WWHD API v1</title>
<style nonce="{{ nonce }}">body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
code{background:#f3f3f3;padding:0 .3em}.m{display:inline-block;width:4.5rem;font-weight:600}</style></head>
<body><h1>WWHD API v1</h1><p>Machine-readable: <a href="openapi.json"><code>/api/v1/openapi.json</code></a>
(OpenAPI 3.1). Send <code>Authorization: Bearer &lt;access_token&gt;</code> from <code>/api/v1/auth/login</code>.</p>
<div id="ops">Loading…</div>
<script nonce="{{ nonce }}">
fetch("openapi.json").then(r => r.json()).then(spec => {
  const root = document.getElementById("ops"); root.textContent = "";
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const row = document.createElement("p");
      const m = document.createElement("span"); m.className = "m"; m.textContent = method.toUpperCase();
      const p = document.createElement("code"); p.textContent = path;
      row.append(m, p, document.createTextNode(" \u2014 " + (op.summary || "")));
      root.append(row);
    }
  }
});
</script></body></html>"""


@bp.get("/docs")
def docs():
    return render_template_string(DOCS_PAGE, nonce=csp_nonce())
