"""``/docs`` (with ``--api-docs``): the API as one static HTML page, made from the
OpenAPI schema on the server.

FastAPI's own pages (Swagger UI, ReDoc) load their scripts from a CDN: a
browser that opens them runs third-party code next to the token. This page has
no scripts at all, loads nothing from anywhere (:data:`CSP` forbids it), and
is behind the token like every route but ``/health``.
"""

from __future__ import annotations

import html
from typing import Any

CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
"""The page's Content-Security-Policy: inline styles, and nothing else."""

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; }
code, pre { font: 13px ui-monospace, monospace; }
h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
h3 code { background: #eef; padding: 0.1em 0.4em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
td, th { border: 1px solid #ddd; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _type(schema: dict[str, Any]) -> str:
    """A schema's type in a few characters: ``ScoreResult``, ``list[float]``, ``str | null``."""
    name = _ref_name(schema)
    if name is not None:
        return name
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " | ".join(_type(s) for s in schema[key])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list[{_type(schema.get('items', {}))}]"
    if kind == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        return f"dict[str, {_type(extra) if isinstance(extra, dict) else 'any'}]"
    return str(kind)


def _body_schema(content: dict[str, Any]) -> str:
    for media in content.values():
        return _type(media.get("schema", {}))
    return ""


def _operation(path: str, method: str, op: dict[str, Any]) -> list[str]:
    out = [
        f"<h3><code>{_esc(method.upper())} {_esc(path)}</code> {_esc(op.get('summary', ''))}</h3>"
    ]
    if op.get("description"):
        out.append(f"<p>{_esc(op['description'])}</p>")
    body = op.get("requestBody", {}).get("content", {})
    if body:
        out.append(f"<p>Body: <code>{_esc(_body_schema(body))}</code></p>")
    rows = [
        f"<tr><td>{_esc(code)}</td><td>{_esc(r.get('description', ''))}</td>"
        f"<td><code>{_esc(_body_schema(r.get('content', {})))}</code></td></tr>"
        for code, r in sorted(op.get("responses", {}).items())
    ]
    out.append("<table><tr><th>status</th><th>meaning</th><th>body</th></tr>" + "".join(rows))
    out.append("</table>")
    return out


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    out = [f'<h3 id="{_esc(name)}"><code>{_esc(name)}</code></h3>']
    if schema.get("description"):
        out.append(f"<p>{_esc(schema['description'])}</p>")
    required = set(schema.get("required", ()))
    rows = [
        f"<tr><td><code>{_esc(field)}</code></td><td><code>{_esc(_type(prop))}</code></td>"
        f"<td>{'yes' if field in required else ''}</td>"
        f"<td>{_esc(prop.get('description', ''))}</td></tr>"
        for field, prop in schema.get("properties", {}).items()
    ]
    if rows:
        out.append(
            "<table><tr><th>field</th><th>type</th><th>required</th><th>meaning</th></tr>"
            + "".join(rows)
            + "</table>"
        )
    return out


def render(spec: dict[str, Any]) -> str:
    """The HTML page for an OpenAPI ``spec``: every route, then every body's fields."""
    info = spec.get("info", {})
    title = f"{info.get('title', 'API')} {info.get('version', '')}".strip()
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f"<p>{_esc(info.get('description', ''))}</p>",
        "<p>The machine-readable schema is at <code>/openapi.json</code>. Every route but "
        "<code>/health</code> needs the token when the server has one: "
        "<code>Authorization: Bearer &lt;token&gt;</code> or <code>X-Api-Key</code>.</p>",
        "<h2>Routes</h2>",
    ]
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            parts += _operation(path, method, op)
    parts.append("<h2>Bodies</h2>")
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        parts += _schema(name, schema)
    parts.append("</body></html>")
    return "\n".join(parts)
