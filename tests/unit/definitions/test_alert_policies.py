"""Alert policies: what they select (prefix, group, owner, tag; defined and reported-only assets), what they
refuse, and their JSON form (the settings file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assetpipe import AlertPolicy, DefinitionError, Definitions, EmailChannel, SlackChannel, WebhookChannel
from assetpipe.definitions.alerts import TRANSITIONS, AssetFacts, load_alert_policies, policies_from_json

HOOK = WebhookChannel("http://127.0.0.1:9/hook")


def defined(key: str, owners: tuple[str, ...] = (), group: str | None = None, **tags: str) -> AssetFacts:
    return AssetFacts(key, owners, group, tags, defined=True)


def test_a_policy_without_criteria_selects_every_asset_and_runs_of_none() -> None:
    policy = AlertPolicy("all", [HOOK])
    assert policy.on == TRANSITIONS
    assert policy.selects(AssetFacts("x")) and policy.selects(defined("y")) and policy.selects(None)


def test_prefixes_select_by_whole_parts_defined_or_only_reported() -> None:
    policy = AlertPolicy("sales", [HOOK], prefixes=["sales/"])
    assert policy.selects(AssetFacts("sales")) and policy.selects(AssetFacts("sales/orders"))
    assert policy.selects(defined("sales/eu/orders"))
    assert not policy.selects(AssetFacts("salesforce/x")) and not policy.selects(AssetFacts("ops/sales"))
    assert not policy.selects(None)


def test_groups_owners_and_tags_read_the_definition_and_all_must_hold() -> None:
    policy = AlertPolicy("p", [HOOK], groups=["finance"], owners=["ana@example.com"], tags={"tier": "gold"})
    good = defined("a", ("ana@example.com", "team:fin"), "finance", tier="gold")
    assert policy.selects(good)
    assert not policy.selects(defined("a", ("bo@example.com",), "finance", tier="gold"))
    assert not policy.selects(defined("a", ("ana@example.com",), "ops", tier="gold"))
    assert not policy.selects(defined("a", ("ana@example.com",), "finance", tier="silver"))
    assert not policy.selects(AssetFacts("a"))  # reported only: no owners, group or tags to match


def test_tags_as_a_list_take_a_key_alone_for_any_value() -> None:
    policy = AlertPolicy("p", [HOOK], tags=["pii", "tier=gold"])
    assert policy.selects(defined("a", pii=""))
    assert policy.selects(defined("a", tier="gold"))
    assert not policy.selects(defined("a", tier="bronze"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channels": []}, "channels must be a non-empty list"),
        ({"on": ["freshness_late"]}, "on must list some of"),
        ({"channels": [HOOK, WebhookChannel("http://127.0.0.1:9/other")]}, "two channels are named alike"),
        ({"name": "bad name"}, "alert policy name"),
        ({"prefixes": "sales"}, "must be a list of strings"),
    ],
)
def test_a_bad_policy_is_refused_naming_what(kwargs: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"name": "p", "channels": [HOOK], **kwargs}
    with pytest.raises(DefinitionError, match=message):
        AlertPolicy(**values)  # type: ignore[arg-type]


def test_channels_check_urls_and_addresses() -> None:
    with pytest.raises(DefinitionError, match="http"):
        WebhookChannel("javascript:alert(1)")
    with pytest.raises(DefinitionError, match="not an email address"):
        EmailChannel(to=["team:sales"])
    assert SlackChannel("https://hooks.example.com/x").name == "slack"


def test_policies_from_json_are_the_same_policies(tmp_path: Path) -> None:
    data = {
        "policies": [
            {
                "name": "sales",
                "prefixes": ["sales"],
                "on": ["freshness_fail", "check_error"],
                "channels": [
                    {"type": "webhook", "url": "http://127.0.0.1:9/h", "headers": {"X-Token": "t"}, "attempts": 3},
                    {"type": "slack", "url": "https://hooks.example.com/s"},
                    {"type": "email", "to": ["oncall@example.com"], "owners": False},
                ],
            }
        ]
    }
    path = tmp_path / "policies.json"
    path.write_text(json.dumps(data))
    (policy,) = load_alert_policies(path)
    assert policy == AlertPolicy(
        "sales",
        [
            WebhookChannel("http://127.0.0.1:9/h", headers={"X-Token": "t"}, attempts=3),
            SlackChannel("https://hooks.example.com/s"),
            EmailChannel(to=["oncall@example.com"], owners=False),
        ],
        on=["freshness_fail", "check_error"],
        prefixes=["sales"],
    )
    with pytest.raises(DefinitionError, match="type webhook, slack or email"):
        policies_from_json([{"name": "x", "channels": [{"type": "pager"}]}])
    with pytest.raises(DefinitionError, match="unexpected keyword"):
        policies_from_json([{"name": "x", "channels": [{"type": "email"}], "severity": "high"}])


def test_definitions_take_alert_policies_and_refuse_two_of_one_name() -> None:
    defs = Definitions(alert_policies=[AlertPolicy("p", [HOOK])])
    assert [p.name for p in defs.alert_policies] == ["p"]
    with pytest.raises(DefinitionError, match="two different alert policies"):
        Definitions(alert_policies=[AlertPolicy("p", [HOOK]), AlertPolicy("p", [HOOK], prefixes=["a"])])
