"""Cluster mode's rewriting of the migrations (consumers.cluster): where each table goes and the exact statements
for a cluster. ClickHouse's own parser reads every one of them in tests/integration/test_cluster_statements_parse.py."""

from __future__ import annotations

import pytest

from assetpipe.consumers.cluster import NODE, REPLICATED, SHARDED, SHARDING_KEY, ClusterDDL, Placement
from assetpipe.consumers.ddl import Statement
from assetpipe.consumers.exceptions import ClusterDDLError, WarehouseError
from assetpipe.consumers.warehouse import Warehouse, load_migrations
from assetpipe.schemas.errors import ConfigError
from assetpipe.schemas.settings import Settings

DB = "ap"


def statements() -> list[str]:
    return [s.replace("{db}", DB) for m in load_migrations() for s in m.statements]


def planned() -> ClusterDDL:
    """The plan after every migration, as ``migrate`` builds it."""
    plan = ClusterDDL("c1", DB, statements())
    for sql in statements():
        plan.transform(sql)
    return plan


def sql(plan: ClusterDDL, statement: str) -> list[str]:
    return [" ".join(s.sql.split()) for s in plan.transform(statement)]


# a small schema in the migrations' style: events keyed by asset, a view fed by them, a table of runs, a Null
# table feeding a replicated one, a refreshable view over the events
SCHEMA = [
    "CREATE TABLE IF NOT EXISTS ap.events (asset_key String, id UInt64, t DateTime) "
    "ENGINE = ReplacingMergeTree ORDER BY (asset_key, id) SETTINGS non_replicated_deduplication_window = 100",
    "CREATE TABLE IF NOT EXISTS ap.keys (id UInt64) ENGINE = ReplacingMergeTree ORDER BY id",
    "CREATE MATERIALIZED VIEW IF NOT EXISTS ap.keys_mv TO ap.keys AS SELECT e.id AS id FROM ap.events AS e",
    "CREATE TABLE IF NOT EXISTS ap.runs (run_id UUID, v UInt8) ENGINE = ReplacingMergeTree(v) ORDER BY run_id",
    "CREATE TABLE IF NOT EXISTS ap.edges (a String) ENGINE = ReplacingMergeTree ORDER BY a",
    "CREATE TABLE IF NOT EXISTS ap.edges_in (a String) ENGINE = Null",
    "CREATE MATERIALIZED VIEW IF NOT EXISTS ap.edges_mv TO ap.edges AS SELECT a FROM ap.edges_in",
    "CREATE TABLE IF NOT EXISTS ap.counts (asset_key String, n UInt64) ENGINE = MergeTree ORDER BY asset_key",
    "CREATE MATERIALIZED VIEW IF NOT EXISTS ap.counts_mv REFRESH EVERY 10 MINUTE TO ap.counts AS "
    "SELECT asset_key, count() AS n FROM ap.events GROUP BY asset_key",
]


@pytest.fixture
def small() -> ClusterDDL:
    return ClusterDDL("c1", DB, SCHEMA)


def test_a_table_keyed_by_asset_is_sharded_by_it_behind_a_distributed_table(small: ClusterDDL) -> None:
    assert sql(small, SCHEMA[0]) == [
        "CREATE TABLE IF NOT EXISTS ap.events_local ON CLUSTER c1 (asset_key String, id UInt64, t DateTime) "
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/c1/{shard}/ap/events', '{replica}') "
        "ORDER BY (asset_key, id) SETTINGS replicated_deduplication_window = 100",
        "CREATE TABLE IF NOT EXISTS ap.events ON CLUSTER c1 AS ap.events_local "
        "ENGINE = Distributed('c1', 'ap', 'events_local', cityHash64(asset_key))",
    ]


def test_a_view_writes_where_its_source_is_and_its_target_follows_it(small: ClusterDDL) -> None:
    sql(small, SCHEMA[0])
    assert sql(small, SCHEMA[1]) == [
        "CREATE TABLE IF NOT EXISTS ap.keys_local ON CLUSTER c1 (id UInt64) "
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/c1/{shard}/ap/keys', '{replica}') ORDER BY id",
        # no sharding key: only the view, on each shard, writes its rows
        "CREATE TABLE IF NOT EXISTS ap.keys ON CLUSTER c1 AS ap.keys_local "
        "ENGINE = Distributed('c1', 'ap', 'keys_local')",
    ]
    assert sql(small, SCHEMA[2]) == [
        "CREATE MATERIALIZED VIEW IF NOT EXISTS ap.keys_mv ON CLUSTER c1 TO ap.keys_local "
        "AS SELECT e.id AS id FROM ap.events_local AS e"
    ]


