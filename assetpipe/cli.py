"""The ``assetpipe`` command line: up, migrate, worker, status, sql, report, backfill, serve, api-key, assets."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assetpipe.assets_cli import add_assets_parser
from assetpipe.control import answers, request
from assetpipe.exceptions import StackAlreadyRunningError, StackNotRunningError
from assetpipe.schemas.errors import AssetpipeError, ConfigError
from assetpipe.schemas.settings import Settings
from assetpipe.schemas.validation import FAILURE_REASONS, FAILURE_TYPES
from assetpipe.tables import print_rows

_REPORT_TIMEOUT_MS = 30_000  # how long `assetpipe report` waits for the broker to take its event
REPORT_TYPES = ["materialization", "observation", "check", "materialization_failure"]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        overrides = {"data_dir": Path(args.data_dir)} if getattr(args, "data_dir", None) else {}
        if getattr(args, "defs", None):
            overrides["defs"] = Path(args.defs)
        settings = Settings.from_env(None, **overrides)
        return int(args.func(settings, args))
    except AssetpipeError as exc:
        print(f"error [{exc.code}]: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assetpipe", description="Asset events on Kafka and ClickHouse.")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run the local stack: broker, ClickHouse, workers (sensors and runs with --defs)")
    up.add_argument("--data-dir", help="where embedded ClickHouse keeps its data (ASSETPIPE_DATA_DIR)")
    up.add_argument("--defs", help="jobs and sensors to run: a Python file (ASSETPIPE_DEFS)")
    up.set_defaults(func=cmd_up)

    migrate = sub.add_parser("migrate", help="create topics and apply the warehouse DDL (idempotent)")
    migrate.add_argument("--data-dir")
    migrate.add_argument("--skip-topics", action="store_true", help="only the warehouse DDL")
    migrate.set_defaults(func=cmd_migrate)

    worker = sub.add_parser("worker", help="run one worker against the configured Kafka and ClickHouse")
    worker.add_argument("kind", choices=["ingest", "sensor", "run", "schedule", "checks", "alerts", "openlineage"])
    worker.add_argument("--defs", help="jobs, sensors and schedules of the other workers (ASSETPIPE_DEFS)")
    worker.add_argument("--data-dir")
    worker.set_defaults(func=cmd_worker)

    status = sub.add_parser("status", help="exit 0 when every component of the running stack is ready")
    status.add_argument("--data-dir")
    status.set_defaults(func=cmd_status)

    sql = sub.add_parser(
        "sql", help="run one read-only statement against the warehouse (unqualified names: its database)"
    )
    sql.add_argument("query")
    sql.add_argument("--format", choices=["table", "csv", "json"], default="table")
    sql.add_argument("--data-dir")
    sql.set_defaults(func=cmd_sql)

    report = sub.add_parser("report", help="publish one asset event")
    report.add_argument("type", choices=REPORT_TYPES)
    report.add_argument("asset_key", help="a/b/c")
    report.add_argument("--partition")
    report.add_argument("--data-version")
    report.add_argument("--description")
    report.add_argument(
        "--metadata", help='a JSON object; plain values take Dagster\'s types, {"type": "url", "value": ...} is typed'
    )
    report.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    report.add_argument("--check-name")
    result = report.add_mutually_exclusive_group()
    result.add_argument("--passed", dest="passed", action="store_true", default=None)
    result.add_argument("--failed", dest="passed", action="store_false")
    report.add_argument("--severity", choices=["WARN", "ERROR"], default="ERROR")
    report.add_argument("--failure-type", choices=FAILURE_TYPES, help="a materialization failure's (default FAILED)")
    report.add_argument("--reason", choices=FAILURE_REASONS, help="a materialization failure's (default UNKNOWN)")
    report.add_argument("--run-id", help="the run that failed: its failure of the asset (partition) is stored once")
    report.add_argument("--idempotency-key")
    report.set_defaults(func=cmd_report)

    serve = sub.add_parser("serve", help="run the HTTP API alone (ASSETPIPE_HTTP_HOST, _HTTP_PORT, _HTTP_WORKERS)")
    serve.add_argument("--host", help="address to listen on (ASSETPIPE_HTTP_HOST)")
    serve.add_argument("--port", type=int, help="port (ASSETPIPE_HTTP_PORT)")
    serve.add_argument("--workers", type=int, help="worker processes (ASSETPIPE_HTTP_WORKERS)")
    serve.set_defaults(func=cmd_serve)

    api_key = sub.add_parser("api-key", help="create an HTTP API key, or hash one for ASSETPIPE_API_KEYS")
    api_key_sub = api_key.add_subparsers(required=True, metavar="ACTION", dest="action")
    new_key = api_key_sub.add_parser("new", help="print a new random key and its ASSETPIPE_API_KEYS entry")
    new_key.add_argument("--name", help="label; events reported with the key get the tag dagster/reporting_user")
    new_key.add_argument("--types", help="event types the key may report: materialization,observation,check")
    new_key.add_argument("--prefixes", help="asset key prefixes the key may report under: sales/,ops/")
    hash_key = api_key_sub.add_parser("hash", help="print the ASSETPIPE_API_KEYS entry of an existing key")
    hash_key.add_argument("key", nargs="?", help="the key; read from standard input when omitted")
    api_key.set_defaults(func=cmd_api_key)

    backfill = sub.add_parser("backfill", help="publish the events in files (JSON Lines, CSV, Parquet, Avro)")
    backfill.add_argument("paths", nargs="+", metavar="PATH", help="files, or directories of files")
    backfill.add_argument("--type", choices=REPORT_TYPES, help="type of records without a `type`")
    backfill.add_argument(
        "--map", action="append", default=[], metavar="SRC=DEST", help="read SRC as the field DEST; repeatable"
    )
    backfill.add_argument("--resume", action="store_true", help="continue each file after its checkpoint")
    backfill.add_argument(
        "--max-errors", type=int, default=0, metavar="N", help="reject up to N bad records and go on (default 0)"
    )
    backfill.add_argument("--rejects", metavar="FILE", help="rejected records, JSON Lines (default: CHECKPOINT_DIR)")
    backfill.add_argument("--dry-run", action="store_true", help="read and validate every record, publish nothing")
    backfill.add_argument("--rate", type=float, metavar="N", help="publish at most N events per second")
    backfill.add_argument("--jobs", type=int, metavar="N", help="files backfilled in parallel (default: cores)")
    backfill.add_argument("--checkpoint-dir", metavar="DIR", help="default: DATA_DIR/backfill")
    backfill.add_argument("--data-dir")
    backfill.set_defaults(func=cmd_backfill)

    add_assets_parser(sub)
    return parser


def _count_signals() -> tuple[threading.Event, threading.Event]:
    """Events set by the first and the second SIGINT or SIGTERM."""
    first, second = threading.Event(), threading.Event()

    def handle(_signum: int, _frame: Any) -> None:
        (second if first.is_set() else first).set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return first, second


def cmd_up(settings: Settings, _args: argparse.Namespace) -> int:
    from assetpipe.stack import LocalStack

    stack = LocalStack(settings)
    stop, force = _count_signals()
    stack.start()
    print("assetpipe is running:")
    for name, where in stack.describe():
        print(f"  {name:<15} {where}")
    print("Ctrl-C stops it, once everything acknowledged is in ClickHouse; a second Ctrl-C stops at once.", flush=True)
    while not (stop.wait(0.5) or stack.watch(0)):
        pass
    if not stack.errors:
        print("stopping: reports are refused (503) until the workers have written what the broker holds",
              flush=True)  # fmt: skip
        left = stack.drain(force, lambda line: print(f"  {line}", flush=True))
        if force.is_set():
            lost = f"{left:,} events" if left else "the events"
            print(f"stopping now: {lost} the embedded broker held and ClickHouse did not have are abandoned",
                  file=sys.stderr, flush=True)  # fmt: skip
    stack.stop()
    if stack.errors:
        print(f"error: {stack.errors[0]}", file=sys.stderr)
        return 1
    print("assetpipe stopped.")
    return 0


def _refuse_beside_a_stack(settings: Settings, what: str) -> None:
    """The embedded engine allows one process per data directory: say so, rather than ClickHouse's lock error."""
    if settings.uses_embedded_clickhouse and answers(settings.control_socket):
        raise StackAlreadyRunningError(
            f"a stack runs with this data directory ({settings.data_dir}) and {what}; "
            "stop it first, or use another --data-dir"
        )


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from assetpipe.broker import create_topics
    from assetpipe.consumers.retention import apply_retention
    from assetpipe.consumers.warehouse import Warehouse

    _refuse_beside_a_stack(settings, "has applied the migrations at its start")

    if not args.skip_topics:
        created = create_topics(settings)
        print(f"topics: {', '.join(created) if created else 'all present'}")
    warehouse = Warehouse.from_settings(settings)
    try:
        applied = warehouse.migrate()
        retained = apply_retention(warehouse, settings.retention_days)
    finally:
        warehouse.close()
    print(f"warehouse {settings.clickhouse_database}: {', '.join(applied) if applied else 'up to date'}")
    window = f"{settings.retention_days} days" if settings.retention_days else "all of it"
    print(f"raw history kept: {window}" + (f" (TTL changed on {', '.join(retained)})" if retained else ""))
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from assetpipe.consumers.alerts import AlertWorker, alert_policies
    from assetpipe.consumers.checks.sources import RegistryChecks
    from assetpipe.consumers.checks.worker import CheckWorker
    from assetpipe.consumers.ingest.worker import IngestWorker
    from assetpipe.consumers.openlineage import OpenLineageWorker
    from assetpipe.consumers.runs.worker import RunWorker
    from assetpipe.consumers.schedules.worker import ScheduleWorker
    from assetpipe.consumers.sensors.worker import SensorWorker
    from assetpipe.consumers.warehouse import Warehouse
    from assetpipe.definitions.loader import load_definitions

    _refuse_beside_a_stack(settings, f"runs the {args.kind} worker itself")
    worker: IngestWorker | SensorWorker | RunWorker | ScheduleWorker | AlertWorker | CheckWorker | OpenLineageWorker
    if args.kind == "ingest":
        worker = IngestWorker(settings)
    elif args.kind == "openlineage":  # OpenLineage events as they came, and the lineage they observed
        worker = OpenLineageWorker(settings)
    elif args.kind == "checks":  # the registry's freshness policies and monitor checks: no definitions file
        warehouse = Warehouse.from_settings(settings)
        worker = CheckWorker(settings, RegistryChecks(warehouse), warehouse)
    elif args.kind == "alerts":  # policies from the definitions file, the policies file, or both
        defs = load_definitions(settings.defs, settings.code_location) if settings.defs is not None else None
        policies = alert_policies(settings, defs)
        if not policies:
            raise ConfigError("the alerts worker needs alert policies: --defs FILE (Definitions(alert_policies=...)) "
                              "or ASSETPIPE_ALERT_POLICIES_FILE")  # fmt: skip
        worker = AlertWorker(settings, policies)
    elif settings.defs is None:
        raise ConfigError(f"the {args.kind} worker needs definitions: --defs FILE or ASSETPIPE_DEFS")
    else:
        defs = load_definitions(settings.defs, settings.code_location)
        if args.kind == "schedule":
            worker = ScheduleWorker(settings, defs)
        else:
            worker = (SensorWorker if args.kind == "sensor" else RunWorker)(settings, defs)
    stop, _ = _count_signals()  # a worker stops after its batch in hand at the first signal
    try:
        worker.run(stop)
    finally:
        worker.warehouse.close()
    return 0


