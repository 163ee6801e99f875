"""The asset graph of an asset page's Lineage tab laid out on the server, for an SVG the template draws: networkx
puts the assets in layers (upstream on the left, each edge pointing right) with ``topological_generations`` and
places the layers with ``multipartite_layout``; within a layer, assets are ordered by the mean position of their
neighbours (a barycenter sweep each way), which keeps most edges from crossing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

NODE_H = 44
COLUMN_GAP = 90
ROW_GAP = 22
PAD = 16
_CHAR_W = 7.4  # the width of a character of the node's 13px label, near enough
_MIN_W, _MAX_W = 120, 280


@dataclass(frozen=True, slots=True)
class Node:
    key: str
    label: str  # the key, cut to fit the box (the whole key is the node's title)
    x: float
    y: float
    w: float
    status: str | None
    root: bool
    defined: bool


@dataclass(frozen=True, slots=True)
class Edge:
    path: str  # the SVG path from the upstream's right side to the downstream's left side


@dataclass(frozen=True, slots=True)
class Layout:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    width: float
    height: float


def _layers(graph: nx.DiGraph[str], distance: Mapping[str, int]) -> list[list[str]]:
    """Assets by layer: topological generations where the graph has no cycle (an edge always points one layer
    on or more), else the distance from the root the lineage gives."""
    try:
        return [sorted(generation) for generation in nx.topological_generations(graph)]
    except nx.NetworkXUnfeasible:
        by_distance: dict[int, list[str]] = {}
        for key in sorted(graph):
            by_distance.setdefault(distance.get(key, 0), []).append(key)
        return [by_distance[d] for d in sorted(by_distance)]


def _order(graph: nx.DiGraph[str], layers: list[list[str]]) -> list[list[str]]:
    """Each layer sorted by the mean position of its predecessors, then (going back) of its successors."""
    position = {key: i for layer in layers for i, key in enumerate(layer)}

    def sweep(sequence: Sequence[list[str]], neighbours: Any) -> None:
        for layer in sequence:

            def centre(key: str) -> float:
                placed = [position[n] for n in neighbours(key) if n in position]
                return sum(placed) / len(placed) if placed else position[key]

            layer.sort(key=lambda key: (centre(key), key))
            position.update({key: i for i, key in enumerate(layer)})

    sweep(layers[1:], graph.predecessors)
    sweep(layers[-2::-1], graph.successors)
    return layers


def _label(key: str, width: float) -> str:
    room = int((width - 20) / _CHAR_W)
    return key if len(key) <= room else "…" + key[-(room - 1) :]


def layout(lineage: Mapping[str, Any]) -> Layout:
    """The lineage (``consumers.catalog.lineage``'s answer: ``root``, ``nodes``, ``edges``) in pixels."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    nodes = {n["asset_key"]: n for n in lineage["nodes"]}
    graph.add_nodes_from(nodes)
    graph.add_edges_from((e["from"], e["to"]) for e in lineage["edges"] if e["from"] in nodes and e["to"] in nodes)
    if not nodes:
        return Layout((), (), 2 * PAD, 2 * PAD)
    layers = _order(graph, _layers(graph, {k: n.get("distance", 0) for k, n in nodes.items()}))
    positions = nx.multipartite_layout(graph, subset_key=dict(enumerate(layers)), align="vertical")
    # multipartite_layout puts layers one unit apart and a layer's nodes one unit apart, centred, then scales
    # both axes alike: the unit is recovered from either.
    xs = sorted({round(float(p[0]), 9) for p in positions.values()})
    longest = max(layers, key=len)
    if len(xs) > 1:
        unit = xs[1] - xs[0]
    elif len(longest) > 1:
        unit = abs(float(positions[longest[1]][1] - positions[longest[0]][1]))
    else:
        unit = 1.0
    widths = [min(_MAX_W, max(_MIN_W, 24 + _CHAR_W * max(len(k) for k in layer))) for layer in layers]
    column_x = [PAD + sum(w + COLUMN_GAP for w in widths[:i]) for i in range(len(layers))]
    top = min(float(p[1]) for p in positions.values())
    placed: dict[str, Node] = {}
    for i, layer in enumerate(layers):
        for key in layer:
            row = (float(positions[key][1]) - top) / unit
            node = nodes[key]
            placed[key] = Node(
                key=key,
                label=_label(key, widths[i]),
                x=column_x[i],
                y=PAD + row * (NODE_H + ROW_GAP),
                w=widths[i],
                status=node.get("status"),
                root=key == lineage["root"],
                defined=bool(node.get("defined")),
            )
    edges = []
    for upstream, downstream in sorted(graph.edges):
        a, b = placed[upstream], placed[downstream]
        x1, y1, x2, y2 = a.x + a.w, a.y + NODE_H / 2, b.x, b.y + NODE_H / 2
        bend = max(30.0, (x2 - x1) / 2)
        edges.append(Edge(f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"))
    width = column_x[-1] + widths[-1] + PAD
    height = max(n.y for n in placed.values()) + NODE_H + PAD
    return Layout(tuple(placed.values()), tuple(edges), width, height)
