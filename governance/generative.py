"""Generative metadata assets: product docs, the semantic index and the knowledge graph.

Each is a governance data product with its own contract, written through `publish()`;
the AI provider comes from the `ai` resource (offline unless OpenAI is configured) and
its token usage lands in the materialization's metadata.
"""

from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from dagster_project import (
    Product,
    ProductRun,
    Rows,
    SemanticLayer,
    discover_contracts,
    load_contract,
    load_semantic_layer,
    product_lineage,
)
from governance.knowledge_graph import build_graph, edges_frame, write_reports
from governance.product_docs import build_docs, ui_observations
from governance.semantic_index import build_index

CONTRACTS = Path(__file__).parent / "contracts"
OWN = {
    name: load_contract(CONTRACTS / f"{name}.odcs.yaml")
    for name in ("product_docs", "semantic_index", "knowledge_graph")
}


def _layer(run: ProductRun) -> tuple[list, SemanticLayer]:
    """The contracts and the semantic layer; a domain whose semantics.yaml is broken is
    left out (its team told why in the run's log), not the whole mesh's metadata."""
    contracts = discover_contracts()
    layer = load_semantic_layer(contracts=contracts)
    for note in layer.excluded_notes():
        run.log.warning(note)
    return contracts, layer


def generative_products(product_keys: Sequence[str]) -> list[Product]:
    """The three products, over the given domain products (their inputs in the graph)."""

    def product_docs(run: ProductRun) -> Rows:
        contracts, layer = _layer(run)
        ai, mesh = run.resource("ai"), run.resource("mesh")
        provider = ai.get_provider(log=run.log)
        build = build_docs(
            contracts,
            mesh.lake,
            provider,
            layer,
            product_lineage(),
            share_samples=ai.samples_allowed,
        )
        for observation in ui_observations(build):
            run.context.log_event(observation)
        coverage = build.coverage
        run.log.info(
            f"documented {coverage['products_documented']} products and "
            f"{coverage['columns_documented']}/{coverage['columns_total']} columns; "
            f"{build.suggestions} suggestion(s) pending review (`mesh docs review`)"
        )
        extra = {
            **coverage,
            "suggestions_pending": build.suggestions,
            "sample_values_shared": build.samples_shared,
            "docs_folder": dg.MetadataValue.path(mesh.settings.uri("docs")),
            **provider.usage_metadata(),
            **{f"docs/{key}": dg.MetadataValue.md(md) for key, md in build.markdown.items()},
        }
        return Rows(build.frame(), extra)

    def semantic_index(run: ProductRun) -> Rows:
        contracts, layer = _layer(run)
        ai, mesh = run.resource("ai"), run.resource("mesh")
        provider = ai.get_provider(log=run.log)
        frame, summary = build_index(contracts, layer, provider, mesh.settings)
        extra = {
            "entries": summary["entries"],
            "vector_model": summary["vector_model"],
            "by_kind": dg.MetadataValue.json(summary["by_kind"]),
            "sample_searches": dg.MetadataValue.json(summary["sample_searches"]),
            **provider.usage_metadata(),
        }
        return Rows(frame, extra)

    def knowledge_graph(run: ProductRun) -> Rows:
        contracts, layer = _layer(run)
        graph = build_graph(contracts, layer, product_lineage(), run.lake)
        frame = edges_frame(graph)
        reports = write_reports(graph, run.lake)
        joins = frame.filter(frame["relation"] == "joins_with")
        extra = {
            "nodes": graph.number_of_nodes(),
            "edges": frame.height,
            "joins_inferred": joins.height,
            "join_evidence": dg.MetadataValue.md(
                "\n".join(
                    f"- `{r['source']}` → `{r['target']}`: {r['evidence']}"
                    for r in joins.to_dicts()
                )
                or "no joins found"
            ),
            **{f"report_{k}": dg.MetadataValue.path(v) for k, v in reports.items()},
        }
        return Rows(frame, extra)

    def product(build, *inputs: str, resources: tuple[str, ...] = ()) -> Product:
        contract = OWN[build.__name__]
        return Product(
            contract.product,
            build=build,
            inputs=inputs,
            contract=contract,
            resources=resources,
            kinds=("ai",),  # the UI shows these are AI-generated
        )

    return [
        product(product_docs, *product_keys, resources=("ai",)),
        product(semantic_index, "governance/product_docs", resources=("ai",)),
        product(knowledge_graph, *product_keys),
    ]
