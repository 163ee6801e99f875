"""``assetpipe assets``: the asset registry on the command line. ``apply`` registers a YAML or JSON spec
file, ``list`` and ``show`` read the registry, ``materialize`` and ``observe`` request runs on the running
stack. Each action is one parser entry and one function."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assetpipe.schemas.errors import AssetpipeError
from assetpipe.schemas.settings import Settings
from assetpipe.tables import print_rows


def add_assets_parser(sub: Any) -> None:
    assets = sub.add_parser("assets", help="the asset registry: define assets from a spec file, list them, show one")
    actions = assets.add_subparsers(required=True, metavar="ACTION")
    apply = _action(actions, "apply", cmd_assets_apply, "register the asset specs of a YAML or JSON file")
    apply.add_argument("file", help="a list of specs ({key, deps, owners, ...}), or {code_location, assets}")
    _action(actions, "list", cmd_assets_list, "every asset defined or reported, with its status", fmt=True)
    show = _action(actions, "show", cmd_assets_show, "an asset's definition, versions and status", fmt=True)
    show.add_argument("asset_key", help="a/b/c")
    for action, what in (("materialize", "materialize assets"), ("observe", "observe source assets")):
        run = _action(actions, action, cmd_assets_run, f"{what} on the running stack; prints the run ids")
        run.add_argument("asset_keys", nargs="+", metavar="KEY", help="a/b/c")
        run.add_argument("--partition", help="the partition to run (partitioned assets)")
        run.add_argument("--wait", action="store_true", help="wait for the runs to finish; exit 1 if one failed")
        run.add_argument("--timeout", type=float, default=600.0, help="seconds --wait waits (default 600)")
        run.set_defaults(action=action)


def _action(
    actions: Any, name: str, func: Callable[[Settings, argparse.Namespace], int], help: str, *, fmt: bool = False
) -> argparse.ArgumentParser:
    """One ``assetpipe assets`` action: its parser, with the options every action has."""
    parser: argparse.ArgumentParser = actions.add_parser(name, help=help)
    parser.add_argument("--data-dir")
    if fmt:
        parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.set_defaults(func=func)
    return parser


def cmd_assets_apply(settings: Settings, args: argparse.Namespace) -> int:
    from assetpipe.assets_api import open_registry
    from assetpipe.consumers.registry import spec_entry

    location, entries = _spec_file(Path(args.file))
    for i, entry in enumerate(entries, 1):  # every entry checked before anything is registered
        spec_entry(entry, f"{args.file}: entry {i}")
    with open_registry(settings) as registry:
        summary = registry.register(entries, "file", location)
    for registration in summary.registrations:
        print(f"{registration.outcome:<10} {registration.asset_key} (version {registration.version})")
    counts = summary.counts()
    print(", ".join(f"{counts[o]} {o}" for o in ("added", "changed", "unchanged")) + f" (code location '{location}')")
    return 0


def _spec_file(path: Path) -> tuple[str, list[Any]]:
    """A spec file: a list of specs, or ``{code_location, assets: [...]}``; JSON, or YAML."""
    import yaml

    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise AssetpipeError(f"cannot read the spec file {path}: {exc}") from exc
    location: Any = ""
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"code_location", "assets"})
        if unknown:
            raise AssetpipeError(f"{path}: unknown top-level field(s) {unknown}: expected code_location and assets")
        location, data = data.get("code_location", ""), data.get("assets")
    if not isinstance(data, list) or not isinstance(location, str):
        raise AssetpipeError(f"{path}: expected a list of asset specs, or {{code_location: <name>, assets: [...]}}")
    return location, data


def cmd_assets_list(settings: Settings, args: argparse.Namespace) -> int:
    from assetpipe.assets_api import open_registry
    from assetpipe.consumers.registry.catalog import LIST_COLUMNS, list_assets

    with open_registry(settings) as registry:
        rows = list_assets(registry.query)
    if args.format == "table":
        rows = [tuple(", ".join(v) if isinstance(v, list) else v for v in row) for row in rows]
    print_rows(LIST_COLUMNS, rows, args.format)
    return 0


def cmd_assets_run(settings: Settings, args: argparse.Namespace) -> int:
    from assetpipe.asset_runs import plan, request_runs, wait_for
    from assetpipe.assets_api import open_registry

    with open_registry(settings) as registry:
        by_location = plan(registry.query, args.action, args.asset_keys)
        runs = request_runs(settings, by_location, args.partition)
        for run in runs:
            print(f"{run.run_id}  {run.code_location}  {', '.join(run.asset_keys)}", flush=True)
        if not args.wait:
            return 0
        states = wait_for(registry.query, [run.run_id for run in runs], args.timeout)
    failed = False
    for run in runs:
        status, error = states.get(run.run_id, ("queued", ""))
        failed = failed or status not in ("succeeded", "launched")
        print(f"{run.run_id}  {status}{': ' + error if error else ''}")
    return 1 if failed else 0


def cmd_assets_show(settings: Settings, args: argparse.Namespace) -> int:
    from assetpipe.assets_api import open_registry
    from assetpipe.consumers.registry import show_asset

    with open_registry(settings) as registry:
        shown = show_asset(registry.query, args.asset_key)
    if shown is None:
        raise AssetpipeError(f"asset '{args.asset_key}' is neither defined nor ever reported")
    if args.format == "json":
        print(json.dumps(shown, indent=1))
        return 0
    print(f"asset     {shown['asset_key']}\nstatus    {shown['status']}")
    for cause in shown["causes"]:
        print(f"  {cause['category']:<13} {cause['dependency'] + ': ' if cause['dependency'] else ''}{cause['reason']}")
    definition = shown["definition"]
    if definition is None:
        print("definition  none: the asset is only reported (an external asset)")
    else:
        print(f"definition  {definition['source']} '{definition['code_location']}', version {definition['version']}, "
              f"registered {definition['registered_at']}")  # fmt: skip
        for name in ("execution_type", "description", "group_name", "owners", "kinds", "deps", "code_version",
                     "partitions", "automation_condition", "tags", "metadata", "shadowed"):  # fmt: skip
            if definition[name]:
                value = definition[name]
                print(f"  {name:<20} {', '.join(value) if isinstance(value, list) else value}")
    print("versions")
    print_rows(
        ["registered_at", "location", "source", "version", "removed", "code_version", "deps"],
        [(v["registered_at"], v["code_location"], v["source"], v["version"], v["removed"], v["code_version"],
          ", ".join(v["deps"])) for v in shown["history"]],
        "table",
    )  # fmt: skip
    for title, name in (("latest materialization", "latest_materialization"),
                        ("latest materialization or observation", "latest_version_event")):  # fmt: skip
        event = shown[name]
        print(f"{title}: " + ("none" if event is None else ", ".join(f"{k} {v}" for k, v in event.items() if v)))
    return 0