def cmd_status(settings: Settings, _args: argparse.Namespace) -> int:
    try:
        answer = request(settings.control_socket, {"op": "status"})
    except StackNotRunningError as exc:
        print(f"not running: {exc}")
        return 1
    phase = answer.get("phase", "running")
    print(f"{'stack':<12} {'ready' if answer['ready'] else 'NOT READY':<10} {phase}")
    for name, component in answer["components"].items():
        state = "ready" if component["ready"] else "NOT READY"
        details = ", ".join(f"{k}={v}" for k, v in component.items() if k != "ready")
        print(f"{name:<12} {state:<10} {details}")
    return 0 if answer["ready"] else 1


def cmd_sql(settings: Settings, args: argparse.Namespace) -> int:
    from assetpipe.consumers.exceptions import (
        QueryLimitError,
        ReadOnlyQueryError,
        WarehouseError,
        WarehouseUnavailableError,
    )

    try:
        # the stack answers once ClickHouse has: its time limit, then a margin for the rows to come over
        timeout = settings.sql_max_execution_seconds + 30
        answer = request(settings.control_socket, {"op": "sql", "query": args.query}, timeout=timeout)
        if not answer.get("ok"):
            errors = (ReadOnlyQueryError, QueryLimitError, WarehouseUnavailableError, WarehouseError)
            error = next((e for e in errors if e.code == answer.get("code")), AssetpipeError)
            raise error(answer.get("error", "query failed"))
        columns, rows = answer["columns"], [tuple(r) for r in answer["rows"]]
    except StackNotRunningError:
        from assetpipe.consumers.readonly import ReadOnlyPolicy
        from assetpipe.consumers.warehouse import Warehouse

        policy = ReadOnlyPolicy.from_settings(settings)
        warehouse = Warehouse.from_settings(settings, policy)
        try:
            result = warehouse.read_only_query(args.query)
        finally:
            warehouse.close()
        columns, rows = list(result.column_names), result.rows
    print_rows(columns, rows, args.format)
    return 0


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from assetpipe import Reporter
    from assetpipe.schemas import jsonform

    try:
        raw = json.loads(args.metadata) if args.metadata else None
    except ValueError as exc:
        raise AssetpipeError(f"--metadata is not valid JSON: {exc}") from exc
    metadata = None if raw is None else jsonform.metadata(raw)  # plain or typed {"type": ..., "value": ...}
    tags = dict(tag.partition("=")[::2] for tag in args.tag)
    common = {"partition": args.partition, "description": args.description, "metadata": metadata,
              "idempotency_key": args.idempotency_key}  # fmt: skip
    if args.type == "check":  # before any connection: a usage error needs no broker
        if not args.check_name or args.passed is None:
            raise AssetpipeError("a check needs --check-name and --passed or --failed")
        if tags or args.data_version:  # a check evaluation carries neither, as in Dagster
            raise AssetpipeError("--tag and --data-version do not apply to a check")
    failure = args.type == "materialization_failure"
    if failure and (args.data_version or args.check_name or args.passed is not None):
        raise AssetpipeError("--data-version, --check-name, --passed and --failed do not apply to a failure")
    if not failure and (args.failure_type or args.reason or args.run_id):
        raise AssetpipeError("--failure-type, --reason and --run-id apply to a materialization_failure only")
    # librdkafka gives the event up after this long, so closing the producer does not wait for its
    # default five minutes when no broker answers
    bounded = {"message.timeout.ms": _REPORT_TIMEOUT_MS}
    with Reporter(settings=settings, producer_overrides=bounded) as reporter:
        if args.type == "check":
            receipt = reporter.report_check(
                args.asset_key, check_name=args.check_name, passed=args.passed, severity=args.severity, **common
            )
        elif failure:
            receipt = reporter.report_materialization_failure(
                args.asset_key, failure_type=args.failure_type or "FAILED", reason=args.reason or "UNKNOWN",
                run_id=args.run_id, tags=tags or None, **common,
            )  # fmt: skip
        else:
            report = reporter.report_materialization if args.type == "materialization" else reporter.report_observation
            receipt = report(args.asset_key, data_version=args.data_version, tags=tags or None, **common)
        receipt.result()
    print(receipt.event_id)
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from assetpipe.api import build_app
    from assetpipe.producers.http import serve
    from assetpipe.producers.http.auth import is_loopback

    overrides = {"http_host": args.host, "http_port": args.port, "http_workers": args.workers}
    settings = Settings.from_env(**{k: v for k, v in overrides.items() if v is not None}, data_dir=settings.data_dir)
    host = f"[{settings.http_host}]" if ":" in settings.http_host else settings.http_host
    print(f"assetpipe HTTP API on http://{host}:{settings.http_port} ({settings.http_workers} worker(s)); "
          f"docs at /docs. Ctrl-C stops it.", flush=True)  # fmt: skip
    if not settings.api_keys and is_loopback(settings.http_host):
        print("warning: no API keys (ASSETPIPE_API_KEYS): the API is open to every local user", file=sys.stderr)
    serve(settings, lambda: build_app(settings), "assetpipe.api:app_from_env")
    return 0


