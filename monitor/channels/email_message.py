"""Channel *email*, part one: the message for an alert or a digest (no I/O).

Builds ``email.message.EmailMessage`` objects (policy SMTP) with a plain-text
and an HTML alternative from the channel-independent pieces in
``monitor.render``. This is where internet text is made safe for email:

* every header value goes through ``render.one_line`` (no CR, LF or control
  character can start a new header; the stdlib would raise on them and lose the
  alert) and non-ASCII is RFC 2047-encoded by the policy;
* every piece of internet text in the HTML part is ``html.escape``d before our
  own markup is added, and only http(s) URLs become links;
* both parts are UTF-8, quoted-printable, so the message is 7-bit clean.

It must not open connections, read the clock (the caller passes ``now``) or
decide whether an alert is sent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import urlsplit

from jinja2 import TemplateError

from monitor import render
from monitor.channel_settings import EmailChannelSettings
from monitor.logs import about
from monitor.records import Alert, Digest
from monitor.templates import render_template

log = logging.getLogger("newsmon.channels.email")

SUBJECT_PREFIX = "[newsmon]"
MAX_SUBJECT = 200  # characters; a 2,000-character headline makes no subject line
_FALLBACK_DOMAIN = "newsmon.invalid"
_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_MSG_ID = re.compile(r"^<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>$")  # printable ASCII, no <>, no space


@dataclass(frozen=True, slots=True)
class Envelope:
    """The SMTP envelope: bare addresses for MAIL FROM and RCPT TO."""

    sender: str
    recipients: tuple[str, ...]

    @property
    def domain(self) -> str:
        """The sender's domain as ASCII (IDNA), for Message-IDs."""
        domain = self.sender.rpartition("@")[2]
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return _FALLBACK_DOMAIN
        return domain if _DOMAIN.match(domain) else _FALLBACK_DOMAIN


def envelope(settings: EmailChannelSettings) -> Envelope:
    """The envelope of the configured addresses; ``ValueError`` names a bad one."""
    sender = _address(settings.sender, "sender")
    recipients = tuple(_address(to, f"to[{i}]") for i, to in enumerate(settings.to))
    if not recipients:
        raise ValueError("no recipients: set `to`")
    return Envelope(sender, recipients)


def _address(configured: str, key: str) -> str:
    _name, address = parseaddr(render.one_line(configured))
    local, at, domain = address.rpartition("@")
    if not (local and at and domain) or any(c.isspace() for c in address):
        raise ValueError(f"{key} {render.one_line(configured)!r} is not an email address")
    return address


def message_id(key: str, env: Envelope) -> str:
    """``<key@sender-domain>``: the same key always gives the same Message-ID."""
    return f"<{key}@{env.domain}>"


def ascii_alert(alert: Alert) -> Alert:
    """The alert with every text field as one line of printable ASCII (``\\u2019``):
    what is sent if the real rendering ever fails, so a rendering bug never loses an alert."""

    def plain(text: str) -> str:
        return render.one_line(text).encode("ascii", "backslashreplace").decode("ascii")

    return dataclasses.replace(
        alert,
        rule_title=plain(alert.rule_title),
        article_title=plain(alert.article_title),
        article_url=plain(alert.article_url) if alert.article_url else None,
        source=plain(alert.source),
        snippet=plain(alert.snippet),
        matched_terms=tuple(plain(term) for term in alert.matched_terms),
    )


def alert_subject(alert: Alert) -> str:
    """``[newsmon] HIGH: rule title — headline``; follow-ups get ``Re: `` in front."""
    subject = (f"{SUBJECT_PREFIX} {alert.severity.value.upper()}: "
               f"{render.one_line(alert.rule_title)} — {render.headline(alert)}")
    return _reply(alert, subject)


def digest_subject(digest: Digest) -> str:
    alerts, rules = len(digest.alerts), len(digest.by_rule())
    return (f"{SUBJECT_PREFIX} digest: {alerts} alert{'s' if alerts != 1 else ''},"
            f" {rules} rule{'s' if rules != 1 else ''}")


def digest_key(digest: Digest) -> str:
    """Stable identity of a digest: its channel and time range."""
    since = digest.since.isoformat() if digest.since else ""
    raw = "\0".join(("digest", digest.channel, since, digest.until.isoformat()))
    return "digest-" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def alert_message(
    alert: Alert,
    settings: EmailChannelSettings,
    env: Envelope,
    *,
    now: datetime,
    thread: str | None = None,
    channel: str = "email",
) -> EmailMessage:
    """The email for one alert; ``thread`` is the parent's Message-ID for a follow-up."""
    templates = settings.templates
    subject = alert_subject(alert)
    custom = _template(templates.subject, alert, channel, "subject")
    if custom is not None and render.one_line(custom):
        subject = _reply(alert, render.one_line(custom))
    text = _template(templates.text, alert, channel, "text")
    body = render.clean(text) if text is not None else render.plain_text(alert)
    page = _template(templates.html, alert, channel, "html", html=True)
    message = _headers(settings, env, subject, message_id(alert.key, env), now)
    message["X-Newsmon-Rule"] = render.one_line(alert.rule_id)
    reply_to = render.one_line(thread or "")
    if reply_to and _MSG_ID.match(reply_to):
        message["In-Reply-To"] = reply_to
        message["References"] = reply_to
    _bodies(message, body, page if page is not None else _alert_html(alert, subject))
    return message


