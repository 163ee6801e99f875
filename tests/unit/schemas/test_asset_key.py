"""AssetKey's string forms."""

from __future__ import annotations

from assetpipe.schemas.asset_key import AssetKey


def test_a_query_string_list_is_read_as_its_parts() -> None:
    assert AssetKey.from_query_string('["a", "b/c"]').path == ("a", "b/c")
    assert AssetKey.from_query_string("a.b-c").path == ("a", "b", "c")


def test_deeply_nested_query_text_is_no_list_and_no_recursion_error() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    assert AssetKey.from_query_string(deep).path == ()
