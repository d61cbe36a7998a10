"""User templates for channels (Jinja2, sandboxed).

A channel may override its subject or text with a template. Templates run in
Jinja2's ``SandboxedEnvironment`` (no attribute access to internals) with
undefined variables as errors; HTML templates autoescape. The variables are
those of ``alert_context``. Templates are compiled when the configuration
loads, so a syntax error is a configuration error naming the key.
"""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from monitor import render
from monitor.records import Alert

_TEXT = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
_HTML = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)


def alert_context(alert: Alert) -> dict[str, Any]:
    return {
        "kind": alert.kind,
        "rule_id": alert.rule_id,
        "rule_title": render.one_line(alert.rule_title),
        "severity": alert.severity.value,
        "title": render.headline(alert),
        "url": alert.article_url or "",
        "source": render.one_line(alert.source),
        "published": render.when(alert.published),
        "snippet": render.one_line(alert.snippet),
        "terms": render.matched_terms(alert),
        "why": render.why(alert),
        "story_id": alert.story_id,
    }


def check_template(source: str, html: bool = False) -> None:
    """Raise ``ValueError`` with the reason if the template does not compile."""
    try:
        (_HTML if html else _TEXT).from_string(source)
    except TemplateError as exc:
        raise ValueError(f"invalid template: {exc}") from None


def render_template(source: str, alert: Alert, html: bool = False) -> str:
    """Render a user template for an alert; raises ``TemplateError`` on a bad variable."""
    return (_HTML if html else _TEXT).from_string(source).render(alert_context(alert))
