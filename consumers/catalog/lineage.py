"""The asset graph around an asset: its upstream assets (the dependencies of its definition, and theirs) and its
downstream assets (those whose definitions depend on it, and so on), each direction to ``depth`` steps, from the
current definitions. An asset without a definition takes the dependencies its OpenLineage runs observed
(``asset_lineage_dependencies``), else it is a node with no edges of its own.
"""

from __future__ import annotations

import functools
from typing import Any

from assetpipe.consumers.catalog import cursor, status
from assetpipe.consumers.catalog.rows import Query, strings

DEFAULT_DEPTH = 2
MAX_DEPTH = 10

# Definitions of the upstream frontier (their deps go one step further up), and of the assets depending on the
# downstream frontier (one step further down).
_STEP = (
    "SELECT d.asset_key, d.deps, d.kinds, d.group_name, toString(d.execution_type), true FROM latest_asset_definitions "
    "AS d WHERE d.asset_key IN {up:Array(String)} OR hasAny(d.deps, {down:Array(String)}) "
    "UNION ALL SELECT o.asset_key, o.deps, [], '', 'external', false FROM asset_lineage_dependencies AS o "
    "WHERE (o.asset_key IN {up:Array(String)} OR hasAny(o.deps, {down:Array(String)})) "
    "AND o.asset_key NOT IN (SELECT asset_key FROM latest_asset_definitions)"
)
_REPORTED = "SELECT DISTINCT s.asset_key FROM asset_latest_state AS s WHERE s.asset_key IN {keys:Array(String)}"


def depth_of(text: str | None) -> int:
    return cursor.count("depth", text, DEFAULT_DEPTH, 1, MAX_DEPTH)


def lineage(query: Query, root: str, depth: int, statuses: status.Statuses | None = None) -> dict[str, Any] | None:
    """``{"root", "depth", "nodes", "edges"}``: nodes with ``asset_key``, ``defined``, ``kinds``, ``group``,
    ``execution_type``, ``status``, ``distance`` (negative upstream, positive downstream); edges ``{"from":
    upstream, "to": downstream}``. None when ``root`` is neither defined nor reported. ``statuses`` as for
    ``list_assets``."""
    definitions: dict[str, tuple[list[str], list[str], str, str]] = {}
    observed: dict[str, list[str]] = {}  # assets without a definition: the dependencies their runs observed
    distance = {root: 0}
    edges: set[tuple[str, str]] = set()
    up, down = [root], [root]  # the frontiers: assets reached at the last step
    for step in range(1, depth + 2):
        if not up and not down:
            break
        rows = query(_STEP, {"up": up, "down": down if step <= depth else []}).rows
        next_up, next_down = [], []
        for key, deps, kinds, group, execution_type, defined in rows:
            key, deps = str(key), strings(deps)
            if defined:
                definitions[key] = (deps, strings(kinds), group, execution_type)
            else:
                observed[key] = deps
            if key in up and step <= depth:
                for dep in deps:
                    edges.add((dep, key))
                    if dep not in distance:
                        distance[dep] = -step
                        next_up.append(dep)
            downstream_of = [d for d in deps if d in down]
            if downstream_of and step <= depth:
                edges.update((d, key) for d in downstream_of)
                if key not in distance:
                    distance[key] = step
                    next_down.append(key)
        up, down = next_up, next_down
    undefined = [key for key in distance if key not in definitions]
    reported = {str(row[0]) for row in query(_REPORTED, {"keys": undefined}).rows} if undefined else set()
    if root not in definitions and root not in reported:
        return None
    states = (statuses or functools.partial(status.staleness, query))(list(distance))
    nodes = []
    for key, steps in sorted(distance.items(), key=lambda item: (item[1], item[0])):
        deps, kinds, group, execution_type = definitions.get(key, ([], [], "", "external"))
        nodes.append(
            {
                "asset_key": key,
                "defined": key in definitions,
                "kinds": kinds,
                "group": group or None,
                "execution_type": execution_type,
                "status": states.get(key, {}).get("status"),
                "distance": steps,
            }
        )
    return {
        "root": root,
        "depth": depth,
        "nodes": nodes,
        "edges": [{"from": a, "to": b} for a, b in sorted(edges)],
    }
