"""From an alert to its deliveries and sends: each channel of the policy gets it once, an email channel once
per recipient (its ``to`` and, when it routes to owners, the asset's owners that are email addresses); every
send is retried by the one policy (``retry``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from assetpipe.consumers.alerts.alert import Alert, Delivery, Sent
from assetpipe.consumers.alerts.message import email_message, slack_text, webhook_body
from assetpipe.consumers.alerts.retry import with_retries
from assetpipe.consumers.alerts.smtp import SmtpSender
from assetpipe.consumers.alerts.webhook import post_json
from assetpipe.definitions.alerts import AlertPolicy, Channel, EmailChannel, SlackChannel, WebhookChannel, is_email
from assetpipe.schemas.settings import Settings


def recipients(channel: Channel, owners: tuple[str, ...]) -> list[str]:
    """Who a channel sends an alert to: a webhook or Slack channel its own name; an email channel each
    address of ``to``, then each owner that is an email address (when it routes to owners), once each."""
    if not isinstance(channel, EmailChannel):
        return [channel.name]
    found = [*channel.to, *(o for o in owners if channel.owners and is_email(o))]
    return list(dict.fromkeys(found))


def deliveries(alert: Alert, policy: AlertPolicy) -> list[tuple[Delivery, Channel]]:
    return [
        (Delivery(alert, channel.name, channel.kind, recipient), channel)
        for channel in policy.channels
        for recipient in recipients(channel, alert.owners)
    ]


class Dispatcher:
    """Sends deliveries through their channels, with the ``ASSETPIPE_ALERT_*`` defaults where a channel
    sets nothing of its own."""

    def __init__(self, settings: Settings, *, wait: Callable[[float], object] = time.sleep) -> None:
        self._timeout = settings.alert_webhook_timeout_s
        self._attempts = settings.alert_delivery_attempts
        self._backoff = settings.alert_delivery_backoff_s
        self._smtp = SmtpSender(settings)
        self._wait = wait

    def send(self, delivery: Delivery, channel: Channel) -> Sent:
        alert = delivery.alert
        if isinstance(channel, WebhookChannel):  # a SlackChannel too
            body = {"text": slack_text(alert)} if isinstance(channel, SlackChannel) else webhook_body(alert)
            headers = {**channel.headers, "Idempotency-Key": delivery.delivery_id}
            timeout = channel.timeout_s or self._timeout

            def attempt() -> None:
                post_json(channel.url, body, headers=headers, timeout_s=timeout)

            attempts = channel.attempts or self._attempts
            backoff = self._backoff if channel.backoff_s is None else channel.backoff_s
        else:
            message = email_message(alert, self._smtp.sender, delivery.recipient)

            def attempt() -> None:
                self._smtp.send(message)

            attempts, backoff = self._attempts, self._backoff
        what = f"alert {alert.alert_id[:8]} to {channel.kind} {channel.name} ({delivery.recipient})"
        return with_retries(attempt, what=what, attempts=attempts, backoff_s=backoff, wait=self._wait)
