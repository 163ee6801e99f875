"""Asset specs given as data (a PUT body, a spec file's entry) read into ``AssetSpec``, and every refusal
naming the entry and the problem. No ClickHouse needed."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from assetpipe.consumers.registry import SpecError, spec_entry, spec_from_json
from assetpipe.schemas.asset_key import AssetKey


def test_every_field_of_a_spec() -> None:
    spec = spec_from_json(
        ["sales", "orders"],
        {
            "description": "every order",
            "deps": ["sales/raw", ["crm", "customers"]],
            "owners": ["ana@example.com", "team:sales"],
            "tags": {"domain": "sales", "pii": ""},
            "kinds": ["snowflake"],
            "group_name": "sales",
            "code_version": "3",
            "metadata": {"rows": 3, "dashboard": {"type": "url", "value": "https://bi/o"}},
        },
    )
    assert spec.key == AssetKey(["sales", "orders"])
    assert spec.deps == (AssetKey(["sales", "raw"]), AssetKey(["crm", "customers"]))
    assert spec.kinds == frozenset({"snowflake"})
    assert spec.tags == {"domain": "sales", "pii": "", "dagster/kind/snowflake": ""}
    assert (spec.metadata["rows"].kind, spec.metadata["dashboard"].kind) == ("int", "url")
    assert spec_from_json(["a"], {}).description is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"owner": []}, "unknown field 'owner': an asset spec has description, deps, owners, tags, kinds, group_name, "
                        "code_version, metadata"),
        ({"owners": ["bob"]}, "Invalid owner 'bob' for asset 'a/b'. Owner must be an email address or a team name "
                              "prefixed with 'team:'."),
        ({"owners": "team:x"}, "field 'owners' must be a list of strings"),
        ({"tags": {"k": 1}}, "Tag values must be strings, got type <class 'int'> at key k."),
        ({"tags": {"bad key": "v"}}, "Found invalid tag keys: ['bad key']"),
        ({"tags": []}, "field 'tags' must be an object, got array"),
        ({"kinds": [str(i) for i in range(11)]}, "Assets can have at most ten kinds currently."),
        ({"group_name": "a b"}, 'Group name "a b" of asset \'a/b\' is not valid'),
        ({"description": 3}, "field 'description' must be a string, got number"),
        ({"code_version": True}, "field 'code_version' must be a string, got boolean"),
        ({"deps": "a/b"}, "field 'deps' must be a list of asset keys, got string"),
        ({"deps": ["a//b"]}, "field 'deps[0]': path parts must be non-empty strings"),
        ({"deps": [3]}, "field 'deps[0]' must be an asset key"),
        ({"metadata": {"u": {"type": "url", "value": 3}}}, "metadata"),
        ({"metadata": {"dagster/row_count": "many"}}, "must be of type int"),
        ({"metadata": {"when": {"at": datetime.date(2024, 1, 1)}}}, "not JSON serializable"),
    ],
)  # fmt: skip
def test_a_bad_field_is_named(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as refused:
        spec_from_json(["a", "b"], fields)
    assert message in str(refused.value)
    assert refused.value.code == "invalid_spec"


def test_a_file_entry_is_named_in_its_error() -> None:
    assert spec_entry({"key": "a/b", "owners": ["team:x"]}, "entry 1").key == AssetKey(["a", "b"])
    assert spec_entry({"key": ["a/b"]}, "entry 1").key == AssetKey(["a/b"])  # a list gives the parts verbatim
    for entry, message in [
        ({"key": "a/b", "owners": ["bob"]}, "specs.yaml: entry 2 (a/b): Invalid owner 'bob'"),
        ({"owners": []}, "specs.yaml: entry 2: missing required field 'key'"),
        ({"key": 3}, "specs.yaml: entry 2: field 'key' must be an asset key"),
        ({"key": "a//b"}, "specs.yaml: entry 2: field 'key': path parts must be non-empty strings"),
        ("a/b", "specs.yaml: entry 2: an asset spec must be an object with a key, got string"),
    ]:
        with pytest.raises(SpecError) as refused:
            spec_entry(entry, "specs.yaml: entry 2")
        assert str(refused.value).startswith(message), (entry, str(refused.value))
