"""What an alert says on each channel, who receives it, and the retry policy of every channel."""

from __future__ import annotations

from assetpipe import AlertPolicy, EmailChannel, SlackChannel, WebhookChannel
from assetpipe.consumers.alerts.alert import Alert, alert_id_for
from assetpipe.consumers.alerts.delivery import deliveries, recipients
from assetpipe.consumers.alerts.exceptions import AlertDeliveryError
from assetpipe.consumers.alerts.message import asset_url, email_message, slack_text, summary, title, webhook_body
from assetpipe.consumers.alerts.retry import backoff_delays, with_retries


def alert(**changes: object) -> Alert:
    values: dict[str, object] = {
        "alert_id": alert_id_for("p", "sales/orders", "freshness", "triggered", "e1"),
        "policy": "p",
        "kind": "freshness",
        "change": "triggered",
        "asset_key": "sales/orders",
        "subject": "freshness",
        "severity": "ERROR",
        "state": "FAIL",
        "cause": "overdue by 120 s",
        "event_id": "e1",
        "event_us": 1_700_000_000_000_000,
        "link": asset_url("http://cat:3000", "sales/orders"),
        "owners": ("ana@example.com", "team:sales"),
        "details": {"dagster/overdue_seconds": "120"},
    }
    values.update(changes)
    return Alert(**values)  # type: ignore[arg-type]


def test_alert_ids_are_derived_from_what_they_are_about() -> None:
    assert alert_id_for("p", "a", "c", "triggered", "e") == alert_id_for("p", "a", "c", "triggered", "e")
    assert alert_id_for("p", "a", "c", "triggered", "e") != alert_id_for("p", "a", "c", "resolved", "e")
    assert alert_id_for("p", "a", "c", "triggered", "e") != alert_id_for("q", "a", "c", "triggered", "e")


def test_titles_name_the_asset_and_what_happened() -> None:
    assert title(alert()) == "sales/orders is late (FAIL)"
    assert title(alert(change="resolved", state="PASS")) == "sales/orders is fresh again"
    assert title(alert(kind="check", subject="rows", state="FAILED")) == "sales/orders: check rows failed (ERROR)"
    assert title(alert(kind="anomaly", subject="dagster/row_count_anomaly", severity="WARN")).endswith("failed (WARN)")
    assert (
        title(alert(kind="run", subject="etl", asset_key="", event_id="0123456789")) == "Run 01234567 of job etl failed"
    )
    assert title(alert(kind="sensor_tick", subject="s", asset_key="a")) == "Sensor s failed on a"
    failed = alert(kind="materialization", subject="materialization[2026-01-01]", partition="2026-01-01")
    assert title(failed) == "sales/orders failed to materialize (partition 2026-01-01)"
    assert title(alert(kind="materialization", change="resolved")) == "sales/orders materialized again"
    assert summary(alert(cause="line one\nline two")) == "sales/orders is late (FAIL): line one line two"


def test_links_encode_each_part_of_the_key() -> None:
    assert asset_url("http://cat:3000", "a b/c?d") == "http://cat:3000/assets/a%20b/c%3Fd"


def test_the_webhook_body_carries_the_whole_alert() -> None:
    body = webhook_body(alert())
    assert body["asset_key"] == "sales/orders" and body["transition"] == "triggered"
    assert body["owners"] == ["ana@example.com", "team:sales"]
    assert body["link"] == "http://cat:3000/assets/sales/orders"
    assert body["timestamp"] == "2023-11-14T22:13:20Z" and body["metadata"] == {"dagster/overdue_seconds": "120"}


def test_the_slack_text_names_asset_owners_cause_and_link_with_user_text_escaped() -> None:
    text = slack_text(alert(cause="<!channel> & <http://evil|x>"))
    assert "*sales/orders is late (FAIL)*" in text
    assert "Owners: ana@example.com, team:sales" in text
    assert "&lt;!channel&gt; &amp; &lt;http://evil|x&gt;" in text and "<!channel>" not in text
    assert text.endswith("<http://cat:3000/assets/sales/orders|Open in assetpipe>")


def test_an_email_is_plain_text_to_one_recipient_and_its_subject_one_line() -> None:
    message = email_message(alert(asset_key="a\r\nBcc: x@evil.example"), "assetpipe@example.com", "ana@example.com")
    assert message["To"] == "ana@example.com" and "\n" not in message["Subject"]
    assert message["Subject"].startswith("[assetpipe] a Bcc: x@evil.example is late")
    body = message.get_content()
    assert "Owners: ana@example.com, team:sales" in body and "Open in assetpipe: http://cat:3000/assets/" in body


def test_email_goes_to_its_recipients_and_the_owners_that_are_addresses() -> None:
    owners = ("ana@example.com", "team:sales", "oncall@example.com")
    assert recipients(EmailChannel(to=["oncall@example.com"]), owners) == ["oncall@example.com", "ana@example.com"]
    assert recipients(EmailChannel(to=["x@example.com"], owners=False), owners) == ["x@example.com"]
    assert recipients(SlackChannel("https://hooks.example.com/x"), owners) == ["slack"]
    policy = AlertPolicy("p", [WebhookChannel("http://h/x"), EmailChannel()])
    planned = deliveries(alert(), policy)
    assert [(d.channel_kind, d.recipient) for d, _ in planned] == [("webhook", "webhook"), ("email", "ana@example.com")]
    assert len({d.delivery_id for d, _ in planned}) == 2


def test_backoff_doubles_up_to_its_cap() -> None:
    assert backoff_delays(0.5, 5) == [0.5, 1.0, 2.0, 4.0]
    assert backoff_delays(10, 4, cap_s=30) == [10, 20, 30]
    assert backoff_delays(1, 1) == []


def test_retries_wait_out_the_backoff_and_stop_at_a_final_answer() -> None:
    waits: list[float] = []
    answers = [AlertDeliveryError("HTTP 500", retryable=True), AlertDeliveryError("HTTP 503", retryable=True), None]

    def attempt() -> None:
        answer = answers.pop(0)
        if answer is not None:
            raise answer

    sent = with_retries(attempt, what="t", attempts=5, backoff_s=0.1, wait=waits.append)
    assert (sent.ok, sent.attempts, waits) == (True, 3, [0.1, 0.2])

    def refused() -> None:
        raise AlertDeliveryError("HTTP 400 Bad Request", retryable=False)

    sent = with_retries(refused, what="t", attempts=5, backoff_s=0.1, wait=waits.append)
    assert (sent.ok, sent.attempts, sent.error) == (False, 1, "HTTP 400 Bad Request")

    def down() -> None:
        raise AlertDeliveryError("connection refused", retryable=True)

    sent = with_retries(down, what="t", attempts=3, backoff_s=1, wait=lambda _s: None)
    assert (sent.ok, sent.attempts, sent.error) == (False, 3, "connection refused")