def cmd_api_key(_settings: Settings, args: argparse.Namespace) -> int:
    from assetpipe.producers.http.auth import hash_key, new_key, parse_api_keys

    if args.action == "hash":
        key = args.key if args.key is not None else sys.stdin.readline().strip()
        if not key:
            raise AssetpipeError("no key given")
        print(hash_key(key))
        return 0
    key = new_key()
    options = [("name", args.name), ("types", args.types), ("prefixes", args.prefixes)]
    entry = hash_key(key) + "".join(f":{name}={value}" for name, value in options if value)
    parse_api_keys(entry)  # the scope must parse as the server will parse it
    print(f"key:   {key}")
    print(f"entry: {entry}")
    print("Give the key to the client (X-API-Key header); add the entry to ASSETPIPE_API_KEYS (';' between entries).")
    return 0


def cmd_backfill(settings: Settings, args: argparse.Namespace) -> int:
    from assetpipe.producers.backfill.records import parse_mapping
    from assetpipe.producers.backfill.run import BackfillOptions, run_backfill
    from assetpipe.schemas import jsonform

    options = BackfillOptions(
        paths=tuple(Path(p) for p in args.paths),
        event_type=jsonform.event_type(args.type) if args.type else None,
        mapping=parse_mapping(args.map),
        resume=args.resume,
        max_errors=args.max_errors,
        rejects=Path(args.rejects) if args.rejects else None,
        dry_run=args.dry_run,
        rate=args.rate,
        jobs=args.jobs,
        checkpoint_dir=Path(args.checkpoint_dir) if args.checkpoint_dir else None,
    )
    summary = run_backfill(settings, options)
    print(summary.render())
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
