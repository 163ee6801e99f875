"""What an alert is: one decision of one policy about one subject (an asset's check, a run, a tick), with
an id derived from what it is about, so that deciding it again (a replay, another replica) gives the same
id; and its deliveries, one per channel and recipient, each recorded in the ``alerts`` table.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["freshness", "check", "anomaly", "materialization", "run", "sensor_tick", "schedule_tick"]
Change = Literal["triggered", "resolved"]
KINDS: tuple[Kind, ...] = ("freshness", "check", "anomaly", "materialization", "run", "sensor_tick", "schedule_tick")
# the kinds whose alerts trigger and resolve: a state is kept per (policy, asset, subject)
CHECK_KINDS: tuple[Kind, ...] = ("freshness", "check", "anomaly", "materialization")
# The ids of alerts and deliveries: uuid5 in this namespace over what they are about.
NAMESPACE = uuid.UUID("6f0d7c1e-4a55-5b7e-9a7e-2c0b8f5a1d20")


def alert_id_for(policy: str, asset_key: str, subject: str, change: Change, event_id: str) -> str:
    """The alert of ``policy`` about ``subject`` (a check name, a job, a sensor or schedule) of ``asset_key``,
    becoming ``change`` at the event ``event_id`` (an evaluation, a run, a tick): the same on every replica."""
    return str(uuid.uuid5(NAMESPACE, "\x00".join((policy, asset_key, subject, change, event_id))))


def delivery_id_for(alert_id: str, channel: str, recipient: str) -> str:
    """One delivery of an alert: what a webhook receives as ``Idempotency-Key``."""
    return str(uuid.uuid5(NAMESPACE, "\x00".join((alert_id, channel, recipient))))


@dataclass(frozen=True, slots=True)
class Alert:
    """``subject``: the check's name, the run's job, the sensor's or schedule's name. ``state``: the
    freshness state (PASS, WARN, FAIL), or PASSED / FAILED. ``cause``: one line saying what happened;
    ``details``: the evaluation's metadata (or the error's), as text. ``link``: the asset's catalog page,
    or the run's, sensor's or schedule's page when there is no asset."""

    alert_id: str
    policy: str
    kind: Kind
    change: Change
    asset_key: str
    subject: str
    severity: str
    state: str
    cause: str
    event_id: str
    event_us: int
    link: str
    owners: tuple[str, ...] = ()
    partition: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)
    location: str = ""

    @property
    def check_name(self) -> str:
        return self.subject if self.kind in CHECK_KINDS else ""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert to one recipient of one channel (a webhook's or Slack's recipient is the channel's name)."""

    alert: Alert
    channel: str
    channel_kind: str
    recipient: str

    @property
    def delivery_id(self) -> str:
        return delivery_id_for(self.alert.alert_id, self.channel, self.recipient)


@dataclass(frozen=True, slots=True)
class Sent:
    """What sending a delivery came to: ``error`` empty when it was sent."""

    attempts: int
    error: str = ""
    sent_us: int | None = None

    @property
    def ok(self) -> bool:
        return not self.error
