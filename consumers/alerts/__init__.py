"""The alert worker: check evaluations (freshness, bounds, anomalies, any check) off the accepted stream, and
run and tick failures from ClickHouse, sent on the transitions the alert policies watch to webhooks, Slack
and email, once each, and recorded in the ``alerts`` table; and the reads of that table the web pages show."""

from assetpipe.consumers.alerts.alert import Alert, Delivery, alert_id_for
from assetpipe.consumers.alerts.handler import AlertHandler
from assetpipe.consumers.alerts.reads import ALERT_STATUSES, alerts_of, list_alerts
from assetpipe.consumers.alerts.worker import AlertWorker, alert_policies

__all__ = [
    "ALERT_STATUSES",
    "Alert",
    "AlertHandler",
    "AlertWorker",
    "Delivery",
    "alert_id_for",
    "alert_policies",
    "alerts_of",
    "list_alerts",
]
