"""The asset registry and staleness at scale: a code location of 10,000 assets, 10 million events.

(a) A generated definitions file of ``--assets`` ``@asset`` functions chained in layers of ``--width``
(each asset depends on two of the layer before), loaded with ``load_definitions`` and registered, then
registered again unchanged (rows and parts of ``asset_definitions`` before and after: no insert at all),
then with one asset changed. Beside them: hashing the definitions alone, and a plain insert of the same
rows into a table without views.

(b) ``--events`` events of those assets written with ``INSERT ... SELECT FROM numbers()`` (materializations
with provenance tags, every tenth round of events observations): the first fifth with the materialized
view that keeps ``asset_latest_state`` detached, the rest through it, then the migration's backfill of
that state from every stored event. Then ``asset_staleness`` for every asset (computed in ClickHouse, and
every row fetched into Python) and one asset's status (the query of ``GET /api/assets/{key}/status``,
read-only), p50/p95, beside a plain ``count()`` of ``asset_events`` and the latest materialization per
asset computed from ``asset_events`` itself. Starts its own embedded ClickHouse engine.

    python bench/bench_definitions.py [--assets 10000] [--width 100] [--events 10000000] [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assetpipe.consumers.registry import AssetRegistry, StoredDefinition, asset_status
from assetpipe.consumers.registry.definition import DEFINITION_COLUMNS
from assetpipe.consumers.warehouse import Warehouse, load_migrations
from assetpipe.definitions.loader import load_definitions

_CHUNK = 1_000_000
_START_US = 1_704_067_200_000_000  # 2024-01-01


def write_definitions(path: Path, assets: int, width: int) -> None:
    """``assets`` decorated functions, layer by layer; an asset of layer L depends on two of layer L-1."""
    lines = ["from assetpipe import Definitions, asset", ""]
    names = []
    for n in range(assets):
        layer, i = divmod(n, width)
        name = f"l{layer}_a{i}"
        deps = (
            ""
            if layer == 0
            else f"deps=[['bench', 'l{layer - 1}_a{i}'], ['bench', 'l{layer - 1}_a{(i + 1) % width}']], "
        )
        lines += [
            f"@asset(key=['bench', '{name}'], {deps}code_version='1', group_name='layer_{layer}', "
            f"owners=['team:bench'], kinds=['python'], metadata={{'layer': {layer}}})",
            f"def {name}():",
            "    return None",
            "",
        ]
        names.append(name)
    lines.append(f"defs = Definitions(assets=[{', '.join(names)}])")
    path.write_text("\n".join(lines) + "\n")


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def percentiles(function: Callable[[], Any], runs: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds over ``runs`` calls, after one warm-up call."""
    function()
    times = sorted(timed(function)[0] * 1000 for _ in range(runs))
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def events_sql(table: str, start: int, count: int, assets: int, width: int) -> str:
    """Events of the generated assets: every tenth an observation, the rest materializations whose tags
    record a code version and the data versions of the asset's two inputs (as a run records them)."""
    return (
        f"INSERT INTO {table} (event_id, event_type, asset_key, asset_key_path, data_version, tags, timestamp, "
        "source, producer_host, dedup_key, kafka_partition, kafka_offset) "
        f"SELECT generateUUIDv4(), if(intDiv(number, {assets}) % 10 = 9, 'observation', 'materialization'), "
        f"concat('bench/l', toString(intDiv(number % {assets}, {width})), '_a', toString(number % {width})) AS key, "
        "splitByChar('/', key), toString(number), "
        f"if(intDiv(number % {assets}, {width}) = 0, map('dagster/code_version', '1'), map("
        "'dagster/code_version', '1', "
        f"concat('dagster/input_data_version/bench/l', toString(intDiv(number % {assets}, {width}) - 1), '_a', "
        f"toString(number % {width})), toString(number - {assets}), "
        f"concat('dagster/input_data_version/bench/l', toString(intDiv(number % {assets}, {width}) - 1), '_a', "
        f"toString((number + 1) % {width})), toString(number - {assets} + 1))), "
        f"fromUnixTimestamp64Micro(toInt64({_START_US} + number * 1000), 'UTC'), 'sdk', 'bench', number, 0, number "
        f"FROM numbers({start}, {count})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=100, help="assets per layer (default 100)")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each query (default 20)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        warehouse = Warehouse(f"chdb://{tmp}/clickhouse", "bench")
        warehouse.migrate()
        db = warehouse.database
        registry = AssetRegistry(warehouse)

        def count(sql: str) -> int:
            return int(warehouse.query(sql.format(db=db)).rows[0][0])

        def stored() -> tuple[int, int]:
            rows = count("SELECT count() FROM {db}.asset_definitions")
            parts = count(
                f"SELECT count() FROM system.parts WHERE database = '{db}' AND table = 'asset_definitions' AND active"
            )
            return rows, parts

        # (a) a code location of --assets assets
        path = Path(tmp) / "bench_defs.py"
        write_definitions(path, args.assets, args.width)
        load_s, defs = timed(lambda: load_definitions(path, "bench"))
        assets = list(defs.assets)
        hash_s, definitions = timed(lambda: [StoredDefinition.of(a) for a in assets])
        first_s, first = timed(lambda: registry.register_location("bench", assets, time.time_ns() // 1000))
        before = stored()
        again_s, again = timed(lambda: registry.register_location("bench", assets, time.time_ns() // 1000))
        after = stored()
        changed = [*assets[:-1], assets[-1].with_spec(assets[-1].spec.replace_attributes(code_version="2"))]
        change_s, one = timed(lambda: registry.register_location("bench", changed, time.time_ns() // 1000))
        rows = [d.row("raw", "code", 0) for d in definitions]
        warehouse.command(
            f"CREATE TABLE {db}.raw_definitions AS {db}.asset_definitions ENGINE = MergeTree ORDER BY tuple()"
        )
        raw_s, _ = timed(
            lambda: warehouse.insert("raw_definitions", [list(c) for c in zip(*rows, strict=True)], DEFINITION_COLUMNS)
        )
        warehouse.command(f"DROP TABLE {db}.raw_definitions")

        # (b) --events events of those assets: the first chunks without the latest-state view, the rest with
        # it, then the migration's backfill of the state from every stored event (as an upgrade runs it)
        def insert(start: int, stop: int) -> None:
            for at in range(start, stop, _CHUNK):
                warehouse.command(events_sql(f"{db}.asset_events", at, min(_CHUNK, stop - at), args.assets, args.width))

        plain = min(args.events // 5, 2 * _CHUNK)
        warehouse.command(f"DETACH TABLE {db}.asset_latest_state_mv")
        plain_s, _ = timed(lambda: insert(0, plain))
        warehouse.command(f"ATTACH TABLE {db}.asset_latest_state_mv")
        events_s, _ = timed(lambda: insert(plain, args.events))
        (backfill,) = [s for m in load_migrations() if m.version == 10 for s in m.statements if s.startswith("INSERT")]
        backfill_s, _ = timed(lambda: warehouse.command(backfill.replace("{db}", db)))
        state_rows = count("SELECT count() FROM {db}.asset_latest_state")
        count_ms = percentiles(lambda: warehouse.query(f"SELECT count() FROM {db}.asset_events"), args.runs)
        naive_ms = percentiles(
            lambda: warehouse.query(
                f"SELECT e.asset_key, max(e.timestamp), argMax(e.data_version, e.timestamp), "
                f"argMax(e.tags, e.timestamp) FROM {db}.asset_events AS e WHERE e.event_type = 'materialization' "
                "GROUP BY e.asset_key"
            ),
            max(3, args.runs // 4),
        )
        every_sql = f"SELECT count(), sum(length(causes)), countIf(status = 'STALE') FROM {db}.asset_staleness"
        computed_ms = percentiles(lambda: warehouse.query(every_sql), args.runs)
        every_ms = percentiles(lambda: warehouse.query(f"SELECT * FROM {db}.asset_staleness"), args.runs)
        statuses = dict(
            warehouse.query(f"SELECT toString(status), count() FROM {db}.asset_staleness GROUP BY status").rows
        )
        key = f"bench/l{(args.assets - 1) // args.width}_a{(args.assets - 1) % args.width}"
        one_ms = percentiles(lambda: asset_status(warehouse.read_only_query, key), args.runs)
        example = asset_status(warehouse.read_only_query, key)
        warehouse.command(f"OPTIMIZE TABLE {db}.asset_latest_state FINAL")
        merged_ms = percentiles(lambda: warehouse.query(f"SELECT * FROM {db}.asset_staleness"), args.runs)
        warehouse.close()

    n = len(assets)
    print(f"(a) a code location of {n:,} assets (@asset, {args.width} a layer, two deps each)")
    print(f"load_definitions of the generated file          {load_s:>8.2f} s")
    print(f"hash {n:,} definitions (no warehouse)           {hash_s:>8.2f} s")
    print(f"register, first time ({first.counts()['added']:,} added)              {first_s:>8.2f} s")
    print(f"raw insert of the same {n:,} rows, no views     {raw_s:>8.2f} s")
    print(f"register again, unchanged ({again.counts()['unchanged']:,} unchanged)     {again_s:>8.2f} s   "
          f"rows {before[0]:,} -> {after[0]:,}, parts {before[1]} -> {after[1]}")  # fmt: skip
    print(f"register with one asset changed ({one.counts()['changed']} changed)     {change_s:>8.2f} s")
    print(f"(b) {args.events:,} events of those assets")
    print(f"insert into asset_events, no latest-state view  {plain / plain_s:>10,.0f} rows/s ({plain:,} rows)")
    print(f"insert into asset_events with the view          {(args.events - plain) / events_s:>10,.0f} rows/s "
          f"({args.events - plain:,} rows; {state_rows:,} state rows before merges)")  # fmt: skip
    print(f"backfill of the state from {args.events:,} stored events (migration 0010)  {backfill_s:>6.1f} s")
    print(f"raw: count() over asset_events                  p50 {count_ms[0]:>7.1f} ms  p95 {count_ms[1]:>7.1f} ms")
    print(f"raw: latest materialization per asset, events  p50 {naive_ms[0]:>7.1f} ms  p95 {naive_ms[1]:>7.1f} ms")
    print(f"asset_staleness, every asset, in ClickHouse     p50 {computed_ms[0]:>7.1f} ms  "
          f"p95 {computed_ms[1]:>7.1f} ms   (target <= 200 ms; {statuses})")  # fmt: skip
    print(f"asset_staleness, every asset's row into Python  p50 {every_ms[0]:>7.1f} ms  p95 {every_ms[1]:>7.1f} ms")
    print(f"asset_staleness, state merged (OPTIMIZE)        p50 {merged_ms[0]:>7.1f} ms  p95 {merged_ms[1]:>7.1f} ms")
    print(f"one asset's status (read-only, as the API)      p50 {one_ms[0]:>7.1f} ms  p95 {one_ms[1]:>7.1f} ms")
    if example is not None:
        print(f"  {key}: {example['status']} {[c['reason'] + ' (' + c['dependency'] + ')' for c in example['causes']]}")


if __name__ == "__main__":
    main()