def digest_message(
    digest: Digest, settings: EmailChannelSettings, env: Envelope, *, now: datetime
) -> EmailMessage:
    """One email for a whole digest, grouped by rule."""
    subject = digest_subject(digest)
    message = _headers(settings, env, subject, message_id(digest_key(digest), env), now)
    _bodies(message, render.clean(render.digest_text(digest)), _digest_html(digest, subject))
    return message


def _reply(alert: Alert, subject: str) -> str:
    if alert.kind == "follow_up" and not subject.lower().startswith("re:"):
        subject = "Re: " + subject
    return _cap(subject, MAX_SUBJECT)


def _template(source: str | None, alert: Alert, channel: str, key: str,
              html: bool = False) -> str | None:
    """A user template's output, or ``None`` (the default is used) if it fails."""
    if source is None:
        return None
    try:
        return render_template(source, alert, html=html)
    except TemplateError as exc:
        # Never lose the alert to a template: say so, and send the default rendering.
        log.warning("channel %s: templates.%s failed (%s); sending the default %s",
                    channel, key, _cap(render.one_line(str(exc)), 200), key,
                    extra=about(channel=channel, rule=alert.rule_id))
        return None


def _headers(settings: EmailChannelSettings, env: Envelope, subject: str, msg_id: str,
             now: datetime) -> EmailMessage:
    message = EmailMessage(policy=policy.SMTP)
    message["Subject"] = _safe(render.one_line(subject))
    message["From"] = _safe(render.one_line(settings.sender))
    message["To"] = _safe(", ".join(render.one_line(to) for to in settings.to))
    message["Date"] = format_datetime(now)
    message["Message-ID"] = msg_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    return message


def _bodies(message: EmailMessage, text: str, page: str) -> None:
    message.set_content(_safe(text), subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(_safe(page), subtype="html", charset="utf-8", cte="quoted-printable")


def _alert_html(alert: Alert, subject: str) -> str:
    url = alert.article_url
    if alert.kind == "alert":
        parts = [f"<p><strong>{_e(render.summary_line(alert))}</strong></p>",
                 f"<h2>{_linked(render.headline(alert), url)}</h2>"]
    else:
        parts = [f"<p><strong>Also reported by {_e(render.one_line(alert.source))}</strong></p>",
                 f"<h2>{_linked(render.headline(alert), url)}</h2>",
                 f"<p><em>follow-up to the {_e(render.one_line(alert.rule_title))}"
                 " alert</em></p>"]
    parts.append(f'<p style="color:#555">{_e(render.one_line(alert.source))}'
                 f" · {_e(render.when(alert.published))}</p>")
    if url and _http_url(url) is None:
        parts.append(f"<p>{_e(render.one_line(url))}</p>")  # shown, never a link
    parts.append(f"<p>{_e(render.why(alert))} (rule {_e(render.one_line(alert.rule_id))})</p>")
    snippet = "".join(f"<b>{_e(text)}</b>" if matched else _e(text)
                      for text, matched in render.segments(alert.snippet, alert.matched_terms))
    if snippet:
        parts.append(f'<blockquote style="color:#333">“{snippet}”</blockquote>')
    return _document(subject, parts)


def _digest_html(digest: Digest, subject: str) -> str:
    count = len(digest.alerts)
    parts = [f"<h1>newsmon digest: {count} alert{'s' if count != 1 else ''}</h1>"]
    if digest.since:
        parts.append(f"<p>{_e(render.when(digest.since))} – {_e(render.when(digest.until))}</p>")
    for _rule_id, alerts in digest.by_rule():
        first = alerts[0]
        parts.append(f"<h2>{_e(render.one_line(first.rule_title))}"
                     f" [{_e(first.severity.value)}] — {len(alerts)}</h2>")
        items = []
        for alert in alerts:
            prefix = "↳ " if alert.kind == "follow_up" else ""
            items.append(f"<li>{prefix}{_linked(render.headline(alert), alert.article_url)}"
                         f" ({_e(render.one_line(alert.source))},"
                         f" {_e(render.when(alert.published))})</li>")
        parts.append("<ul>" + "".join(items) + "</ul>")
    return _document(subject, parts)


def _document(title: str, parts: list[str]) -> str:
    body = "\n".join(parts)
    return ('<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            f"<title>{_e(title)}</title></head>\n"
            f'<body style="font-family:sans-serif">\n{body}\n</body></html>\n')


def _linked(text: str, url: str | None) -> str:
    """Escaped ``text``, inside a link only when ``url`` is http(s)."""
    href = _http_url(url) if url else None
    if href is None:
        return _e(text)
    return f'<a href="{html.escape(href, quote=True)}">{_e(text)}</a>'


def _http_url(url: str) -> str | None:
    candidate = render.one_line(url)
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return None
    if parts.scheme.lower() in ("http", "https") and parts.netloc and " " not in candidate:
        return candidate
    return None


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _safe(text: str) -> str:
    """Lone surrogates (from undecodable bytes) become ``?`` instead of failing the encode."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
