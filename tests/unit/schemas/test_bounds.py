"""The bounds' fast test on JSON text (``Bounds.shallow``, ``nests_within``) agrees with the walk over what
the text parses to: it may only say "within" where the walk finds nothing."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from assetpipe.schemas.bounds import Bounds, nesting, nests_within

# strings full of what the fast test must see past: brackets, quotes, backslashes and escapes
_TEXT = st.text(alphabet='{}[]"\\/:,ab\n\u00e9\u2028', max_size=8)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=30,
)


@settings(max_examples=400)
@given(_JSON, st.integers(min_value=0, max_value=8), st.booleans())
def test_nests_within_is_the_depth_of_the_text(value: Any, limit: int, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert nests_within(raw, limit) == (nesting(raw) <= limit)


@settings(max_examples=400)
@given(st.dictionaries(_TEXT, _JSON, max_size=4), st.integers(min_value=1, max_value=6))
def test_shallow_says_within_only_where_the_walk_finds_nothing(event: dict[str, Any], depth: int) -> None:
    bounds = Bounds(depth=depth, string_chars=64, metadata_entries=10)
    raw = orjson.dumps(event)
    if bounds.shallow(raw):
        assert bounds.walk(event, 1) is None
    if bounds.walk(event, 1) is None and len(raw) <= 64:
        assert bounds.shallow(raw)  # exact on short text: no walk is needed to say "within"


def test_brackets_in_strings_do_not_count_and_unpaired_ones_are_never_within() -> None:
    for raw in (b"{", b'{"a": [}', b"]["):
        assert not nests_within(raw, 32)
    assert nests_within(b'{"a": "[[[[", "b": ["\\"]]]"]}', 2)
    assert not nests_within(b'{"a": [[1]]}', 2)
