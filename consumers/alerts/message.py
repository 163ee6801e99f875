"""What an alert says, on each channel: a title (``summary``: the line the ``alerts`` table keeps), the JSON
body of a webhook, the text of a Slack-compatible message, and an email. Each names the asset, its owners,
the cause, and links to the asset's catalog page (or the run's, sensor's or schedule's page).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from urllib.parse import quote

from assetpipe.consumers.alerts.alert import Alert

_MAX_SUBJECT = 200
_MAX_CAUSE = 2000


def asset_url(base: str, asset_key: str) -> str:
    """The catalog page of an asset: ``<base>/assets/a/b``, each part percent-encoded."""
    return f"{base}/assets/" + "/".join(quote(part, safe="") for part in asset_key.split("/"))


def page_url(base: str, *parts: str) -> str:
    return base + "".join("/" + quote(part, safe="") for part in parts)


def title(alert: Alert) -> str:
    """One line: what happened to what."""
    a, s = alert.asset_key, alert.subject
    resolved = alert.change == "resolved"
    if alert.kind == "freshness":
        return f"{a} is fresh again" if resolved else f"{a} is late ({alert.state})"
    if alert.kind == "anomaly":
        return f"{a}: {s} is normal again" if resolved else f"{a}: anomaly, {s} failed ({alert.severity})"
    if alert.kind == "materialization":
        where = f" (partition {alert.partition})" if alert.partition else ""
        return f"{a} materialized again{where}" if resolved else f"{a} failed to materialize{where}"
    if alert.kind == "check":
        return f"{a}: check {s} passes again" if resolved else f"{a}: check {s} failed ({alert.severity})"
    if alert.kind == "run":
        return f"Run {alert.event_id[:8]} of job {s} failed" + (f" ({a})" if a else "")
    what = "Sensor" if alert.kind == "sensor_tick" else "Schedule"
    return f"{what} {s} failed" + (f" on {a}" if a else "")


def summary(alert: Alert) -> str:
    """The title and the cause on one line: the ``message`` of the ``alerts`` table."""
    cause = " ".join(alert.cause.split())
    return title(alert) + (f": {cause[:300]}" if cause else "")


def _when(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).isoformat().replace("+00:00", "Z")


def webhook_body(alert: Alert) -> dict[str, Any]:
    """The JSON a webhook receives."""
    return {
        "alert_id": alert.alert_id,
        "policy": alert.policy,
        "kind": alert.kind,
        "transition": alert.change,
        "title": title(alert),
        "asset_key": alert.asset_key or None,
        "check_name": alert.check_name or None,
        "subject": alert.subject,
        "severity": alert.severity or None,
        "state": alert.state,
        "cause": alert.cause[:_MAX_CAUSE],
        "owners": list(alert.owners),
        "partition": alert.partition,
        "code_location": alert.location or None,
        "event_id": alert.event_id,
        "timestamp": _when(alert.event_us),
        "metadata": dict(alert.details),
        "link": alert.link,
    }


def _slack_escaped(text: str) -> str:
    """Slack's rule for message text: ``&``, ``<`` and ``>`` escaped, so user text cannot make a link or a
    mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(alert: Alert) -> str:
    """A Slack-compatible message: the title, the cause, the owners, the policy and a link."""
    mark = ":white_check_mark:" if alert.change == "resolved" else ":rotating_light:"
    lines = [f"{mark} *{_slack_escaped(title(alert))}*"]
    if alert.cause:
        lines.append(_slack_escaped(alert.cause[:_MAX_CAUSE]))
    owners = ", ".join(alert.owners) if alert.owners else "none"
    lines.append(f"Owners: {_slack_escaped(owners)}")
    extra = f" · partition {alert.partition}" if alert.partition else ""
    lines.append(_slack_escaped(f"Policy: {alert.policy}{extra}"))
    lines.append(f"<{alert.link}|Open in assetpipe>")
    return "\n".join(lines)


def _header(text: str) -> str:
    return " ".join(text.split())[:_MAX_SUBJECT]


def email_message(alert: Alert, sender: str, recipient: str) -> EmailMessage:
    """A plain-text email of the alert to one recipient."""
    message = EmailMessage()
    message["Subject"] = _header(f"[assetpipe] {title(alert)}")
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid("alert")
    message["X-Assetpipe-Alert-Id"] = alert.alert_id
    body = [title(alert), ""]
    if alert.cause:
        body += [alert.cause[:_MAX_CAUSE], ""]
    rows = [
        ("Asset", alert.asset_key),
        ("Owners", ", ".join(alert.owners) or "none"),
        ("Check" if alert.check_name else "Subject", alert.subject),
        ("State", alert.state),
        ("Severity", alert.severity),
        ("Partition", alert.partition or ""),
        ("Policy", alert.policy),
        ("When", _when(alert.event_us)),
        ("Event", alert.event_id),
    ]
    body += [f"{name}: {value}" for name, value in rows if value]
    if alert.details:
        body += ["", "Metadata:"] + [f"  {key}: {value[:500]}" for key, value in sorted(alert.details.items())]
    body += ["", f"Open in assetpipe: {alert.link}", ""]
    message.set_content("\n".join(body))
    return message
