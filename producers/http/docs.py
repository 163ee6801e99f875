"""The ``/docs`` page: the OpenAPI document rendered as one self-contained HTML page (no scripts, no
assets from elsewhere), so it works on a machine without internet access."""

from __future__ import annotations

import json
from html import escape
from typing import Any

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem}
.op{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;margin:1rem 0}
.method{font-weight:700;color:#fff;background:#2a7;padding:.1rem .4rem;border-radius:4px;margin-right:.5rem}
.get{background:#27a}
code,pre{font:13px ui-monospace,monospace;background:#f5f5f5}
pre{padding:.6rem;overflow:auto}
table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}
"""


def render(document: dict[str, Any]) -> str:
    info = document["info"]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(info['title'])}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(info['title'])} <small>{escape(info['version'])}</small></h1>",
        f"<p>{escape(info['description'])}</p>",
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>. Authentication, when API keys are "
        "configured: <code>X-API-Key: &lt;key&gt;</code> or <code>Authorization: Bearer &lt;key&gt;</code>.</p>",
        "<h2>Endpoints</h2>",
    ]
    for path, item in document["paths"].items():
        for method, op in item.items():
            parts.append(_operation(path, method, op, document))
    parts.append("<h2>Schemas</h2>")
    for name, schema in document["components"]["schemas"].items():
        parts.append(f"<h3 id='{escape(name)}'>{escape(name)}</h3><pre>{escape(json.dumps(schema, indent=2))}</pre>")
    parts.append("</body></html>")
    return "".join(parts)


def _operation(path: str, method: str, op: dict[str, Any], document: dict[str, Any]) -> str:
    html = [
        f"<div class='op'><span class='method {escape(method)}'>{escape(method.upper())}</span>",
        f"<code>{escape(path)}</code><p>{escape(op.get('summary', ''))}</p>",
    ]
    params = op.get("parameters") or []
    if params:
        html.append("<table><tr><th>parameter</th><th>in</th><th>description</th></tr>")
        for p in params:
            html.append(
                f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
                f"<td>{escape(p.get('description', ''))}</td></tr>"
            )
        html.append("</table>")
    body = op.get("requestBody")
    if body:
        kinds = ", ".join(
            f"{escape(ct)} ({_schema_name(media.get('schema', {}))})" for ct, media in body["content"].items()
        )
        html.append(f"<p>Body: {kinds}</p>")
    responses = []
    for code, response in op.get("responses", {}).items():
        if "$ref" in response:
            response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        responses.append(f"<tr><td>{escape(code)}</td><td>{escape(response.get('description', ''))}</td></tr>")
    html.append("<table><tr><th>status</th><th>when</th></tr>" + "".join(responses) + "</table></div>")
    return "".join(html)


def _schema_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = escape(schema["$ref"].rsplit("/", 1)[1])
        return f"<a href='#{name}'>{name}</a>"
    if schema.get("type") == "array" and "$ref" in schema.get("items", {}):
        return "array of " + _schema_name(schema["items"])
    return escape(str(schema.get("type", "any")))
