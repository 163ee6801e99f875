"""Cluster mode's statements read by ClickHouse's own parser (``formatQuery``): every statement of every
migration as a cluster gets it, and representative ones compared with the text expected. The embedded engine
parses them as a server does; a cluster runs them in tests/integration/test_cluster.py."""

from __future__ import annotations

from assetpipe.consumers.cluster import ClusterDDL
from assetpipe.consumers.warehouse import Warehouse, load_migrations

DB = "ap"
LEDGER = (
    f"CREATE TABLE IF NOT EXISTS {DB}.schema_migrations "
    "(version UInt32, name String, applied_at DateTime64(6, 'UTC') DEFAULT now64(6)) "
    "ENGINE = ReplacingMergeTree ORDER BY version"
)
EXPECTED = [
    # 0001: the dedup keys, sharded where their events are, and the view that writes them there
    "CREATE TABLE IF NOT EXISTS ap.asset_event_keys_local ON CLUSTER c1 (dedup_key UInt64, event_id UUID) "
    "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/c1/{shard}/ap/asset_event_keys', '{replica}') "
    "ORDER BY dedup_key SETTINGS replicated_deduplication_window = 10000",
    "CREATE TABLE IF NOT EXISTS ap.asset_event_keys ON CLUSTER c1 AS ap.asset_event_keys_local "
    "ENGINE = Distributed('c1', 'ap', 'asset_event_keys_local')",
    "CREATE MATERIALIZED VIEW IF NOT EXISTS ap.asset_event_keys_mv ON CLUSTER c1 TO ap.asset_event_keys_local "
    "AS SELECT dedup_key, event_id FROM ap.asset_events_local",
    # 0003: a codec, on the local tables and the Distributed one
    "ALTER TABLE ap.asset_events_local ON CLUSTER c1 MODIFY COLUMN event_id UUID CODEC(ZSTD(3))",
    "ALTER TABLE ap.asset_events ON CLUSTER c1 MODIFY COLUMN event_id UUID CODEC(ZSTD(3))",
    # 0005: truncated shard by shard
    "TRUNCATE TABLE ap.asset_event_keys_local ON CLUSTER c1",
    # 0008: both tables of a sharded one dropped, at once (SYNC: the Keeper path is free for a table of its name)
    "DROP TABLE IF EXISTS ap.asset_metadata_numeric ON CLUSTER c1 SYNC",
    "DROP TABLE IF EXISTS ap.asset_metadata_numeric_local ON CLUSTER c1 SYNC SETTINGS max_table_size_to_drop = 0",
    # 0012: a replicated table's column, added once and replicated
    "ALTER TABLE ap.sensor_ticks ADD COLUMN IF NOT EXISTS logs "
    "Array(Tuple(time DateTime64(6, 'UTC'), level String, message String)) CODEC(ZSTD(3))",
    # 0015: a table not keyed by asset, on every node
    "CREATE TABLE IF NOT EXISTS ap.instigator_states ON CLUSTER c1 (code_location LowCardinality(String), "
    "kind Enum8('sensor' = 1, 'schedule' = 2), name String, status Enum8('running' = 1, 'stopped' = 2), "
    "updated_by String, updated_at DateTime64(6, 'UTC')) "
    "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/c1/all/ap/instigator_states', '{shard}-{replica}', "
    "updated_at) ORDER BY (code_location, kind, name)",
    # 0033: a ReplacingMergeTree with a version column, sharded as the events its view reads
    "CREATE TABLE IF NOT EXISTS ap.asset_partition_metadata_local ON CLUSTER c1 (asset_key LowCardinality(String), "
    "label LowCardinality(String), partition String, timestamp DateTime64(6, 'UTC'), value Float64, event_id UUID) "
    "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/c1/{shard}/ap/asset_partition_metadata', '{replica}', "
    "timestamp) ORDER BY (asset_key, label, partition) SETTINGS replicated_deduplication_window = 10000",
    "CREATE TABLE IF NOT EXISTS ap.asset_partition_metadata ON CLUSTER c1 AS ap.asset_partition_metadata_local "
    "ENGINE = Distributed('c1', 'ap', 'asset_partition_metadata_local', cityHash64(asset_key))",
    # the ledger
    "CREATE TABLE IF NOT EXISTS ap.schema_migrations ON CLUSTER c1 (version UInt32, name String, "
    "applied_at DateTime64(6, 'UTC') DEFAULT now64(6)) "
    "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/c1/all/ap/schema_migrations', '{shard}-{replica}') "
    "ORDER BY version",
]


def formatted(warehouse: Warehouse, sql: str) -> str:
    rows = warehouse.query("SELECT formatQuery({q:String})", parameters={"q": sql}).rows
    return str(rows[0][0])


def test_every_migration_statement_for_a_cluster_parses_and_the_expected_ones_are_there(warehouse: Warehouse) -> None:
    statements = [s.replace("{db}", DB) for m in load_migrations() for s in m.statements]
    plan = ClusterDDL("c1", DB, statements)
    parsed = [formatted(warehouse, step.sql) for sql in [LEDGER, *statements] for step in plan.transform(sql)]
    assert len(parsed) > len(statements)
    assert all(" ON CLUSTER c1" in p or p.startswith(("ALTER TABLE", "TRUNCATE", "INSERT")) for p in parsed)
    missing = [sql for sql in EXPECTED if formatted(warehouse, sql) not in parsed]
    assert missing == []