def test_a_table_not_keyed_by_asset_is_one_replication_group_on_every_node(small: ClusterDDL) -> None:
    assert sql(small, SCHEMA[3]) == [
        "CREATE TABLE IF NOT EXISTS ap.runs ON CLUSTER c1 (run_id UUID, v UInt8) "
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/c1/all/ap/runs', '{shard}-{replica}', v) "
        "ORDER BY run_id"
    ]
    assert small.tables["runs"] == Placement(REPLICATED)


def test_a_null_table_is_on_every_node_and_feeds_a_replicated_table(small: ClusterDDL) -> None:
    sql(small, SCHEMA[4])
    assert sql(small, SCHEMA[5]) == ["CREATE TABLE IF NOT EXISTS ap.edges_in ON CLUSTER c1 (a String) ENGINE = Null"]
    assert sql(small, SCHEMA[6]) == [
        "CREATE MATERIALIZED VIEW IF NOT EXISTS ap.edges_mv ON CLUSTER c1 TO ap.edges AS SELECT a FROM ap.edges_in"
    ]
    assert small.tables["edges_in"].layout == NODE


def test_a_refreshable_views_target_is_computed_by_each_replica_from_its_shard(small: ClusterDDL) -> None:
    sql(small, SCHEMA[0])
    assert sql(small, SCHEMA[7]) == [
        "CREATE TABLE IF NOT EXISTS ap.counts_local ON CLUSTER c1 (asset_key String, n UInt64) "
        "ENGINE = MergeTree ORDER BY asset_key",
        "CREATE TABLE IF NOT EXISTS ap.counts ON CLUSTER c1 AS ap.counts_local "
        "ENGINE = Distributed('c1', 'ap', 'counts_local')",
    ]
    assert sql(small, SCHEMA[8]) == [
        "CREATE MATERIALIZED VIEW IF NOT EXISTS ap.counts_mv ON CLUSTER c1 REFRESH EVERY 10 MINUTE "
        "TO ap.counts_local AS SELECT asset_key, count() AS n FROM ap.events_local GROUP BY asset_key"
    ]


def test_alter_of_a_sharded_table_changes_the_local_tables_and_the_distributed_one(small: ClusterDDL) -> None:
    sql(small, SCHEMA[0])
    alter = (
        "ALTER TABLE ap.events MODIFY COLUMN t DateTime64(6), ADD COLUMN IF NOT EXISTS x String AFTER id, "
        "MODIFY TTL t + INTERVAL 1 DAY"
    )
    assert sql(small, alter) == [
        "ALTER TABLE ap.events_local ON CLUSTER c1 MODIFY COLUMN t DateTime64(6), "
        "ADD COLUMN IF NOT EXISTS x String AFTER id, MODIFY TTL t + INTERVAL 1 DAY",
        "ALTER TABLE ap.events ON CLUSTER c1 MODIFY COLUMN t DateTime64(6), ADD COLUMN IF NOT EXISTS x String AFTER id",
    ]
    assert all(s.settings["alter_sync"] == 2 for s in small.transform(alter))


def test_alter_of_a_replicated_table_runs_once_and_replicates(small: ClusterDDL) -> None:
    sql(small, SCHEMA[3])
    assert sql(small, "ALTER TABLE ap.runs ADD COLUMN IF NOT EXISTS y String") == [
        "ALTER TABLE ap.runs ADD COLUMN IF NOT EXISTS y String"
    ]
    # a setting is each replica's own metadata
    assert sql(small, "ALTER TABLE ap.runs MODIFY SETTING merge_with_ttl_timeout = 3600") == [
        "ALTER TABLE ap.runs ON CLUSTER c1 MODIFY SETTING merge_with_ttl_timeout = 3600"
    ]
    with pytest.raises(ClusterDDLError, match="split ALTER"):
        small.transform("ALTER TABLE ap.runs ADD COLUMN z String, MODIFY SETTING merge_with_ttl_timeout = 1")


