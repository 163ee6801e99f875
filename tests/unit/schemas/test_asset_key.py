"""AssetKey's string forms: user strings split on ``/``, event constructors' strings as Dagster splits them."""

from __future__ import annotations

from assetpipe.schemas.asset_key import AssetKey, coerce_asset_key
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.encoder import EventEncoder
from assetpipe.schemas.model import AssetCheckEvaluation, AssetMaterialization, AssetObservation


def test_a_query_string_list_is_read_as_its_parts() -> None:
    assert AssetKey.from_query_string('["a", "b/c"]').path == ("a", "b/c")
    assert AssetKey.from_query_string("a.b-c").path == ("a", "b", "c")


def test_deeply_nested_query_text_is_no_list_and_no_recursion_error() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    assert AssetKey.from_query_string(deep).path == ()


def test_a_string_given_to_an_event_splits_as_dagsters_events_split_it() -> None:
    assert AssetMaterialization("s3.my_asset").asset_key.path == ("s3", "my_asset")
    assert AssetObservation("a/b").asset_key.path == ("a", "b")
    assert AssetCheckEvaluation("raw-orders..v2", check_name="c", passed=True).asset_key.path == ("raw", "orders", "v2")
    assert AssetMaterialization(["s3.my_asset"]).asset_key.path == ("s3.my_asset",)  # parts are kept verbatim
    assert AssetMaterialization(AssetKey("s3.my_asset")).asset_key.path == ("s3.my_asset",)
    assert AssetKey.from_event_string("/a//b.c/").path == ("a", "b", "c")


def test_an_asset_key_and_user_strings_elsewhere_keep_their_reading(codec: Codec) -> None:
    assert AssetKey("s3.my_asset").path == ("s3.my_asset",)  # one part, as Dagster's AssetKey("s3.my_asset")
    assert coerce_asset_key("s3.my_asset/daily").path == ("s3.my_asset", "daily")  # report_*, CLI, HTTP
    encoded = EventEncoder(codec, host="h").encode("materialization", "s3.my_asset")  # the SDK's report_*
    assert codec.decode(encoded.value)[1]["asset_key"] == ["s3.my_asset"]
