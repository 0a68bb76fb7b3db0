"""The `governance/knowledge_graph` product: how the mesh's things relate.

Nodes: domains, products, columns, entities, metrics, owners and glossary terms.
Edges: lineage (`feeds`), ownership, columns of products, entity keys (`key_of`,
`shares_key`), declared references, joins inferred from the data with their evidence
(the share of one column's distinct values found in the other), metric-to-column and
metric-to-product, ratios, and glossary terms to what they name. Published as a Delta
table of edges plus GraphML, JSON (node-link) and a PNG under MESH_HOME/reports.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from itertools import combinations
from typing import Any

import networkx as nx
import polars as pl

from dagster_project import Contract, Lake, SemanticLayer

PICTURE_KEY = "knowledge_graph.png.sha256"  # what the PNG shows, hashed
JOIN_THRESHOLD = 0.9  # share of distinct values found on the other side to call it a join
KIND_COLORS = {
    "domain": "#6c757d",
    "product": "#1f77b4",
    "column": "#c7c7c7",
    "entity": "#2ca02c",
    "metric": "#ff7f0e",
    "owner": "#9467bd",
    "term": "#d62728",
}


def node_kind(node_id: str) -> str:
    return node_id.split(":", 1)[0]


def build_graph(
    contracts: Iterable[Contract],
    layer: SemanticLayer,
    lineage: Iterable[tuple[str, str]],
    lake: Lake,
) -> nx.MultiDiGraph:
    graph = nx.MultiDiGraph()
    contracts = sorted(contracts, key=lambda c: c.key)

    def node(node_id: str, label: str, **attrs: Any) -> str:
        graph.add_node(node_id, kind=node_kind(node_id), label=label, **attrs)
        return node_id

    def edge(source: str, target: str, relation: str, evidence: str, weight: float = 1.0) -> None:
        graph.add_edge(
            source, target, key=relation, relation=relation, evidence=evidence, weight=weight
        )

    for c in contracts:
        product = node(f"product:{c.key}", c.key, domain=c.domain, description=c.description)
        edge(product, node(f"domain:{c.domain}", c.domain), "in_domain", "contract domain")
        if c.owner:
            edge(product, node(f"owner:{c.owner}", c.owner), "owned_by", "contract team")
        for col in c.columns:
            column = node(
                f"column:{c.key}.{col.name}",
                f"{c.product}.{col.name}",
                type=col.logical_type,
                pii=col.is_pii,
            )
            edge(product, column, "has_column", "contract schema")
        for key in c.foreign_keys:
            for here, there in zip(key.columns, key.target_columns, strict=True):
                target = f"column:{key.target}.{there}"
                edge(f"column:{c.key}.{here}", target, "references", f"contract {key.label}")
    for upstream, downstream in lineage:
        edge(f"product:{upstream}", f"product:{downstream}", "feeds", "Dagster asset graph")
    _semantic_edges(graph, node, edge, layer)
    _shared_keys(edge, layer)
    for source, target, relation, evidence, weight in infer_joins(contracts, layer, lake):
        edge(source, target, relation, evidence, weight)
    dangling = [n for n in graph.nodes if "kind" not in graph.nodes[n]]
    for n in dangling:  # referenced but undeclared (e.g. a reference to a missing column)
        graph.nodes[n].update(kind=node_kind(n), label=n.split(":", 1)[1], missing=True)
    return graph


def _semantic_edges(graph: nx.MultiDiGraph, node, edge, layer: SemanticLayer) -> None:
    for entity in layer.entities.values():
        ent = node(f"entity:{entity.name}", entity.name, description=entity.description)
        if entity.product:
            edge(
                f"column:{entity.product}.{entity.key}", ent, "key_of", "semantic layer entity key"
            )
    for metric in layer.list_metrics():
        m = node(f"metric:{metric.name}", metric.title, description=metric.description)
        edge(m, f"product:{metric.product}", "defined_on", "semantic layer metric model")
        if metric.is_ratio:
            edge(m, f"metric:{metric.numerator}", "ratio_numerator", "semantic layer ratio")
            edge(m, f"metric:{metric.denominator}", "ratio_denominator", "semantic layer ratio")
        elif metric.column:
            edge(
                m,
                f"column:{metric.product}.{metric.column}",
                "aggregates",
                f"{metric.agg} of {metric.column}",
            )
    for model in layer.models.values():
        for dim in model.dimensions:
            column = f"column:{model.product}.{dim.column}"
            if column in graph:
                graph.nodes[column]["dimension"] = dim.name
    for term in layer.glossary:
        t = node(f"term:{term.term}", term.term, description=term.definition)
        for related in term.related:
            edge(t, related, "relates_to", "business glossary")


def _shared_keys(edge, layer: SemanticLayer) -> None:
    for a, b, column in layer.shared_keys():
        entity = layer.entity_of_key(column)
        edge(
            f"product:{a}",
            f"product:{b}",
            "shares_key",
            f"both hold {column} (entity {entity.name})",
        )


def candidate_pairs(
    contracts: list[Contract], layer: SemanticLayer
) -> list[tuple[str, str, str, str]]:
    """(product, column, product, column) worth testing for a join: same name and type and
    an entity key or an `_id` column, or a declared reference."""
    pairs = set()
    for a, b in combinations(contracts, 2):
        for col in a.columns:
            if col.name not in b.column_names:
                continue
            same_type = b.column(col.name).logical_type == col.logical_type
            keyish = layer.entity_of_key(col.name) is not None or col.name.endswith("_id")
            if same_type and keyish:
                pairs.add(_pair(a.key, col.name, b.key, col.name))
    for c in contracts:
        for key in c.foreign_keys:
            for here, there in zip(key.columns, key.target_columns, strict=True):
                pairs.add(_pair(c.key, here, key.target, there))
    return sorted(pairs)


def _pair(a: str, col_a: str, b: str, col_b: str) -> tuple[str, str, str, str]:
    """One order per pair of columns, whichever way it was found."""
    first, second = sorted([(a, col_a), (b, col_b)])
    return (*first, *second)


def infer_joins(
    contracts: list[Contract], layer: SemanticLayer, lake: Lake
) -> list[tuple[str, str, str, str, float]]:
    """Joins found in the data: containment of distinct values, with the numbers as evidence."""
    distinct: dict[tuple[str, str], set] = {}

    def values(key: str, column: str) -> set | None:
        if (key, column) not in distinct:
            if not lake.exists(key):
                return None
            series = lake.scan(key).select(column).unique().collect().to_series()
            distinct[(key, column)] = set(series.drop_nulls().to_list())
        return distinct[(key, column)]

    edges = []
    for a, col_a, b, col_b in candidate_pairs(contracts, layer):
        va, vb = values(a, col_a), values(b, col_b)
        if not va or not vb:
            continue
        common = len(va & vb)
        a_in_b, b_in_a = common / len(va), common / len(vb)
        if max(a_in_b, b_in_a) < JOIN_THRESHOLD:
            continue
        # Point from the side whose values are (almost) all found on the other side.
        (src, s_col, s_vals, share), (dst, d_col, d_vals) = (
            ((a, col_a, va, a_in_b), (b, col_b, vb))
            if a_in_b >= b_in_a
            else ((b, col_b, vb, b_in_a), (a, col_a, va))
        )
        jaccard = common / len(va | vb)
        evidence = (
            f"{share:.1%} of {len(s_vals):,} distinct {src}.{s_col} values found in "
            f"{dst}.{d_col} ({len(d_vals):,} distinct); Jaccard {jaccard:.2f}"
        )
        edges.append(
            (
                f"column:{src}.{s_col}",
                f"column:{dst}.{d_col}",
                "joins_with",
                evidence,
                round(share, 4),
            )
        )
    return edges


# -- outputs ------------------------------------------------------------------------------
def edges_frame(graph: nx.MultiDiGraph) -> pl.DataFrame:
    rows = {}
    for source, target, data in graph.edges(data=True):
        rows[(source, data["relation"], target)] = {
            "source": source,
            "target": target,
            "relation": data["relation"],
            "source_kind": node_kind(source),
            "target_kind": node_kind(target),
            "evidence": data["evidence"],
            "weight": float(data["weight"]),
        }
    return pl.DataFrame([rows[k] for k in sorted(rows)])


def _plain(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """GraphML takes strings, numbers and booleans only."""
    plain = nx.MultiDiGraph()
    for n, data in graph.nodes(data=True):
        plain.add_node(n, **{k: v for k, v in data.items() if v is not None})
    for s, t, k, data in graph.edges(keys=True, data=True):
        plain.add_edge(s, t, key=k, **{k2: v for k2, v in data.items() if v is not None})
    return plain


def graphml_bytes(graph: nx.MultiDiGraph) -> bytes:
    buffer = io.BytesIO()
    nx.write_graphml(_plain(graph), buffer)
    return buffer.getvalue()


def json_bytes(graph: nx.MultiDiGraph) -> bytes:
    data = nx.node_link_data(_plain(graph), edges="edges")
    return json.dumps(data, indent=1, sort_keys=True, default=str).encode()


def folded(graph: nx.MultiDiGraph) -> nx.Graph:
    """The graph without columns (they would hide everything else); joins and keys
    between columns become edges between their products."""
    view = nx.Graph()
    for n, data in graph.nodes(data=True):
        if data.get("kind") != "column":
            view.add_node(n, **data)
    for s, t, data in graph.edges(data=True):
        s2, t2 = _lift(graph, s), _lift(graph, t)
        if s2 != t2 and s2 in view and t2 in view:
            view.add_edge(s2, t2, relation=data["relation"])
    return view


def picture_key(view: nx.Graph) -> str:
    """What the picture shows (nodes, kinds, labels, edges): the same key, the same PNG."""
    nodes = sorted((n, str(d.get("kind")), str(d.get("label", n))) for n, d in view.nodes.items())
    edges = sorted((*sorted((s, t)), d["relation"]) for s, t, d in view.edges(data=True))
    return hashlib.sha256(json.dumps([nodes, edges]).encode()).hexdigest()


def png_bytes(view: nx.Graph) -> bytes:
    """A picture of the folded graph (see `folded`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    position = nx.spring_layout(view, seed=7, k=1.2 / max(1, len(view)) ** 0.5)
    fig, ax = plt.subplots(figsize=(16, 12), dpi=80)
    styles = {
        "feeds": ("#1f77b4", 2.0),
        "joins_with": ("#2ca02c", 1.5),
        "shares_key": ("#2ca02c", 0.8),
    }
    for relation in (None, *styles):
        chosen = [
            (s, t)
            for s, t, d in view.edges(data=True)
            if (d["relation"] in styles) == bool(relation)
            and (relation is None or d["relation"] == relation)
        ]
        color, width = styles.get(relation, ("#dddddd", 0.6))
        nx.draw_networkx_edges(
            view,
            position,
            edgelist=chosen,
            edge_color=color,
            width=width,
            ax=ax,
            arrows=relation == "feeds",
        )
    for kind, color in KIND_COLORS.items():
        nodes = [n for n, d in view.nodes(data=True) if d.get("kind") == kind]
        size = 900 if kind == "product" else 400
        nx.draw_networkx_nodes(
            view, position, nodelist=nodes, node_color=color, node_size=size, ax=ax, label=kind
        )
    labels = {n: d.get("label", n) for n, d in view.nodes(data=True)}
    nx.draw_networkx_labels(view, position, labels=labels, font_size=8, ax=ax)
    ax.legend(scatterpoints=1, loc="lower left", fontsize=9, markerscale=0.4)
    ax.set_title("Meshwork knowledge graph (columns folded into their products)")
    ax.axis("off")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _lift(graph: nx.MultiDiGraph, node_id: str) -> str:
    """A column's product; any other node itself."""
    if node_kind(node_id) == "column":
        return "product:" + node_id.split(":", 1)[1].rsplit(".", 1)[0]
    return node_id


def write_reports(graph: nx.MultiDiGraph, lake: Lake) -> dict[str, str]:
    """GraphML, JSON and PNG under MESH_HOME/reports/knowledge_graph; their URIs."""
    settings = lake.settings
    view = folded(graph)
    key, key_uri = picture_key(view), settings.reports_uri("knowledge_graph", PICTURE_KEY)
    png_uri = settings.reports_uri("knowledge_graph", "knowledge_graph.png")
    # Drawing takes seconds: the picture is redrawn only when what it shows changed.
    same = settings.files.exists(png_uri) and settings.files.read_text_or(key_uri, "") == key
    outputs = {
        "graphml": ("knowledge_graph.graphml", lambda: graphml_bytes(graph)),
        "json": ("knowledge_graph.json", lambda: json_bytes(graph)),
        "png": ("knowledge_graph.png", None if same else lambda: png_bytes(view)),
    }
    uris = {}
    for name, (filename, data) in outputs.items():
        uri = settings.reports_uri("knowledge_graph", filename)
        if data is not None:
            settings.files.write_bytes(uri, data())
        uris[name] = uri
    settings.files.write_text(key_uri, key)
    return uris