def test_a_views_new_query_reads_the_local_table_and_the_view_is_made_again(small: ClusterDDL) -> None:
    for statement in SCHEMA[:3]:
        small.transform(statement)
    assert sql(small, "ALTER TABLE ap.keys_mv MODIFY QUERY SELECT e.id AS id FROM ap.events AS e WHERE e.id > 0") == [
        "DROP VIEW IF EXISTS ap.keys_mv ON CLUSTER c1 SYNC",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS ap.keys_mv ON CLUSTER c1 TO ap.keys_local "
        "AS SELECT e.id AS id FROM ap.events_local AS e WHERE e.id > 0",
    ]


def test_drop_truncate_rename_and_insert(small: ClusterDDL) -> None:
    for statement in SCHEMA[:4]:
        small.transform(statement)
    assert sql(small, "TRUNCATE TABLE ap.keys") == ["TRUNCATE TABLE ap.keys_local ON CLUSTER c1"]
    assert sql(small, "TRUNCATE TABLE ap.runs") == ["TRUNCATE TABLE ap.runs"]  # replicated through the group
    insert = "INSERT INTO ap.keys (id) SELECT id FROM ap.events"
    assert [(s.sql, dict(s.settings)) for s in small.transform(insert)] == [
        (insert, {"parallel_distributed_insert_select": 2})  # each shard from its own rows
    ]
    assert sql(small, "INSERT INTO ap.events SELECT * FROM ap.events") == [
        "INSERT INTO ap.events SELECT * FROM ap.events"
    ]
    assert sql(small, "RENAME TABLE ap.events TO ap.events_v2") == [
        "RENAME TABLE ap.events_local TO ap.events_v2_local ON CLUSTER c1",
        "DROP TABLE IF EXISTS ap.events ON CLUSTER c1 SYNC",
        "CREATE TABLE IF NOT EXISTS ap.events_v2 ON CLUSTER c1 AS ap.events_v2_local "
        "ENGINE = Distributed('c1', 'ap', 'events_v2_local', cityHash64(asset_key))",
    ]
    assert sql(small, "DROP TABLE IF EXISTS ap.events_v2 SETTINGS max_table_size_to_drop = 0") == [
        "DROP TABLE IF EXISTS ap.events_v2 ON CLUSTER c1 SYNC",
        "DROP TABLE IF EXISTS ap.events_v2_local ON CLUSTER c1 SYNC SETTINGS max_table_size_to_drop = 0",
    ]
    assert sql(small, "DROP VIEW IF EXISTS ap.keys_mv") == ["DROP VIEW IF EXISTS ap.keys_mv ON CLUSTER c1 SYNC"]
    assert sql(small, "CREATE DATABASE IF NOT EXISTS ap") == ["CREATE DATABASE IF NOT EXISTS ap ON CLUSTER c1"]


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        # a view may not move rows between placements: two shards writing one replicated table under one
        # deduplication token would drop each other's blocks
        (
            "CREATE MATERIALIZED VIEW ap.bad_mv TO ap.runs AS SELECT toUUID(toString(id)) AS run_id FROM ap.events",
            "stay",
        ),
        (
            "CREATE MATERIALIZED VIEW ap.bad_mv TO ap.events AS SELECT toString(run_id) AS asset_key FROM ap.runs",
            "stay",
        ),
        ("INSERT INTO ap.keys SELECT 1", "must select from a sharded table"),
        ("OPTIMIZE TABLE ap.events FINAL", "no cluster form for OPTIMIZE"),
        ("CREATE TABLE other.t (a String) ENGINE = MergeTree ORDER BY a", "another database"),
        ("CREATE OR REPLACE TABLE ap.t (a String) ENGINE = MergeTree ORDER BY a", "CREATE OR REPLACE TABLE"),
        ("ALTER TABLE ap.nowhere ADD COLUMN a String", "not a table the migrations created"),
        ("CREATE MATERIALIZED VIEW ap.inner_mv ENGINE = MergeTree ORDER BY id AS SELECT id FROM ap.events", "TO table"),
    ],
)
def test_statements_without_a_right_cluster_form_are_refused(small: ClusterDDL, statement: str, message: str) -> None:
    for known in SCHEMA[:4]:
        small.transform(known)
    with pytest.raises(ClusterDDLError, match=message):
        small.transform(statement)


