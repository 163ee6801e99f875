"""Alert policies: which assets (by key prefix, group, owner, tag), on which transitions (freshness WARN or
FAIL, a check failed by severity, an anomaly, a materialization failed, a run failed, a sensor or schedule
tick failed), and where to
(a webhook, a Slack-compatible incoming webhook, email through SMTP).

A policy is given to ``Definitions(alert_policies=[...])`` or written as JSON in the file that
``ASSETPIPE_ALERT_POLICIES_FILE`` names (``policies_from_json``: the same fields, each channel with its
``type``). The alert worker (``assetpipe.consumers.alerts``) evaluates them; this module only holds and
checks what they say, and decides whether an asset is selected (``AlertPolicy.selects``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

from assetpipe.definitions.ops import DefinitionError

Transition = Literal[
    "freshness_warn",
    "freshness_fail",
    "check_warn",
    "check_error",
    "anomaly",
    "materialization_failed",
    "run_failed",
    "sensor_tick_failed",
    "schedule_tick_failed",
]
TRANSITIONS: tuple[Transition, ...] = get_args(Transition)
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


def is_email(text: str) -> bool:
    """An owner or recipient that mail can be sent to (an owner may also be ``team:<name>``)."""
    return _EMAIL.fullmatch(text) is not None


def _url(url: Any, what: str) -> str:
    if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
        raise DefinitionError(f"{what}: url must be an http(s) URL")
    return url


def _strings(values: Any, what: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise DefinitionError(f"{what} must be a list of strings")
    out = tuple(values)
    if not all(isinstance(v, str) and v for v in out):
        raise DefinitionError(f"{what} must be a list of non-empty strings")
    return out


@dataclass(frozen=True)
class WebhookChannel:
    """POSTs each alert as JSON to ``url`` (``Idempotency-Key``: the delivery's id). Connection errors,
    timeouts, 408, 425, 429 and 5xx answers are retried with exponential backoff; ``None`` takes the
    ``ASSETPIPE_ALERT_WEBHOOK_*`` settings. ``name`` is what the alerts table records as the recipient
    (never the URL, which may hold a secret)."""

    url: str
    name: str = "webhook"
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float | None = None
    attempts: int | None = None
    backoff_s: float | None = None
    kind: ClassVar[str] = "webhook"

    def __post_init__(self) -> None:
        _url(self.url, f"{self.kind} channel {self.name!r}")
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise DefinitionError(f"channel name {self.name!r}: letters, digits, _ . : - (1 to 128)")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in dict(self.headers).items()):
            raise DefinitionError(f"{self.kind} channel {self.name!r}: headers must map strings to strings")
        if self.attempts is not None and self.attempts < 1:
            raise DefinitionError(f"{self.kind} channel {self.name!r}: attempts must be at least 1")
        if (self.timeout_s is not None and self.timeout_s <= 0) or (self.backoff_s is not None and self.backoff_s < 0):
            raise DefinitionError(f"{self.kind} channel {self.name!r}: timeout_s must be > 0 and backoff_s >= 0")
        object.__setattr__(self, "headers", dict(self.headers))


@dataclass(frozen=True)
class SlackChannel(WebhookChannel):
    """A Slack-compatible incoming webhook: ``{"text": ...}`` naming the asset, its owners, the cause and a
    link to the asset's catalog page. Retried as ``WebhookChannel`` is."""

    name: str = "slack"
    kind: ClassVar[str] = "slack"


@dataclass(frozen=True)
class EmailChannel:
    """Mail through the SMTP server of the ``ASSETPIPE_SMTP_*`` settings, one message per recipient: ``to``,
    plus the asset's owners that are email addresses when ``owners`` is true."""

    to: Sequence[str] = ()
    owners: bool = True
    name: str = "email"
    kind: ClassVar[str] = "email"

    def __post_init__(self) -> None:
        to = _strings(self.to, f"email channel {self.name!r}: to")
        bad = [address for address in to if not is_email(address)]
        if bad:
            raise DefinitionError(f"email channel {self.name!r}: not an email address: {', '.join(bad)}")
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise DefinitionError(f"channel name {self.name!r}: letters, digits, _ . : - (1 to 128)")
        object.__setattr__(self, "to", to)


Channel = WebhookChannel | SlackChannel | EmailChannel


@dataclass(frozen=True, slots=True)
class AssetFacts:
    """What a selection reads of an asset: its key (``a/b``) and, when the registry has a current
    definition of it, its owners, group and tags. An asset only reported has no definition."""

    key: str
    owners: tuple[str, ...] = ()
    group: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    defined: bool = False


def _tags(tags: Any, what: str) -> tuple[tuple[str, str | None], ...]:
    """``{"k": "v"}`` or ``["k=v", "k"]`` (``k`` alone: any value) as (key, value or None) pairs."""
    if tags is None:
        return ()
    if isinstance(tags, Mapping):
        pairs = [(str(k), None if v is None else str(v)) for k, v in tags.items()]
    else:
        pairs = []
        for text in _strings(tags, what):
            key, sep, value = text.partition("=")
            pairs.append((key, value if sep else None))
    if not all(key for key, _ in pairs):
        raise DefinitionError(f"{what}: a tag needs a key")
    return tuple(pairs)


@dataclass(frozen=True)
class AlertPolicy:
    """Alert ``channels`` when an asset the policy selects makes one of the ``on`` transitions.

    Selection: every criterion given must hold, and one of its values is enough: ``prefixes`` by whole key
    parts (``sales`` selects ``sales`` and ``sales/...``), ``groups``, ``owners`` and ``tags`` (``{"k": "v"}``
    or ``["k=v", "k"]``) from the registry's current definition. No criterion: every asset, and the runs and
    ticks that concern no asset. An asset only reported (no definition) is selected by prefixes alone."""

    name: str
    channels: Sequence[Channel]
    on: Sequence[Transition] = TRANSITIONS
    prefixes: Sequence[str] = ()
    groups: Sequence[str] = ()
    owners: Sequence[str] = ()
    tags: Any = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise DefinitionError(f"alert policy name {self.name!r}: letters, digits, _ . : - (1 to 128)")
        what = f"alert policy {self.name!r}"
        channels = tuple(self.channels) if isinstance(self.channels, Iterable) else ()
        if not channels or not all(isinstance(c, (WebhookChannel, EmailChannel)) for c in channels):
            raise DefinitionError(f"{what}: channels must be a non-empty list of WebhookChannel, SlackChannel, "
                                  "EmailChannel")  # fmt: skip
        names = [c.name for c in channels]
        if len(set(names)) != len(names):
            raise DefinitionError(f"{what}: two channels are named alike ({', '.join(names)}): give each a name")
        on = _strings(self.on, f"{what}: on")
        unknown = [t for t in on if t not in TRANSITIONS]
        if unknown or not on:
            raise DefinitionError(f"{what}: on must list some of {', '.join(TRANSITIONS)}; got {list(on)}")
        prefixes = tuple(p.strip("/") for p in _strings(self.prefixes, f"{what}: prefixes"))
        object.__setattr__(self, "channels", channels)
        object.__setattr__(self, "on", on)
        object.__setattr__(self, "prefixes", prefixes)
        object.__setattr__(self, "groups", _strings(self.groups, f"{what}: groups"))
        object.__setattr__(self, "owners", _strings(self.owners, f"{what}: owners"))
        object.__setattr__(self, "tags", _tags(self.tags, f"{what}: tags"))

    @property
    def selects_everything(self) -> bool:
        return not (self.prefixes or self.groups or self.owners or self.tags)

    def selects(self, asset: AssetFacts | None) -> bool:
        """Whether the policy selects ``asset``; None (a run or tick of no asset): only with no criterion."""
        if self.selects_everything:
            return True
        if asset is None:
            return False
        key = asset.key
        if self.prefixes and not any(key == p or key.startswith(p + "/") for p in self.prefixes):
            return False
        if (self.groups or self.owners or self.tags) and not asset.defined:
            return False
        if self.groups and asset.group not in self.groups:
            return False
        if self.owners and not set(self.owners) & set(asset.owners):
            return False
        return not self.tags or any(k in asset.tags and (v is None or asset.tags[k] == v) for k, v in self.tags)

    def watches(self, *transitions: Transition) -> bool:
        return any(t in self.on for t in transitions)


def _channel(entry: Any, where: str) -> Channel:
    if not isinstance(entry, Mapping) or entry.get("type") not in ("webhook", "slack", "email"):
        raise DefinitionError(f"{where}: a channel is an object with type webhook, slack or email")
    fields = {k: v for k, v in entry.items() if k != "type"}
    kind = {"webhook": WebhookChannel, "slack": SlackChannel, "email": EmailChannel}[entry["type"]]
    try:
        made: Channel = kind(**fields)
    except TypeError as exc:
        raise DefinitionError(f"{where}: {entry['type']} channel: {exc}") from None
    return made


def policies_from_json(data: Any, where: str = "alert policies") -> list[AlertPolicy]:
    """Policies from their JSON form: a list of objects (or ``{"policies": [...]}``) with the fields of
    ``AlertPolicy``, each channel an object with ``type`` (``webhook``, ``slack``, ``email``) and its fields."""
    if isinstance(data, Mapping):
        data = data.get("policies")
    if not isinstance(data, list):
        raise DefinitionError(f'{where}: expected a list of policies (or {{"policies": [...]}})')
    policies = []
    for i, entry in enumerate(data):
        if not isinstance(entry, Mapping):
            raise DefinitionError(f"{where}: policy {i} is not an object")
        fields = dict(entry)
        channels = [_channel(c, f"{where}: policy {i}") for c in fields.pop("channels", None) or []]
        try:
            policies.append(AlertPolicy(channels=channels, **fields))
        except TypeError as exc:
            raise DefinitionError(f"{where}: policy {i}: {exc}") from None
    return unique_policies(policies)


def load_alert_policies(path: str | Path) -> list[AlertPolicy]:
    """The policies of a JSON file (``ASSETPIPE_ALERT_POLICIES_FILE``)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DefinitionError(f"cannot read alert policies from {path}: {exc}") from exc
    return policies_from_json(data, str(path))


def unique_policies(policies: Iterable[AlertPolicy]) -> list[AlertPolicy]:
    """``policies`` in order, refusing two different ones of one name (a policy's name keys its state)."""
    seen: dict[str, AlertPolicy] = {}
    for policy in policies:
        if not isinstance(policy, AlertPolicy):
            raise DefinitionError(f"alert policies must be AlertPolicy objects, got {type(policy).__name__}")
        if seen.setdefault(policy.name, policy) != policy:
            raise DefinitionError(f"two different alert policies are named {policy.name!r}")
    return list(seen.values())