def test_every_migration_has_a_cluster_form_and_each_table_its_place() -> None:
    plan = planned()
    sharded = {name: (p.key, p.replicated) for name, p in plan.tables.items() if p.layout == SHARDED}
    assert sharded["asset_events"] == (SHARDING_KEY, True)
    derived = ("asset_partition_state", "asset_latest_state", "asset_report_state", "asset_metadata_points",
               "asset_partition_metadata", "asset_event_summary")  # fmt: skip
    for table in derived:
        assert sharded[table] == (SHARDING_KEY, True), table  # fed by views on asset_events, written by asset key
    assert sharded["asset_event_keys"] == (None, True)  # keyed by the dedup key: only its view writes it
    assert sharded["asset_metadata_baselines"] == (None, False)  # each replica refreshes it from its shard
    replicated = {name for name, p in plan.tables.items() if p.layout == REPLICATED}
    assert {"runs", "run_requests", "sensor_ticks", "schedule_ticks", "sensors", "asset_monitors"} <= replicated
    assert plan.tables["asset_lineage_edges_in"].layout == NODE
    assert "asset_metadata_numeric" not in plan.tables  # a table until 0008, a view since


def test_the_migration_ledger_is_replicated_on_every_node() -> None:
    plan = planned()
    (ledger,) = plan.transform(
        "CREATE TABLE IF NOT EXISTS ap.schema_migrations (version UInt32, name String, applied_at DateTime64(6, 'UTC') "
        "DEFAULT now64(6)) ENGINE = ReplacingMergeTree ORDER BY version"
    )
    assert "ON CLUSTER c1" in ledger.sql
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/c1/all/ap/schema_migrations', '{shard}-{replica}')" in (
        ledger.sql
    )


def test_the_real_migrations_views_read_local_tables_where_their_source_is_sharded() -> None:
    db_statements = statements()
    plan = ClusterDDL("c1", DB, db_statements)
    out = {s: plan.transform(s) for s in db_statements}
    keys_mv = next(v for k, v in out.items() if "asset_event_keys_mv TO" in k)
    assert [" ".join(s.sql.split()) for s in keys_mv] == [
        "CREATE MATERIALIZED VIEW IF NOT EXISTS ap.asset_event_keys_mv ON CLUSTER c1 TO ap.asset_event_keys_local AS "
        "SELECT dedup_key, event_id FROM ap.asset_events_local"
    ]
    modify = next(v for k, v in out.items() if "asset_partition_state_mv MODIFY QUERY" in k)
    assert [s.sql.split(" AS ")[0] for s in modify] == [
        "DROP VIEW IF EXISTS ap.asset_partition_state_mv ON CLUSTER c1 SYNC",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS ap.asset_partition_state_mv ON CLUSTER c1 TO "
        "ap.asset_partition_state_local",
    ]
    assert "FROM ap.asset_events_local AS e" in modify[1].sql
    baselines = next(v for k, v in out.items() if "asset_metadata_baselines_mv" in k)
    assert "TO ap.asset_metadata_baselines_local AS" in baselines[0].sql
    assert "FROM ap.asset_metadata_points_local AS p" in baselines[0].sql
    assert "FROM ap.current_asset_monitors AS c" in baselines[0].sql  # a view over a replicated table: whole
    partition_metadata = next(v for k, v in out.items() if "asset_partition_metadata_mv TO" in k)
    assert "TO ap.asset_partition_metadata_local AS" in partition_metadata[0].sql
    assert "FROM ap.asset_events_local AS e" in partition_metadata[0].sql  # inside its subquery
    backfill = next(v for k, v in out.items() if k.startswith("INSERT INTO ap.asset_event_keys"))
    assert backfill[0].settings == {"parallel_distributed_insert_select": 2}


def test_statements_render_as_written_without_edits() -> None:
    for statement in statements():
        assert Statement(statement).render([]) == statement


def test_a_cluster_needs_a_clickhouse_server() -> None:
    with pytest.raises(ConfigError, match="ASSETPIPE_CLICKHOUSE_CLUSTER"):
        Settings.from_env(environ={"ASSETPIPE_CLICKHOUSE_CLUSTER": "c1"})
    settings = Settings.from_env(
        environ={"ASSETPIPE_CLICKHOUSE_CLUSTER": "c1", "ASSETPIPE_CLICKHOUSE_URL": "http://u:p@ch:8123"}
    )
    assert Warehouse.from_settings(settings).cluster == "c1"  # never connects
    with pytest.raises(WarehouseError, match="ClickHouse server"):
        Warehouse("chdb:///nowhere", DB, cluster="c1")
